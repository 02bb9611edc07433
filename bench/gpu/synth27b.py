"""Write a Qwen3.6-27B-shaped GGUF (arch qwen35) with random Q4_K weights, fast enough to make on the device.

    python -m bench.gpu.synth27b OUT.gguf [--small] [--layers 64] [--no-mtp] [--seed 0]

The real dimensions: 64 layers, full attention every 4th (48 Gated DeltaNet + 16 attention), hidden 5120, FFN 17408,
24 query / 4 KV heads of 256, DeltaNet 16 key / 48 value heads of 128, one MTP (NextN) layer, and a vocabulary of
248,320: the Qwen tokenizer shipped with the tests (151,936 tokens) padded with unused placeholder tokens, so the
embedding, the LM head and the logits rows have the real model's size. About 15.7 GB.

Weight types as in a Q4_K_S file: every large matrix Q4_K, the LM head (output.weight, untied) Q6_K, the tiny DeltaNet
beta/alpha projections Q8_0, norms and gate vectors f32. Blocks are written directly, not quantized from floats
(27B floats would take many minutes): each Q4_K block gets 128 random bytes of 4-bit quants, every sub-block scale
and min set to 16, and dmin = 7.5 d, so weights are centred (x = d*16*(q - 7.5)) with the spread of a
1/sqrt(fan_in) Gaussian; all-positive blocks overflow to NaN through 64 layers. Random bytes come from one pool at
random offsets, so generation runs at memory speed.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import struct
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any, BinaryIO

import numpy as np

VOCAB_SIZE = 248_320
POOL_BYTES = 64 << 20
SUB_SCALE = 16  # every Q4_K sub-block scale and min; Q6_K scales likewise
_ALIGN = 32

# ggml types: (id, elements per block, bytes per block)
F32, F16, Q8_0, Q4_K, Q6_K = (0, 1, 4), (1, 1, 2), (8, 32, 34), (12, 256, 144), (14, 256, 210)
FILE_TYPE_Q4_K_S = 14


def _tests_module() -> ModuleType:
    """tests/synthetic_qwen35.py (the tokenizer, chat template and toy shapes), loaded by path."""
    path = Path(__file__).resolve().parents[2] / "tests" / "synthetic_qwen35.py"
    spec = importlib.util.spec_from_file_location("synthetic_qwen35", path)
    assert spec and spec.loader, path
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("synthetic_qwen35", module)
    spec.loader.exec_module(module)
    return module


SQ = _tests_module()
QWEN36_27B = SQ.Shape(
    n_embd=5120, n_ff=17408, n_head=24, n_head_kv=4, head_dim=256, n_rot=64, rope_sections=(11, 11, 10, 0),
    ssm_conv=4, ssm_head_dim=128, ssm_k_heads=16, ssm_v_heads=48, full_attention_interval=4,
)
# The real head sizes at a width a CPU runs in seconds, for checking this script and the benchmark here.
SMALL = replace(SQ.REAL_HEAD_DIMS, ssm_k_heads=2, ssm_v_heads=6)


@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]  # numpy order (rows, cols); GGUF stores it reversed
    kind: tuple[int, int, int]
    fill: Callable[[np.random.Generator, int], np.ndarray]  # (rng, first block) -> raw bytes of some blocks
    chunk_blocks: int | None = None  # blocks per fill call where the fill works in whole rows

    @property
    def n_elements(self) -> int:
        return math.prod(self.shape)

    @property
    def n_bytes(self) -> int:
        _, per_block, block_bytes = self.kind
        return self.n_elements // per_block * block_bytes


class Pool:
    """Random bytes, drawn once; tensors take windows of it at random offsets."""

    def __init__(self, rng: np.random.Generator, size: int = POOL_BYTES) -> None:
        self.data = rng.integers(0, 256, size=size, dtype=np.uint8)
        # blocks per write: a chunk's random bytes (at most 192 a block) take at most half the pool
        self.chunk_blocks = size // 2 // 192

    def take(self, rng: np.random.Generator, n: int) -> np.ndarray:
        start = int(rng.integers(0, len(self.data) - n + 1))
        return self.data[start : start + n]


def _q4_k_header(std: float) -> np.ndarray:
    """d, dmin and the 12 packed 6-bit scale/min bytes for value = d*16*(q - 7.5), q uniform in 0..15."""
    d = std / (SUB_SCALE * math.sqrt((16**2 - 1) / 12))
    head = np.zeros(16, dtype=np.uint8)
    head[0:4] = np.array([d, 7.5 * d], dtype=np.float16).view(np.uint8)
    # get_scale_min_k4: j < 4 reads the low 6 bits of bytes j and j+4; j >= 4 takes its low nibble from byte j+4
    # and its top two bits from bits 6-7 of bytes j-4 (scale) and j (min). 16 = 0b010000: low bits 16, top bits 1.
    head[4:12] = SUB_SCALE | (SUB_SCALE >> 4) << 6
    head[12:16] = 0
    return head


def _q6_k_tail(std: float) -> np.ndarray:
    """16 int8 scales and d for value = d*16*(q - 32), q uniform in 0..63."""
    d = std / (SUB_SCALE * math.sqrt((64**2 - 1) / 12))
    tail = np.empty(18, dtype=np.uint8)
    tail[:16] = SUB_SCALE
    tail[16:] = np.array([d], dtype=np.float16).view(np.uint8)
    return tail


def quantized(pool: Pool, kind: tuple[int, int, int], n_blocks: int, std: float) -> Callable[..., np.ndarray]:
    """A fill function producing n_blocks random blocks of a K-quant or Q8_0 type, in chunks."""
    _, _, block_bytes = kind

    def fill(rng: np.random.Generator, first: int) -> np.ndarray:
        count = min(pool.chunk_blocks, n_blocks - first)
        out = np.empty((count, block_bytes), dtype=np.uint8)
        if kind == Q4_K:
            out[:, :16] = _q4_k_header(std)
            out[:, 16:] = pool.take(rng, count * 128).reshape(count, 128)
        elif kind == Q6_K:
            out[:, :192] = pool.take(rng, count * 192).reshape(count, 192)
            out[:, 192:] = _q6_k_tail(std)
        elif kind == Q8_0:  # int8 uniform in -128..127: std 73.9
            out[:, :2] = np.array([std / 73.9], dtype=np.float16).view(np.uint8)
            out[:, 2:] = pool.take(rng, count * 32).reshape(count, 32)
        else:
            raise ValueError(kind)
        return out

    return fill


# --- controlled acceptance --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cycle:
    rate: float  # the share of its tokens after which the MTP head guesses right
    tokens: list[int]  # the target's greedy walk: tokens[i] -> tokens[i + 1], the last back to the first
    good: list[bool]  # good[i]: the head, reading tokens[i], predicts tokens[i + 1]; else decoys[i]
    decoys: list[int]

    def walk(self, start: int, n: int) -> list[int]:
        return [self.tokens[(start + i) % len(self.tokens)] for i in range(n)]

    def hit_rate(self, start: int, n: int) -> float:
        """The share of good tokens among the n the head reads on a walk from `start` (the realised rate)."""
        return sum(self.good[(start + i) % len(self.good)] for i in range(n)) / n


@dataclass(frozen=True)
class Controlled:
    """Weights that make the target's greedy next token, and the MTP head's guess of the one after, known.

    Every block's input norm weights are `residual_scale` (about 0.01): the 64 layers add a few percent to the
    residual stream, which stays the token's embedding. The LM head rows and the embedding rows are the same random
    Q6_K rows, permuted: the output row of token succ(t) is the embedding of t, so the greedy next token after t is
    succ(t) whatever came before (a margin of n_embd against sqrt(n_embd) of noise). succ walks one cycle of
    `cycle` distinct tokens per rate (longer than any answer, so n-gram lookup never matches) and leaves every other
    token in place. The MTP head reads only the token's embedding (eh_proj is the identity on that half) through
    its own LM head, nextn.shared_head_head: for a share `rate` of each cycle's tokens it is the target's head, for
    the rest a decoy token is swapped in, so a chained draft is accepted token by token with probability `rate`.
    Matrices keep their real shapes and types (the LM heads Q6_K, the embedding Q6_K instead of Q4_K: one row is
    read per token), so every kernel costs what it costs on the real model.
    """

    rates: tuple[float, ...] = (1.0, 0.8, 0.6, 0.4)
    cycle: int = 1024
    first_token: int = 256  # cycles take ids from here: early BPE merges, frequent in any text
    first_decoy: int = 100_000
    seed: int = 1
    residual_scale: float = 0.01

    def cycles(self) -> list[Cycle]:
        out = []
        for level, rate in enumerate(self.rates):
            rng = np.random.default_rng(self.seed + level)
            tokens = [self.first_token + level * self.cycle + int(i) for i in rng.permutation(self.cycle)]
            n_good = round(rate * self.cycle)
            good = [bool(g) for g in rng.permutation(np.arange(self.cycle) < n_good)]
            decoys = [self.first_decoy + level * self.cycle + i for i in range(self.cycle)]
            out.append(Cycle(rate, tokens, good, decoys))
        return out

    def maps(self, vocab: int) -> tuple[np.ndarray, np.ndarray]:
        """(succ, head_source): the embedding of t is row pattern succ[t], the LM head's row r is pattern r, the
        MTP head's row r is pattern head_source[r]."""
        top = max(self.first_token + len(self.rates) * self.cycle, self.first_decoy + len(self.rates) * self.cycle)
        if top > vocab or self.first_token + len(self.rates) * self.cycle > self.first_decoy:
            raise ValueError("the cycles and decoys must fit the vocabulary without overlapping")
        succ, head = np.arange(vocab), np.arange(vocab)
        for c in self.cycles():
            for i, token in enumerate(c.tokens):
                after = c.tokens[(i + 1) % len(c.tokens)]
                succ[token] = after
                if not c.good[i]:  # the head reading `token` finds its own row `decoy` carrying succ's pattern
                    decoy = c.decoys[i]
                    head[decoy], head[after] = after, decoy
        return succ, head

    def to_json(self) -> dict[str, object]:
        return {"rates": list(self.rates), "cycle": self.cycle, "first_token": self.first_token,
                "first_decoy": self.first_decoy, "seed": self.seed, "residual_scale": self.residual_scale}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Controlled:
        return cls(**{**data, "rates": tuple(data["rates"])})


def patterned_rows(pool: Pool, offsets: np.ndarray, source: np.ndarray, n_embd: int,
                   std: float) -> tuple[Callable[..., np.ndarray], int]:
    """Q6_K rows where row r holds pattern source[r]: a window of the pool at offsets[source[r]], so rows with the
    same pattern are identical and others independent. Returns the fill and its blocks per call (whole rows)."""
    per_row = n_embd // 256
    rows_per_call = max(1, pool.chunk_blocks // per_row // 4)
    span = np.arange(per_row * 192)
    tail = _q6_k_tail(std)

    def fill(rng: np.random.Generator, first: int) -> np.ndarray:
        row = first // per_row
        rows = np.arange(row, min(row + rows_per_call, len(source)))
        data = pool.data[offsets[source[rows]][:, None] + span]
        out = np.empty((len(rows) * per_row, 210), dtype=np.uint8)
        out[:, :192] = data.reshape(-1, 192)
        out[:, 192:] = tail
        return out

    return fill, rows_per_call * per_row


def identity_rows(n_out: int, n_in: int) -> Callable[..., np.ndarray]:
    """Q4_K rows of the identity on the first n_out inputs (1.0 at column i of row i, zeros elsewhere), in one call:
    every sub-block scale 2 and min 0, d = 1/16, the one weight q = 8 (exact in f16)."""
    per_row = n_in // 256
    header = np.zeros(16, dtype=np.uint8)
    header[0:4] = np.array([1 / 16, 0.0], dtype=np.float16).view(np.uint8)
    header[4:8] = 2  # scales of sub-blocks 0-3 (low 6 bits); bytes 8-11 (mins 0-3) stay 0
    header[12:16] = 2  # sub-blocks 4-7: scale in the low nibble, min (0) in the high one

    def fill(rng: np.random.Generator, first: int) -> np.ndarray:
        out = np.zeros((n_out * per_row, 144), dtype=np.uint8)
        out[:, :16] = header
        i = np.arange(n_out)
        block, at = i * per_row + i // 256, i % 256
        group, within = at // 64, at % 64
        byte = 16 + 32 * group + within % 32
        out[block, byte] = np.where(within < 32, 0x08, 0x80)
        return out

    return fill


def floats(values: Callable[[np.random.Generator], np.ndarray]) -> Callable[..., np.ndarray]:
    def fill(rng: np.random.Generator, first: int) -> np.ndarray:
        return np.ascontiguousarray(values(rng), dtype=np.float32).view(np.uint8)

    return fill


def plan(shape: object, n_layer: int, with_mtp: bool, vocab: int, pool: Pool, logit_std: float = 4.0,
         controlled: Controlled | None = None) -> list[Tensor]:
    """Every tensor of the model, in file order."""
    s = shape
    tensors: list[Tensor] = []
    block_norm = controlled.residual_scale if controlled else 1.0

    def matrix(name: str, n_out: int, n_in: int, kind: tuple[int, int, int] = Q4_K, scale: float = 1.0) -> None:
        n_blocks = n_out * n_in // kind[1]
        tensors.append(Tensor(name, (n_out, n_in), kind, quantized(pool, kind, n_blocks, scale / math.sqrt(n_in))))

    def norm(name: str, n: int, scale: float = 1.0) -> None:
        tensors.append(Tensor(name, (n,), F32, floats(lambda rng: scale * (1.0 + 0.1 * rng.standard_normal(n)))))

    def patterned(name: str, source: np.ndarray) -> None:
        assert offsets is not None
        fill, per_call = patterned_rows(pool, offsets, source, s.n_embd, 1.0)
        tensors.append(Tensor(name, (vocab, s.n_embd), Q6_K, fill, per_call))

    offsets = succ = head_source = None
    if controlled:
        succ, head_source = controlled.maps(vocab)
        offsets = np.random.default_rng(controlled.seed + 1000).integers(
            0, len(pool.data) - s.n_embd // 256 * 192, size=vocab)

    def vector(name: str, shape_: tuple[int, ...], values: Callable[[np.random.Generator], np.ndarray]) -> None:
        tensors.append(Tensor(name, shape_, F32, floats(values)))

    q_dim, kv_dim = s.head_dim * s.n_head, s.head_dim * s.n_head_kv

    def attention(il: int) -> None:
        matrix(f"blk.{il}.attn_q.weight", 2 * q_dim, s.n_embd)  # query and output gate, interleaved per head
        matrix(f"blk.{il}.attn_k.weight", kv_dim, s.n_embd)
        matrix(f"blk.{il}.attn_v.weight", kv_dim, s.n_embd)
        matrix(f"blk.{il}.attn_output.weight", s.n_embd, q_dim)
        norm(f"blk.{il}.attn_q_norm.weight", s.head_dim)
        norm(f"blk.{il}.attn_k_norm.weight", s.head_dim)

    def ffn(il: int) -> None:
        matrix(f"blk.{il}.ffn_gate.weight", s.n_ff, s.n_embd)
        matrix(f"blk.{il}.ffn_up.weight", s.n_ff, s.n_embd)
        matrix(f"blk.{il}.ffn_down.weight", s.n_embd, s.n_ff)

    def delta_net(il: int) -> None:
        key_dim, value_dim = s.ssm_head_dim * s.ssm_k_heads, s.ssm_head_dim * s.ssm_v_heads
        conv_dim, heads = 2 * key_dim + value_dim, s.ssm_v_heads
        matrix(f"blk.{il}.attn_qkv.weight", conv_dim, s.n_embd)
        matrix(f"blk.{il}.attn_gate.weight", value_dim, s.n_embd)
        vector(f"blk.{il}.ssm_conv1d.weight", (conv_dim, s.ssm_conv), lambda r: 0.5 * r.standard_normal(
            (conv_dim, s.ssm_conv)))
        # decay per step exp(softplus(alpha + dt_bias) * a): dt in [1e-3, 0.1], a = -[1, 16] (the reference init)
        vector(f"blk.{il}.ssm_dt.bias", (heads,), lambda r: np.log(np.expm1(np.exp(
            r.uniform(math.log(1e-3), math.log(0.1), heads)))))
        vector(f"blk.{il}.ssm_a", (heads,), lambda r: -r.uniform(1.0, 16.0, heads))
        matrix(f"blk.{il}.ssm_beta.weight", heads, s.n_embd, Q8_0)
        matrix(f"blk.{il}.ssm_alpha.weight", heads, s.n_embd, Q8_0)
        norm(f"blk.{il}.ssm_norm.weight", s.ssm_head_dim)
        matrix(f"blk.{il}.ssm_out.weight", s.n_embd, value_dim)

    if controlled:
        patterned("token_embd.weight", succ)
        norm("output_norm.weight", s.n_embd)
        patterned("output.weight", np.arange(vocab))
    else:
        matrix("token_embd.weight", vocab, s.n_embd)
        norm("output_norm.weight", s.n_embd)
        matrix("output.weight", vocab, s.n_embd, Q6_K, scale=logit_std)
    for il in range(n_layer):
        norm(f"blk.{il}.attn_norm.weight", s.n_embd, block_norm)
        norm(f"blk.{il}.post_attention_norm.weight", s.n_embd, block_norm)
        (attention if (il + 1) % s.full_attention_interval == 0 else delta_net)(il)
        ffn(il)
    if with_mtp:
        il = n_layer
        norm(f"blk.{il}.attn_norm.weight", s.n_embd, block_norm)
        norm(f"blk.{il}.post_attention_norm.weight", s.n_embd, block_norm)
        attention(il)
        ffn(il)
        if controlled:
            tensors.append(Tensor(f"blk.{il}.nextn.eh_proj.weight", (s.n_embd, 2 * s.n_embd), Q4_K,
                                  identity_rows(s.n_embd, 2 * s.n_embd), s.n_embd * 2 * s.n_embd // 256))
        else:
            matrix(f"blk.{il}.nextn.eh_proj.weight", s.n_embd, 2 * s.n_embd)
        for part in ("enorm", "hnorm", "shared_head_norm"):
            norm(f"blk.{il}.nextn.{part}.weight", s.n_embd)
        if controlled:  # the head's own LM head: the target's, with decoys swapped in
            assert head_source is not None
            patterned(f"blk.{il}.nextn.shared_head_head.weight", head_source)
    return tensors


# --- GGUF ------------------------------------------------------------------------------------------------------
def metadata(shape: object, n_layer: int, with_mtp: bool, vocab_size: int, name: str) -> Any:
    s, arch = shape, SQ.ARCH
    m = SQ.GGUFMetadata()
    m.string("general.architecture", arch)
    m.string("general.name", name)
    m.u32("general.file_type", FILE_TYPE_Q4_K_S)
    m.u32("general.quantization_version", 2)
    m.u32(f"{arch}.block_count", n_layer + int(with_mtp))
    m.u32(f"{arch}.context_length", s.n_ctx_train)
    m.u32(f"{arch}.embedding_length", s.n_embd)
    m.u32(f"{arch}.feed_forward_length", s.n_ff)
    m.u32(f"{arch}.attention.head_count", s.n_head)
    m.u32(f"{arch}.attention.head_count_kv", s.n_head_kv)
    m.u32(f"{arch}.attention.key_length", s.head_dim)
    m.u32(f"{arch}.attention.value_length", s.head_dim)
    m.f32(f"{arch}.attention.layer_norm_rms_epsilon", s.rms_eps)
    m.u32(f"{arch}.rope.dimension_count", s.n_rot)
    m.int_array(f"{arch}.rope.dimension_sections", list(s.rope_sections))
    m.f32(f"{arch}.rope.freq_base", s.rope_freq_base)
    m.u32(f"{arch}.ssm.conv_kernel", s.ssm_conv)
    m.u32(f"{arch}.ssm.state_size", s.ssm_head_dim)
    m.u32(f"{arch}.ssm.group_count", s.ssm_k_heads)
    m.u32(f"{arch}.ssm.time_step_rank", s.ssm_v_heads)
    m.u32(f"{arch}.ssm.inner_size", s.ssm_head_dim * s.ssm_v_heads)
    m.u32(f"{arch}.full_attention_interval", s.full_attention_interval)
    if with_mtp:
        m.u32(f"{arch}.nextn_predict_layers", 1)
    vocab = SQ.load_vocab()
    tokens, types = list(vocab.tokens), list(vocab.token_types)
    if vocab_size < len(tokens):
        raise ValueError(f"the vocabulary needs at least {len(tokens)} tokens")
    # placeholders of type UNUSED (5): never produced by the tokenizer, and not scanned as special tokens
    tokens += [f"<|qcode_pad_{i}|>" for i in range(len(tokens), vocab_size)]
    types += [5] * (vocab_size - len(types))
    m.string("tokenizer.ggml.model", "gpt2")
    m.string("tokenizer.ggml.pre", "qwen35")
    m.string_array("tokenizer.ggml.tokens", tokens)
    m.int_array("tokenizer.ggml.token_type", types)
    m.string_array("tokenizer.ggml.merges", vocab.merges)
    m.u32("tokenizer.ggml.bos_token_id", SQ.TOKEN_ENDOFTEXT)
    m.u32("tokenizer.ggml.eos_token_id", SQ.TOKEN_IM_END)
    m.u32("tokenizer.ggml.padding_token_id", SQ.TOKEN_ENDOFTEXT)
    m.bool("tokenizer.ggml.add_bos_token", False)
    m.string("tokenizer.chat_template", SQ.CHAT_TEMPLATE)
    return m


def _blocks(tensor: Tensor, rng: np.random.Generator, chunk_blocks: int) -> Iterator[np.ndarray]:
    if tensor.kind in (F32, F16):
        yield tensor.fill(rng, 0)
        return
    n_blocks = tensor.n_elements // tensor.kind[1]
    step = tensor.chunk_blocks or chunk_blocks
    for first in range(0, n_blocks, step):
        yield tensor.fill(rng, first)


def write(path: Path, meta: Any, tensors: list[Tensor], rng: np.random.Generator, chunk_blocks: int) -> int:
    infos, offset = [], 0
    for t in tensors:
        infos.append(SQ.tensor_info(t.name, tuple(reversed(t.shape)), t.kind[0], offset))
        offset += -(-t.n_bytes // _ALIGN) * _ALIGN
    with open(path, "wb", buffering=16 << 20) as out:
        out.write(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(meta.kv)))
        out.writelines(meta.kv)
        out.writelines(infos)
        _pad(out)
        for t in tensors:
            written = 0
            for chunk in _blocks(t, rng, chunk_blocks):
                out.write(chunk.data)
                written += chunk.nbytes
            if written != t.n_bytes:
                raise AssertionError(f"{t.name}: wrote {written} bytes, expected {t.n_bytes}")
            _pad(out)
        return out.tell()


def _pad(out: BinaryIO) -> None:
    out.write(b"\0" * (-out.tell() % _ALIGN))


def build(path: Path, *, small: bool = False, n_layer: int | None = None, with_mtp: bool = True,
          seed: int = 0, vocab_size: int = VOCAB_SIZE, controlled: Controlled | None = None) -> dict[str, object]:
    """Write the model; return what the benchmark needs to know about it (sizes, bytes read per token)."""
    shape = SMALL if small else QWEN36_27B
    layers = n_layer if n_layer is not None else (8 if small else 64)
    rng = np.random.default_rng(seed)
    pool = Pool(rng, (8 << 20) if small else POOL_BYTES)
    tensors = plan(shape, layers, with_mtp, vocab_size, pool, controlled=controlled)
    name = "Qwen3.6-27B-shaped synthetic" if not small else "Qwen3.6-shaped small synthetic"
    started = time.perf_counter()
    size = write(path, metadata(shape, layers, with_mtp, vocab_size, name), tensors, rng, pool.chunk_blocks)
    trunk = [t for t in tensors if not t.name.startswith(f"blk.{layers}.")]
    mtp = [t for t in tensors if t.name.startswith(f"blk.{layers}.")]
    extra: dict[str, object] = {"controlled": controlled.to_json()} if controlled else {}
    return {**extra,
        "path": str(path), "file_bytes": size, "seconds": round(time.perf_counter() - started, 1),
        "n_layer": layers, "with_mtp": with_mtp, "vocab_size": vocab_size, "n_embd": shape.n_embd,
        "params": sum(t.n_elements for t in tensors),
        # one decode step reads every trunk weight once, the embedding only one row
        "bytes_read_per_token": sum(t.n_bytes for t in trunk if t.name != "token_embd.weight"),
        "mtp_layer_bytes": sum(t.n_bytes for t in mtp if "shared_head_head" not in t.name),
        "lm_head_bytes": next(t.n_bytes for t in tensors if t.name == "output.weight"),
        "recurrent_state_bytes": layers * (shape.full_attention_interval - 1) // shape.full_attention_interval
        * shape.ssm_v_heads * shape.ssm_head_dim * shape.ssm_head_dim * 4,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu.synth27b", description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--small", action="store_true", help="the real head sizes at a small width (CPU tests)")
    parser.add_argument("--layers", type=int, default=None)
    parser.add_argument("--no-mtp", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vocab", type=int, default=VOCAB_SIZE)
    parser.add_argument("--controlled", default=None, metavar="RATES",
                        help="acceptance by construction: the MTP head's hit rate per cycle, e.g. 1,0.8,0.6,0.4")
    args = parser.parse_args(argv)
    import json

    controlled = Controlled(rates=tuple(float(r) for r in args.controlled.split(","))) if args.controlled else None
    info = build(args.out, small=args.small, n_layer=args.layers, with_mtp=not args.no_mtp, seed=args.seed,
                 vocab_size=args.vocab, controlled=controlled)
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
