"""The fault-injecting proxy of tests/fault_proxy.py, between httpx and the real vLLM server of ``vllm_server``.

Each test checks that the client sees exactly the injected fault on the wire, and what reached the server.
"""

from __future__ import annotations

import json
import time

import httpx
import pytest

from fault_proxy import FaultProxy, delay, drop, shift_logprobs, status, truncate


@pytest.fixture
def proxy(vllm_server):
    with FaultProxy(vllm_server.base_url) as p:
        yield p


@pytest.fixture
def client(proxy):
    # No retries anywhere: httpx's default transport retries nothing; one request = one attempt.
    with httpx.Client(base_url=proxy.url, timeout=30) as c:
        yield c


def score_body(server, text=None):
    text = text if text is not None else server.members[0]
    return {"model": server.name, "prompt": text, "echo": True, "logprobs": 2, "max_tokens": 0}


def direct(server, body):
    with httpx.Client(base_url=server.base_url, timeout=30) as c:
        response = c.post("/completions", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_passthrough_counts_and_repeats(vllm_server, proxy, client):
    assert proxy.url == f"http://127.0.0.1:{proxy.port}/v1"
    body = score_body(vllm_server)
    via_proxy = client.post("/completions", json=body)
    assert via_proxy.status_code == 200
    expected = direct(vllm_server, body)["choices"][0]["logprobs"]
    assert via_proxy.json()["choices"][0]["logprobs"] == expected
    assert client.get("/models").json()["data"][0]["id"] == vllm_server.name
    assert proxy.count("received") == proxy.count("forwarded") == 2
    assert [(r.method, r.path) for r in proxy.forwarded] == [("POST", "/v1/completions"), ("GET", "/v1/models")]
    assert proxy.forwarded[0].json() == body and proxy.forwarded[0].upstream_status == 200
    assert proxy.repeats() == {}
    client.post("/completions", json=body)  # the same request again: now a repeat
    assert list(proxy.repeats().values()) == [2]
    assert next(iter(proxy.repeats()))[:2] == ("POST", "/v1/completions")


def test_429_with_retry_after_is_not_forwarded(vllm_server, proxy, client):
    proxy.push(status(429, retry_after=7))
    response = client.post("/completions", json=score_body(vllm_server))
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert response.json()["error"]["code"] == 429
    assert (proxy.count("received"), proxy.count("forwarded")) == (1, 0)
    assert proxy.received[0].faults == ("status(429, retry_after=7)",)
    # one-shot: the next request goes through
    assert client.post("/completions", json=score_body(vllm_server)).status_code == 200
    assert (proxy.count("received"), proxy.count("forwarded")) == (2, 1)
    assert proxy.repeats("received") and not proxy.repeats("forwarded")


def test_500_then_500_after_forwarding(vllm_server, proxy, client):
    proxy.push(status(500)).push(status(500, forward=True))
    first = client.post("/completions", json=score_body(vllm_server))
    assert first.status_code == 500 and "retry-after" not in first.headers
    assert proxy.count("forwarded") == 0
    second = client.post("/completions", json=score_body(vllm_server))
    assert second.status_code == 500
    assert proxy.count("forwarded") == 1 and proxy.forwarded[0].upstream_status == 200  # the work was done


def test_drop_closes_without_a_response(vllm_server, proxy, client):
    proxy.push(drop())
    with pytest.raises(httpx.RemoteProtocolError, match="without sending"):
        client.post("/completions", json=score_body(vllm_server))
    assert (proxy.count("received"), proxy.count("forwarded")) == (1, 0)
    proxy.push(drop(forward=True))
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/completions", json=score_body(vllm_server))
    assert (proxy.count("received"), proxy.count("forwarded")) == (2, 1)
    assert proxy.forwarded[0].upstream_status == 200
    # the client's next connection works
    assert client.post("/completions", json=score_body(vllm_server)).status_code == 200


def test_truncate_short_length_fails_json(vllm_server, proxy, client):
    proxy.push(truncate())
    response = client.post("/completions", json=score_body(vllm_server))
    assert response.status_code == 200
    full = proxy.forwarded[0].upstream_bytes
    assert len(response.content) == full // 2
    assert int(response.headers["content-length"]) == full // 2
    with pytest.raises(json.JSONDecodeError):
        response.json()
    assert response.content.startswith(b'{"id":')


def test_truncate_full_length_breaks_the_message(vllm_server, proxy, client):
    proxy.push(truncate(full_length=True))
    with pytest.raises(httpx.RemoteProtocolError, match=r"incomplete|complete message body"):
        client.post("/completions", json=score_body(vllm_server))
    assert (proxy.count("received"), proxy.count("forwarded")) == (1, 1)
    assert client.post("/completions", json=score_body(vllm_server)).status_code == 200


@pytest.mark.parametrize("direction", [1, -1])
def test_shift_logprobs(vllm_server, proxy, client, direction):
    body = score_body(vllm_server, vllm_server.nonmembers[0])
    real = direct(vllm_server, body)["choices"][0]
    if direction == 1:
        proxy.always(shift_logprobs, path="/v1/completions")
    else:
        proxy.always(shift_logprobs(-1))
    for _ in range(2):  # persistent
        shifted = client.post("/completions", json=body).json()["choices"][0]
        old, new = real["logprobs"], shifted["logprobs"]
        n = len(old["tokens"])
        assert new["tokens"] == old["tokens"] and new["text_offset"] == old["text_offset"]
        for field in ("token_logprobs", "top_logprobs"):
            assert len(new[field]) == n
            if direction == 1:  # new[i] = old[i - 1]
                assert new[field] == [None, *old[field][:-1]]
                assert new[field][1] is None
            else:  # new[i] = old[i + 1], [0] stays null, the last is unknown
                assert new[field] == [None, *old[field][2:], None]
        expected_prompt = real["prompt_logprobs"]
        if direction == 1:
            assert shifted["prompt_logprobs"] == [None, *expected_prompt[:-1]]
        else:
            assert shifted["prompt_logprobs"] == [None, *expected_prompt[2:], None]
        # the invariant a client can check: top_logprobs[i] holds tokens[i] at token_logprobs[i]; now it fails
        broken = [
            i for i in range(2, n - 1) if new["top_logprobs"][i].get(new["tokens"][i]) != new["token_logprobs"][i]
        ]
        assert broken
    # the path filter: /v1/models is untouched; a response without logprobs passes unchanged
    assert client.get("/models").status_code == 200
    plain = client.post("/completions", json={**body, "logprobs": None})
    assert plain.status_code == 200 and plain.json()["choices"][0]["logprobs"] is None
    assert proxy.repeats("forwarded")  # the same scoring request, twice: counted


def test_delay(vllm_server, proxy, client):
    proxy.push(delay(1.0))
    started = time.monotonic()
    assert client.post("/completions", json=score_body(vllm_server)).status_code == 200
    assert time.monotonic() - started >= 1.0
    proxy.push(delay(2.0))
    with pytest.raises(httpx.ReadTimeout):
        client.post("/completions", json=score_body(vllm_server), timeout=0.3)
    assert proxy.count("received") == 2


def test_path_filtered_one_shot_and_composition(vllm_server, proxy, client):
    proxy.push(status(503), path="/v1/completions")
    assert client.get("/models").status_code == 200  # not consumed by another path
    assert proxy.pending() == 1
    assert client.post("/completions", json=score_body(vllm_server)).status_code == 503
    assert proxy.pending() == 0
    # a one-shot delay composes with a persistent fault: delayed, then truncated
    proxy.always(truncate())
    proxy.push(delay(0.5))
    started = time.monotonic()
    response = client.post("/completions", json=score_body(vllm_server))
    assert time.monotonic() - started >= 0.5
    with pytest.raises(json.JSONDecodeError):
        response.json()
    assert proxy.received[-1].faults == ("delay(0.5)", "truncate(full_length=False, fraction=0.5)")
    proxy.clear()
    assert client.post("/completions", json=score_body(vllm_server)).json()["choices"]


def test_clean_shutdown(vllm_server):
    with FaultProxy(vllm_server.base_url) as p:
        url = p.url
        p.push(delay(30))
        with httpx.Client(timeout=1) as c, pytest.raises(httpx.ReadTimeout):
            c.get(f"{url}/models")
        started = time.monotonic()
    assert time.monotonic() - started < 5  # the pending 30 s delay was cut short
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/models", timeout=2)
