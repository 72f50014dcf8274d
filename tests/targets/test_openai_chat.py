"""A chat-only server: the session's real vLLM server with its ``/v1/completions`` hidden by the proxy (it answers
404 there, as a chat-only API does), so the target generates through ``/v1/chat/completions``."""

import httpx
import numpy as np
import pytest

from fault_proxy import FaultProxy, status
from miakit.errors import MiakitError
from miakit.signals.requests import GenerationRequest
from miakit.signals.store import Store
from miakit.targets.capability import Capability
from miakit.targets.openai_api import CHAT_INSTRUCTION, OpenAICompatibleTarget


def chat_only(proxy: FaultProxy) -> FaultProxy:
    return proxy.always(lambda: status(404), path="/v1/completions")


def direct_chat(server, prompt: str, instruction: str, **sampling) -> list[str]:
    """The same chat asked of the server itself, without miakit: the answers' texts, by choice index."""
    system = [{"role": "system", "content": instruction}] if instruction else []
    payload = {"model": server.name, "messages": [*system, {"role": "user", "content": prompt}], **sampling}
    answer = httpx.post(f"{server.base_url}/chat/completions", json=payload, timeout=120).json()
    return [c["message"]["content"] for c in sorted(answer["choices"], key=lambda c: c["index"])]


def test_a_chat_only_server_generates_what_its_chat_endpoint_answers(vllm_server, cache_dir):
    prompt = " ".join(vllm_server.members[0].split()[:12])
    sampled_request = GenerationRequest(prompt, n=3, temperature=1.0, max_new_tokens=10, seed=7)
    greedy_request = GenerationRequest(prompt, max_new_tokens=10)
    with chat_only(FaultProxy(vllm_server.base_url)) as proxy:
        target = OpenAICompatibleTarget(proxy.url, vllm_server.name, concurrency=2)
        n = target.negotiated
        assert (n.endpoint, n.chat_instruction, n.prompt_logprobs) == ("chat", CHAT_INSTRUCTION, None)
        assert target.capabilities == {Capability.GENERATION}  # no prompt log-probs, no token-id prompts
        assert n.alignment.startswith("not applicable")
        assert any("/v1/chat/completions" in note for note in n.notes)
        refused = proxy.count("received", path="/v1/completions")
        sampled, greedy = target.generate([sampled_request, greedy_request])
        assert proxy.count("received", path="/v1/completions") == refused  # not asked again after negotiation
        with pytest.raises(MiakitError, match="only /v1/chat/completions"):
            target.next_tokens([[1, 2, 3]])
    sampling = {"n": 3, "temperature": 1.0, "top_p": 1.0, "max_tokens": 10, "seed": 7}
    assert sampled.texts == tuple(direct_chat(vllm_server, prompt, CHAT_INSTRUCTION, **sampling))
    assert greedy.texts == tuple(direct_chat(vllm_server, prompt, CHAT_INSTRUCTION, temperature=0.0, max_tokens=10))
    assert len(set(sampled.texts)) > 1
    # vLLM names the generated tokens by id on the chat endpoint too: CDD's token unit works
    assert n.token_ids_in_output and all(len(ids) > 0 for ids in sampled.token_ids)
    assert sampled.logprobs is not None
    assert [len(lp) for lp in sampled.logprobs] == [len(ids) for ids in sampled.token_ids]


def test_a_chat_only_server_is_audited_with_the_attacks_it_allows(vllm_server, cache_dir, tmp_path):
    import miakit

    texts = [*vllm_server.members[:4], *vllm_server.nonmembers[:4]]
    data = [{"text": t, "label": int(i < 4)} for i, t in enumerate(texts)]
    attacks = "loss,petal,samia[n=2,max_new_tokens=8],cdd[n=3,max_new_tokens=8],verbatim_rouge_l[max_new_tokens=8]"
    store = Store(tmp_path / "store")
    options = {"attacks": attacks, "store": store, "progress": False, "bootstrap": 0}
    options["reference"] = [str(vllm_server.model_dir)]  # PETAL's surrogate: PETAL is skipped all the same
    generated = ("samia[n=2,max_new_tokens=8]", "cdd[n=3,max_new_tokens=8]", "verbatim_rouge_l[max_new_tokens=8]")
    with chat_only(FaultProxy(vllm_server.base_url)) as proxy:
        model = f"openai:{proxy.url}#{vllm_server.name}"
        first = miakit.audit(model, data, out=str(tmp_path / "run"), **options)
        asked = proxy.count("forwarded", path="/v1/chat/completions")
        proxy.reset_counters()
        again = miakit.audit(model, data, write=False, **options)
        rerun = proxy.count("forwarded", path="/v1/chat/completions")
        proxy.reset_counters()
        plain = miakit.audit(model, data, write=False, api_chat_instruction="", **options)
    assert "topk_logprobs" in first.results["skipped"]["loss"]
    assert "token_ids" in first.results["skipped"]["petal"]
    assert np.isfinite(first.scores[list(generated)].to_numpy()).all()
    # the rerun reads every generation from the store: only the start-up probe asks the chat endpoint
    assert asked > 3 and rerun <= 3 and again.manifest["counts_by_kind"]["generation"]["computed"] == 0
    np.testing.assert_array_equal(first.scores[list(generated)].to_numpy(), again.scores[list(generated)].to_numpy())
    # another framing is another target: nothing reused, and no false alarm of a changed model
    assert plain.manifest["counts_by_kind"]["generation"]["cached"] == 0
    assert plain.manifest["model"]["fingerprint"] != first.manifest["model"]["fingerprint"]
    assert not any("changed since an earlier run" in w for w in plain.results["warnings"])
    server = first.results["target"]["server"]
    assert server["negotiated"]["endpoint"] == "chat" and server["negotiated"]["chat_instruction"] == CHAT_INSTRUCTION
    report = (tmp_path / "run" / "report.html").read_text()
    assert "generation via /v1/chat/completions" in report
    assert any("/v1/chat/completions" in w for w in first.results["warnings"])


def test_the_endpoint_the_user_names_is_used_or_refused(vllm_server, cache_dir):
    forced = OpenAICompatibleTarget(vllm_server.base_url, vllm_server.name, endpoint="chat", chat_instruction="")
    assert forced.negotiated.endpoint == "chat" and forced.negotiated.chat_instruction == ""
    assert forced.capabilities == {Capability.GENERATION}
    refused = r"answers no /v1/completions request .*\(--api-endpoint completions\)"
    with chat_only(FaultProxy(vllm_server.base_url)) as proxy, pytest.raises(MiakitError, match=refused):
        OpenAICompatibleTarget(proxy.url, vllm_server.name, endpoint="completions")
    with pytest.raises(MiakitError, match="--api-endpoint must be one of"):
        OpenAICompatibleTarget(vllm_server.base_url, vllm_server.name, endpoint="messages")
