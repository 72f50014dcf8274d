"""The run specification: one pydantic model per command, the single source of its CLI flags, YAML keys and
Python API keywords.

A field added here appears as ``--field-name`` on the command line (``cli_options``), as ``field_name`` in a YAML
file (unknown keys are errors) and as a keyword of ``miakit.audit``; ``tests/run/test_spec.py`` checks that
the three agree. Field metadata for the command line (a short flag, a repeatable option) lives on the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from miakit.errors import MiakitError

# Fields holding paths: in a YAML file they are read relative to the file's folder.
PATH_FIELDS = (
    "data",
    "members",
    "nonmembers",
    "out",
    "reference_corpus",
    "scenario",
    "canaries",
    "calibration",
    "calibration_nonmembers",
    "benchmark_path",
    "suspect",
    "validation",
)


def _cli(short: str | None = None, *, repeat: bool = False, flag: str | None = None) -> dict[str, Any]:
    """Command-line metadata of a field: a short alias, a repeatable option, or an explicit flag declaration."""
    return {"json_schema_extra": {"cli": {"short": short, "repeat": repeat, "flag": flag}}}


class SpecBase(BaseModel):
    """Common behaviour: unknown keys are errors (a typo must not be silently ignored)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("attacks", "reference", mode="before", check_fields=False)
    @classmethod
    def _listify(cls, value: Any) -> Any:
        if isinstance(value, str):
            from miakit.attacks.spec import split_specs

            return split_specs(value)
        if isinstance(value, tuple):
            return list(value)
        return value


class DataFields(SpecBase):
    """Where the labelled samples come from."""

    data: str | None = Field(
        None, description="Labelled samples: JSONL, CSV, Parquet, HF datasets dir (or .txt: unlabelled).", **_cli("-d")
    )
    members: str | None = Field(None, description="File of member texts (with --nonmembers); .txt: one per line.")
    nonmembers: str | None = Field(None, description="File of non-member texts (with --members); .txt: one per line.")
    text_column: str = Field("text", min_length=1, description="Column (field) holding the text.")
    label_column: str = Field("label", min_length=1, description="Column (field) holding the label.")
    label_map: dict[str, int] | None = Field(
        None, description="Your label values as member (1) / non-member (0), e.g. yes=1,no=0."
    )
    benchmark: str | None = Field(
        None, description="Published benchmark as data: wikimia:32, mimir:DOMAIN[:SPLIT], bookmia, blind-mia:NAME, ..."
    )
    benchmark_path: str | None = Field(
        None, description="Local copy of the benchmark (saved HF dataset, split files, clone); else the hub."
    )
    max_samples: int | None = Field(None, ge=2, description="Stratified random subset of this size.")
    seed: int = Field(0, description="Seed for subsets, folds, bootstrap and baselines.")

    @field_validator("label_map", mode="before")
    @classmethod
    def _parse_label_map(cls, value: Any) -> Any:
        return parse_label_map(value)

    def data_mapping(self) -> dict[str, Any]:
        """The column and label mapping, as keywords of ``miakit.data.load_dataset``."""
        return {"text_column": self.text_column, "label_column": self.label_column, "label_map": self.label_map}

    def check_data_source(self, *, required: bool = True) -> None:
        mapped = self.text_column != "text" or self.label_column != "label" or self.label_map
        if self.benchmark and mapped:
            raise ValueError("'text_column', 'label_column' and 'label_map' apply to your files, not a benchmark")
        if self.benchmark and (self.data or self.members or self.nonmembers):
            raise ValueError("give either 'benchmark' or your own data, not both")
        if self.data and (self.members or self.nonmembers):
            raise ValueError("give either 'data' or 'members' + 'nonmembers', not both")
        if required and not self.benchmark and not self.data and not (self.members and self.nonmembers):
            raise ValueError("give 'data', or both 'members' and 'nonmembers' (or a 'benchmark')")


class EvaluationFields(SpecBase):
    """How scores are turned into metrics."""

    bootstrap: int = Field(1000, ge=0, description="Bootstrap resamples for confidence intervals.")
    nan_policy: Literal["lowest", "raise", "omit"] = Field(
        "lowest", description="NaN scores: rank lowest, raise an error, or omit them from the metrics."
    )
    out: str | None = Field(None, description="Run directory (default runs/<timestamp>).", **_cli("-o"))


class ModelFields(SpecBase):
    """How the target and reference models are loaded and run."""

    reference: list[str] = Field(
        default_factory=list,
        description="Reference model for the reference attack (repeatable).",
        **_cli("-r", repeat=True),
    )
    batch_size: int = Field(8, ge=1, description="Sequences per forward pass.")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="auto, float32, bfloat16 or float16."
    )
    device: str = Field("auto", description="auto (cuda, mps, cpu), or a torch device.")
    prepend_bos: bool = Field(False, description="Prepend BOS so every token is scored.")
    revision: str | None = Field(None, description="Hub revision (branch, tag or commit).")
    trust_remote_code: bool = Field(False, description="Run model code from the hub.")
    allow_pickle: bool = Field(
        False,
        description="Load pickle weights (pytorch_model.bin) if a model has no safetensors; pickle can run code: "
        "only for models you trust.",
    )
    max_length: int | None = Field(
        None,
        ge=2,
        description="Maximum tokens per window (default the model's context); longer texts are scored in "
        "rolling windows, never truncated.",
    )
    stride: int | None = Field(None, ge=1, description="Rolling-window stride; default half the window.")
    reference_corpus: str | None = Field(None, description="Corpus for DC-PDD token frequencies.")
    cache: bool = Field(True, description="Read and write the signal store (--no-cache: neither).")
    progress: bool = Field(True, description="Show progress bars.")
    api_base: str | None = Field(
        None, description="Base URL of an OpenAI-compatible server (with --api-model; or --model openai:URL#NAME)."
    )
    api_model: str | None = Field(None, description="Model name the server serves (with --api-base).")
    api_key_env: str | None = Field(
        None, description="Environment variable holding the API key (the key itself is never written anywhere)."
    )
    api_concurrency: int = Field(8, ge=1, description="API requests in flight at once.")
    api_timeout: float = Field(
        600.0,
        gt=0,
        description="Seconds before an API request is given up and retried (600, as OpenAI's client: a queued "
        "generation request on a busy server can take minutes).",
    )
    api_retries: int = Field(6, ge=0, description="Retries of a failed API request (429, 5xx, timeouts, drops).")
    api_top_logprobs: int | None = Field(
        None, ge=0, description="Top log-probs per position to ask the server for (default: the most it gives, <= 20)."
    )
    api_endpoint: Literal["auto", "completions", "chat"] = Field(
        "auto",
        description="Where generations come from: auto (/v1/completions where the server has it, else "
        "/v1/chat/completions), completions, or chat.",
    )
    api_chat_instruction: str | None = Field(
        None,
        description="System message before each prompt on the chat endpoint (default: continue the text "
        "exactly; '' sends the prompt alone).",
    )
    api_price_prompt: float | None = Field(None, ge=0, description="Price per 1,000 prompt tokens (the ledger's cost).")
    api_price_completion: float | None = Field(
        None, ge=0, description="Price per 1,000 completion tokens (the ledger's cost)."
    )


class RunSpec(EvaluationFields, ModelFields, DataFields):
    """Everything ``miakit audit`` needs (the CLI, a YAML file and ``miakit.audit`` keywords)."""

    model: str = Field(
        "",
        description="Target: local Hugging Face model dir, PEFT adapter dir, hub id, or openai:BASE_URL#MODEL.",
        **_cli("-m"),
    )
    scenario: str | None = Field(
        None, description="Scenario dir (miakit scenario ...): its model, data, reference and canaries."
    )
    attacks: list[str] = Field(
        default_factory=lambda: ["all"],
        description="Comma-separated attack specs, e.g. loss,min_k[k=0.1,0.2]; 'all'.",
        **_cli("-a"),
    )
    calibration: str | None = Field(
        None, description="Labelled samples attacks may fit on (ReCaLL prefixes, probes); never scored."
    )
    calibration_nonmembers: str | None = Field(
        None,
        description="Texts known NOT to be members (.txt, one per line, or a file with a text column) "
        "for attacks that fit on non-members (ReCaLL); never scored.",
    )
    calibration_fraction: float | None = Field(
        None, gt=0, lt=1, description="Hold out this stratified fraction of the data as calibration set."
    )
    chunk_words: int | None = Field(
        None, ge=1, description="Cut samples into chunks of N words; metrics also per document (group)."
    )
    canaries: str | None = Field(None, description="Canaries JSONL: report their exposure.")

    @model_validator(mode="after")
    def _consistent(self) -> RunSpec:
        if self.calibration and self.calibration_fraction is not None:
            raise ValueError("give either 'calibration' or 'calibration_fraction', not both")
        self.check_data_source()
        if not self.model:
            raise ValueError("no target model: give 'model' (a local directory or a hub id) or a 'scenario'")
        return self


class BlindSpec(EvaluationFields, DataFields):
    """``miakit blind``: the model-free blind baselines alone."""

    @model_validator(mode="after")
    def _consistent(self) -> BlindSpec:
        self.check_data_source()
        return self


DATASET_FEATURES = (
    "loss",
    "zlib",
    "min_k[k=0.05,0.1,0.2,0.3,0.4,0.5,0.6]",
    "max_k[k=0.05,0.1,0.2]",
    "min_k_pp[k=0.05,0.1,0.2,0.3,0.4,0.5,0.6]",
    "max_renyi[alpha=0.5,1,2,inf]",
)


class DatasetInferenceSpec(ModelFields):
    """``miakit infer-dataset``: were the suspect texts, as a set, trained on?"""

    model: str = Field(..., description="Target: local model dir, adapter dir or hub id.", **_cli("-m"))
    suspect: str = Field(..., description="Texts suspected to be in the training data (.txt/.jsonl/.csv/.parquet).")
    validation: str = Field(..., description="Texts of the same distribution known NOT to be trained on.")
    text_column: str = Field("text", min_length=1, description="Field or column holding the text (JSONL/CSV/Parquet).")
    attacks: list[str] = Field(
        default_factory=lambda: list(DATASET_FEATURES),
        description="Attack specs whose scores are the features ('reference' is added with --reference).",
        **_cli("-a"),
    )
    alpha: float = Field(0.05, gt=0, lt=1, description="Significance level.")
    seed: int = Field(0, description="Seed of the halves, subsamples and blind baselines.")
    bootstrap: int = Field(1000, ge=0, description="Bootstrap resamples of the suspect-vs-validation blind check.")
    out: str | None = Field(None, description="Run directory (default runs/<timestamp>-dataset).", **_cli("-o"))


def parse_label_map(value: Any) -> Any:
    """``yes=1,no=0`` (flag) or a mapping (YAML, Python) as {value: 0 or 1}; other input is left to pydantic."""
    if isinstance(value, str):
        pairs = {}
        for part in (p.strip() for p in value.split(",")):
            if not part:
                continue
            key, sep, label = part.rpartition("=")
            if not sep or not key.strip():
                raise ValueError(f"label_map takes VALUE=1 or VALUE=0 pairs such as yes=1,no=0; got {value!r}")
            pairs[key.strip()] = label.strip()
        value = pairs
    if isinstance(value, dict):
        out = {}
        for key, label in value.items():
            if isinstance(key, bool):
                raise ValueError(
                    f"label_map has the key {key!r}, which YAML reads from an unquoted yes/no/on/off/true/false; "
                    "quote the keys, e.g. {'yes': 1, 'no': 0}, or write label_map: yes=1,no=0"
                )
            text = str(label).strip().lower()
            if text not in ("1", "0", "1.0", "0.0", "true", "false"):
                raise ValueError(f"label_map maps values to 1 (member) or 0 (non-member); {key!r} maps to {label!r}")
            out[str(key).strip()] = 1 if text in ("1", "1.0", "true") else 0
        if not out:
            raise ValueError("label_map is empty; give pairs such as yes=1,no=0")
        return out
    return value


def format_validation_error(exc: ValidationError, source: str) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "configuration"
        message = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where != "configuration" else message)
    return f"Invalid configuration ({source}): " + "; ".join(parts) + "."


def make_spec(cls: type[SpecBase], values: dict[str, Any], source: str = "options") -> Any:
    """Validate ``values`` into the spec ``cls``; errors become one MiakitError paragraph."""
    try:
        return cls(**values)
    except ValidationError as exc:
        raise MiakitError(format_validation_error(exc, source)) from None


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML (or JSON) configuration into a dict; relative paths are taken from its folder."""
    path = Path(path)
    if not path.is_file():
        raise MiakitError(f"Configuration file '{path}' does not exist.")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise MiakitError(f"Configuration file '{path}' is not valid YAML: {exc}") from None
    if not isinstance(values, dict):
        raise MiakitError(f"Configuration file '{path}' must hold a mapping of option: value.")
    values = {str(k).replace("-", "_"): v for k, v in values.items()}
    for key in PATH_FIELDS:
        value = values.get(key)
        if isinstance(value, str) and value:
            values[key] = _config_path(path, key, value, must_exist=key != "out")
    for key in ("model", "reference"):
        value = values.get(key)
        if isinstance(value, str) and value:
            values[key] = _config_model(path, key, value)
        elif isinstance(value, list):
            values[key] = [_config_model(path, key, v) if isinstance(v, str) and v else v for v in value]
    return values


def _config_path(config: Path, key: str, value: str, *, must_exist: bool) -> str:
    """A path written in a configuration file: absolute as written, relative from the file's folder (never from
    the current directory); one that must exist and does not is an error naming both."""
    written = Path(value).expanduser()
    if written.is_absolute():
        return str(written)
    candidate = config.parent / written
    if must_exist and not candidate.exists():
        raise MiakitError(
            f"Configuration file '{config}': {key} '{value}' does not exist (looked for {candidate.absolute()}). "
            "Relative paths in a configuration file are read from the file's folder, not from the current "
            "directory; fix the path or write it absolute."
        )
    return str(candidate)


def _config_model(config: Path, key: str, value: str) -> str:
    """A model named in a configuration file: a folder beside the file, else a hub id. A relative path that
    exists only in the current directory, or is written as a path (./, ../), is an error, not a silent pick."""
    written = Path(value).expanduser()
    if written.is_absolute():
        return str(written)
    candidate = config.parent / written
    if candidate.exists():
        return str(candidate)
    if value.startswith((".", "~")) or written.exists():
        raise MiakitError(
            f"Configuration file '{config}': {key} '{value}' is not in the file's folder (looked for "
            f"{candidate.absolute()}). Relative paths in a configuration file are read from its folder, not from "
            "the current directory; fix the path or write it absolute."
        )
    return value  # a hub id


def apply_scenario(values: dict[str, Any]) -> dict[str, Any] | None:
    """Fill model, data, reference, canaries and (with the scenario's data) its calibration set from
    ``values["scenario"]`` where not given; returns the scenario record (None without a scenario). Explicit
    options always win."""
    if not values.get("scenario"):
        return None
    from miakit.scenarios.layout import load_scenario

    info = load_scenario(values["scenario"])
    if not values.get("model"):
        values["model"] = info["model"]
    if not (values.get("data") or values.get("members") or values.get("nonmembers") or values.get("benchmark")):
        values["data"] = info["dataset"]
    if not values.get("reference") and info.get("reference"):
        values["reference"] = [info["reference"]]
    if not values.get("canaries") and info.get("canaries"):
        values["canaries"] = info["canaries"]
    calibration_given = (
        values.get("calibration")
        or values.get("calibration_nonmembers")
        or values.get("calibration_fraction") is not None
    )
    if info.get("calibration") and values.get("data") == info["dataset"] and not calibration_given:
        values["calibration"] = info["calibration"]  # the scenario's own split: trained members, held-out others
    values["scenario"] = info["directory"]
    return info


def options_markdown(spec_cls: type[SpecBase]) -> str:
    """The README's table of a command's options, from the spec: flag, YAML key / API keyword, default, meaning."""
    rows = ["| flag | YAML key / keyword | default | meaning |", "|---|---|---|---|"]
    own = [n for n in getattr(spec_cls, "__annotations__", {}) if n in spec_cls.model_fields]
    for name in [*own, *[n for n in spec_cls.model_fields if n not in own]]:
        info = spec_cls.model_fields[name]
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        short = (extra.get("cli") or {}).get("short")
        flag = "--" + name.replace("_", "-")
        if info.annotation is bool:
            flag = f"{flag} / --no-{name.replace('_', '-')}"
        if short:
            flag = f"{flag}, {short}"
        default = info.get_default(call_default_factory=True)
        shown = "required" if info.is_required() else ("-" if default in (None, "", []) else str(default))
        if isinstance(default, list) and default:
            shown = ",".join(map(str, default))
        text = (info.description or "").replace("|", "\\|")
        rows.append(f"| `{flag}` | `{name}` | {shown} | {text} |")
    return "\n".join(rows) + "\n"
