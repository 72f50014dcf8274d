"""The vLLM server of the ``vllm_server`` fixture: what it answers, checked against transformers on the same weights.

These tests pin down the wire format that later served-model tests rely on (see tests/servers.py's docstring).
"""

from __future__ import annotations

import math

import httpx
import pytest


@pytest.fixture(scope="module")
def client(vllm_server):
    with httpx.Client(base_url=vllm_server.origin, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def hf(vllm_server):
    """The served directory loaded with transformers (float32, eval)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(vllm_server.model_dir)
    model = AutoModelForCausalLM.from_pretrained(vllm_server.model_dir, dtype=torch.float32).eval()
    return tokenizer, model


def hf_token_logprobs(hf, text: str) -> tuple[list[int], list[float]]:
    """Token ids of ``text`` and log p(token i | tokens < i) for i >= 1: log_softmax of the logits at i - 1."""
    import torch

    tokenizer, model = hf
    ids = tokenizer(text)["input_ids"]
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].float()
    logp = torch.log_softmax(logits, dim=-1)
    return ids, [logp[i - 1, ids[i]].item() for i in range(1, len(ids))]


def complete(client, name, **body):
    response = client.post("/v1/completions", json={"model": name, **body})
    assert response.status_code == 200, response.text
    return response.json()


def score(client, name, prompt, k=1):
    return complete(client, name, prompt=prompt, echo=True, logprobs=k, max_tokens=0)


def passages(server, n=3):
    return [*server.members[:n], *server.nonmembers[:n]]


def test_served_model_and_ground_truth(vllm_server, client):
    assert vllm_server.base_url == f"http://127.0.0.1:{vllm_server.port}/v1"
    models = client.get("/v1/models").json()
    assert [m["id"] for m in models["data"]] == [vllm_server.name]
    assert models["data"][0]["max_model_len"] == vllm_server.max_model_len
    assert len(vllm_server.members) == 200
    assert len(vllm_server.nonmembers) == 200
    assert not set(vllm_server.members) & set(vllm_server.nonmembers)
    files = {p.name for p in vllm_server.model_dir.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "chat_template.jinja"} <= files


def test_echo_logprobs_match_transformers(vllm_server, client, hf):
    for text in passages(vllm_server):
        ids, expected = hf_token_logprobs(hf, text)
        choice = score(client, vllm_server.name, text)["choices"][0]
        lp = choice["logprobs"]
        assert choice["text"] == text  # max_tokens 0 + echo: the prompt alone, nothing generated
        assert lp["token_logprobs"][0] is None and lp["top_logprobs"][0] is None
        assert len(lp["token_logprobs"]) == len(ids)
        got = lp["token_logprobs"][1:]
        assert max(abs(a - b) for a, b in zip(got, expected, strict=True)) < 1e-3
        # tokens are decoded strings of each id (not ids, not the "Ġ" BPE symbols)
        tokenizer = hf[0]
        assert lp["tokens"] == [tokenizer.decode([i]) for i in ids]
        assert "".join(lp["tokens"]) == text
        # top_logprobs: the k=1 best plus the actual token, so 1 or 2 entries, the actual one at its own log-prob
        for i in range(1, len(ids)):
            top = lp["top_logprobs"][i]
            assert 1 <= len(top) <= 2
            assert top[lp["tokens"][i]] == pytest.approx(lp["token_logprobs"][i], abs=1e-6)
        # vLLM's own prompt_logprobs: [None, {id: {logprob, rank, decoded_token}}, ...], keyed by token id
        prompt_lp = choice["prompt_logprobs"]
        assert prompt_lp[0] is None and len(prompt_lp) == len(ids)
        for i in range(1, len(ids)):
            entry = prompt_lp[i][str(ids[i])]
            assert entry["logprob"] == pytest.approx(lp["token_logprobs"][i], abs=1e-6)
            assert entry["decoded_token"] == lp["tokens"][i]
            assert entry["rank"] >= 1


def test_tokenize_endpoint_matches_tokenizer(vllm_server, client, hf):
    tokenizer = hf[0]
    for text in passages(vllm_server, 2):
        response = client.post(
            "/tokenize", json={"model": vllm_server.name, "prompt": text, "return_token_strs": True}
        ).json()
        ids = tokenizer(text)["input_ids"]
        assert response["tokens"] == ids
        assert response["count"] == len(ids)
        assert response["max_model_len"] == vllm_server.max_model_len
        assert response["token_strs"] == tokenizer.convert_ids_to_tokens(ids)
        plain = client.post("/tokenize", json={"model": vllm_server.name, "prompt": text}).json()
        assert plain["tokens"] == ids and plain["token_strs"] is None
        detok = client.post("/detokenize", json={"model": vllm_server.name, "tokens": ids}).json()
        assert detok["prompt"] == text


def test_list_of_prompts_and_token_id_prompts(vllm_server, client):
    texts = passages(vllm_server, 2)
    batch = score(client, vllm_server.name, texts)["choices"]
    assert [c["index"] for c in batch] == list(range(len(texts)))
    ids = client.post("/tokenize", json={"model": vllm_server.name, "prompt": texts[0]}).json()["tokens"]
    by_ids = score(client, vllm_server.name, ids)["choices"][0]["logprobs"]["token_logprobs"]
    for text, choice in zip(texts, batch, strict=True):
        assert choice["text"] == text
        single = score(client, vllm_server.name, text)["choices"][0]["logprobs"]["token_logprobs"]
        got = choice["logprobs"]["token_logprobs"]
        assert got[0] is None and len(got) == len(single)
        assert max(abs(a - b) for a, b in zip(got[1:], single[1:], strict=True)) < 1e-4
        if text == texts[0]:
            assert max(abs(a - b) for a, b in zip(by_ids[1:], single[1:], strict=True)) < 1e-4


def test_top_k_limits_and_max_tokens(vllm_server, client):
    text = vllm_server.members[0]
    top = score(client, vllm_server.name, text, k=20)["choices"][0]["logprobs"]["top_logprobs"]
    assert all(20 <= len(t) <= 21 for t in top[1:])
    for key in ("logprobs", "prompt_logprobs"):
        body = {"model": vllm_server.name, "prompt": text, "echo": True, key: 21, "max_tokens": 1}
        response = client.post("/v1/completions", json=body)
        assert response.status_code == 400
        error = response.json()["error"]
        assert "greater than max allowed: 20" in error["message"] and error["param"] == key
    # max_tokens 0 needs echo
    response = client.post("/v1/completions", json={"model": vllm_server.name, "prompt": text, "max_tokens": 0})
    assert response.status_code == 400 and "max_tokens must be at least 1" in response.json()["error"]["message"]
    # max_tokens 1 with echo: the generated token is appended to the prompt's lists
    choice = complete(client, vllm_server.name, prompt=text, echo=True, logprobs=0, max_tokens=1)["choices"][0]
    n_prompt = len(score(client, vllm_server.name, text)["choices"][0]["logprobs"]["tokens"])
    assert len(choice["logprobs"]["tokens"]) == n_prompt + 1
    # a prompt over max_model_len is refused, not truncated
    long_ids = [5] * (vllm_server.max_model_len + 1)
    response = client.post(
        "/v1/completions",
        json={"model": vllm_server.name, "prompt": long_ids, "echo": True, "logprobs": 0, "max_tokens": 0},
    )
    assert response.status_code == 400 and "maximum context length" in response.json()["error"]["message"]


def test_seeded_sampling_repeats(vllm_server, client):
    """n=3 with a seed: three distinct choices, the same three on repeat. vLLM seeds choice j with seed + j, so
    seed + 1 gives choices 1 and 2 of seed as its 0 and 1: seeds of separate requests must be >= n apart."""

    def sample(seed):
        body = {"prompt": "The king", "n": 3, "seed": seed, "temperature": 1.0, "max_tokens": 12}
        return [
            c["text"] for c in sorted(complete(client, vllm_server.name, **body)["choices"], key=lambda c: c["index"])
        ]

    first, again = sample(1234), sample(1234)
    assert len(first) == 3 and len(set(first)) == 3
    assert first == again
    assert sample(1235)[:2] == first[1:]
    assert not set(sample(1300)) & set(first)


def test_chat_completions_with_logprobs(vllm_server):
    with httpx.Client(base_url=vllm_server.base_url, timeout=60) as c:
        response = c.post(
            "/chat/completions",
            json={
                "model": vllm_server.name,
                "messages": [{"role": "user", "content": "Tell me a story."}],
                "max_tokens": 4,
                "logprobs": True,
                "top_logprobs": 2,
                "temperature": 0,
            },
        )
    assert response.status_code == 200, response.text
    content = response.json()["choices"][0]["logprobs"]["content"]
    assert 1 <= len(content) <= 4
    for entry in content:
        assert math.isfinite(entry["logprob"]) and entry["logprob"] <= 0
        assert len(entry["top_logprobs"]) == 2
