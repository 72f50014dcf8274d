"""The OpenAI-compatible target against a real vLLM server (the session's ``vllm_server``), with faults injected
by a real proxy between them."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from fault_proxy import DROP, Fault, FaultProxy, drop, shift_logprobs, status, truncate
from miakit.errors import MiakitError
from miakit.signals.engine import Engine
from miakit.signals.requests import GenerationRequest, TokenStatsRequest
from miakit.signals.store import Store
from miakit.targets.capability import Capability
from miakit.targets.hf_causal import HFCausalLM
from miakit.targets.openai_api import OpenAICompatibleTarget, parse_model_spec
from miakit.targets.protocol import GeneratingTarget, TokenScoringTarget

SECRET = "sk-miakit-test-5f2c9e7a1b3d"


@pytest.fixture(scope="module")
def local(vllm_server):
    return HFCausalLM.from_pretrained(str(vllm_server.model_dir), dtype="float32")


def api(url, name, **kw):
    kw.setdefault("concurrency", 4)
    return OpenAICompatibleTarget(url, name, **kw)


def texts_of(server, n=12):
    return [*server.members[:n], *server.nonmembers[:n]]


def test_negotiation_finds_what_vllm_offers(vllm_server, cache_dir):
    target = api(vllm_server.base_url, vllm_server.name)
    n = target.negotiated
    assert (n.prompt_logprobs, n.top_logprobs, n.tokenize, n.echo_max_tokens) == ("prompt_logprobs", 20, True, 0)
    assert n.alignment.startswith("aligned")
    assert n.max_length == vllm_server.max_model_len and n.generation_logprobs and n.top_k_sampling
    assert target.capabilities == {Capability.GENERATION, Capability.TOKEN_IDS, Capability.TOPK_LOGPROBS}
    assert isinstance(target, TokenScoringTarget) and isinstance(target, GeneratingTarget)
    described = target.describe()
    assert described["negotiated"]["served_model"] and described["ledger"]["requests"] == target.ledger.requests > 0


def test_api_token_statistics_equal_the_local_model(vllm_server, local, cache_dir):
    target = api(vllm_server.base_url, vllm_server.name)
    texts = texts_of(vllm_server, 6)
    requests = [TokenStatsRequest(t) for t in texts] + [TokenStatsRequest(texts[1], context=texts[0])]
    remote = Engine({None: target}, None, batch_size=4, progress=False).run(requests)
    here = Engine({None: local}, None, batch_size=4, progress=False).run(requests)
    for r in requests:
        a, b = remote[r], here[r]
        np.testing.assert_array_equal(a.token_ids, b.token_ids)
        np.testing.assert_allclose(a.logprob, b.logprob, atol=1e-3)
        np.testing.assert_allclose(a.max_logprob, b.max_logprob, atol=1e-3)
        np.testing.assert_allclose(a.renyi_inf, b.renyi_inf, atol=1e-3)
        close = np.abs(a.logprob - b.max_logprob) > 1e-3  # ranks away from near-ties are exact
        np.testing.assert_array_equal(a.rank[close], b.rank[close])
        assert np.isnan(a.mu).all() and np.isnan(a.entropy).all()  # not computable from top-k: never faked


def test_audit_scores_through_the_api_equal_local_scores(vllm_server, cache_dir, tmp_path):
    import miakit

    texts = texts_of(vllm_server)
    data = [{"text": t, "label": int(i < len(texts) // 2)} for i, t in enumerate(texts)]
    approximated = ("min_k_pp[approx=topk]", "surp[tau=4,approx=topk]", "max_renyi[k=0.3,approx=topk]")
    attacks = ",".join(("loss", "zlib", "min_k", "min_k_pp", *approximated))
    options = {"attacks": attacks, "write": False, "store": None, "progress": False, "bootstrap": 0}
    remote = miakit.audit(f"openai:{vllm_server.base_url}#{vllm_server.name}", data, **options)
    here = miakit.audit(str(vllm_server.model_dir), data, **options, dtype="float32")
    for column in ("loss", "zlib", "min_k", *approximated):
        np.testing.assert_allclose(remote.scores[column], here.scores[column], atol=1e-3, err_msg=column)
    full = "min_k_pp[approx=full]"  # two min_k_pp columns: each named by what sets them apart
    assert full in here.scores and full not in remote.scores
    assert "min_k_pp[approx=topk] runs it" in remote.results["skipped"][full]
    for column in approximated:  # the approximation is told, on either target
        for run in (remote, here):
            assert any(w.startswith(f"{column}: approximation: ") for w in run.results["warnings"]), column
    server = remote.results["target"]["server"]
    assert server["negotiated"]["alignment"].startswith("aligned") and server["ledger"]["failures"] == 0


@pytest.mark.parametrize("topk", [1, 5, 20])
def test_api_topk_approximation_equals_the_local_model(vllm_server, local, cache_dir, topk):
    target = api(vllm_server.base_url, vllm_server.name)
    texts = texts_of(vllm_server, 4)
    requests = [TokenStatsRequest(t, topk=topk) for t in texts]
    remote = Engine({None: target}, None, batch_size=4, progress=False).run(requests)
    here = Engine({None: local}, None, batch_size=4, progress=False).run(requests)
    for r in requests:
        for name in ("logprob", "mu", "sigma", "entropy", "renyi_05", "renyi_2", "renyi_inf"):
            np.testing.assert_allclose(getattr(remote[r], name), getattr(here[r], name), atol=1e-3, err_msg=name)
    with pytest.raises(MiakitError, match=r"top-21 approximation needs 21 top log-probs .* show 20"):
        target.token_stats([(target.encode(texts[0]), 1)], topk=21)


def test_generation_through_the_api_is_seeded(vllm_server, cache_dir):
    target = api(vllm_server.base_url, vllm_server.name)
    prompts = [" ".join(t.split()[:6]) for t in vllm_server.members[:3]]
    sampled = [GenerationRequest(p, n=3, temperature=1.0, top_k=20, max_new_tokens=10, seed=3) for p in prompts]
    greedy = [GenerationRequest(p, n=2, max_new_tokens=10) for p in prompts]
    first = target.generate(sampled + greedy)
    again = [target.generate([r])[0] for r in sampled + greedy]
    assert [g.texts for g in first] == [g.texts for g in again]
    assert all(len(g) == 3 and len(set(g.texts)) > 1 for g in first[:3])
    assert all(g.texts[0] == g.texts[1] for g in first[3:])
    for g in first:  # token ids and log-probs of every generated token
        assert g.logprobs is not None and [len(x) for x in g.logprobs] == [len(x) for x in g.token_ids]


def test_greedy_api_generation_equals_local_greedy(vllm_server, local, cache_dir):
    target = api(vllm_server.base_url, vllm_server.name)
    requests = [GenerationRequest(" ".join(t.split()[:8]), max_new_tokens=12) for t in vllm_server.members[:4]]
    requests.append(GenerationRequest(" ".join(vllm_server.members[:6]), max_new_tokens=8))  # longer than the context
    assert len(local.encode(requests[-1].prompt)) > vllm_server.max_model_len
    remote, here = target.generate(requests), local.generate(requests)
    assert [g.token_ids for g in remote] == [g.token_ids for g in here]
    for a, b in zip(remote, here, strict=True):
        np.testing.assert_allclose(a.logprob_arrays()[0], b.logprob_arrays()[0], atol=1e-3)


class EchoOnly(Fault):
    """A server without vLLM's ``prompt_logprobs`` extension (it refuses the parameter): echo + logprobs only."""

    label = "echo-only"

    def before(self, proxy, method, path, body):
        return status(400).before(proxy, method, path, body) if b"prompt_logprobs" in body else None


def test_echo_logprobs_alone_give_the_same_statistics(vllm_server, local, cache_dir):
    texts = texts_of(vllm_server, 4)
    requests = [TokenStatsRequest(t) for t in texts]
    with FaultProxy(vllm_server.base_url) as proxy:
        proxy.always(EchoOnly)
        target = api(proxy.url, vllm_server.name)
        assert target.negotiated.prompt_logprobs == "echo" and target.negotiated.alignment.startswith("aligned")
        remote = Engine({None: target}, None, batch_size=4, progress=False).run(requests)
    here = Engine({None: local}, None, batch_size=4, progress=False).run(requests)
    for r in requests:
        a, b = remote[r], here[r]
        np.testing.assert_allclose(a.logprob, b.logprob, atol=1e-3)
        np.testing.assert_allclose(a.max_logprob, b.max_logprob, atol=1e-3)
        shown = ~np.isnan(a.rank)  # ranks are known where the top 20 show the token
        assert shown.any() and np.isnan(a.rank[b.rank <= 20 - 1]).sum() == 0
        np.testing.assert_array_equal(a.rank[shown & (np.abs(a.logprob - b.max_logprob) > 1e-3)],
                                      b.rank[shown & (np.abs(a.logprob - b.max_logprob) > 1e-3)])  # fmt: skip
        assert (b.rank[~shown] > 20).all()


@pytest.mark.parametrize("direction", [1, -1])
def test_a_server_with_shifted_logprobs_is_refused(vllm_server, cache_dir, direction):
    with FaultProxy(vllm_server.base_url) as proxy:
        proxy.always(EchoOnly)
        proxy.always(lambda: shift_logprobs(direction, echo_only=True))  # generations stay right
        with pytest.raises(MiakitError, match="not aligned"):
            api(proxy.url, vllm_server.name)


class Perturb(Fault):
    """A different model behind the same name: every log-prob the server returns moved by 0.1."""

    label = "perturb"

    def after(self, reply):
        import json

        from fault_proxy import Reply

        data = json.loads(reply.body)
        for choice in data.get("choices", []):
            for entry in choice.get("prompt_logprobs") or []:
                for value in (entry or {}).values():
                    value["logprob"] -= 0.1
            lp = choice.get("logprobs") or {}
            lp["token_logprobs"] = [None if v is None else v - 0.1 for v in lp.get("token_logprobs") or []]
            lp["top_logprobs"] = [
                None if d is None else {k: v - 0.1 for k, v in d.items()} for d in lp.get("top_logprobs") or []
            ]
        return Reply(reply.status, reply.headers, json.dumps(data).encode())


def test_a_changed_model_behind_the_same_name_is_detected(vllm_server, cache_dir):
    first = api(vllm_server.base_url, vllm_server.name)
    assert first.drift is None
    again = api(vllm_server.base_url, vllm_server.name)  # same model: same identity, stored signals reused
    assert again.fingerprint == first.fingerprint and again.drift is None
    with FaultProxy(vllm_server.base_url) as proxy:
        proxy.always(Perturb, path="/v1/completions")
        changed = api(proxy.url, vllm_server.name)
    assert changed.fingerprint != first.fingerprint
    assert "changed since an earlier run" in changed.drift and vllm_server.name in changed.drift


def test_every_fault_is_retried_and_nothing_is_lost(vllm_server, cache_dir, tmp_path):
    texts = texts_of(vllm_server, 8)
    requests = [TokenStatsRequest(t) for t in texts]
    clean = Engine({None: api(vllm_server.base_url, vllm_server.name)}, None, batch_size=2, progress=False).run(
        requests
    )
    with FaultProxy(vllm_server.base_url) as proxy:
        # six one-shot faults go to whichever request comes next: one request may meet all of them (the 429's
        # Retry-After holds the other back), so it must be allowed six retries
        target = api(proxy.url, vllm_server.name, concurrency=2, timeout=5.0, max_retries=6)
        target.client.backoff = 0.05
        for fault in (status(429, retry_after=1), status(500), drop(), truncate(), truncate(full_length=True)):
            proxy.push(fault, path="/v1/completions")
        proxy.push(SlowOnce(8.0), path="/v1/completions")  # longer than the 5 s timeout
        started = time.perf_counter()
        faulty = Engine({None: target}, Store(tmp_path / "store"), batch_size=2, progress=False).run(requests)
        elapsed = time.perf_counter() - started
    for r in requests:
        np.testing.assert_allclose(faulty[r].logprob, clean[r].logprob, atol=1e-5)
    reasons = target.ledger.retry_reasons
    timeouts = reasons.pop("timeout", 0)  # the slowed request, and any a loaded machine adds
    assert reasons == {"429": 1, "500": 1, "connection": 2, "bad JSON": 1} and timeouts >= 1, reasons
    assert target.ledger.retries == 5 + timeouts and target.ledger.failures == 0
    assert elapsed >= 1.0  # Retry-After: 1 was honoured


class SlowOnce(Fault):
    def __init__(self, seconds):
        self.seconds, self.label = seconds, f"slow({seconds})"

    def before(self, proxy, method, path, body):
        time.sleep(self.seconds)


def test_a_server_that_keeps_failing_is_reported_not_hidden(vllm_server, cache_dir):
    with FaultProxy(vllm_server.base_url) as proxy:
        target = api(proxy.url, vllm_server.name, max_retries=2)
        target.client.backoff = 0.01
        proxy.always(lambda: status(503), path="/v1/completions")
        with pytest.raises(MiakitError, match=r"did not answer POST completions after 3 attempts \(last: 503\)"):
            target.token_stats([(target.encode(vllm_server.members[0]), 1)])
    assert target.ledger.failures == 1 and target.ledger.retries == 2


def test_a_refused_request_is_not_retried_and_names_the_server_message(vllm_server, cache_dir):
    target = api(vllm_server.base_url, vllm_server.name)
    before = target.ledger.requests
    too_long = list(range(5, 5 + vllm_server.max_model_len + 10))
    with pytest.raises(MiakitError, match="refused POST completions with 400"):
        target.token_stats([(too_long, 1)])
    assert target.ledger.requests == before + 1


def test_model_spec_and_missing_model_errors(vllm_server, cache_dir):
    assert parse_model_spec("openai:http://h:1/v1#m") == ("http://h:1/v1", "m")
    with pytest.raises(MiakitError, match="openai:BASE_URL#MODEL"):
        parse_model_spec("openai:http://h:1/v1")
    with pytest.raises(MiakitError, match=f"does not serve 'nope'; it serves: {vllm_server.name}"):
        api(vllm_server.base_url, "nope")


class HoldAfter(Fault):
    """Lets ``n`` scoring requests through, then holds every later one (never forwarded) until released."""

    def __init__(self, n):
        self.n, self.seen, self.held, self.release, self.label = n, 0, 0, threading.Event(), "hold"
        self.lock = threading.Lock()

    def before(self, proxy, method, path, body):
        if not _is_scoring(path, body):
            return None
        with self.lock:
            self.seen += 1
            hold = self.seen > self.n
            self.held += hold
        if hold:
            self.release.wait(60)
            return DROP
        return None


def test_a_killed_run_resumes_without_repeating_a_paid_request(vllm_server, tmp_path):
    env = {**os.environ, "MIAKIT_CACHE": str(tmp_path / "cache")}
    data = tmp_path / "data.jsonl"
    texts = texts_of(vllm_server, 20)
    data.write_text("".join(f'{{"text": {json_str(t)}, "label": {int(i < 20)}}}\n' for i, t in enumerate(texts)))
    with FaultProxy(vllm_server.base_url) as proxy:
        hold = HoldAfter(5)
        proxy.always(lambda: hold, path="/v1/completions")
        command = [
            sys.executable, "-m", "miakit.cli", "audit", "--model", f"openai:{proxy.url}#{vllm_server.name}",
            "--data", str(data), "--attacks", "loss", "--batch-size", "2", "--api-concurrency", "2",
            "--bootstrap", "0", "--no-progress",
        ]  # fmt: skip
        first = subprocess.Popen([*command, "-o", str(tmp_path / "run1")], env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        deadline = time.time() + 120
        while hold.held < 1 and time.time() < deadline and first.poll() is None:
            time.sleep(0.2)
        assert hold.held >= 1, first.communicate(timeout=5)[0].decode()[-3000:]
        time.sleep(1.0)  # the answered requests are stored as they arrive
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        hold.release.set()
        proxy.clear()
        paid_before = {r.body_sha256 for r in proxy.forwarded if _scoring(r)}
        assert len(paid_before) == 5
        second = subprocess.run([*command, "-o", str(tmp_path / "run2")], env=env, capture_output=True, timeout=300)
        assert second.returncode == 0, second.stderr.decode()[-3000:]
        paid_after = [r.body_sha256 for r in proxy.forwarded if _scoring(r)][5:]
    assert paid_after and not (set(paid_after) & paid_before)  # nothing paid for twice
    assert len(paid_after) == len(set(paid_after))
    assert len(paid_before) + len(paid_after) == 20  # 40 texts in batches of 2


def _scoring(record):
    """A scoring request of the audit (batches of two prompts), not one of the start-up probes (one prompt)."""
    return _is_scoring(record.path, record.body)


def _is_scoring(path, body):
    import json

    payload = json.loads(body) if body else {}
    return path.endswith("/completions") and bool(payload.get("prompt_logprobs")) and len(payload["prompt"]) == 2


def json_str(text):
    import json

    return json.dumps(text)


def test_the_key_is_written_nowhere(vllm_server, tmp_path):
    env = {**os.environ, "MIAKIT_CACHE": str(tmp_path / "cache"), "MIAKIT_TEST_KEY": SECRET}
    data = tmp_path / "data.jsonl"
    texts = texts_of(vllm_server, 10)
    data.write_text("".join(f'{{"text": {json_str(t)}, "label": {int(i < 10)}}}\n' for i, t in enumerate(texts)))
    out = tmp_path / "run"
    model = f"openai:{vllm_server.base_url}#{vllm_server.name}"
    run = subprocess.run(
        [sys.executable, "-m", "miakit.cli", "audit", "--model", model, "--data", str(data), "--attacks", "all",
         "--api-key-env", "MIAKIT_TEST_KEY", "--bootstrap", "50", "-o", str(out), "--api-price-prompt", "0.5"],
        env=env, capture_output=True, timeout=600,
    )  # fmt: skip
    output = run.stdout.decode() + run.stderr.decode()
    assert run.returncode == 0, output[-3000:]
    assert "API ledger:" in output and "capabilities: generation, token_ids, topk_logprobs" in output
    report = (out / "report.html").read_text()
    assert "API ledger:" in report and "alignment aligned" in report
    failing = subprocess.run(
        [sys.executable, "-m", "miakit.cli", "audit", "--model", f"openai:{vllm_server.base_url}#missing",
         "--data", str(data), "--api-key-env", "MIAKIT_TEST_KEY", "-o", str(tmp_path / "run-missing")],
        env=env, capture_output=True, timeout=120,
    )  # fmt: skip
    assert failing.returncode == 2
    output += failing.stdout.decode() + failing.stderr.decode()
    assert SECRET not in output
    for folder in (out, tmp_path / "cache"):
        for path in Path(folder).rglob("*"):
            if path.is_file():
                assert SECRET.encode() not in path.read_bytes(), path
    assert "MIAKIT_TEST_KEY" in (out / "manifest.json").read_text()  # the variable's name is recorded, not its value


def test_black_box_attacks_run_on_the_api_and_a_rerun_samples_nothing(vllm_server, cache_dir, tmp_path):
    import miakit

    texts = texts_of(vllm_server, 6)
    data = [{"text": t, "label": int(i < len(texts) // 2)} for i, t in enumerate(texts)]
    attacks = (
        "samia[n=3,max_new_tokens=16],cdd[n=4,max_new_tokens=16],verbatim_match[max_new_tokens=24],"
        "verbatim_rouge_l[max_new_tokens=24],loss"
    )
    store = Store(tmp_path / "store")
    with FaultProxy(vllm_server.base_url) as proxy:
        model = f"openai:{proxy.url}#{vllm_server.name}"
        options = {"attacks": attacks, "write": False, "store": store, "progress": False, "bootstrap": 0}
        first = miakit.audit(model, data, **options)
        generations = sum(1 for r in proxy.forwarded if r.path.endswith("/completions") and "n" in (r.json() or {}))
        proxy.reset_counters()
        again = miakit.audit(model, data, **options)
        rerun = [r for r in proxy.forwarded if r.path.endswith("/completions") and "n" in (r.json() or {})]
    columns = [
        c for c in first.scores.columns if c.split("[")[0] in ("samia", "cdd", "verbatim_match", "verbatim_rouge_l")
    ]
    assert len(columns) == 4, list(first.scores.columns)
    assert np.isfinite(first.scores[columns].to_numpy()).all() and generations > 0
    assert rerun == [r for r in rerun if r.json()["prompt"] == [] or r.json().get("max_tokens") == 4]  # probes only
    np.testing.assert_array_equal(first.scores[columns].to_numpy(), again.scores[columns].to_numpy())
    assert again.manifest["counts_by_kind"]["generation"]["computed"] == 0


def test_a_server_without_tokenize_is_audited_with_text_only_attacks(vllm_server, cache_dir):
    """No /tokenize (the proxy answers 404): no token ids, so no prompt log-probs; generation from the text."""
    import miakit

    texts = texts_of(vllm_server, 4)
    data = [{"text": t, "label": int(i < len(texts) // 2)} for i, t in enumerate(texts)]
    attacks = "loss,verbatim_match[max_new_tokens=12],samia[n=2,max_new_tokens=8]"
    options = {"attacks": attacks, "write": False, "store": None, "progress": False, "bootstrap": 0}
    with FaultProxy(vllm_server.base_url) as proxy:
        proxy.always(lambda: status(404), path="/tokenize")
        target = api(proxy.url, vllm_server.name)
        assert not target.negotiated.tokenize and target.capabilities == {Capability.GENERATION}
        assert any("/tokenize" in note for note in target.negotiated.notes)
        blind = miakit.audit(target, data, **options)
    plain = miakit.audit(f"openai:{vllm_server.base_url}#{vllm_server.name}", data, **options)
    assert "loss" not in blind.scores and "topk_logprobs" in blind.results["skipped"]["loss"]
    assert np.isfinite(blind.scores["samia[n=2,max_new_tokens=8]"]).all()
    np.testing.assert_array_equal(  # the server tokenises the text itself: the same greedy continuations
        blind.scores["verbatim_match[max_new_tokens=12]"], plain.scores["verbatim_match[max_new_tokens=12]"]
    )
