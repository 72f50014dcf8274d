"""Hugging Face causal-LM backend: tokenisation, fingerprints, and batched token statistics.

Weights load lazily, on the first forward pass, so a run whose signals are all in the store never loads them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from miakit.errors import MiakitError
from miakit.seeding import text_seed
from miakit.targets.capability import CAUSAL_LM
from miakit.targets.fingerprint import (
    ADAPTER_CONFIG,
    adapter_base,
    model_fingerprint,
    state_dict_fingerprint,
    tokenizer_fingerprint,
)
from miakit.targets.logit_stats import STAT_FIELDS, Workspace, chunked_statistics

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device(device: str = "auto") -> str:
    """'auto' picks cuda, then mps, then cpu."""
    if device != "auto":
        return device
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def resolve_dtype(dtype: str, device: str) -> torch.dtype:
    """'auto' is float32 except on CUDA, where bfloat16 (or float16 without bf16 support) is used."""
    if dtype == "auto":
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if dtype not in DTYPES:
        raise MiakitError(f"Unknown dtype '{dtype}'. Choose one of: auto, {', '.join(DTYPES)}.")
    return DTYPES[dtype]


def _cache_argument(model: Any) -> str:
    """Name of the key/value-cache keyword of ``model.forward``: ``cache`` (transformers >= 5.2x) or the older
    ``past_key_values``; NotImplementedError when it takes neither (or no ``position_ids``)."""
    import inspect

    params = inspect.signature(type(model).forward).parameters
    if "position_ids" not in params:
        raise NotImplementedError(f"{type(model).__name__}.forward takes no position_ids")
    for name in ("cache", "past_key_values"):
        if name in params:
            return name
    raise NotImplementedError(f"{type(model).__name__}.forward takes no key/value cache")


def _has_tokenizer(directory: Path) -> bool:
    return any((directory / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json"))


class HFCausalLM:
    """A causal LM from transformers, declaring full-logit, hidden-state, gradient and embedding access."""

    kind = "hf_causal"
    capabilities = CAUSAL_LM
    concurrency = 1  # batches the engine may have in flight at once (one model, one batch at a time)

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
        dtype: str = "auto",
        max_length: int | None = None,
        revision: str | None = None,
    ) -> None:
        if model is None and loader is None:
            raise ValueError("give a model or a loader")
        self.tokenizer = tokenizer
        self.name = name
        self.revision = revision
        self.device = resolve_device(device)
        self.torch_dtype = resolve_dtype(dtype, self.device)
        self.dtype = str(self.torch_dtype).removeprefix("torch.")
        self.fingerprint = f"{fingerprint}|{self.dtype}"
        self.tokenizer_fingerprint = tokenizer_fingerprint(tokenizer)
        self.config = config
        self._model = model
        self._loader = loader
        self._head_mode: str | None = None
        self._workspace = Workspace()  # reduction scratch kept between batches
        self._prefix_state: tuple[tuple[int, ...], Any, Any] | None = None  # (prefix ids, KV cache, last output)
        self.max_length = max_length or self._context_length(config, tokenizer)
        if self.max_length < 2:
            raise MiakitError(f"Model '{name}' has a context of {self.max_length} tokens; at least 2 needed.")
        self.vocab_size = max(len(tokenizer), int(getattr(config, "vocab_size", 0) or 0))

    # ---- construction -------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str,
        *,
        revision: str | None = None,
        dtype: str = "auto",
        device: str = "auto",
        trust_remote_code: bool = False,
        max_length: int | None = None,
        allow_pickle: bool = False,
    ) -> HFCausalLM:
        """Local directory, ``.gguf`` file or hub id; the tokenizer and config load now, the weights on first use.

        A directory holding a PEFT adapter (``adapter_config.json``, e.g. a LoRA fine-tune) is loaded onto its
        base model (``base_model_name_or_path``, a directory or hub id) and merged; its fingerprint covers
        both the adapter files and the base model. Weights load from safetensors only unless ``allow_pickle``
        (pickle can run code when loaded). A GGUF file is de-quantised by transformers; its fingerprint is the
        file's hash.
        """
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

        from miakit.targets.sources import check_weights, resolve_source

        found = resolve_source(name_or_path)
        local = found.path if found.kind == "dir" and found.path is not None else Path(name_or_path).expanduser()
        source = found.load_from
        kwargs: dict[str, Any] = {"revision": revision, "trust_remote_code": trust_remote_code}
        if found.gguf_file is not None:
            kwargs = {"gguf_file": found.gguf_file, "trust_remote_code": trust_remote_code}
        adapter = found.kind == "dir" and (local / ADAPTER_CONFIG).is_file()
        base_source = adapter_base(local) if adapter else source
        base_kwargs = {"trust_remote_code": trust_remote_code} if adapter else kwargs
        for directory in (local, Path(base_source)):
            if found.kind == "dir" and directory.is_dir():
                check_weights(directory, allow_pickle=allow_pickle)
        try:
            config = AutoConfig.from_pretrained(base_source, **base_kwargs)
            tokenizer_source = source if not adapter or _has_tokenizer(local) else base_source
            tokenizer = AutoTokenizer.from_pretrained(
                tokenizer_source, **(kwargs if tokenizer_source == source else base_kwargs)
            )
        except ImportError as exc:
            raise MiakitError(f"Could not read '{name_or_path}': {exc}") from exc
        except (OSError, ValueError) as exc:
            where = {"dir": "local directory", "gguf": "GGUF file"}.get(found.kind, "Hugging Face Hub id")
            raise MiakitError(
                f"Could not load model '{name_or_path}' as a {where}: {exc}. Give a directory holding a "
                "Hugging Face causal LM (config.json, tokenizer and weights) or a PEFT adapter, a .gguf file, "
                "or a hub id while online."
            ) from exc
        fingerprint = model_fingerprint(name_or_path, revision)
        device_resolved = resolve_device(device)
        torch_dtype = resolve_dtype(dtype, device_resolved)
        safe = {} if allow_pickle or found.kind == "gguf" else {"use_safetensors": True}

        def load() -> Any:
            try:
                if adapter:
                    from peft import PeftModel

                    base = AutoModelForCausalLM.from_pretrained(base_source, dtype=torch_dtype, **safe, **base_kwargs)
                    return PeftModel.from_pretrained(base, source).merge_and_unload()
                return AutoModelForCausalLM.from_pretrained(source, dtype=torch_dtype, **safe, **kwargs)
            except ImportError as exc:
                needs = "peft" if adapter else "the package it names"
                raise MiakitError(f"Could not load '{name_or_path}': install {needs} ({exc}).") from exc
            except Exception as exc:
                from miakit.targets.sources import pickle_refused, refused_pickle_error

                if pickle_refused(exc):
                    raise refused_pickle_error(name_or_path, exc) from exc
                if isinstance(exc, (OSError, ValueError)):
                    if safe and "safetensors" in str(exc):
                        raise MiakitError(
                            f"'{name_or_path}' has no safetensors weights; pickle weights can run code when "
                            "loaded; convert them to safetensors or pass --allow-pickle if you trust them."
                        ) from exc
                    raise MiakitError(f"Could not load the weights of '{name_or_path}': {exc}") from exc
                raise

        return cls(
            tokenizer,
            name=name_or_path,
            fingerprint=fingerprint,
            config=config,
            loader=load,
            device=device_resolved,
            dtype=dtype,
            max_length=max_length,
            revision=revision,
        )

    @classmethod
    def from_model(
        cls, model: Any, tokenizer: Any, *, name: str = "in-memory", max_length: int | None = None
    ) -> HFCausalLM:
        """Wrap a model already in memory (Python API, tests); fingerprinted by its parameters."""
        device = str(next(model.parameters()).device)
        dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
        return cls(
            tokenizer,
            name=name,
            fingerprint=state_dict_fingerprint(model),
            config=model.config,
            model=model,
            device=device,
            dtype=dtype if dtype in DTYPES else "auto",
            max_length=max_length,
        )

    @staticmethod
    def _context_length(config: Any, tokenizer: Any) -> int:
        for attr in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
            value = getattr(config, attr, None)
            if isinstance(value, int) and value > 0:
                return value
        value = getattr(tokenizer, "model_max_length", None)
        if isinstance(value, int) and 0 < value < 1_000_000:
            return value
        return 2048

    # ---- description --------------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """What the manifest records about this target."""
        return {
            "name": self.name,
            "backend": self.kind,
            "revision": self.revision,
            "fingerprint": self.fingerprint,
            "tokenizer_fingerprint": self.tokenizer_fingerprint,
            "dtype": self.dtype,
            "device": self.device,
            "max_length": self.max_length,
            "capabilities": sorted(c.value for c in self.capabilities),
        }

    # ---- tokenisation -------------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        """Token ids exactly as the tokenizer produces them (special tokens it adds by default included)."""
        return list(self.tokenizer(text, add_special_tokens=True, verbose=False)["input_ids"])

    def encode_plain(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])

    def encode_pair(self, context: str, text: str) -> tuple[list[int], list[int]]:
        """Encode context + text jointly and split at the boundary (trailing context spaces join the text)."""
        n_spaces = len(context) - len(context.rstrip())
        if n_spaces:
            text = context[-n_spaces:] + text
            context = context[:-n_spaces]
        whole = self.encode(context + text)
        ctx = self.encode(context)
        return whole[: len(ctx)], whole[len(ctx) :]

    def bos_id(self) -> int:
        """Token used by --prepend-bos: the BOS token, else EOS (as MIMIR's DC-PDD port does)."""
        tok = self.tokenizer
        for candidate in (tok.bos_token_id, tok.eos_token_id):
            if candidate is not None:
                return int(candidate)
        raise MiakitError(f"Tokenizer of '{self.name}' has neither a BOS nor an EOS token to prepend.")

    def count_tokens(self, texts: Sequence[str]) -> np.ndarray:
        """Occurrences of every token id over texts (for frequency-calibrated attacks such as DC-PDD)."""
        counts = np.zeros(self.vocab_size, dtype=np.int64)
        for start in range(0, len(texts), 256):
            for ids in self.tokenizer(list(texts[start : start + 256]), add_special_tokens=False)["input_ids"]:
                np.add.at(counts, np.asarray(ids, dtype=np.int64), 1)
        return counts

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
        """Drop the weights (they reload on next use) and scratch buffers so several models can be used in turn."""
        if self._loader is not None:
            self._model = None
            self._head_mode = None
        self._workspace.clear()
        self._prefix_state = None

    def _check_head(self, input_ids: torch.Tensor, mask: torch.Tensor, hidden: torch.Tensor) -> str:
        """Use base-model hidden states + chunked output head only if that reproduces the model's logits."""
        model = self.model
        head = model.get_output_embeddings()
        n = min(8, int(mask[0].sum()))  # real tokens of the first row only
        reference = model(input_ids=input_ids[:1, :n], use_cache=False).logits[0].float()
        mine = head(hidden[:1, :n])[0].float()
        scale = max(1.0, float(reference.abs().max()))
        return "hidden" if torch.allclose(mine, reference, atol=1e-3 * scale, rtol=1e-3) else "logits"

    @torch.inference_mode()
    def token_stats(self, batch: Sequence[tuple[Sequence[int], int]], topk: int = 0) -> list[dict[str, np.ndarray]]:
        """One forward pass over a batch of (token ids, first scored position) -> statistics per row.

        Position j >= first is scored from the distribution at j - 1. Rows are right-padded; statistics
        are computed for scored positions only, chunk by chunk on the model's device. ``topk`` > 0: the
        distribution summaries of the top-k approximation (``logit_stats.topk_summaries``).
        """
        model = self.model
        device = self.device
        lengths = [len(ids) for ids, _ in batch]
        width = max(lengths)
        input_ids = torch.zeros((len(batch), width), dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, (ids, _) in enumerate(batch):
            input_ids[i, : len(ids)] = torch.as_tensor(list(ids), dtype=torch.long)
            mask[i, : len(ids)] = 1
        rows_list, cols_list = [], []
        for i, (ids, first) in enumerate(batch):
            cols = torch.arange(max(1, first), len(ids))
            rows_list.append(torch.full_like(cols, i))
            cols_list.append(cols)
        rows = torch.cat(rows_list).to(device)
        cols = torch.cat(cols_list).to(device)
        input_ids, mask = input_ids.to(device), mask.to(device)
        targets = input_ids[rows, cols]
        self._ensure_head_mode(model)
        if self._head_mode != "logits":
            hidden = model.base_model(input_ids=input_ids, attention_mask=mask, use_cache=False).last_hidden_state
            if self._head_mode is None:
                self._head_mode = self._check_head(input_ids, mask, hidden)
        if self._head_mode == "hidden":
            stats = self._reduce_hidden(hidden[rows, cols - 1], targets, topk)
        else:
            logits = model(input_ids=input_ids, attention_mask=mask, use_cache=False).logits
            stats = self._reduce_logits(logits[rows, cols - 1], targets, topk)
        return self._split_rows(stats, targets, [max(0, len(ids) - max(1, first)) for ids, first in batch])

    @torch.inference_mode()
    def token_stats_prefixed(
        self, prefix: Sequence[int], batch: Sequence[Sequence[int]], topk: int = 0
    ) -> list[dict[str, np.ndarray]]:
        """Statistics of every token of each continuation in ``batch`` given one shared ``prefix``.

        The prefix runs once and its key/value cache is reused for every batch (ReCaLL-style attacks condition
        hundreds of texts on the same prefix); the first continuation token is scored from the prefix's last
        position. Equal, up to float error, to ``token_stats([(prefix + ids, len(prefix))])``.
        """
        import copy

        model = self.model
        device = self.device
        n_prefix = len(prefix)
        if n_prefix < 1:
            raise ValueError("token_stats_prefixed needs a non-empty prefix")
        self._ensure_head_mode(model)
        _cache_argument(model)  # NotImplementedError for models without a usable key/value cache
        key = tuple(int(t) for t in prefix)
        if self._prefix_state is None or self._prefix_state[0] != key:
            pre = torch.as_tensor([list(key)], dtype=torch.long, device=device)
            if self._head_mode is None:
                hidden = model.base_model(input_ids=pre, use_cache=False).last_hidden_state
                self._head_mode = self._check_head(pre, torch.ones_like(pre), hidden)
            if self._head_mode == "hidden":
                out = model.base_model(input_ids=pre, use_cache=True)
                last = out.last_hidden_state[0, -1]
            else:
                out = model(input_ids=pre, use_cache=True)
                last = out.logits[0, -1]
            cache = getattr(out, "cache", None)
            self._prefix_state = (key, cache if cache is not None else out.past_key_values, last)
        _, prefix_cache, last = self._prefix_state

        lengths = [len(ids) for ids in batch]
        width = max(lengths)
        size = len(batch)
        input_ids = torch.zeros((size, width), dtype=torch.long)
        mask = torch.zeros((size, n_prefix + width), dtype=torch.long)
        mask[:, :n_prefix] = 1
        for i, ids in enumerate(batch):
            input_ids[i, : len(ids)] = torch.as_tensor(list(ids), dtype=torch.long)
            mask[i, n_prefix : n_prefix + len(ids)] = 1
        input_ids, mask = input_ids.to(device), mask.to(device)
        positions = torch.arange(n_prefix, n_prefix + width, device=device).expand(size, width)
        cache = copy.deepcopy(prefix_cache)
        cache.batch_repeat_interleave(size)
        kwargs = {
            "attention_mask": mask,
            _cache_argument(model.base_model if self._head_mode == "hidden" else model): cache,
            "position_ids": positions,
            "use_cache": True,
        }
        rows = torch.cat([torch.full((n,), i, dtype=torch.long) for i, n in enumerate(lengths)]).to(device)
        cols = torch.cat([torch.arange(n) for n in lengths]).to(device)
        targets = input_ids[rows, cols]
        if self._head_mode == "hidden":
            hidden = model.base_model(input_ids=input_ids, **kwargs).last_hidden_state
            full = torch.cat([last.expand(size, 1, -1), hidden], dim=1)  # position j predicts token j
            stats = self._reduce_hidden(full[rows, cols], targets, topk)
        else:
            logits = model(input_ids=input_ids, **kwargs).logits
            full = torch.cat([last.expand(size, 1, -1), logits], dim=1)
            stats = self._reduce_logits(full[rows, cols], targets, topk)
        return self._split_rows(stats, targets, lengths)

    # ---- generation ---------------------------------------------------------------------------------
    def generate(self, requests: Sequence[Any]) -> list[Any]:
        """Continuations of ``GenerationRequest``s, seeded per continuation (see ``hf_generate``)."""
        from miakit.targets.hf_generate import generate

        return generate(self, requests)

    # ---- greedy next tokens -------------------------------------------------------------------------
    @torch.inference_mode()
    def next_tokens(self, batch: Sequence[Sequence[int]]) -> list[Any]:
        """Per text (token ids, at least two), the greedy next token after every prefix ``ids[:i]``, i = 1..n-1:
        the argmax of the logits at positions 0..n-2 of one right-padded forward pass (what
        ``generate(max_new_tokens=1, do_sample=False)`` picks from each prefix), with the true and predicted
        tokens decoded one by one (``NextTokens``)."""
        from miakit.signals.next_tokens import NextTokens

        model = self.model
        input_ids, mask = self._right_padded(batch)
        logits = model(input_ids=input_ids, attention_mask=mask, use_cache=False).logits
        best = logits.argmax(dim=-1).cpu().tolist()
        out = []
        for i, ids in enumerate(batch):
            ids = [int(t) for t in ids]
            predicted = [int(t) for t in best[i][: len(ids) - 1]]
            pieces = self.decode_pieces(ids[1:]), self.decode_pieces(predicted)
            out.append(NextTokens(tuple(ids), tuple(predicted), tuple(pieces[0]), tuple(pieces[1])))
        return out

    def decode_pieces(self, ids: Sequence[int]) -> list[str]:
        """Each token decoded on its own (``tokenizer.decode(id)``, special tokens kept)."""
        return [self.tokenizer.decode([int(t)]) for t in ids]

    # ---- white-box signals --------------------------------------------------------------------------
    def _mean_nll(self, logits: torch.Tensor, ids: torch.Tensor, first: int) -> torch.Tensor:
        """Mean NLL of tokens ``first..`` of each row of ``ids`` [B, L] under ``logits`` [B, L, V]."""
        first = max(1, first)
        logp = torch.log_softmax(logits[:, first - 1 : -1].float(), dim=-1)
        return -logp.gather(-1, ids[:, first:, None]).squeeze(-1).mean(dim=1)

    def grad_norms(self, ids: Sequence[int], first: int) -> np.ndarray:
        """[parameter tensors, 3]: L1, L2 and max norms of d(mean token NLL)/d(parameter), one text at a time."""
        if len(ids) - max(1, first) < 1:
            return np.zeros((0, 3))  # no scored token, no loss: the attack scores NaN
        model = self.model
        input_ids = torch.as_tensor([list(ids)], dtype=torch.long, device=self.device)
        params = list(model.parameters())
        with torch.enable_grad():
            for p in params:
                p.requires_grad_(True)
                p.grad = None
            loss = self._mean_nll(model(input_ids=input_ids, use_cache=False).logits, input_ids, first)[0]
            loss.backward()
        rows = []
        for p in params:
            if p.grad is None:
                continue
            g = p.grad.detach().float()
            rows.append([float(g.abs().sum()), float(g.norm(2)), float(g.abs().max())])
            p.grad = None
        return np.asarray(rows, dtype=np.float64)

    @torch.inference_mode()
    def noisy_losses(self, ids: Sequence[int], first: int, sigma: float, n: int, seed: int) -> np.ndarray:
        """Mean token NLL of the text under ``n`` draws of N(0, sigma^2) noise added to its input embeddings."""
        if len(ids) - max(1, first) < 1:
            return np.full(n, np.nan)  # no scored token
        model = self.model
        input_ids = torch.as_tensor([list(ids)], dtype=torch.long, device=self.device)
        embeddings = model.get_input_embeddings()(input_ids)  # [1, L, d]
        gen = torch.Generator(device="cpu").manual_seed(text_seed(seed, " ".join(map(str, ids))))
        noise = torch.randn((n, *embeddings.shape[1:]), generator=gen, dtype=torch.float32)
        out = []
        for start in range(0, n, 8):
            chunk = noise[start : start + 8].to(device=self.device, dtype=embeddings.dtype)
            noisy = embeddings.expand(chunk.shape[0], -1, -1) + sigma * chunk
            logits = model(inputs_embeds=noisy, use_cache=False).logits
            out.append(self._mean_nll(logits, input_ids.expand(chunk.shape[0], -1), first).cpu())
        return torch.cat(out).double().numpy()

    @torch.inference_mode()
    def hidden_means(self, batch: Sequence[Sequence[int]]) -> list[np.ndarray]:
        """Per text, the mean over its tokens of every layer's hidden state (embeddings first): [layers + 1, d]."""
        model = self.model
        input_ids, mask = self._right_padded(batch)
        out = model.base_model(input_ids=input_ids, attention_mask=mask, output_hidden_states=True, use_cache=False)
        weights = mask.float()[:, None, :, None]  # [B, 1, L, 1]
        stacked = torch.stack([h.float() for h in out.hidden_states], dim=1)  # [B, layers + 1, L, d]
        means = (stacked * weights).sum(2) / weights.sum(2)
        return [m.cpu().numpy().astype(np.float32) for m in means]

    def _right_padded(self, batch: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids [B, L] right-padded with 0 and their attention mask, on the model's device."""
        width = max(len(ids) for ids in batch)
        input_ids = torch.zeros((len(batch), width), dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, ids in enumerate(batch):
            input_ids[i, : len(ids)] = torch.as_tensor(list(ids), dtype=torch.long)
            mask[i, : len(ids)] = 1
        return input_ids.to(self.device), mask.to(self.device)

    def _ensure_head_mode(self, model: Any) -> None:
        if self._head_mode is None and (model.get_output_embeddings() is None or model.base_model is model):
            self._head_mode = "logits"  # no separate output head to apply in chunks

    def _reduce_hidden(self, features: torch.Tensor, targets: torch.Tensor, topk: int) -> dict[str, torch.Tensor]:
        head = self.model.get_output_embeddings()
        return chunked_statistics(features, targets, head, head.weight.shape[0], workspace=self._workspace, topk=topk)

    def _reduce_logits(self, features: torch.Tensor, targets: torch.Tensor, topk: int) -> dict[str, torch.Tensor]:
        return chunked_statistics(
            features,
            targets,
            lambda x: x,
            features.shape[-1],
            workspace=self._workspace,
            features_owned=True,
            topk=topk,
        )

    @staticmethod
    def _split_rows(
        stats: dict[str, torch.Tensor], targets: torch.Tensor, counts: Sequence[int]
    ) -> list[dict[str, np.ndarray]]:
        """Per-row numpy statistics from the flat per-position tensors (``counts`` scored tokens per row)."""
        host = {k: v.float().cpu().numpy() for k, v in stats.items()}
        target_ids = targets.cpu().numpy().astype(np.int32)
        out, offset = [], 0
        for n in counts:
            row = {k: host[k][offset : offset + n] for k in STAT_FIELDS}
            row["token_ids"] = target_ids[offset : offset + n]
            out.append(row)
            offset += n
        return out
