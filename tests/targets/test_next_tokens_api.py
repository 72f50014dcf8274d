"""Greedy next tokens through an OpenAI-compatible server (the session's vLLM ``vllm_server``) equal the local
model's (PETAL's label-only signal)."""

import pytest

from miakit.signals.engine import Engine
from miakit.signals.requests import NextTokensRequest
from miakit.targets.hf_causal import HFCausalLM
from miakit.targets.openai_api import OpenAICompatibleTarget
from miakit.targets.protocol import NextTokensTarget


@pytest.fixture(scope="module")
def local(vllm_server):
    return HFCausalLM.from_pretrained(str(vllm_server.model_dir), dtype="float32")


def test_api_next_tokens_equal_the_local_model(vllm_server, local, cache_dir):
    target = OpenAICompatibleTarget(vllm_server.base_url, vllm_server.name, concurrency=4)
    assert isinstance(target, NextTokensTarget) and isinstance(local, NextTokensTarget)
    texts = [*vllm_server.members[:3], *vllm_server.nonmembers[:3]]
    requests = [NextTokensRequest(t) for t in texts]
    remote = Engine({None: target}, None, progress=False, batch_size=2).run(requests)
    here = Engine({None: local}, None, progress=False, batch_size=2).run(requests)
    for r in requests:
        got, want = remote[r], here[r]
        assert got.token_ids == want.token_ids and len(got) == len(want) >= 2
        assert got.true_pieces == want.true_pieces
        agree = sum(a == b for a, b in zip(got.predicted, want.predicted, strict=True))
        assert agree >= len(want) - 1  # float32 server vs local: at most a near-tie may differ
        same = [j for j in range(len(want)) if got.predicted[j] == want.predicted[j]]
        assert [got.predicted_pieces[j] for j in same] == [want.predicted_pieces[j] for j in same]
