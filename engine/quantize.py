"""Quantize a GGUF with llama.cpp's quantizer, with progress and no half-written output."""

from __future__ import annotations

import ctypes
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path

import llama_cpp

from . import llama_log
from .errors import ModelError
from .files import replacing
from .gguf_header import read_gguf_header

Progress = Callable[[str, float | None], None]

# llama_ftype values (general.file_type) by name; the names users type for `quantize --type`
FTYPES: dict[str, int] = {
    "F32": 0, "F16": 1, "Q4_0": 2, "Q4_1": 3, "Q8_0": 7, "Q5_0": 8, "Q5_1": 9, "Q2_K": 10,
    "Q3_K_S": 11, "Q3_K_M": 12, "Q3_K_L": 13, "Q4_K_S": 14, "Q4_K_M": 15, "Q5_K_S": 16,
    "Q5_K_M": 17, "Q6_K": 18, "IQ4_NL": 25, "IQ4_XS": 30, "BF16": 32,
}
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

    def on_log(line: str) -> None:
        match = _TENSOR_PROGRESS.search(line)
        if match and progress:
            done, total = int(match.group(1)), int(match.group(2))
            progress(f"quantizing to {type_name.upper()}", done / max(total, 1))

    result: list[int] = []
    # Ctrl+C or a failure leaves no half-written file (the daemon worker ends with the process)
    with replacing(dst) as partial:
        worker = threading.Thread(
            target=lambda: result.append(
                llama_cpp.llama_model_quantize(str(src).encode(), str(partial).encode(), ctypes.byref(params))
            ),
            daemon=True,
        )
        with llama_log.listening(on_log):
            worker.start()
            worker.join()
        if not result or result[0] != 0:
            detail = llama_log.recent_errors()
            raise ModelError(f"quantizing {src} failed" + (f": {detail}" if detail else ""))
    if progress:
        progress(f"quantized to {type_name.upper()}", 1.0)
    return dst
