"""``check_attack``: the conformance suite every attack must pass (scikit-learn's ``check_estimator``, for attacks).

    from miakit.testing import check_attack
    check_attack(MyAttack)  # raises AttackCheckError naming each failed check; returns check -> outcome

The checks run on a small world (``build_world``): a tiny GPT-2 trained on bundled passages (the members), a
reference model of the same size trained on other passages, a tiny masked LM, labelled evaluation samples,
disjoint calibration samples and a signal store. Building it trains two tiny models (~20 s on an idle CPU,
minutes on a busy one); pass one world to many calls, which then share the signals computed so far. An attack
that cannot meet a check declares a tag on its class with the reason (``CHECK_TAGS``).
"""

from __future__ import annotations

import inspect
import random
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from miakit.attacks import ATTACKS, Attack, build_attacks
from miakit.attacks.base import CHECK_TAGS
from miakit.attacks.registry import score_summary
from miakit.data import Sample
from miakit.evaluate import auroc, evaluate_scores
from miakit.run.runner import collect_signals, fit_attacks
from miakit.signals.engine import Engine
from miakit.signals.store import Store
from miakit.targets.capability import Capability

REFERENCE_NAME = "ref"  # the world's reference model, as attacks name it
PLANTED_MIN_AUROC = 0.9  # planted memorisation makes each member token's probability >= 0.9 (see PlantedMemorisation)
BATCH_SIZE = 8
N_RECOMPUTED = 12  # members and as many non-members recomputed at engine batch size 1, shuffled
# A check an attack may be exempted from, by the tag that exempts it.
EXEMPTING_TAG = {"orientation": "weak_on_tiny_models", "planted_orientation": "planted_cannot_express"}


class AttackCheckError(AssertionError):
    """An attack failed check_attack; ``failures`` maps each failed check's name to what went wrong."""

    def __init__(self, cls: type, failures: dict[str, str]) -> None:
        self.failures = failures
        lines = "\n".join(f"- {check}: {problem}" for check, problem in failures.items())
        super().__init__(f"check_attack({cls.__name__}) failed {len(failures)} check(s):\n{lines}")


class _Failed(Exception):
    """One check's failure, with what the author must see."""


class ModelCalled(RuntimeError):
    """Raised when a model is called where check_attack forbids it."""


# ---- the world ---------------------------------------------------------------------------------------------
@dataclass
class AttackWorld:
    """What check_attack runs attacks on; ``targets[None]`` is trained on the members among ``samples``."""

    target: Any
    reference: Any
    mlm: str  # directory of a tiny masked LM (for attacks with ``mlm_param``)
    masked_lm: Any  # that masked LM, loaded
    samples: list[Sample]  # labelled: members (1) and non-members (0)
    calibration: list[Sample]  # labelled, disjoint from ``samples``; attacks that fit learn from these
    corpus: Path  # reference corpus for token frequencies
    one_token_text: str  # a text the target encodes as one token: nothing to score
    store: Store  # signals computed by earlier checks, shared by later ones
    _planted: tuple[dict[str | None, Any], list[Sample]] | None = field(default=None, repr=False)
    embedder: str = ""  # directory of a tiny sentence-transformers model (for attacks with ``embedder_param``)
    sentence_embedder: Any = None  # that embedder, ready to load

    @property
    def targets(self) -> dict[str | None, Any]:
        return {None: self.target, REFERENCE_NAME: self.reference}

    def planted(self) -> tuple[dict[str | None, Any], list[Sample]]:
        """Targets whose model memorises exactly the members among the whole-window samples, and those samples."""
        if self._planted is None:
            from miakit.targets.hf_causal import HFCausalLM

            plain = self.target
            members = [plain.encode(s.text) for s in self.samples if s.label == 1]
            model = PlantedMemorisation(plain.model, members)
            planted = HFCausalLM(
                plain.tokenizer, name="planted", fingerprint="planted", config=plain.config, model=model
            )
            short = [s for s in self.samples if len(plain.encode(s.text)) <= plain.max_length]
            self._planted = {None: planted, REFERENCE_NAME: self.reference}, short
        return self._planted

    def engine(
        self,
        targets: Mapping[str | None, Any] | None = None,
        *,
        stored: bool = True,
        no_models: bool = False,
        **kw: Any,
    ) -> Engine:
        """An engine over the world's targets (or ``targets``) and masked LM, reading and writing the world's store
        when ``stored``; with ``no_models`` every target and masked LM raises ``ModelCalled`` when called."""
        targets = dict(targets or self.targets)
        mlms = {self.mlm: self.masked_lm}
        embedders = {self.embedder: self.sentence_embedder} if self.sentence_embedder is not None else {}
        if no_models:
            targets = {name: NoModel(t) for name, t in targets.items()}
            mlms = {name: NoModel(m) for name, m in mlms.items()}
            embedders = {name: NoModel(e) for name, e in embedders.items()}
        store = self.store if stored else None
        kw.setdefault("batch_size", BATCH_SIZE)
        return Engine(targets, store, default_corpus=self.corpus, progress=False, mlms=mlms, embedders=embedders, **kw)


def build_world(directory: str | Path, *, seed: int = 0, epochs: int = 20) -> AttackWorld:
    """Train the tiny target on 120 bundled passages and a reference on 240 others, and build the world."""
    from miakit.scenarios import load_bundled_passages, train_tiny_gpt

    passages = [p["text"] for p in load_bundled_passages()]
    pool = random.Random(seed).sample(passages, 480)
    members, nonmembers, reference_pool = pool[:120], pool[120:240], pool[240:480]
    root = Path(directory)
    target = train_tiny_gpt(members, root / "target", epochs=epochs, batch_size=8, seed=seed)
    reference = train_tiny_gpt(reference_pool, root / "reference", epochs=4, seed=seed + 1, tokenizer=target)
    return world_from_models(target, reference, members, nonmembers, root)


def world_from_models(
    target_dir: str | Path,
    reference_dir: str | Path,
    members: Sequence[str],
    nonmembers: Sequence[str],
    directory: str | Path,
    *,
    n_evaluated: int = 60,
    n_calibration: int = 30,
) -> AttackWorld:
    """A world from trained models: the first ``n_evaluated`` members and non-members are scored, the next
    ``n_calibration`` of each are the calibration set; a tiny masked LM is saved under ``directory``."""
    from miakit.scenarios import bundled_corpus_path
    from miakit.targets.embedder import SentenceEmbedder
    from miakit.targets.hf_causal import HFCausalLM
    from miakit.targets.hf_mlm import HFMaskedLM

    if min(len(members), len(nonmembers)) < n_evaluated + n_calibration:
        raise ValueError(f"need {n_evaluated + n_calibration} members and non-members")
    target = HFCausalLM.from_pretrained(str(target_dir))
    reference = HFCausalLM.from_pretrained(str(reference_dir))
    mlm = save_tiny_masked_lm([*members, *nonmembers], Path(directory) / "tiny-mlm")
    samples = [Sample(f"m{i}", t, 1) for i, t in enumerate(members[:n_evaluated])]
    samples += [Sample(f"n{i}", t, 0) for i, t in enumerate(nonmembers[:n_evaluated])]
    end = n_evaluated + n_calibration
    calibration = [Sample(f"cm{i}", t, 1) for i, t in enumerate(members[n_evaluated:end])]
    calibration += [Sample(f"cn{i}", t, 0) for i, t in enumerate(nonmembers[n_evaluated:end])]
    word = next(w for w in ("the", "a", "I", "and", "of") if len(target.encode(w)) == 1)
    store = Store(Path(directory) / "signals")
    masked_lm = HFMaskedLM.from_pretrained(str(mlm))
    embedder = save_tiny_sentence_embedder([*members, *nonmembers], Path(directory) / "tiny-embedder")
    sentence_embedder = SentenceEmbedder.from_pretrained(str(embedder), device="cpu")
    facts = (target, reference, str(mlm), masked_lm, samples, calibration, bundled_corpus_path(), word, store)
    return AttackWorld(*facts, embedder=str(embedder), sentence_embedder=sentence_embedder)


def save_tiny_masked_lm(texts: Sequence[str], directory: Path, seed: int = 0) -> Path:
    """A random 2-layer BERT with a lower-casing word-level tokenizer trained on ``texts``, saved to ``directory``."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertForMaskedLM, PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=specials))
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]",
    )  # fmt: skip
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        config = BertConfig(
            vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=64, max_position_embeddings=256,
        )  # fmt: skip
        model = BertForMaskedLM(config).eval()
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def save_tiny_sentence_embedder(texts: Sequence[str], directory: Path, seed: int = 0) -> Path:
    """A random 2-layer BERT (the tiny masked LM's tokenizer) with mean pooling and L2 normalisation, saved as a
    sentence-transformers folder in ``directory``."""
    from sentence_transformers import SentenceTransformer
    from transformers import BertConfig, BertModel

    try:
        from sentence_transformers.sentence_transformer import modules as models
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers import models  # type: ignore[no-redef]

    bert = directory.parent / f"{directory.name}-bert"
    save_tiny_masked_lm(texts, bert, seed=seed)  # its tokenizer; the weights are replaced below
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        config = BertConfig.from_pretrained(bert)
        BertModel(config, add_pooling_layer=False).eval().save_pretrained(bert)
    transformer = models.Transformer(str(bert))
    pooling = models.Pooling(config.hidden_size, pooling_mode="mean")
    SentenceTransformer(modules=[transformer, pooling, models.Normalize()], device="cpu").save(str(directory))
    return directory


_DEFAULT_WORLD: list[AttackWorld] = []
_DEFAULT_DIR: list[tempfile.TemporaryDirectory] = []


def default_world() -> AttackWorld:
    """One world per process, built on first use in a temporary directory."""
    if not _DEFAULT_WORLD:
        _DEFAULT_DIR.append(tempfile.TemporaryDirectory(prefix="miakit-world-"))
        _DEFAULT_WORLD.append(build_world(_DEFAULT_DIR[0].name))
    return _DEFAULT_WORLD[0]


class PlantedMemorisation(torch.nn.Module):
    """Idealised memorisation: on a member's exact token sequence the next-token distribution becomes
    (1 - lam) p + lam * onehot(actual next token); every other input is left to the inner model."""

    def __init__(self, inner: Any, member_sequences: Sequence[Sequence[int]], lam: float = 0.9) -> None:
        super().__init__()
        self.inner, self.config, self.lam = inner, inner.config, lam
        self.members = {tuple(ids) for ids in member_sequences}

    @property
    def base_model(self) -> Any:
        return self  # no separate head: the engine must use these logits as they are

    def get_output_embeddings(self) -> None:
        return None

    def forward(self, input_ids: Any, attention_mask: Any = None, use_cache: Any = None) -> Any:
        out = self.inner(input_ids=input_ids, attention_mask=attention_mask)
        logp = out.logits.float().log_softmax(-1).clone()  # edited below; gradnorm backpropagates
        lengths = attention_mask.sum(1) if attention_mask is not None else [input_ids.shape[1]] * len(input_ids)
        for row, n in enumerate(int(n) for n in lengths):
            if tuple(input_ids[row, :n].tolist()) not in self.members:
                continue
            nxt = input_ids[row, 1:n]
            onehot = torch.zeros_like(logp[row, : n - 1]).scatter_(1, nxt[:, None], 1.0)
            logp[row, : n - 1] = ((1 - self.lam) * logp[row, : n - 1].exp() + self.lam * onehot).log()
        out.logits = logp
        return out


# ---- check_attack --------------------------------------------------------------------------------------------
def world_params(cls: type[Attack], world: AttackWorld, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The hyper-parameters check_attack uses: ``params`` (default: the class's ``tiny_world_params``), with the
    model and masked-LM parameters filled from the world when left out."""
    out = dict(cls.tiny_world_params if params is None else params)
    if cls.model_param and cls.model_param not in out:
        out[cls.model_param] = REFERENCE_NAME
    if cls.mlm_param and cls.mlm_param not in out:
        out[cls.mlm_param] = world.mlm
    if cls.embedder_param and cls.embedder_param not in out:
        out[cls.embedder_param] = world.embedder
    return out


def check_attack(
    cls: type[Attack],
    *,
    world: AttackWorld | None = None,
    params: Mapping[str, Any] | None = None,
    alpha: float = 0.01,
    n_permutations: int = 2000,
    seed: int = 0,
) -> dict[str, str]:
    """Run every conformance check on ``cls``; returns check -> "passed" or "skipped: tag: reason", and raises
    ``AttackCheckError`` naming every failed check.

    Checks: ``contract`` (declared facts, hyper-parameters only in ``__init__``, column names), ``reference``
    (``score`` agrees with the declared float64 ``reference_score``), ``orientation`` (AUROC on the trained
    target above the (1 - alpha) quantile of its AUROC under ``n_permutations`` label permutations),
    ``planted_orientation`` (AUROC > 0.9 where members are planted), ``batch_invariance`` (each sample alone,
    shuffled, and recomputed at engine batch size 1), ``determinism`` (a fresh instance asks for the same signals
    and scores identically), ``nan_policy`` (a one-token text is NaN or -inf, counted, kept) and ``model_free``
    (scores from stored signals, with targets that raise on any call and torch forwards raising).
    """
    world = world or default_world()
    run = _Run(cls, world_params(cls, world, params), world, alpha, n_permutations, seed)
    outcome: dict[str, str] = {}
    failures = run.run_checks(outcome)
    if failures:
        raise AttackCheckError(cls, failures)
    return outcome


@dataclass
class _Run:
    """One check_attack call: the fitted attack, its baseline signals and scores, and the checks over them."""

    cls: type[Attack]
    params: dict[str, Any]
    world: AttackWorld
    alpha: float
    n_permutations: int
    seed: int
    attack: Any = None
    signals: Any = None
    scores: np.ndarray = field(default_factory=lambda: np.empty(0))
    public_before: set[str] = field(default_factory=set)

    def checks(self) -> dict[str, Callable[[], None]]:
        return {
            "contract": self.contract,
            "reference": self.reference,
            "orientation": self.orientation,
            "planted_orientation": self.planted_orientation,
            "batch_invariance": self.batch_invariance,
            "determinism": self.determinism,
            "nan_policy": self.nan_policy,
            "model_free": self.model_free,
        }

    def run_checks(self, outcome: dict[str, str]) -> dict[str, str]:
        """Compute the baseline, then run every check not exempted by a tag; returns check -> failure."""
        try:
            self.compute_baseline()
        except Exception as exc:  # nothing else can run without the attack's scores
            return {"scoring": f"fitting or scoring on the world raised {type(exc).__name__}: {exc}"}
        failures = {}
        for name, check in self.checks().items():
            tag = EXEMPTING_TAG.get(name)
            if tag in self.cls.tags:
                outcome[name] = f"skipped: {tag}: {self.cls.tags[tag]}"
                continue
            try:
                check()
                outcome[name] = "passed"
            except _Failed as exc:
                failures[name] = str(exc)
            except Exception as exc:
                failures[name] = f"raised {type(exc).__name__}: {exc}"
        return failures

    def score(self, engine: Engine, samples: Sequence[Sample], attack: Any = None, *, fit: bool = False) -> np.ndarray:
        attack = attack or self.attack
        if fit:
            fit_attacks(engine, {attack.column_name(): attack}, self.world.calibration)
        return _as_scores(attack.score(samples, collect_signals(engine, [attack], samples)), len(samples))

    def compute_baseline(self) -> None:
        self.attack = self.cls(**self.params)
        self.public_before = _public_attributes(self.attack)
        engine = self.world.engine()
        fit_attacks(engine, {self.attack.column_name(): self.attack}, self.world.calibration)
        self.signals = collect_signals(engine, [self.attack], self.world.samples)
        self.scores = _as_scores(self.attack.score(self.world.samples, self.signals), len(self.world.samples))

    # ---- the checks --------------------------------------------------------------------------------------
    def contract(self) -> None:
        cls, attack = self.cls, self.attack
        problems = _declared_fact_problems(cls)
        init = inspect.signature(cls.__init__).parameters
        if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in init.values()):
            problems.append("__init__ takes *args or **kwargs: hyper-parameters must be named keyword arguments")
        defaults = {n: p.default for n, p in init.items() if n != "self" and p.default is not p.empty}
        fresh = cls(**self.params)
        if fresh.get_params() != {**defaults, **self.params}:
            problems.append(
                f"get_params() gives {fresh.get_params()} for {cls.__name__}(**{self.params}): __init__ must store "
                "each argument, unchanged, under its own name"
            )
        if cls(**fresh.get_params()).get_params() != fresh.get_params():
            problems.append("hyper-parameters do not round-trip through get_params()")
        if attack.get_params() != fresh.get_params():
            problems.append("fit, requests or score changed a hyper-parameter (learned state must end in '_')")
        added = sorted(_public_attributes(attack) - self.public_before)
        if added:
            problems.append(f"fit, requests or score set public attributes {added}; learned state must end in '_'")
        problems += _column_name_problems(fresh, defaults, self.params)
        try:
            fresh.check_params()
        except Exception as exc:
            problems.append(f"check_params() rejects the world's parameters {self.params}: {exc}")
        models = fresh.models()
        if not (isinstance(models, tuple) and all(isinstance(m, str) for m in models)):
            problems.append(f"models() must return a tuple of model names, got {models!r}")
        if not repr(fresh).startswith(type(fresh).__name__):
            problems.append(f"repr {fresh!r} does not start with the class name")
        if problems:
            raise _Failed("; ".join(problems))

    def reference(self) -> None:
        try:
            want = np.array([self.attack.reference_score(s, self.signals) for s in self.world.samples], dtype=float)
        except NotImplementedError:
            raise _Failed(
                f"{self.cls.__name__} declares no reference_score(sample, signals): a plain float64 computation of "
                "one sample's score, written independently of score()"
            ) from None
        _require_close(
            self.scores, want, self.world.samples, rtol=1e-7, atol=1e-12, what="score() vs reference_score()"
        )

    def orientation(self) -> None:
        labels = np.array([s.label for s in self.world.samples])
        observed = auroc(labels, self.scores)
        threshold = permutation_threshold(labels, self.scores, self.alpha, self.n_permutations, self.seed)
        if not observed > threshold:
            raise _Failed(
                f"AUROC {observed:.3f} on a target trained on the members does not exceed {threshold:.3f}, the "
                f"{1 - self.alpha:.0%} quantile of its AUROC under {self.n_permutations} label permutations: scores "
                "must be higher for members (negate them if they are lower)"
            )

    def planted_orientation(self) -> None:
        targets, samples = self.world.planted()
        attack = self.cls(**self.params)
        scores = self.score(self.world.engine(targets), samples, attack, fit=True)
        value = auroc(np.array([s.label for s in samples]), scores)
        if not value > PLANTED_MIN_AUROC:
            raise _Failed(
                f"AUROC {value:.3f} where the members are planted (memorised with probability >= 0.9 per token), "
                f"not above {PLANTED_MIN_AUROC}: scores must be higher for members"
            )

    def batch_invariance(self) -> None:
        samples = self.world.samples
        alone = np.array([_as_scores(self.attack.score([s], self.signals), 1)[0] for s in samples])
        _require_close(alone, self.scores, samples, rtol=1e-7, atol=1e-12, what="each sample scored alone vs together")
        order = list(range(len(samples)))
        random.Random(self.seed + 1).shuffle(order)
        shuffled = _as_scores(self.attack.score([samples[i] for i in order], self.signals), len(samples))
        _require_close(shuffled, self.scores[order], [samples[i] for i in order], rtol=1e-7, atol=1e-12,
                       what="samples scored in shuffled order vs in order")  # fmt: skip
        subset = [i for i in order if samples[i].label == 1][:N_RECOMPUTED]
        subset += [i for i in order if samples[i].label == 0][:N_RECOMPUTED]
        random.Random(self.seed + 2).shuffle(subset)
        recomputed = self.score(self.world.engine(stored=False, batch_size=1), [samples[i] for i in subset])
        _require_close(
            recomputed, self.scores[subset], [samples[i] for i in subset], rtol=1e-5, atol=1e-5,
            what=f"signals recomputed at engine batch size 1, shuffled, vs at batch size {BATCH_SIZE}",
        )  # fmt: skip

    def determinism(self) -> None:
        again = self.cls(**self.params)
        engine = self.world.engine(no_models=True)  # only what the first run stored is there
        try:
            scores = self.score(engine, self.world.samples, again, fit=True)
        except ModelCalled as exc:
            raise _Failed(
                f"a fresh instance asked for signals the first run did not ({exc}): unseeded requests?"
            ) from None
        if not np.array_equal(scores, self.scores, equal_nan=True):
            changed = int((~np.isclose(scores, self.scores, rtol=0, atol=0, equal_nan=True)).sum())
            raise _Failed(
                f"a fresh instance fitted and scored on the same signals changed {changed} of {len(scores)} scores"
            )

    def nan_policy(self) -> None:
        samples = self.world.samples
        odd = [*samples[:3], Sample("one-token", self.world.one_token_text, 0), *samples[-3:]]
        scores = self.score(self.world.engine(), odd)
        if "reads_all_tokens" in self.cls.tags:
            if not np.isfinite(scores).all():
                raise _Failed(f"declares reads_all_tokens but scores {scores.tolist()} include a non-finite value")
            return
        if not (np.isnan(scores[3]) or scores[3] == -np.inf):
            raise _Failed(
                f"a one-token text (no scored token) scored {scores[3]}: it must be NaN (or -inf), counted and "
                "reported, not a number"
            )
        if np.isnan(np.delete(scores, 3)).any():
            raise _Failed(f"ordinary texts next to a one-token text scored NaN: {scores.tolist()}")
        ev = evaluate_scores(np.array([s.label for s in odd]), scores, n_bootstrap=0)
        if ev.nan_nonmembers + ev.inf_nonmembers < 1:
            raise _Failed("the unscorable text is not counted as NaN or infinite by evaluate_scores")

    def model_free(self) -> None:
        engine = self.world.engine(no_models=True)
        try:
            with forwards_raise():
                signals = collect_signals(engine, [self.attack], self.world.samples)
                scores = _as_scores(self.attack.score(self.world.samples, signals), len(self.world.samples))
        except ModelCalled as exc:
            raise _Failed(f"the attack ran a model instead of reading stored signals: {exc}") from None
        except KeyError as exc:
            raise _Failed(f"score() read a signal its requests did not ask for: {exc}") from None
        if not np.array_equal(scores, self.scores, equal_nan=True):
            raise _Failed("scores from stored signals differ from the scores computed with the model")


def permutation_threshold(labels: np.ndarray, scores: np.ndarray, alpha: float, n: int, seed: int = 0) -> float:
    """The (1 - alpha) quantile of the AUROC of ``scores`` under ``n`` random permutations of ``labels`` (ties
    counted 1/2, NaN ranked lowest, as ``miakit.evaluate.auroc`` does)."""
    from scipy.stats import rankdata

    labels = np.asarray(labels)
    ranks = rankdata(np.where(np.isnan(scores), -np.inf, scores))
    n1 = int(labels.sum())
    n0 = len(labels) - n1
    members = np.random.default_rng(seed).permuted(np.tile(labels, (n, 1)), axis=1) == 1
    null = ((ranks * members).sum(axis=1) - n1 * (n1 + 1) / 2) / (n1 * n0)
    return float(np.quantile(null, 1 - alpha))


class NoModel:
    """A target (or masked LM) that raises ``ModelCalled`` on any method call; its identity (name, fingerprints,
    context length, vocabulary size) stays readable, so stored signals are found."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def release(self) -> None:
        """Nothing is loaded."""

    def __getattr__(self, name: str) -> Any:
        if name == "model":
            raise ModelCalled(f"'{self._inner.name}'.model was accessed")
        value = getattr(self._inner, name)
        if not callable(value):
            return value

        def refuse(*args: Any, **kwargs: Any) -> Any:
            raise ModelCalled(f"'{self._inner.name}'.{name}() was called")

        return refuse


@contextmanager
def forwards_raise() -> Iterator[None]:
    """Any torch module forward inside the block raises ``ModelCalled``."""

    def refuse(module: Any, args: Any) -> None:
        raise ModelCalled(f"a forward pass of {type(module).__name__} ran")

    handle = torch.nn.modules.module.register_module_forward_pre_hook(refuse)
    try:
        yield
    finally:
        handle.remove()


# ---- helpers -------------------------------------------------------------------------------------------------
def _as_scores(values: Any, n: int) -> np.ndarray:
    scores = np.asarray(values, dtype=np.float64)
    if scores.shape != (n,):
        raise _Failed(f"score() returned shape {scores.shape} for {n} samples: one float per sample, none dropped")
    return scores


def _require_close(
    got: np.ndarray, want: np.ndarray, samples: Sequence[Sample], *, rtol: float, atol: float, what: str
) -> None:
    close = np.isclose(got, want, rtol=rtol, atol=atol, equal_nan=True)
    if not close.all():
        i = int(np.argmin(close))
        raise _Failed(
            f"{what} disagree on {int((~close).sum())} of {len(close)} samples (rtol {rtol:g}); first: sample "
            f"'{samples[i].id}' {got[i]!r} vs {want[i]!r}"
        )


def _public_attributes(attack: Any) -> set[str]:
    return {k for k in vars(attack) if not k.startswith("_") and not k.endswith("_")}


def _declared_fact_problems(cls: type[Attack]) -> list[str]:
    problems = []
    if not (isinstance(cls.name, str) and re.fullmatch(r"[a-z][a-z0-9_]*", cls.name)):
        problems.append(f"name {cls.name!r} must be a lower-case identifier (set by @register)")
    elif cls.name in ATTACKS and ATTACKS[cls.name] is not cls:
        problems.append(f"name '{cls.name}' is registered to another class, {ATTACKS[cls.name].__name__}")
    for fact in ("family", "paper", "summary"):
        if not (isinstance(getattr(cls, fact), str) and getattr(cls, fact).strip()):
            problems.append(f"{fact} must be a non-empty string")
    if not (
        isinstance(cls.requires, frozenset) and cls.requires and all(isinstance(c, Capability) for c in cls.requires)
    ):
        problems.append("requires must be a non-empty frozenset of Capability")
    if not (isinstance(cls.stages, tuple) and cls.stages and all(isinstance(s, str) for s in cls.stages)):
        problems.append("stages must be a non-empty tuple of strings")
    if not isinstance(cls.order, int):
        problems.append(f"order must be an int, got {cls.order!r}")
    init = [n for n in inspect.signature(cls.__init__).parameters if n != "self"]
    for fact in ("model_param", "mlm_param", "embedder_param"):
        value = getattr(cls, fact)
        if value is not None and value not in init:
            problems.append(f"{fact} '{value}' is not a parameter of __init__")
    unknown = set(cls.tiny_world_params) - set(init)
    if unknown:
        problems.append(f"tiny_world_params names {sorted(unknown)}, not parameters of __init__")
    for tag, reason in cls.tags.items():
        if tag not in CHECK_TAGS:
            problems.append(f"unknown tag '{tag}' (known: {', '.join(CHECK_TAGS)})")
        elif not (isinstance(reason, str) and reason.strip()):
            problems.append(f"tag '{tag}' needs its reason")
    try:
        score_summary(cls)
    except ValueError as exc:
        problems.append(str(exc))
    if cls.default_sweep and ATTACKS.get(cls.name) is cls:
        try:
            build_attacks(f"{cls.name}[{cls.default_sweep}]")
        except Exception as exc:
            problems.append(f"default_sweep '{cls.default_sweep}' does not build: {exc}")
    return problems


def _column_name_problems(attack: Attack, defaults: dict[str, Any], params: dict[str, Any]) -> list[str]:
    column = attack.column_name()
    changed = {k for k, v in params.items() if k not in defaults or defaults[k] != v}
    if not changed:
        return [] if column == attack.name else [f"column_name() is '{column}' at the defaults, not '{attack.name}'"]
    if not (column.startswith(f"{attack.name}[") and all(f"{k}=" in column for k in changed)):
        return [f"column_name() '{column}' must be the name with the non-default parameters {sorted(changed)}"]
    if ATTACKS.get(attack.name) is type(attack):
        rebuilt = build_attacks(column, check=False)
        if len(rebuilt) != 1 or rebuilt[0].get_params() != attack.get_params():
            return [f"column_name() '{column}' does not build back the same attack"]
    return []
