"""Build tiny Qwen3.6-shaped GGUFs (arch ``qwen35``) with random weights for tests.

The real target model cannot be downloaded here, so the Qwen-only code paths (hybrid
attention + Gated DeltaNet memory, the MTP/NextN head, FIM tokens, the chat template) are
tested on a model that has the same structure at toy size:

* ``n_layer`` trunk layers; every 4th is full attention (gated Q, Q/K norm, partial
  multi-section RoPE), the others are Gated DeltaNet (recurrent) layers;
* with ``with_mtp``, one extra NextN block after the trunk. llama.cpp counts it inside
  ``block_count`` (``n_layer() = block_count - nextn_predict_layers``), so the file says
  ``block_count = n_layer + 1``;
* the real Qwen tokenizer, read from ``tests/data/ggml-vocab-qwen35.gguf.xz`` (llama.cpp's
  Qwen3.5 vocab test file, xz-compressed, 1.3 MB), whose unused padding slots receive the
  Qwen3 added tokens at their real ids (``<|fim_prefix|>`` = 151659, ``<think>`` = 151667, ...).
  That is 151,936 tokens, not Qwen3.6's 248,320, and the special ids differ from the real
  model's: code under test must look tokens up, never hard-code ids;
* a Qwen-style chat template with an ``enable_thinking`` switch.

Weights are centred Gaussians scaled by 1/sqrt(fan_in), norms are near 1, so activations
stay finite through every layer. The file is written by a small GGUF writer here, so only
numpy is needed (llama.cpp itself validates the output in tests/engine_tests/test_synthetic_qwen35.py).

CLI: ``python tests/synthetic_qwen35.py OUT.gguf [--layers N] [--no-mtp] [--type q8_0]``
"""

from __future__ import annotations

import argparse
import functools
import lzma
import math
import os
import struct
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np

ARCH = "qwen35"
VOCAB_XZ = Path(__file__).resolve().parent / "data" / "ggml-vocab-qwen35.gguf.xz"

# Token types as llama.cpp reads them (tokenizer.ggml.token_type).
TOKEN_NORMAL, TOKEN_CONTROL, TOKEN_USER_DEFINED = 1, 3, 4

# Qwen3's added tokens at their real ids. The shipped vocab holds only the first three
# specials and fills 151646.. with "[PAD...]" placeholders; these replace them.
# FIM/repo tokens are control tokens (llama.cpp would force that anyway); <think> and the
# tool tags are user-defined, as in the released Qwen GGUFs, so they match in plain text.
ADDED_TOKENS: dict[int, tuple[str, int]] = {
    151646: ("<|object_ref_start|>", TOKEN_CONTROL),
    151647: ("<|object_ref_end|>", TOKEN_CONTROL),
    151648: ("<|box_start|>", TOKEN_CONTROL),
    151649: ("<|box_end|>", TOKEN_CONTROL),
    151650: ("<|quad_start|>", TOKEN_CONTROL),
    151651: ("<|quad_end|>", TOKEN_CONTROL),
    151652: ("<|vision_start|>", TOKEN_CONTROL),
    151653: ("<|vision_end|>", TOKEN_CONTROL),
    151654: ("<|vision_pad|>", TOKEN_CONTROL),
    151655: ("<|image_pad|>", TOKEN_CONTROL),
    151656: ("<|video_pad|>", TOKEN_CONTROL),
    151657: ("<tool_call>", TOKEN_USER_DEFINED),
    151658: ("</tool_call>", TOKEN_USER_DEFINED),
    151659: ("<|fim_prefix|>", TOKEN_CONTROL),
    151660: ("<|fim_middle|>", TOKEN_CONTROL),
    151661: ("<|fim_suffix|>", TOKEN_CONTROL),
    151662: ("<|fim_pad|>", TOKEN_CONTROL),
    151663: ("<|repo_name|>", TOKEN_CONTROL),
    151664: ("<|file_sep|>", TOKEN_CONTROL),
    151665: ("<tool_response>", TOKEN_USER_DEFINED),
    151666: ("</tool_response>", TOKEN_USER_DEFINED),
    151667: ("<think>", TOKEN_USER_DEFINED),
    151668: ("</think>", TOKEN_USER_DEFINED),
}
TOKEN_ENDOFTEXT, TOKEN_IM_START, TOKEN_IM_END = 151643, 151644, 151645

# Written for this project in the shape of Qwen3's template: ChatML turns, a <think> block
# opened at the generation prompt unless enable_thinking is false (then an empty one is
# emitted, which is how Qwen disables thinking), earlier reasoning stripped from history.
CHAT_TEMPLATE = """\
{%- for message in messages %}
{%- if message.role == 'assistant' %}
{%- set content = message.content %}
{%- if '</think>' in content %}
{%- set content = content.split('</think>')[-1].lstrip('\\n') %}
{%- endif %}
{{- '<|im_start|>assistant\\n' + content + '<|im_end|>\\n' }}
{%- elif message.role == 'tool' %}
{{- '<|im_start|>user\\n<tool_response>\\n' + message.content + '\\n</tool_response><|im_end|>\\n' }}
{%- else %}
{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}
{%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
{{- '<|im_start|>assistant\\n' }}
{%- if enable_thinking is defined and enable_thinking is false %}
{{- '<think>\\n\\n</think>\\n\\n' }}
{%- else %}
{{- '<think>\\n' }}
{%- endif %}
{%- endif %}
"""


@dataclass(frozen=True)
class Shape:
    """Toy dimensions with Qwen3.6-27B's ratios where they fit (real values in comments)."""

    n_embd: int = 64  # 5120; also sets the tied embedding/output size (vocab x n_embd)
    n_ff: int = 224  # 17408 (3.4x)
    n_head: int = 4  # 24
    n_head_kv: int = 2  # 4
    head_dim: int = 64  # 256
    n_rot: int = 16  # 64 (partial rotary, 1/4 of the head)
    rope_sections: tuple[int, int, int, int] = (3, 3, 2, 0)  # (11, 11, 10, 0): sum = n_rot/2
    ssm_conv: int = 4  # 4
    ssm_head_dim: int = 32  # 128 (ssm.state_size; key and value head size alike)
    ssm_k_heads: int = 2  # 16 (ssm.group_count)
    ssm_v_heads: int = 6  # 48 (ssm.time_step_rank)
    full_attention_interval: int = 4  # 4
    n_ctx_train: int = 262144  # 262144
    rope_freq_base: float = 10_000_000.0
    rms_eps: float = 1e-6


# The real model's head sizes (attention 256, DeltaNet 128, 1/4 rotary) at small width, for
# runs where kernels are picked by head size (CUDA flash attention, the fused delta-rule
# kernel). About 62 MB with q8_0.
REAL_HEAD_DIMS = Shape(
    n_embd=256, n_ff=768, n_head=6, n_head_kv=1, head_dim=256, n_rot=64,
    rope_sections=(11, 11, 10, 0), ssm_head_dim=128, ssm_k_heads=2, ssm_v_heads=6,
)


@dataclass(frozen=True)
class Vocab:
    tokens: list[str]
    token_types: list[int]
    merges: list[str]


# GGUF metadata value types: fixed-size scalars as struct formats, plus string (8), array (9).
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9


def read_gguf_metadata(data: bytes) -> dict[str, object]:
    """Parse the key/value section of a GGUF v2/v3 file.

    gguf.GGUFReader takes about 30 s on a 150k-token vocabulary (a numpy view per
    string); this plain walk over the bytes takes well under a second.
    """
    if data[:4] != b"GGUF":
        raise ValueError("not a GGUF file")
    (version,) = struct.unpack_from("<I", data, 4)
    if version < 2:
        raise ValueError(f"GGUF version {version} is not supported")
    (n_kv,) = struct.unpack_from("<Q", data, 16)
    pos = 24

    def string() -> str:
        nonlocal pos
        (n,) = struct.unpack_from("<Q", data, pos)
        text = data[pos + 8 : pos + 8 + n].decode("utf-8")
        pos += 8 + n
        return text

    def value(kind: int) -> object:
        nonlocal pos
        if kind == _STRING:
            return string()
        if kind == _ARRAY:
            item_kind, count = struct.unpack_from("<IQ", data, pos)
            pos += 12
            if item_kind in _SCALARS:
                fmt = f"<{count}{_SCALARS[item_kind]}"
                items = list(struct.unpack_from(fmt, data, pos))
                pos += struct.calcsize(fmt)
                return items
            return [value(item_kind) for _ in range(count)]
        fmt = "<" + _SCALARS[kind]
        (result,) = struct.unpack_from(fmt, data, pos)
        pos += struct.calcsize(fmt)
        return result

    metadata: dict[str, object] = {}
    for _ in range(n_kv):
        name = string()
        (kind,) = struct.unpack_from("<I", data, pos)
        pos += 4
        metadata[name] = value(kind)
    return metadata


@functools.lru_cache(maxsize=1)
def load_vocab(path: Path = VOCAB_XZ) -> Vocab:
    """Read the shipped Qwen vocab and put the Qwen3 added tokens in their slots."""
    meta = read_gguf_metadata(lzma.decompress(path.read_bytes()))
    tokens = cast(list[str], meta["tokenizer.ggml.tokens"])
    types = cast(list[int], meta["tokenizer.ggml.token_type"])
    merges = cast(list[str], meta["tokenizer.ggml.merges"])
    for token_id, (text, kind) in ADDED_TOKENS.items():
        if not tokens[token_id].startswith("[PAD"):
            raise ValueError(f"vocab slot {token_id} is {tokens[token_id]!r}, expected padding")
        tokens[token_id] = text
        types[token_id] = kind
    return Vocab(tokens=tokens, token_types=types, merges=merges)


# GGML tensor types, and the GGUF general.file_type (llama_ftype) that names each choice.
_GGML_F32, _GGML_F16, _GGML_Q4_0, _GGML_Q8_0 = 0, 1, 2, 8
_WEIGHT_TYPES = {"f32": (_GGML_F32, 0), "f16": (_GGML_F16, 1), "q4_0": (_GGML_Q4_0, 2), "q8_0": (_GGML_Q8_0, 7)}
_ALIGN = 32  # GGUF's default general.alignment


def _quantize_q8_0(x: np.ndarray) -> bytes:
    """ggml block_q8_0: per 32 values an f16 scale and 32 int8 (round(x / (amax / 127)))."""
    blocks = x.reshape(-1, 32)
    d = np.abs(blocks).max(axis=1, keepdims=True) / 127.0
    q = np.round(blocks / np.where(d > 0, d, 1.0)).astype(np.int8)
    out = np.empty((blocks.shape[0], 34), dtype=np.uint8)
    out[:, :2] = d.astype(np.float16).view(np.uint8)
    out[:, 2:] = q.view(np.uint8)
    return out.tobytes()


def _quantize_q4_0(x: np.ndarray) -> bytes:
    """ggml block_q4_0: f16 scale = (value of largest magnitude) / -8, 32 nibbles offset by 8."""
    blocks = x.reshape(-1, 32)
    rows = np.arange(blocks.shape[0])
    peak = blocks[rows, np.abs(blocks).argmax(axis=1)][:, None]
    d = peak / -8.0
    nib = np.minimum(15, np.trunc(blocks / np.where(d != 0, d, 1.0) + 8.5)).astype(np.uint8)
    out = np.empty((blocks.shape[0], 18), dtype=np.uint8)
    out[:, :2] = d.astype(np.float16).view(np.uint8)
    out[:, 2:] = nib[:, :16] | (nib[:, 16:] << 4)
    return out.tobytes()


def gguf_string(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack("<Q", len(raw)) + raw


def tensor_info(name: str, ne: Sequence[int], kind: int, offset: int) -> bytes:
    """A tensor's GGUF header entry: name, dimensions (innermost first), ggml type, offset into the data."""
    return gguf_string(name) + struct.pack("<I", len(ne)) + struct.pack(f"<{len(ne)}Q", *ne) + struct.pack(
        "<IQ", kind, offset)


class GGUFMetadata:
    """GGUF key/value entries, serialised as they are added (bench/gpu/synth27b.py writes its 27B model with these).

    The gguf package's writer spends seconds packing the 300k vocabulary strings one value at a time; joining
    pre-encoded bytes takes a fraction of that, and the generator then needs nothing beyond numpy.
    """

    def __init__(self) -> None:
        self.kv: list[bytes] = []

    def _add_kv(self, key: str, kind: int, payload: bytes) -> None:
        self.kv.append(gguf_string(key) + struct.pack("<I", kind) + payload)

    def u32(self, key: str, value: int) -> None:
        self._add_kv(key, 4, struct.pack("<I", value))

    def f32(self, key: str, value: float) -> None:
        self._add_kv(key, 6, struct.pack("<f", value))

    def bool(self, key: str, value: bool) -> None:
        self._add_kv(key, 7, struct.pack("<?", value))

    def string(self, key: str, value: str) -> None:
        self._add_kv(key, _STRING, gguf_string(value))

    def int_array(self, key: str, values: Sequence[int], kind: int = 5) -> None:
        fmt = f"<{len(values)}{_SCALARS[kind]}"
        self._add_kv(key, _ARRAY, struct.pack("<IQ", kind, len(values)) + struct.pack(fmt, *values))

    def string_array(self, key: str, values: Sequence[str]) -> None:
        body = b"".join(gguf_string(v) for v in values)
        self._add_kv(key, _ARRAY, struct.pack("<IQ", _STRING, len(values)) + body)


class _GGUFWriter(GGUFMetadata):
    """A minimal GGUF v3 writer: the metadata, then tensors held in memory (toy sizes)."""

    def __init__(self) -> None:
        super().__init__()
        self.tensors: list[tuple[str, tuple[int, ...], int, bytes]] = []

    def tensor(self, name: str, data: np.ndarray, kind: int) -> int:
        """Add a tensor given in numpy order (..., rows, cols); GGUF lists ne innermost first."""
        flat = np.ascontiguousarray(data, dtype=np.float32)
        if kind == _GGML_Q8_0:
            raw = _quantize_q8_0(flat)
        elif kind == _GGML_Q4_0:
            raw = _quantize_q4_0(flat)
        elif kind == _GGML_F16:
            raw = flat.astype(np.float16).tobytes()
        else:
            raw = flat.tobytes()
        self.tensors.append((name, tuple(reversed(data.shape)), kind, raw))
        return len(raw)

    def write(self, path: Path) -> None:
        infos: list[bytes] = []
        offset = 0
        for name, ne, kind, raw in self.tensors:
            infos.append(tensor_info(name, ne, kind, offset))
            offset += -(-len(raw) // _ALIGN) * _ALIGN
        header = b"GGUF" + struct.pack("<IQQ", 3, len(self.tensors), len(self.kv))
        with open(path, "wb") as out:
            out.write(header)
            out.writelines(self.kv)
            out.writelines(infos)
            out.write(b"\0" * (-out.tell() % _ALIGN))
            for _, _, _, raw in self.tensors:
                out.write(raw)
                out.write(b"\0" * (-len(raw) % _ALIGN))


@functools.lru_cache(maxsize=1)
def _vocab_entries() -> tuple[bytes, ...]:
    """The tokenizer's GGUF entries, serialised once per process (300k strings take ~1 s)."""
    vocab = load_vocab()
    g = _GGUFWriter()
    g.string("tokenizer.ggml.model", "gpt2")
    g.string("tokenizer.ggml.pre", "qwen35")
    g.string_array("tokenizer.ggml.tokens", vocab.tokens)
    g.int_array("tokenizer.ggml.token_type", vocab.token_types)
    g.string_array("tokenizer.ggml.merges", vocab.merges)
    return tuple(g.kv)


class _Weights:
    """Draws random tensors: matrices in the chosen type, vectors in f32."""

    def __init__(self, writer: _GGUFWriter, rng: np.random.Generator, matrix_type: int) -> None:
        self.writer = writer
        self.rng = rng
        self.matrix_type = matrix_type

    def _normal(self, std: float, shape: tuple[int, ...]) -> np.ndarray:
        return self.rng.standard_normal(shape, dtype=np.float32) * np.float32(std)

    def matrix(self, name: str, n_out: int, n_in: int, scale: float = 1.0) -> None:
        """A weight applied as x @ W.T: numpy shape (n_out, n_in) is GGUF {n_in, n_out}."""
        data = self._normal(scale / math.sqrt(n_in), (n_out, n_in))
        self.writer.tensor(name, data, self.matrix_type)

    def norm(self, name: str, n: int) -> None:
        self.writer.tensor(name, 1.0 + self._normal(0.1, (n,)), _GGML_F32)

    def vector(self, name: str, data: np.ndarray) -> None:
        self.writer.tensor(name, data, _GGML_F32)


def _attention_block(w: _Weights, il: int, s: Shape) -> None:
    q_dim = s.head_dim * s.n_head
    kv_dim = s.head_dim * s.n_head_kv
    # attn_q yields query and output gate interleaved per head, hence 2x.
    w.matrix(f"blk.{il}.attn_q.weight", 2 * q_dim, s.n_embd)
    w.matrix(f"blk.{il}.attn_k.weight", kv_dim, s.n_embd)
    w.matrix(f"blk.{il}.attn_v.weight", kv_dim, s.n_embd)
    w.matrix(f"blk.{il}.attn_output.weight", s.n_embd, q_dim)
    w.norm(f"blk.{il}.attn_q_norm.weight", s.head_dim)
    w.norm(f"blk.{il}.attn_k_norm.weight", s.head_dim)


def _delta_net_block(w: _Weights, il: int, s: Shape) -> None:
    key_dim = s.ssm_head_dim * s.ssm_k_heads
    value_dim = s.ssm_head_dim * s.ssm_v_heads
    conv_dim = 2 * key_dim + value_dim
    rng = w.rng
    w.matrix(f"blk.{il}.attn_qkv.weight", conv_dim, s.n_embd)
    w.matrix(f"blk.{il}.attn_gate.weight", value_dim, s.n_embd)
    w.vector(f"blk.{il}.ssm_conv1d.weight", w._normal(0.5, (conv_dim, s.ssm_conv)))
    # Decay per step is exp(softplus(alpha + dt_bias) * a): dt in [1e-3, 0.1] and
    # a = -exp(A_log) with A_log in [0, log 16], the ranges the reference init draws from.
    dt = np.exp(rng.uniform(math.log(1e-3), math.log(0.1), size=s.ssm_v_heads))
    w.vector(f"blk.{il}.ssm_dt.bias", np.log(np.expm1(dt)))
    w.vector(f"blk.{il}.ssm_a", -rng.uniform(1.0, 16.0, size=s.ssm_v_heads))
    w.matrix(f"blk.{il}.ssm_beta.weight", s.ssm_v_heads, s.n_embd)
    w.matrix(f"blk.{il}.ssm_alpha.weight", s.ssm_v_heads, s.n_embd)
    w.norm(f"blk.{il}.ssm_norm.weight", s.ssm_head_dim)
    w.matrix(f"blk.{il}.ssm_out.weight", s.n_embd, value_dim)


def _ffn(w: _Weights, il: int, s: Shape) -> None:
    w.matrix(f"blk.{il}.ffn_gate.weight", s.n_ff, s.n_embd)
    w.matrix(f"blk.{il}.ffn_up.weight", s.n_ff, s.n_embd)
    w.matrix(f"blk.{il}.ffn_down.weight", s.n_embd, s.n_ff)


def build_synthetic_qwen35(
    path: Path,
    *,
    n_layer: int = 8,
    with_mtp: bool = True,
    seed: int = 0,
    weight_type: str = "q8_0",
    shape: Shape | None = None,
    logit_std: float = 4.0,
    name: str = "Qwen3.6 synthetic",
) -> Path:
    """Write a random-weight qwen35 GGUF to ``path`` and return the path.

    ``weight_type`` (f32, f16, q8_0, q4_0) applies to the matrices; norms, the conv kernel
    and the DeltaNet gate vectors stay f32 as in released files. ``logit_std`` sets the
    spread of the logits through the scale of the tied embedding.
    """
    if weight_type not in _WEIGHT_TYPES:
        raise ValueError(f"weight_type must be one of {sorted(_WEIGHT_TYPES)}, got {weight_type!r}")
    s = shape or Shape()
    if n_layer < 1:
        raise ValueError("n_layer must be at least 1")
    if sum(s.rope_sections) * 2 != s.n_rot:
        raise ValueError("rope_sections must sum to n_rot / 2")
    matrix_type, file_type = _WEIGHT_TYPES[weight_type]
    if matrix_type in (_GGML_Q8_0, _GGML_Q4_0):
        dims = (s.n_embd, s.n_ff, s.head_dim * s.n_head, s.ssm_head_dim * s.ssm_v_heads)
        if any(d % 32 for d in dims):
            raise ValueError(f"{weight_type} needs every matrix row length to be a multiple of 32")
    vocab = load_vocab()
    n_nextn = 1 if with_mtp else 0

    g = _GGUFWriter()
    g.string("general.architecture", ARCH)
    g.string("general.name", name)
    g.u32("general.file_type", file_type)
    g.u32("general.quantization_version", 2)
    g.u32(f"{ARCH}.block_count", n_layer + n_nextn)
    g.u32(f"{ARCH}.context_length", s.n_ctx_train)
    g.u32(f"{ARCH}.embedding_length", s.n_embd)
    g.u32(f"{ARCH}.feed_forward_length", s.n_ff)
    g.u32(f"{ARCH}.attention.head_count", s.n_head)
    g.u32(f"{ARCH}.attention.head_count_kv", s.n_head_kv)
    g.u32(f"{ARCH}.attention.key_length", s.head_dim)
    g.u32(f"{ARCH}.attention.value_length", s.head_dim)
    g.f32(f"{ARCH}.attention.layer_norm_rms_epsilon", s.rms_eps)
    g.u32(f"{ARCH}.rope.dimension_count", s.n_rot)
    g.int_array(f"{ARCH}.rope.dimension_sections", s.rope_sections)
    g.f32(f"{ARCH}.rope.freq_base", s.rope_freq_base)
    g.u32(f"{ARCH}.ssm.conv_kernel", s.ssm_conv)
    g.u32(f"{ARCH}.ssm.state_size", s.ssm_head_dim)
    g.u32(f"{ARCH}.ssm.group_count", s.ssm_k_heads)
    g.u32(f"{ARCH}.ssm.time_step_rank", s.ssm_v_heads)
    g.u32(f"{ARCH}.ssm.inner_size", s.ssm_head_dim * s.ssm_v_heads)
    g.u32(f"{ARCH}.full_attention_interval", s.full_attention_interval)
    if with_mtp:
        g.u32(f"{ARCH}.nextn_predict_layers", n_nextn)

    g.kv.extend(_vocab_entries())
    g.u32("tokenizer.ggml.bos_token_id", TOKEN_ENDOFTEXT)
    g.u32("tokenizer.ggml.eos_token_id", TOKEN_IM_END)
    g.u32("tokenizer.ggml.padding_token_id", TOKEN_ENDOFTEXT)
    g.bool("tokenizer.ggml.add_bos_token", False)
    g.string("tokenizer.chat_template", CHAT_TEMPLATE)

    w = _Weights(g, np.random.default_rng(seed), matrix_type)
    # Tied embedding: no output.weight, so llama.cpp reuses token_embd as the LM head.
    w.matrix("token_embd.weight", len(vocab.tokens), s.n_embd, scale=logit_std)
    w.norm("output_norm.weight", s.n_embd)
    for il in range(n_layer):
        w.norm(f"blk.{il}.attn_norm.weight", s.n_embd)
        w.norm(f"blk.{il}.post_attention_norm.weight", s.n_embd)
        if (il + 1) % s.full_attention_interval == 0:
            _attention_block(w, il, s)
        else:
            _delta_net_block(w, il, s)
        _ffn(w, il, s)
    if with_mtp:
        # The NextN block: a full-attention layer fed by eh_proj([enorm(embed), hnorm(h)]).
        # It reuses token_embd and the LM head, as the released MTP GGUFs do.
        il = n_layer
        w.norm(f"blk.{il}.attn_norm.weight", s.n_embd)
        w.norm(f"blk.{il}.post_attention_norm.weight", s.n_embd)
        _attention_block(w, il, s)
        _ffn(w, il, s)
        w.matrix(f"blk.{il}.nextn.eh_proj.weight", s.n_embd, 2 * s.n_embd)
        w.norm(f"blk.{il}.nextn.enorm.weight", s.n_embd)
        w.norm(f"blk.{il}.nextn.hnorm.weight", s.n_embd)
        w.norm(f"blk.{il}.nextn.shared_head_norm.weight", s.n_embd)

    path = Path(path)
    g.write(path)
    return path


def synthetic_qwen35_path(directory: Path, **options: object) -> Path:
    """Return a model built with ``options`` under ``directory``, building it only once.

    Meant for session- or module-scoped fixtures: tests asking for the same options share
    one file. The build goes to a temporary name first, so a half-written file is never
    picked up.
    """
    n_layer = options.get("n_layer", 8)
    mtp = "mtp" if options.get("with_mtp", True) else "nomtp"
    seed = options.get("seed", 0)
    weight_type = options.get("weight_type", "q8_0")
    extra = sorted(k for k in options if k not in ("n_layer", "with_mtp", "seed", "weight_type"))
    if extra:
        raise TypeError(f"synthetic_qwen35_path only caches the CLI options, not {extra}")
    path = Path(directory) / f"qwen35-synthetic-L{n_layer}-{mtp}-s{seed}-{weight_type}.gguf"
    if not path.exists():
        partial = path.with_suffix(f".{os.getpid()}.part")
        build_synthetic_qwen35(partial, **options)  # type: ignore[arg-type]
        os.replace(partial, path)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="GGUF file to write")
    parser.add_argument("--layers", type=int, default=8, help="trunk layers (default 8)")
    parser.add_argument("--no-mtp", action="store_true", help="leave out the NextN/MTP block")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--type", default="q8_0", choices=sorted(_WEIGHT_TYPES), dest="weight_type")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    out = build_synthetic_qwen35(
        args.out,
        n_layer=args.layers,
        with_mtp=not args.no_mtp,
        seed=args.seed,
        weight_type=args.weight_type,
    )
    size_mb = out.stat().st_size / 1e6
    print(f"{out}: {size_mb:.1f} MB in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
