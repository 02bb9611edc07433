"""qcode's settings: defaults < TOML config file < QCODE_* environment < explicit arguments.

An invalid value becomes one SettingsError that names the setting and where its value came from.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from .errors import SettingsError

KvType = Literal["f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl"]
DrafterName = Literal["none", "ngram", "mtp", "model", "auto"]
ENV_PREFIX = "QCODE_"


def config_path() -> Path:
    """The TOML file read for settings: $QCODE_CONFIG, else the platform's config dir."""
    named = os.environ.get("QCODE_CONFIG")
    if named:
        return Path(named).expanduser()
    return Path(platformdirs.user_config_dir("qcode")) / "config.toml"


def cache_dir() -> Path:
    """Where qcode keeps what it builds (the default model, calibrations)."""
    named = os.environ.get("QCODE_CACHE_DIR")
    return Path(named).expanduser() if named else Path(platformdirs.user_cache_dir("qcode"))


class QcodeSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="forbid", validate_default=True, frozen=True
    )

    # model and context
    model: str | None = Field(
        None, description="a packaged model's name (coder-1.5b, coder-0.5b) or a GGUF file; empty means the default "
        "(coder-1.5b where installed, else coder-0.5b)"
    )
    n_ctx: int = Field(8192, ge=256, le=1_048_576, description="context size in tokens")
    kv_type_k: KvType = Field("q8_0", description="KV cache type for K")
    kv_type_v: KvType = Field("q8_0", description="KV cache type for V")
    flash_attn: bool = Field(True, description="flash attention (a quantized V cache needs it)")
    gpu_layers: int = Field(-1, ge=-1, description="layers to offload to the GPU; -1 means all")
    threads: int = Field(0, ge=0, le=1024, description="CPU threads; 0 picks the core count")
    exact_batches: bool = Field(
        False,
        description="CPU: use matmul kernels whose results do not depend on the batch size, so drafted and "
        "plain greedy runs match bit for bit (about 10% slower)",
    )
    batch_size: int = Field(512, ge=16, le=8192, description="prompt tokens per decode call")

    # drafting
    draft: DrafterName = Field("auto", description="drafter: none, ngram, mtp, model or auto")
    draft_model: str | None = Field(
        None, description="a small model with the target's vocabulary (a name or a GGUF file); empty means the "
        "packaged target's own pair (coder-0.5b for coder-1.5b) where installed"
    )
    draft_max: int = Field(
        64, ge=1, le=64, description="longest draft verified in one batch (recurrent models: at most 16)"
    )
    rollback_slots: int = Field(
        0, ge=0, le=17,
        description="recurrent models: recurrent-state snapshots kept so rejected drafts roll back (a draft is at "
        "most one fewer tokens); each costs every decode step a copy, so 0 lets qcode choose: with drafting "
        "calibrated, only as many beyond the MTP head's 7 as cost at most 2% of a step",
    )
    mtp_vocab: int = Field(
        32768, ge=0, le=1_048_576,
        description="restrict the MTP head's guesses to the N tokens most frequent in code (a head derived once per "
        "model and cached, about 0.5 GB for a 27B model): cheaper drafts, same output; 0 means the full vocabulary",
    )
    ngram_min: int = Field(2, ge=1, le=16, description="shortest n-gram the lookup matches")
    ngram_max: int = Field(5, ge=1, le=16, description="longest n-gram the lookup matches")
    draft_calibration: Literal["auto", "on", "off"] = Field(
        "auto",
        description="time verify calls of every draft length once per card, model and settings, and cache the curve "
        "(auto: where layers run on a GPU, whose curve a controller cannot learn online; elsewhere the curve learned "
        "while drafting is kept for the next run; off: neither)",
    )

    # sampling
    max_tokens: int = Field(1024, ge=1, le=1_048_576, description="most tokens one answer may have")
    temperature: float = Field(0.0, ge=0.0, le=5.0, description="0 means greedy")
    top_k: int = Field(40, ge=0, description="0 disables top-k")
    top_p: float = Field(0.95, gt=0.0, le=1.0, description="nucleus sampling mass")
    seed: int = Field(-1, ge=-1, description="sampling seed; -1 picks one at random")
    think: bool = Field(False, description="let a thinking model think before it answers")

    # an OpenAI-compatible inference server instead of the embedded engine
    server_url: str = Field(
        "", description="base URL of an OpenAI-compatible server (http://host:8080/v1); empty means the embedded "
        "engine"
    )
    server_model: str = Field("", description="model name sent to the server; empty picks the server's first")
    server_api_key_env: str = Field(
        "QCODE_API_KEY", description="NAME of the environment variable holding the server's API key (the key "
        "itself never goes in the config)"
    )
    server_timeout: float = Field(
        300.0, gt=0.0, le=86_400.0, description="seconds to wait for the server (connect, or silence mid-answer)"
    )

    # the test gate
    test_cmd: str = Field(
        "", description="shell command that tests the project (e.g. \"pytest -q\"): run after a rewrite is applied, "
        "whose failure restores the original; fix runs it first and aims at its failure"
    )
    test_timeout: float = Field(600.0, gt=0.0, le=86_400.0, description="seconds the test command may run")

    # front ends
    prompts_dir: Path | None = Field(None, description="folder whose templates override the packaged ones")
    complete_key: str = Field("ctrl+space", min_length=1, description="TUI key for completion")

    @field_validator("model", "draft_model", "prompts_dir", mode="before")
    @classmethod
    def _empty_path_is_none(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        if isinstance(value, Path):
            return str(value)
        return value

    @field_validator("prompts_dir", mode="after")
    @classmethod
    def _expand_user(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @field_validator("server_url", mode="before")
    @classmethod
    def _check_server_url(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        url = value.strip().rstrip("/")
        if url and not url.lower().startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL")
        return url

    @model_validator(mode="after")
    def _check_combinations(self) -> QcodeSettings:
        if self.ngram_min > self.ngram_max:
            raise ValueError("ngram_min must not exceed ngram_max")
        if self.kv_type_v not in ("f32", "f16", "bf16") and not self.flash_attn:
            raise ValueError("a quantized V cache (kv_type_v) needs flash_attn = true")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=config_path())
        return (init_settings, env_settings, toml)


def _read_config_file() -> dict[str, Any]:
    path = config_path()
    if not path.is_file():
        if os.environ.get("QCODE_CONFIG"):
            raise SettingsError(f"config file {path} (named by QCODE_CONFIG) does not exist")
        return {}
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"config file {path} is not valid TOML: {exc}") from None


def source_of(name: str, overrides: dict[str, Any], file_values: dict[str, Any]) -> str:
    """Where the effective value of setting `name` comes from, in words."""
    if name in overrides:
        return "command line"
    if f"{ENV_PREFIX}{name.upper()}" in {key.upper() for key in os.environ}:
        return f"environment variable {ENV_PREFIX}{name.upper()}"
    if name in file_values:
        return f"config file {config_path()}"
    return "default"


def load_settings(**overrides: Any) -> QcodeSettings:
    """Build the effective settings; explicit arguments win. None means 'not given'."""
    given = {key: value for key, value in overrides.items() if value is not None}
    file_values = _read_config_file()
    try:
        return QcodeSettings(**given)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else ""
        if name and name in QcodeSettings.model_fields:
            where = source_of(name, given, file_values)
            raise SettingsError(
                f"invalid setting {name} (from {where}): {first['msg']}"
            ) from None
        if first["type"] == "extra_forbidden":
            raise SettingsError(
                f"unknown setting {name!r} in {config_path()}" if name in file_values
                else f"unknown setting {name!r}"
            ) from None
        raise SettingsError(f"invalid settings: {first['msg']}") from None


def describe_settings(settings: QcodeSettings, overrides: dict[str, Any] | None = None) -> list[
    tuple[str, Any, str]
]:
    """Every effective setting as (name, value, source), for `qcode config`."""
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    file_values = _read_config_file()
    return [
        (name, getattr(settings, name), source_of(name, given, file_values))
        for name in QcodeSettings.model_fields
    ]
