"""The conformance suite every registered attack must pass (scikit-learn's check_estimator, for attacks)."""

import random

import numpy as np
import pytest
import torch

from miakit.api import collect_signals
from miakit.attacks import ATTACKS, Attack
from miakit.data import Sample
from miakit.evaluate import auroc, evaluate_scores
from miakit.scenarios import bundled_corpus_path
from miakit.signals.engine import Engine
from miakit.targets.hf_causal import HFCausalLM

# The tiny model's next-token entropy rarely falls below ~3 nats (median ~5.4), so SURP's default tau = 2
# (chosen for billion-parameter models) selects nothing there; the suite runs SURP with tau = 6 instead.
# The neighbourhood attack's masked LM is a tiny BERT saved by the `world` fixture (MLM_DIR); 8 neighbours.
CONFORMANCE_PARAMS = {
    "reference": {"model": "ref"},
    "surp": {"tau": 6.0},
    "neighbourhood": {"n": 8},
    "noisy_neighbours": {"sigma": 0.05, "n": 8},
}
MLM_DIR: list[str] = []


def default_instance(name: str) -> Attack:
    params = dict(CONFORMANCE_PARAMS.get(name, {}))
    if name == "neighbourhood":
        params["mlm"] = MLM_DIR[0] if MLM_DIR else "tiny-mlm"
    return ATTACKS[name](**params)


@pytest.fixture(scope="module")
def world(trained_scenario, tmp_path_factory):
    from lm_helpers import make_mlm, make_mlm_tokenizer

    texts = trained_scenario["members"] + trained_scenario["nonmembers"]
    tokenizer = make_mlm_tokenizer(texts)
    mlm_dir = tmp_path_factory.mktemp("tiny-mlm")
    make_mlm(len(tokenizer), max_positions=256).save_pretrained(mlm_dir)
    tokenizer.save_pretrained(mlm_dir)
    MLM_DIR[:] = [str(mlm_dir)]
    target = HFCausalLM.from_pretrained(str(trained_scenario["target"]))
    reference = HFCausalLM.from_pretrained(str(trained_scenario["reference"]))
    samples = [Sample(f"m{i}", t, 1) for i, t in enumerate(trained_scenario["members"][:60])]
    samples += [Sample(f"n{i}", t, 0) for i, t in enumerate(trained_scenario["nonmembers"][:60])]
    return {None: target, "ref": reference}, samples


@pytest.fixture(scope="module")
def calibration(trained_scenario):
    """Known samples, disjoint from the scored ones, that calibrated attacks fit on."""
    known = [Sample(f"cm{i}", t, 1) for i, t in enumerate(trained_scenario["members"][60:90])]
    return known + [Sample(f"cn{i}", t, 0) for i, t in enumerate(trained_scenario["nonmembers"][60:90])]


CALIBRATION: list[Sample] = []


@pytest.fixture(scope="module", autouse=True)
def _calibration_for_all_scores(calibration):
    CALIBRATION[:] = calibration
    yield
    CALIBRATION.clear()


def all_scores(targets, samples, batch_size=8, names=None) -> dict[str, np.ndarray]:
    """Every registered attack at its defaults, all requests through one engine run (as audits do); attacks
    that fit are fitted on the calibration samples first."""
    attacks = {name: default_instance(name) for name in (names or ATTACKS)}
    engine = Engine(targets, None, batch_size=batch_size, default_corpus=bundled_corpus_path(), progress=False)
    known = engine.run([r for a in attacks.values() for r in a.calibration_requests(CALIBRATION)])
    for attack in attacks.values():
        attack.fit(CALIBRATION, known)
    signals = collect_signals(engine, list(attacks.values()), samples)
    return {name: np.asarray(a.score(samples, signals), dtype=float) for name, a in attacks.items()}


@pytest.fixture(scope="module")
def baseline_scores(world):
    return all_scores(*world)


@pytest.fixture(scope="module")
def shuffled_batch1_scores(world):
    targets, samples = world
    order = list(range(len(samples)))
    random.Random(1).shuffle(order)
    shuffled = all_scores(targets, [samples[i] for i in order], batch_size=1)
    out = {}
    for name, values in shuffled.items():
        out[name] = np.empty_like(values)
        out[name][order] = values
    return out


@pytest.fixture(scope="module")
def odd_samples(world):
    """A one-token text among normal ones: nothing to score."""
    targets, samples = world
    word = next(w for w in ("the", "a", "I", "and") if len(targets[None].encode(w)) == 1)
    odd = [*samples[:3], Sample("short", word, 0), *samples[-3:]]
    return odd, all_scores(targets, odd)


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_contract(name):
    cls = ATTACKS[name]
    attack = default_instance(name)
    assert cls.name == name and cls.family and cls.paper and cls.summary and cls.requires
    assert attack.column_name() == name or name in CONFORMANCE_PARAMS or name == "neighbourhood"
    assert cls(**attack.get_params()).get_params() == attack.get_params()  # hyper-parameters round-trip
    assert repr(attack).startswith(type(attack).__name__)


# Measured on the trained tiny model: the positions of highest next-token entropy do not separate members
# (MaxRényi-K% AUROC 0.42 at k = 10%; fine-tuning a tiny model raises the entropy where it raises a rare
# token's probability). Its orientation is pinned on the planted-memorisation target below instead.
# Con-ReCall (measured AUROC 0.536 here) needs a model whose likelihood of a member rises in the context of other
# members; a 2-layer model with a 128-token context (prefixes cut to fit) shows little of that.
WEAK_ON_TINY_MODELS = {"max_renyi", "con_recall"}
# The planted model memorises exact sequences from position 0, so any prefix hides the memorisation alike
# for both of Con-ReCall's prefixes; its orientation is pinned on signals in tests/attacks/test_prefix.py.
PLANTED_CANNOT_EXPRESS = {"con_recall"}
# The planted model keys on token ids and takes no input embeddings: embedding noise cannot be expressed.
PLANTED_CANNOT_EXPRESS |= {"noisy_neighbours"}
# It changes the output distribution only, never the hidden states a probe reads.
PLANTED_CANNOT_EXPRESS |= {"activation_probe"}


@pytest.mark.parametrize("name", sorted(set(ATTACKS) - WEAK_ON_TINY_MODELS))
def test_orientation_members_score_higher(name, world, baseline_scores):
    _, samples = world
    labels = np.array([s.label for s in samples])
    s = baseline_scores[name]
    assert s.shape == (len(samples),)
    assert auroc(labels, s) > 0.55, f"{name}: AUROC {auroc(labels, s):.3f} on a model trained on the members"


class PlantedMemorisation(torch.nn.Module):
    """Idealised memorisation: on a member's exact token sequence the next-token distribution becomes
    (1 - lam) p + lam * onehot(actual next token); every other input (non-members, lowercased text) is
    left to the inner model."""

    def __init__(self, inner, member_sequences, lam=0.9):
        super().__init__()
        self.inner, self.config, self.lam = inner, inner.config, lam
        self.members = {tuple(ids) for ids in member_sequences}

    @property
    def base_model(self):
        return self  # no separate head: the engine must use these logits as they are

    def get_output_embeddings(self):
        return None

    def forward(self, input_ids, attention_mask=None, use_cache=None):
        out = self.inner(input_ids=input_ids, attention_mask=attention_mask)
        logp = out.logits.float().log_softmax(-1).clone()  # edited below; gradnorm backpropagates
        lengths = attention_mask.sum(1) if attention_mask is not None else [input_ids.shape[1]] * len(input_ids)
        for row, n in enumerate(int(n) for n in lengths):
            if tuple(input_ids[row, :n].tolist()) not in self.members:
                continue
            nxt = input_ids[row, 1:n]
            onehot = torch.zeros_like(logp[row, : n - 1]).scatter_(1, nxt[:, None], 1.0)
            mixed = (1 - self.lam) * logp[row, : n - 1].exp() + self.lam * onehot
            logp[row, : n - 1] = mixed.log()
        out.logits = logp
        return out


@pytest.fixture(scope="module")
def planted(world):
    targets, samples = world
    plain = targets[None]
    members = [plain.encode(s.text) for s in samples if s.label == 1]
    model = PlantedMemorisation(plain.model, members)
    planted = HFCausalLM(plain.tokenizer, name="planted", fingerprint="planted", config=plain.config, model=model)
    short = [s for s in samples if len(plain.encode(s.text)) <= plain.max_length]  # whole texts, no windows
    names = sorted(set(ATTACKS) - PLANTED_CANNOT_EXPRESS)
    return np.array([s.label for s in short]), all_scores({None: planted, "ref": targets["ref"]}, short, names=names)


@pytest.mark.parametrize("name", sorted(set(ATTACKS) - PLANTED_CANNOT_EXPRESS))
def test_orientation_on_planted_memorisation(name, planted):
    labels, scores = planted
    assert auroc(labels, scores[name]) > 0.9, f"{name}: AUROC {auroc(labels, scores[name]):.3f}"


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_batch_size_and_order_invariance(name, baseline_scores, shuffled_batch1_scores):
    np.testing.assert_allclose(shuffled_batch1_scores[name], baseline_scores[name], rtol=1e-5, atol=1e-5)


def test_determinism(world, baseline_scores):
    again = all_scores(*world)
    for name in ATTACKS:
        np.testing.assert_array_equal(again[name], baseline_scores[name], err_msg=name)


# The probe reads hidden states of every token, so a one-token text is scorable.
READS_ALL_TOKENS = {"activation_probe"}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_nan_policy_unscorable_text_is_flagged_not_dropped(name, odd_samples):
    """A one-token text has no scored token: its score is NaN (SURP: -inf), never an error or a drop."""
    odd, all_odd = odd_samples
    s = all_odd[name]
    assert s.shape == (7,)
    if name in READS_ALL_TOKENS:
        assert np.isfinite(s).all()  # activations exist for every token, the first included
        return
    assert np.isnan(s[3]) or s[3] == -np.inf
    assert np.isfinite(np.delete(s, 3)).all() or name == "surp"
    ev = evaluate_scores(np.array([x.label for x in odd]), s, n_bootstrap=0)
    assert ev.nan_nonmembers + ev.inf_nonmembers >= 1
