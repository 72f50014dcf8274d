"""The audit configuration: the same options as ``miakit audit``, validated with pydantic (YAML files too)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from miakit.errors import MiakitError


class AuditConfig(BaseModel):
    """Everything an audit needs; unknown keys are errors (a typo must not be silently ignored)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="Target: local Hugging Face model directory, PEFT adapter dir or hub id.")
    scenario: str | None = Field(
        None, description="Scenario directory: supplies model, data, reference and canaries not given."
    )
    canaries: str | None = Field(None, description="Canaries file (JSONL) whose exposure is measured.")
    benchmark: str | None = Field(None, description="A published benchmark as data, e.g. wikimia:32, bookmia.")
    benchmark_path: str | None = Field(None, description="Local copy of the benchmark (else the hub, online).")
    calibration: str | None = Field(
        None, description="Labelled samples attacks may fit on (ReCaLL prefixes, probes); never scored."
    )
    calibration_fraction: float | None = Field(
        None, gt=0, lt=1, description="Stratified fraction of the data held out as calibration set instead."
    )
    data: str | None = Field(None, description="Labelled samples (JSONL, CSV, Parquet or HF datasets dir).")
    members: str | None = Field(None, description="File of member texts (with nonmembers).")
    nonmembers: str | None = Field(None, description="File of non-member texts (with members).")
    reference: list[str] = Field(default_factory=list, description="Reference models for the reference attack.")
    attacks: list[str] = Field(default_factory=lambda: ["all"], description="Attack specs, or 'all'.")
    out: str | None = Field(None, description="Run directory (default: runs/<timestamp>).")
    batch_size: int = Field(8, ge=1)
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    device: str = "auto"
    max_samples: int | None = Field(None, ge=2)
    chunk_words: int | None = Field(
        None, ge=1, description="Cut every sample into chunks of this many words, scored and grouped per document."
    )
    prepend_bos: bool = False
    revision: str | None = None
    trust_remote_code: bool = False
    max_length: int | None = Field(None, ge=2, description="Window length; default the model's context.")
    stride: int | None = Field(None, ge=1, description="Rolling-window stride; default half the window.")
    reference_corpus: str | None = Field(None, description="Corpus for DC-PDD token frequencies.")
    bootstrap: int = Field(1000, ge=0, description="Bootstrap resamples for confidence intervals.")
    seed: int = 0
    nan_policy: Literal["lowest", "raise", "omit"] = "lowest"

    @field_validator("attacks", "reference", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        if isinstance(value, str):
            from miakit.attacks.spec import split_specs

            return split_specs(value)
        return value

    @model_validator(mode="after")
    def _data_source(self) -> AuditConfig:
        if self.calibration and self.calibration_fraction is not None:
            raise ValueError("give either 'calibration' or 'calibration_fraction', not both")
        if self.benchmark and (self.data or self.members or self.nonmembers):
            raise ValueError("give either 'benchmark' or your own data, not both")
        if self.benchmark:
            return self
        if self.data and (self.members or self.nonmembers):
            raise ValueError("give either 'data' or 'members' + 'nonmembers', not both")
        if not self.data and not (self.members and self.nonmembers):
            raise ValueError("give 'data', or both 'members' and 'nonmembers' (or a 'benchmark')")
        return self


def format_validation_error(exc: ValidationError, source: str) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "config"
        parts.append(f"{where}: {err['msg']}")
    return f"Invalid audit configuration ({source}): " + "; ".join(parts) + "."


def make_config(values: dict[str, Any], source: str = "options") -> AuditConfig:
    try:
        return AuditConfig(**values)
    except ValidationError as exc:
        raise MiakitError(format_validation_error(exc, source)) from None


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML (or JSON) audit configuration into a dict; relative paths are taken from its folder."""
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
    for key in (
        "data",
        "members",
        "nonmembers",
        "out",
        "reference_corpus",
        "scenario",
        "canaries",
        "calibration",
        "benchmark_path",
    ):
        value = values.get(key)
        if isinstance(value, str) and not Path(value).is_absolute():
            candidate = path.parent / value
            if candidate.exists() or key == "out":
                values[key] = str(candidate)
    model = values.get("model")
    if isinstance(model, str) and not Path(model).is_absolute() and (path.parent / model).is_dir():
        values["model"] = str(path.parent / model)
    return values


def apply_scenario(values: dict[str, Any]) -> dict[str, Any] | None:
    """Fill model, data, reference and canaries from ``values["scenario"]`` where not given; returns the
    scenario record (None without a scenario). Explicit options always win."""
    if not values.get("scenario"):
        return None
    from miakit.scenarios.layout import load_scenario

    info = load_scenario(values["scenario"])
    if not values.get("model"):
        values["model"] = info["model"]
    if not (values.get("data") or values.get("members") or values.get("nonmembers")):
        values["data"] = info["dataset"]
    if not values.get("reference") and info.get("reference"):
        values["reference"] = [info["reference"]]
    if not values.get("canaries") and info.get("canaries"):
        values["canaries"] = info["canaries"]
    values["scenario"] = info["directory"]
    return info
