"""Pieces of the HTTP transport that the served-model tests cannot reach: Retry-After dates, the ledger's cost."""

import time
from email.utils import formatdate

from miakit.report.target import ledger_text
from miakit.targets.http import Ledger, retry_after_seconds


def test_retry_after_reads_seconds_and_http_dates():
    assert retry_after_seconds("2") == 2.0 and retry_after_seconds("0.5") == 0.5
    assert retry_after_seconds("-3") == 0.0
    later = retry_after_seconds(formatdate(time.time() + 30, usegmt=True))
    assert 25 <= later <= 31
    assert retry_after_seconds(formatdate(time.time() - 30, usegmt=True)) == 0.0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_ledger_cost_and_text():
    ledger = Ledger(requests=5, retries=2, prompt_tokens=3000, completion_tokens=500, retry_reasons={"429": 2})
    assert ledger.cost is None and "cost" not in ledger_text(ledger.as_dict())
    ledger.price_prompt, ledger.price_completion = 0.5, 2.0
    assert ledger.cost == 3000 * 0.5 / 1000 + 500 * 2.0 / 1000
    assert ledger_text(ledger.as_dict()) == (
        "5 requests, 2 retries (429 2), 0 failures, 3000 prompt + 500 completion tokens, cost 2.5000"
    )
