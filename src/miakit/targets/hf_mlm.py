"""Hugging Face masked-LM backend that proposes neighbours of a text for the Neighbourhood attack.

Mattern et al. (ACL Findings 2023) compare a text's loss under the target with the losses of *neighbours*:
copies of the text in which one token is swapped for a plausible substitute. The substitutes come from a
masked LM whose input embedding at one position is partly dropped out (instead of replacing it by [MASK],
which would let the MLM ignore the original word entirely). This module implements that generator; the attack
and the target-model scoring live elsewhere.

Weights load lazily, on the first call to :meth:`HFMaskedLM.neighbours`, so a run whose neighbours are all
in the store never loads them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch

from miakit.errors import MiakitError
from miakit.seeding import text_seed
from miakit.targets.fingerprint import source_fingerprint, state_dict_fingerprint, tokenizer_fingerprint
from miakit.targets.hf_causal import resolve_device
from miakit.targets.sources import check_weights, looks_like_path, pickle_refused, refused_pickle_error

# Used when the MLM gives the original token probability 1, so 1 - p(original) is 0 (as the reference does).
SATURATED_DENOMINATOR = 0.1


class Replacement(NamedTuple):
    """One neighbour: the token at ``position`` (index into the MLM token ids) swapped for ``token_id``."""

    position: int
    original_id: int
    token_id: int
    score: float  # p(token) / (1 - p(original)) at that position, under embedding dropout
    text: str  # the decoded neighbour


class HFMaskedLM:
    """A masked LM from transformers (BERT, RoBERTa, DistilBERT, ...) used to propose one-token neighbours."""

    kind = "hf_mlm"

    def __init__(
        self,
        tokenizer: Any,
        *,
        name: str,
        fingerprint: str,
        config: Any,
        model: Any = None,
        loader: Callable[[], Any] | None = None,
        device: str = "auto",
        dtype: str = "float32",
        revision: str | None = None,
    ) -> None:
        if model is None and loader is None:
            raise ValueError("give a model or a loader")
        self.tokenizer = tokenizer
        self.name = name
        self.revision = revision
        self.device = resolve_device(device)
        self.dtype = dtype
        self.fingerprint = f"{fingerprint}|{dtype}"
        self.tokenizer_fingerprint = tokenizer_fingerprint(tokenizer)
        self.config = config
        self._model = model
        self._loader = loader
        self._head_mode: str | None = None  # "gather" (head on the scored positions only) or "logits"
        self.forward_passes = 0  # sequences run through the model (the engine counts them)
        self.fallbacks: list[str] = []  # slower paths taken instead of the fast one, and why (for the report)
        self.context_length = self._context_length(config, tokenizer)
        self.special_ids = frozenset(int(i) for i in tokenizer.all_special_ids)
        self.tokenizer_size = len(tokenizer)

    # ---- construction -------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str,
        *,
        revision: str | None = None,
        device: str = "auto",
        trust_remote_code: bool = False,
        allow_pickle: bool = False,
    ) -> HFMaskedLM:
        """Local directory or hub id; the tokenizer and config load now, the float32 weights on first use
        (from safetensors only unless ``allow_pickle``: pickle can run code when loaded)."""
        from transformers import AutoConfig, AutoModelForMaskedLM, AutoTokenizer

        local = Path(name_or_path).expanduser()
        if not local.is_dir() and looks_like_path(name_or_path):
            raise MiakitError(
                f"Could not load masked LM '{name_or_path}': no such directory. Give a directory holding a "
                "Hugging Face masked LM (config.json, tokenizer and weights), or a hub id such as "
                "'FacebookAI/roberta-base' while online."
            )
        source = str(local) if local.is_dir() else name_or_path
        if local.is_dir():
            check_weights(local, allow_pickle=allow_pickle)
        kwargs = {"revision": revision, "trust_remote_code": trust_remote_code}
        safe = {} if allow_pickle else {"use_safetensors": True}
        try:
            config = AutoConfig.from_pretrained(source, **kwargs)
            tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        except (OSError, ValueError) as exc:
            where = "local directory" if local.is_dir() else "local directory or Hugging Face Hub id"
            raise MiakitError(
                f"Could not load masked LM '{name_or_path}' as a {where}: {exc}. Give a directory holding a "
                "Hugging Face masked LM (config.json, tokenizer and weights), or a hub id while online."
            ) from exc
        fingerprint = source_fingerprint(name_or_path, revision)

        def load() -> Any:
            try:
                return AutoModelForMaskedLM.from_pretrained(source, dtype=torch.float32, **safe, **kwargs)
            except Exception as exc:
                if pickle_refused(exc):
                    raise refused_pickle_error(name_or_path, exc) from exc
                if not isinstance(exc, (OSError, ValueError)):
                    raise
                raise MiakitError(
                    f"Could not load the weights of masked LM '{name_or_path}': {exc}. It must be a model "
                    "with a masked-language-model head (AutoModelForMaskedLM), e.g. BERT or RoBERTa."
                ) from exc

        return cls(
            tokenizer,
            name=name_or_path,
            fingerprint=fingerprint,
            config=config,
            loader=load,
            device=device,
            revision=revision,
        )

    @classmethod
    def from_model(cls, model: Any, tokenizer: Any, *, name: str = "in-memory") -> HFMaskedLM:
        """Wrap a masked LM already in memory (Python API, tests); fingerprinted by its parameters."""
        param = next(model.parameters())
        return cls(
            tokenizer,
            name=name,
            fingerprint=state_dict_fingerprint(model),
            config=model.config,
            model=model,
            device=str(param.device),
            dtype=str(param.dtype).removeprefix("torch."),
        )

    @staticmethod
    def _context_length(config: Any, tokenizer: Any) -> int:
        """The longest input the model accepts (RoBERTa's config says 514, its tokenizer rightly 512)."""
        limits = []
        value = getattr(config, "max_position_embeddings", None)
        if isinstance(value, int) and value > 0:
            limits.append(value)
        value = getattr(tokenizer, "model_max_length", None)
        if isinstance(value, int) and 0 < value < 1_000_000:
            limits.append(value)
        return min(limits) if limits else 512

    def describe(self) -> dict[str, Any]:
        """What the manifest records about this neighbour generator."""
        return {
            "name": self.name,
            "backend": self.kind,
            "revision": self.revision,
            "fingerprint": self.fingerprint,
            "tokenizer_fingerprint": self.tokenizer_fingerprint,
            "dtype": self.dtype,
            "device": self.device,
            "context_length": self.context_length,
        }

    # ---- model --------------------------------------------------------------------------------------
    @property
    def model(self) -> Any:
        if self._model is None:
            assert self._loader is not None
            self._model = self._loader()
            self._model.to(self.device)
        self._model.eval()
        return self._model

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def release(self) -> None:
        """Drop the weights (they reload on next use) so several models can be used in turn."""
        if self._loader is not None:
            self._model = None
            self._head_mode = None

    # ---- neighbours ---------------------------------------------------------------------------------
    def neighbours(self, texts: Sequence[str], n: int, **options: Any) -> list[list[str]]:
        """``n`` one-token neighbours of each text, best-scored first; ``options`` as in :meth:`replacements`."""
        return [[r.text for r in row] for row in self.replacements(texts, n, **options)]

    def replacements(
        self,
        texts: Sequence[str],
        n: int,
        *,
        top_k: int = 10,
        dropout: float = 0.7,
        seed: int = 0,
        max_length: int = 512,
        batch_size: int = 32,
    ) -> list[list[Replacement]]:
        """The neighbours of each text with the swap that made each one (Mattern et al., embedding dropout).

        For every non-special position i the MLM sees the text with dropout applied to position i's input
        embedding only (masks drawn from a generator seeded by (seed, text), so results do not depend on
        batching) and predicts the token at i itself. Each of its top ``top_k + 1`` candidates other than the
        original and special tokens scores p(c) / (1 - p(original)); the ``n`` best (position, candidate)
        pairs over the text, ties broken by position then token id, give one neighbour each: the token ids
        with that single token replaced, decoded without special tokens. A neighbour whose text equals the
        original (or an earlier neighbour) is skipped for the next candidate, so fewer than ``n`` come back
        only when the text has fewer distinct candidates (an empty text has none).

        Only the first ``max_length`` tokens (capped at the model's context) are scored; the tokens after
        them are kept unchanged in every neighbour, so a neighbour is always the whole text with one swap.
        """
        self._check_options(n, top_k, dropout, max_length, batch_size)
        if n == 0:
            return [[] for _ in texts]
        limit = min(max_length, self.context_length)
        return [self._text_replacements(text, n, top_k, dropout, seed, limit, batch_size) for text in texts]

    @staticmethod
    def _check_options(n: int, top_k: int, dropout: float, max_length: int, batch_size: int) -> None:
        if n < 0:
            raise MiakitError(f"The number of neighbours must be 0 or more, not {n}.")
        if top_k < 1:
            raise MiakitError(f"top_k must be at least 1, not {top_k}.")
        if not 0.0 <= dropout <= 1.0:
            raise MiakitError(f"The embedding dropout must be a probability in [0, 1], not {dropout}.")
        if max_length < 2:
            raise MiakitError(f"max_length must be at least 2 tokens, not {max_length}.")
        if batch_size < 1:
            raise MiakitError(f"batch_size must be at least 1, not {batch_size}.")

    def _encode(self, text: str, limit: int) -> tuple[list[int], list[int], dict[str, list[int]]]:
        """(whole text's ids, scored window's ids, the window's extra model inputs such as token_type_ids)."""
        tok = self.tokenizer
        window_enc = tok(text, add_special_tokens=True, verbose=False)
        whole = list(window_enc["input_ids"])
        if len(whole) > limit:
            window_enc = tok(text, add_special_tokens=True, truncation=True, max_length=limit, verbose=False)
        window = list(window_enc["input_ids"])
        extras = {k: list(window_enc[k]) for k in ("token_type_ids",) if k in window_enc}
        return whole, window, extras

    def _text_replacements(
        self, text: str, n: int, top_k: int, dropout: float, seed: int, limit: int, batch_size: int
    ) -> list[Replacement]:
        whole, window, extras = self._encode(text, limit)
        positions = [i for i, t in enumerate(window) if t not in self.special_ids]
        if not positions:
            return []
        # Swaps are applied to the whole text when the window is its prefix (true for the usual
        # [CLS] ... [SEP] / <s> ... </s> templates), so text past the window survives in every neighbour.
        last = positions[-1] + 1
        base = whole if whole[:last] == window[:last] else window
        candidates = self._score_positions(window, extras, positions, top_k, dropout, seed, text, batch_size)
        candidates.sort(key=lambda c: (-c[0], c[1], c[2]))
        decode = self.tokenizer.decode
        seen = {text, decode(base, skip_special_tokens=True)}
        out: list[Replacement] = []
        for score, pos, cand in candidates:
            ids = list(base)
            ids[pos] = cand
            neighbour = decode(ids, skip_special_tokens=True)
            if neighbour in seen:
                continue
            seen.add(neighbour)
            out.append(Replacement(pos, int(base[pos]), cand, score, neighbour))
            if len(out) == n:
                break
        return out

    @torch.inference_mode()
    def _score_positions(
        self,
        window: list[int],
        extras: dict[str, list[int]],
        positions: list[int],
        top_k: int,
        dropout: float,
        seed: int,
        text: str,
        batch_size: int,
    ) -> list[tuple[float, int, int]]:
        """(score, position, candidate) for every kept top-(top_k + 1) candidate at every scored position."""
        model = self.model
        device = next(model.parameters()).device
        ids = torch.as_tensor(window, dtype=torch.long, device=device)
        embeds = model.get_input_embeddings()(ids.unsqueeze(0))[0]  # (length, hidden)
        length, hidden = embeds.shape
        # Dropout masks for all positions of this text, drawn on the CPU in position order (device-independent).
        if dropout == 0.0:
            masks = None
        elif dropout == 1.0:
            masks = torch.zeros((len(positions), hidden))
        else:
            generator = torch.Generator().manual_seed(text_seed(seed, text))
            keep = torch.rand((len(positions), hidden), generator=generator) >= dropout
            masks = keep.to(torch.float32) / (1.0 - dropout)
        out: list[tuple[float, int, int]] = []
        for start in range(0, len(positions), batch_size):
            pos = torch.as_tensor(positions[start : start + batch_size], dtype=torch.long, device=device)
            rows = torch.arange(len(pos), device=device)
            batch = embeds.unsqueeze(0).repeat(len(pos), 1, 1)  # the copies differ only at their own position
            if masks is not None:
                mask = masks[start : start + len(pos)].to(device=device, dtype=embeds.dtype)
                batch[rows, pos] = embeds[pos] * mask
            inputs = {name: torch.as_tensor(v, device=device).expand(len(pos), length) for name, v in extras.items()}
            logits = self._logits_at(batch, pos, inputs)  # (rows, vocab): the MLM predicts position i at i
            self.forward_passes += len(pos)
            probs = torch.softmax(logits.float(), dim=-1)
            original = probs[rows, ids[pos]]
            top_p, top_c = torch.topk(probs, min(top_k + 1, probs.shape[-1]), dim=-1)
            for r, (p_orig, ps, cs) in enumerate(zip(original.tolist(), top_p.tolist(), top_c.tolist(), strict=True)):
                position = positions[start + r]
                denominator = 1.0 - p_orig if p_orig < 1.0 else SATURATED_DENOMINATOR
                for p, c in zip(ps, cs, strict=True):
                    if c == window[position] or c in self.special_ids or c >= self.tokenizer_size:
                        continue
                    out.append((p / denominator, position, int(c)))
        return out

    def _logits_at(self, embeds: torch.Tensor, positions: torch.Tensor, inputs: dict[str, torch.Tensor]) -> Any:
        """MLM logits of row r at positions[r] only.

        The output head runs on those hidden states alone (a forward hook keeps only them), which saves a
        (rows, length, vocab) logit tensor; it is checked once against the model's full logits and falls back
        to them when the model does not route its head through ``base_model`` that way. The fallback is taken
        only for what that routing breaks (a base-model output without a settable ``last_hidden_state``, a head
        that needs every position); it is recorded in ``fallbacks``. Any other error is raised.
        """
        model = self.model
        rows = torch.arange(len(positions), device=embeds.device)
        if self._head_mode is None:
            base = getattr(model, "base_model", model)
            if base is model:
                self._head_mode = "logits"
            else:
                first = {k: v[:1] for k, v in inputs.items()}
                full = model(inputs_embeds=embeds[:1], **first).logits[0, positions[0]]
                why = ""
                try:
                    mine = self._gathered_logits(embeds[:1], positions[:1], first)[0]
                except torch.OutOfMemoryError:
                    raise
                except (AttributeError, IndexError, RuntimeError) as exc:  # the hook does not fit this model
                    why = f"{type(exc).__name__}: {exc}"
                else:
                    scale = max(1.0, float(full.abs().max()))
                    if mine.shape != full.shape or not torch.allclose(mine, full, atol=1e-4 * scale, rtol=1e-4):
                        why = "its output head on the scored positions alone differs from its full logits"
                self._head_mode = "logits" if why else "gather"
                note = (
                    f"masked LM '{self.name}': full logits at every position (slower, same neighbours), since "
                    f"the output head cannot run on the scored positions alone ({why})"
                )
                if why and note not in self.fallbacks:  # the check reruns after each release()
                    self.fallbacks.append(note)
        if self._head_mode == "gather":
            return self._gathered_logits(embeds, positions, inputs)
        return model(inputs_embeds=embeds, **inputs).logits[rows, positions]

    def _gathered_logits(self, embeds: torch.Tensor, positions: torch.Tensor, inputs: dict[str, torch.Tensor]) -> Any:
        model = self.model
        rows = torch.arange(len(positions), device=embeds.device)

        def keep_scored(_module: Any, _args: Any, output: Any) -> Any:
            output.last_hidden_state = output.last_hidden_state[rows, positions].unsqueeze(1)
            return output

        handle = model.base_model.register_forward_hook(keep_scored)
        try:
            logits = model(inputs_embeds=embeds, **inputs).logits
        finally:
            handle.remove()
        return logits[:, 0]
