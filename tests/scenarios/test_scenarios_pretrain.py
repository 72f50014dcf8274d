from __future__ import annotations

import json
import random

import pytest

torch = pytest.importorskip("torch")

from sklearn.metrics import roc_auc_score  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from miakit.scenarios import load_bundled_passages, train_tiny_gpt  # noqa: E402

MAX_LENGTH = 128
EPOCHS = 5  # measured AUROC with split seed 0: 0.89 after 4 epochs, 0.97 after 6


def _split(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    texts = [p["text"] for p in load_bundled_passages()]
    pool = random.Random(seed).sample(texts, 2 * n)
    return pool[:n], pool[n:]


def _mean_loglik(model, tokenizer, texts: list[str], batch_size: int = 32) -> list[float]:
    """Per text: mean log-probability of each token given the ones before it (first MAX_LENGTH tokens).

    The first token has no context and is not scored (no BOS is added). Batched with right padding.
    """
    out: list[float] = []
    with torch.no_grad():
        for i in range(0, len(texts), batch_size):
            enc = tokenizer(
                texts[i : i + batch_size], return_tensors="pt", padding=True, truncation=True, max_length=MAX_LENGTH
            )
            ids, mask = enc["input_ids"], enc["attention_mask"]
            logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
            logp = torch.log_softmax(logits, dim=-1).gather(-1, ids[:, 1:, None])[..., 0]
            keep = mask[:, 1:].float()
            out.extend(((logp * keep).sum(1) / keep.sum(1)).tolist())
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    members, held_out = _split(150)
    out = tmp_path_factory.mktemp("tiny_gpt")
    # One thread: on a busy 2-core machine, two spinning OpenMP threads per process are many times slower.
    path = train_tiny_gpt(members, out, epochs=EPOCHS, batch_size=8, seed=0, max_length=MAX_LENGTH, num_threads=1)
    return {"path": path, "members": members, "held_out": held_out}


def test_saves_a_loadable_model_and_tokenizer(trained):
    path = trained["path"]
    assert (path / "model.safetensors").is_file()
    assert (path / "config.json").is_file()
    model = AutoModelForCausalLM.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    assert model.config.model_type == "gpt2"
    assert model.config.n_positions == MAX_LENGTH
    assert model.config.vocab_size == len(tokenizer)
    info = json.loads((path / "miakit_training.json").read_text())
    assert info["n_texts"] == 150 and info["epochs"] == EPOCHS and len(info["epoch_mean_loss"]) == EPOCHS
    assert info["epoch_mean_loss"][-1] < info["epoch_mean_loss"][0]


def test_tokenizer_adds_no_bos_and_has_eos_pad(trained):
    tokenizer = AutoTokenizer.from_pretrained(trained["path"])
    text = trained["members"][0]
    ids = tokenizer(text)["input_ids"]
    assert ids == tokenizer(text, add_special_tokens=True)["input_ids"]
    assert tokenizer.bos_token_id is None or ids[0] != tokenizer.bos_token_id
    assert tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids
    assert tokenizer.pad_token_id == tokenizer.eos_token_id
    assert tokenizer.decode(ids) == text


def test_loss_separates_members_from_held_out(trained):
    model = AutoModelForCausalLM.from_pretrained(trained["path"]).eval()
    tokenizer = AutoTokenizer.from_pretrained(trained["path"])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        members = _mean_loglik(model, tokenizer, trained["members"])
        held_out = _mean_loglik(model, tokenizer, trained["held_out"])
    finally:
        torch.set_num_threads(threads)
    auroc = roc_auc_score([1] * len(members) + [0] * len(held_out), members + held_out)
    assert auroc > 0.65, auroc


def test_seeded_training_is_deterministic_and_leaves_global_state(tmp_path):
    texts, _ = _split(24, seed=1)
    threads = torch.get_num_threads()
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    a = train_tiny_gpt(texts, tmp_path / "a", epochs=1, batch_size=8, vocab_size=300, seed=3, num_threads=1)
    assert torch.equal(torch.rand(3), expected_next)  # the caller's RNG stream is untouched
    assert torch.get_num_threads() == threads
    b = train_tiny_gpt(texts, tmp_path / "b", epochs=1, batch_size=8, vocab_size=300, seed=3, num_threads=1)
    ma = AutoModelForCausalLM.from_pretrained(a).state_dict()
    mb = AutoModelForCausalLM.from_pretrained(b).state_dict()
    assert ma.keys() == mb.keys()
    assert all(torch.equal(ma[k], mb[k]) for k in ma)
    assert (a / "tokenizer.json").read_text() == (b / "tokenizer.json").read_text()


def test_reuses_a_given_tokenizer(tmp_path):
    texts, others = _split(16, seed=2)
    first = train_tiny_gpt(texts, tmp_path / "first", epochs=1, vocab_size=300, seed=0, num_threads=1)
    second = train_tiny_gpt(others, tmp_path / "second", epochs=1, tokenizer=first, num_threads=1, progress=True)
    assert (first / "tokenizer.json").read_text() == (second / "tokenizer.json").read_text()


@pytest.mark.parametrize(
    ("texts", "kwargs", "error"),
    [
        ([], {}, ValueError),
        ("not a list", {}, TypeError),
        (["a b c"], {"size": "huge"}, ValueError),
        (["a b c"], {"epochs": 0}, ValueError),
        (["a b c"], {"vocab_size": 100}, ValueError),
    ],
)
def test_rejects_bad_arguments(tmp_path, texts, kwargs, error):
    with pytest.raises(error):
        train_tiny_gpt(texts, tmp_path / "x", **kwargs)
