"""A thin, typed layer over llama.cpp's C API: load, tokenize, decode a batch, read logits, save state.

Everything here runs on the calling thread; one Runtime must never be used from two threads at once.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import llama_cpp
import numpy as np
import numpy.typing as npt

from . import llama_log
from .errors import GenerationError, ModelError
from .settings import QcodeSettings

KV_TYPES: dict[str, int] = {
    "f32": llama_cpp.GGML_TYPE_F32, "f16": llama_cpp.GGML_TYPE_F16, "bf16": 30,
    "q8_0": llama_cpp.GGML_TYPE_Q8_0, "q4_0": llama_cpp.GGML_TYPE_Q4_0,
    "q4_1": llama_cpp.GGML_TYPE_Q4_1, "q5_0": llama_cpp.GGML_TYPE_Q5_0,
    "q5_1": llama_cpp.GGML_TYPE_Q5_1, "iq4_nl": llama_cpp.GGML_TYPE_IQ4_NL,
}
PARTIAL_STATE = 1  # LLAMA_STATE_SEQ_FLAGS_PARTIAL_ONLY: only recurrent / SWA state
# The longest draft of the MTP head (engine/draft/mtp.py): a model loaded for `--draft mtp` alone keeps rollback
# slots for this many drafted tokens, not draft_max (every slot adds a copy per recurrent layer to every step).
MTP_MAX_DRAFT = 6
# Recurrent models keep rollback slots for at most this many drafted tokens whatever draft_max says (lookup drafts of
# attention-only models go to draft_max: a long copy is cheap to verify per token, and they need no slots).
RECURRENT_MAX_DRAFT = 16
_backend_ready = False


@dataclass(frozen=True)
class RuntimeConfig:
    n_ctx: int
    n_batch: int
    kv_type_k: str
    kv_type_v: str
    flash_attn: bool
    gpu_layers: int
    threads: int
    # recurrent-state snapshots kept per sequence, so a rejected draft can be rolled back
    rollback_slots: int = 0
    load_mtp: bool = False
    # batch-size-independent CPU matmuls: no repacked weights, no tiled K-quant kernel (see exact_batches)
    exact_batches: bool = False


    @classmethod
    def from_settings(cls, settings: QcodeSettings, *, load_mtp: bool = False) -> RuntimeConfig:
        return cls(
            n_ctx=settings.n_ctx,
            n_batch=settings.batch_size,
            kv_type_k=settings.kv_type_k,
            kv_type_v=settings.kv_type_v,
            flash_attn=settings.flash_attn,
            gpu_layers=settings.gpu_layers,
            threads=settings.threads,
            # a snapshot per token a verify call may reject; none when drafting is off, since each slot costs
            # every decode step a copy of the recurrent state (-6.6% per token with 17 on an H100, 27B); the MTP
            # head alone never drafts more than MTP_MAX_DRAFT. A `rollback_slots` setting caps them; without one the
            # engine may reopen the context with fewer, where it measures them dear (engine/draft/slots.py)
            rollback_slots=0 if settings.draft == "none" else min(
                settings.rollback_slots or RECURRENT_MAX_DRAFT + 1,
                1 + min(settings.draft_max, MTP_MAX_DRAFT if settings.draft == "mtp" else RECURRENT_MAX_DRAFT)),
            load_mtp=load_mtp,
            exact_batches=settings.exact_batches,
        )


Logits = npt.NDArray[np.float32]


class Runtime:
    """One model, one context, one reusable batch."""

    def __init__(
        self, path: Path, config: RuntimeConfig, progress: Callable[[float], None] | None = None
    ) -> None:
        global _backend_ready
        llama_log.install()
        if not _backend_ready:
            llama_cpp.llama_backend_init()
            _backend_ready = True
        self.config = config
        self._closed = False
        self.states_saved = 0  # save_state calls: benchmarks count the checkpoints a prompt takes
        mparams = llama_cpp.llama_model_default_params()
        mparams.n_gpu_layers = config.gpu_layers if config.gpu_layers >= 0 else 999
        mparams.load_mtp = config.load_mtp
        if config.exact_batches:
            # Batches of K-quant weights otherwise go through repacked 4-row gemms and a tiled kernel (>= 8 rows)
            # that sum in another order than the one-row kernel. ggml reads the switch once, at the first matmul.
            mparams.use_extra_bufts = False
            os.environ.setdefault("GGML_CPU_TILED_MM", "0")
        self._progress_ref: Any = None
        stopped: list[BaseException] = []
        report = progress or (lambda fraction: None)  # without a listener too: Ctrl+C aborts through it

        def on_progress(fraction: float, _user: ctypes.c_void_p) -> bool:
            # an exception cannot cross llama.cpp: returning False aborts the load, and it is raised after.
            # So a progress callback may cancel a load (LoadCancelled), and Ctrl+C during one stops it.
            try:
                if llama_log.interrupted():
                    raise KeyboardInterrupt
                report(fraction)
            except BaseException as exc:  # re-raised once the load has returned
                stopped.append(exc)
                return False
            return True

        self._progress_ref = llama_cpp.llama_progress_callback(on_progress)
        mparams.progress_callback = self._progress_ref
        llama_log.clear_recent()
        with llama_log.deferred_interrupts():  # Ctrl+C during the load lands in llama.cpp's callbacks
            model = llama_cpp.llama_model_load_from_file(str(path).encode(), mparams)
        if stopped or llama_log.interrupted():
            if model:
                llama_cpp.llama_model_free(model)
            llama_log.raise_if_interrupted()
            raise stopped[0]
        if not model:
            detail = llama_log.recent_errors()
            raise ModelError(
                f"could not load model {path}" + (f": {detail}" if detail else " (corrupt or unsupported)")
            )
        self.model = model
        self.vocab = llama_cpp.llama_model_get_vocab(model)
        self.n_vocab = int(llama_cpp.llama_vocab_n_tokens(self.vocab))
        self.is_recurrent = bool(llama_cpp.llama_model_is_recurrent(model))
        self.is_hybrid = bool(llama_cpp.llama_model_is_hybrid(model))
        self.n_swa = int(llama_cpp.llama_model_n_swa(model))

        # a verify call of draft_max + 1 tokens must fit one batch, whatever the prompt batch size
        self.batch_capacity = max(config.n_batch, 128)
        self.ctx: Any = None
        try:
            self._open_context()
        except BaseException:
            llama_cpp.llama_model_free(model)
            raise
        self._batch = llama_cpp.llama_batch_init(self.batch_capacity, 0, 1)
        # the batch is filled through numpy views: one vector write per field, not a ctypes call per token
        capacity = self.batch_capacity
        self._tokens = np.ctypeslib.as_array(self._batch.token, shape=(capacity,))
        self._positions = np.ctypeslib.as_array(self._batch.pos, shape=(capacity,))
        self._outputs = np.ctypeslib.as_array(self._batch.logits, shape=(capacity,))
        self._offsets = np.arange(capacity, dtype=np.int32)
        np.ctypeslib.as_array(self._batch.n_seq_id, shape=(capacity,))[:] = 1
        for i in range(capacity):  # every token is in sequence 0
            self._batch.seq_id[i][0] = 0
        self._piece_buffer = ctypes.create_string_buffer(256)
        self._pieces: dict[int, bytes] = {}
        self._eog: dict[int, bool] = {}

    @property
    def offloads(self) -> bool:
        """Whether layers run on a GPU (a GPU build, and gpu_layers not 0)."""
        return self.config.gpu_layers != 0 and bool(llama_cpp.llama_supports_gpu_offload())

    @property
    def keeps_recurrent_state(self) -> bool:
        return self.is_recurrent or self.is_hybrid

    def _open_context(self) -> None:
        """Create the context (KV cache, recurrent state with its rollback slots) for self.config."""
        config = self.config
        cparams = llama_cpp.llama_context_default_params()
        cparams.n_ctx = config.n_ctx
        cparams.n_batch = self.batch_capacity
        cparams.n_ubatch = config.n_batch
        cparams.n_seq_max = 1
        cparams.n_rs_seq = config.rollback_slots if self.keeps_recurrent_state else 0
        threads = config.threads or max(1, os.cpu_count() or 1)
        cparams.n_threads = threads
        cparams.n_threads_batch = threads
        cparams.type_k = KV_TYPES[config.kv_type_k]
        cparams.type_v = KV_TYPES[config.kv_type_v]
        cparams.flash_attn_type = (
            llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
            if config.flash_attn
            else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        )
        # A full-size sliding-window cache can be truncated anywhere, like plain attention.
        cparams.swa_full = True
        cparams.no_perf = True
        llama_log.clear_recent()
        with llama_log.deferred_interrupts():
            ctx = llama_cpp.llama_init_from_model(self.model, cparams)
        if llama_log.interrupted():
            if ctx:
                llama_cpp.llama_free(ctx)
            llama_log.raise_if_interrupted()
        if not ctx:
            detail = llama_log.recent_errors()
            raise ModelError(
                f"could not create a context of {config.n_ctx} tokens"
                + (f": {detail}" if detail else "")
            )
        self.ctx = ctx
        self.memory = llama_cpp.llama_get_memory(ctx)
        self.n_ctx = int(llama_cpp.llama_n_ctx(ctx))
        self.rollback_slots = int(llama_cpp.llama_n_rs_seq(ctx))

    def reopen(self, rollback_slots: int) -> None:
        """A new context with `rollback_slots` snapshots (its memory starts empty); the model stays loaded.

        Only before anything holds the context: a drafter's context made from it (MTP) would dangle.
        """
        if rollback_slots == self.rollback_slots:
            return
        llama_cpp.llama_free(self.ctx)
        self.ctx = None
        self.config = dataclasses.replace(self.config, rollback_slots=rollback_slots)
        self._open_context()

    # --- tokens -------------------------------------------------------------------------------
    def tokenize(self, text: str, *, add_bos: bool = True, special: bool = True) -> list[int]:
        data = text.encode("utf-8")
        capacity = len(data) + 16
        buffer = (llama_cpp.llama_token * capacity)()
        count = llama_cpp.llama_tokenize(
            self.vocab, data, len(data), buffer, capacity, add_bos, special
        )
        if count < 0:
            capacity = -count
            buffer = (llama_cpp.llama_token * capacity)()
            count = llama_cpp.llama_tokenize(
                self.vocab, data, len(data), buffer, capacity, add_bos, special
            )
        return list(buffer[:count])

    def piece(self, token: int) -> bytes:
        """The bytes a token renders to (special tokens render empty)."""
        cached = self._pieces.get(token)
        if cached is not None:
            return cached
        size = llama_cpp.llama_token_to_piece(
            self.vocab, token, self._piece_buffer, len(self._piece_buffer), 0, False
        )
        if size < 0:
            bigger = ctypes.create_string_buffer(-size)
            size = llama_cpp.llama_token_to_piece(self.vocab, token, bigger, -size, 0, False)
            data = bigger.raw[:size]
        else:
            data = self._piece_buffer.raw[:size]
        self._pieces[token] = data
        return data

    def detokenize(self, tokens: Sequence[int]) -> str:
        return b"".join(self.piece(t) for t in tokens).decode("utf-8", errors="replace")

    def is_eog(self, token: int) -> bool:
        known = self._eog.get(token)
        if known is None:
            known = self._eog[token] = bool(llama_cpp.llama_vocab_is_eog(self.vocab, token))
        return known

    def special_token(self, name: str) -> int:
        """Ids of llama.cpp's known special tokens ("bos", "fim_pre", "fim_suf", "fim_mid", ...)."""
        getter = getattr(llama_cpp, f"llama_vocab_{name}")
        return int(getter(self.vocab))

    @property
    def adds_bos(self) -> bool:
        return bool(llama_cpp.llama_vocab_get_add_bos(self.vocab))

    # --- decoding -----------------------------------------------------------------------------
    def decode(self, tokens: Sequence[int], start_pos: int, n_logits: int) -> None:
        """Evaluate tokens at positions start_pos...; logits for the last n_logits of them."""
        count = len(tokens)
        if count == 0:
            return
        if count > self.batch_capacity:
            raise GenerationError("internal error: batch larger than its capacity")
        batch = self._batch
        if count == 1:  # a plain step: scalar writes are cheaper than slicing
            batch.token[0], batch.pos[0], batch.logits[0] = tokens[0], start_pos, n_logits > 0
        else:
            self._tokens[:count] = tokens
            np.add(self._offsets[:count], start_pos, out=self._positions[:count])
            first_logit = count - n_logits
            self._outputs[:first_logit] = 0
            self._outputs[first_logit:count] = 1
        batch.n_tokens = count
        status = llama_cpp.llama_decode(self.ctx, batch)
        if status != 0:
            if status == 1:
                raise GenerationError("the context is full (no room left in the KV cache)")
            if status == 2:
                raise GenerationError("decoding was aborted")
            raise GenerationError(f"llama_decode failed ({status}): {llama_log.recent_errors()}")

    def logits(self, n_rows: int) -> Logits:
        """The logits of the last decode, one row per requested output, without copying."""
        pointer = llama_cpp.llama_get_logits(self.ctx)
        return np.ctypeslib.as_array(pointer, shape=(n_rows, self.n_vocab))

    # --- memory -------------------------------------------------------------------------------
    def remove_from(self, pos: int) -> bool:
        """Forget positions >= pos. False where the memory cannot (recurrent state past its slots)."""
        return bool(llama_cpp.llama_memory_seq_rm(self.memory, 0, pos, -1))

    def clear(self) -> None:
        llama_cpp.llama_memory_clear(self.memory, True)

    def save_state(self, partial: bool) -> bytearray:
        """The sequence's state: all of it, or (partial) only the recurrent / SWA part.

        Written straight into a bytearray that load_state reads in place: a 27B checkpoint is 157 MB, and every
        extra copy of it (bytes(), from_buffer_copy) costs tens of milliseconds.
        """
        self.states_saved += 1
        flags = PARTIAL_STATE if partial else 0
        size = llama_cpp.llama_state_seq_get_size_ext(self.ctx, 0, flags)
        data = bytearray(size)
        if size:
            view = (ctypes.c_uint8 * size).from_buffer(data)
            written = llama_cpp.llama_state_seq_get_data_ext(self.ctx, view, size, 0, flags)
            del view  # a live export would forbid resizing the bytearray
            del data[written:]
        return data

    def load_state(self, data: bytearray, partial: bool) -> bool:
        if not data:
            return False
        flags = PARTIAL_STATE if partial else 0
        view = (ctypes.c_uint8 * len(data)).from_buffer(data)
        read = llama_cpp.llama_state_seq_set_data_ext(self.ctx, view, len(data), 0, flags)
        return int(read) > 0

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        llama_cpp.llama_batch_free(self._batch)
        if self.ctx:
            llama_cpp.llama_free(self.ctx)
        llama_cpp.llama_model_free(self.model)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # at interpreter exit the library may already be gone
            self.close()


def device_description() -> str:
    """The compute devices llama.cpp sees, e.g. "CPU: Intel Xeon | CUDA0: NVIDIA H100 80GB HBM3".

    Names what a measured cost curve belongs to; llama-cpp-python binds no device API, so ggml's is called directly.
    """
    try:
        from llama_cpp._ggml import libggml

        count, get = libggml.ggml_backend_dev_count, libggml.ggml_backend_dev_get
        name, describe = libggml.ggml_backend_dev_name, libggml.ggml_backend_dev_description
        count.restype, count.argtypes = ctypes.c_size_t, []
        get.restype, get.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
        name.restype, name.argtypes = ctypes.c_char_p, [ctypes.c_void_p]
        describe.restype, describe.argtypes = ctypes.c_char_p, [ctypes.c_void_p]
        devices = [get(i) for i in range(count())]
        return " | ".join(
            f"{(name(d) or b'?').decode(errors='replace')}: {(describe(d) or b'?').decode(errors='replace')}"
            for d in devices
        )
    except (ImportError, OSError, AttributeError):
        return "unknown devices"
