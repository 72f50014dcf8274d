"""What the report says about the audited target: its capabilities and, for a server, what was negotiated and
what the run asked of it (the ledger)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def target_summary(description: Mapping[str, Any]) -> dict[str, Any]:
    """The ``target`` entry of results.json from a target's ``describe()``."""
    out = {k: description.get(k) for k in ("name", "backend", "capabilities")}
    if "ledger" in description:
        out["server"] = {k: description.get(k) for k in ("base_url", "model", "negotiated", "ledger", "drift")}
    return out


def ledger_text(ledger: Mapping[str, Any]) -> str:
    """'52 requests, 3 retries (429 2, 500 1), 0 failures, 1234 prompt + 56 completion tokens, cost 0.0012'."""
    retries = f"{ledger.get('retries', 0)} retries"
    reasons = ledger.get("retry_reasons") or {}
    if reasons:
        retries += " (" + ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())) + ")"
    parts = [
        f"{ledger.get('requests', 0)} requests",
        retries,
        f"{ledger.get('failures', 0)} failures",
        f"{ledger.get('prompt_tokens', 0)} prompt + {ledger.get('completion_tokens', 0)} completion tokens",
    ]
    if ledger.get("cost") is not None:
        parts.append(f"cost {ledger['cost']:.4f}")
    return ", ".join(parts)


def target_lines(target: Mapping[str, Any] | None) -> list[str]:
    """Lines for the console and the report: capabilities, and a server's negotiation and ledger."""
    if not target:
        return []
    capabilities = ", ".join(target.get("capabilities") or [])
    lines = [f"target: {target.get('name')} ({target.get('backend')}); capabilities: {capabilities}"]
    server = target.get("server")
    if server:
        n = server.get("negotiated") or {}
        mode = n.get("prompt_logprobs")
        logprobs = f"prompt log-probs via {mode}, top {n.get('top_logprobs')}" if mode else "no prompt log-probs"
        tokenizer = "tokens from /tokenize" if n.get("tokenize") else "no server tokenizer"
        generation = f"generation via /v1/{'chat/' if n.get('endpoint') == 'chat' else ''}completions"
        lines.append(
            f"server: serves {n.get('served_model')}; {logprobs}; {generation}; {tokenizer}; "
            f"alignment {n.get('alignment')}"
        )
        lines.append(f"API ledger: {ledger_text(server.get('ledger') or {})}")
    return lines
