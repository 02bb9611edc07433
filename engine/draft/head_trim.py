"""A frequency-ranked MTP head: an MTP-only GGUF whose vocabulary is the target's N most frequent tokens.

The head's LM head reads its full 248,320-row output matrix for every drafted token; its guess among the most
frequent N tokens of code is nearly always the same guess, for an N-th of the bytes and of the work (a 32k head made
draft generation 3.7x faster in ggml-org/llama.cpp#20700). The target still verifies every draft over the full
vocabulary, so output never changes: a guess outside the N is simply not drafted.

llama.cpp loads a qwen35 GGUF without trunk tensors as an MTP-only model (src/models/qwen35.cpp, `mtp_only`), with
the vocabulary size from `{arch}.vocab_size` under a "none" tokenizer. Its vocabulary here is N + 1 entries: entry i
is token keep[i] (embedding row and head row copied byte for byte), entry N stands for every other token (zero rows:
a rare input token reads a zero embedding; the head never usefully guesses it). Rows are copied as quantized bytes,
so the derived head computes exactly what the full one computes on the kept rows.

The ranking (`ranked_tokens`): half the rows go to the tokens most frequent in code, counted over a sample of the
Python standard library's own modules (on every machine; about 2M tokens, 3 s), and the rest to the lowest ids not
taken yet (BPE ids are merge ranks, learned most-frequent-first over the tokenizer's whole corpus). Measured with
Qwen2.5's tokenizer at N = 32768 (bench/gpu/head_coverage.py): held-out Python 97.4% of tokens covered (lowest ids
alone 93.4%, counts alone 98.5%), C headers 90.6% (89.5, 91.0), JavaScript 94.7% (94.5, 90.2), TypeScript 92.6%
(92.0, 88.6), Markdown 90.6% (89.9, 95.0): counts alone lose other languages, the mix is never below the ids.
"""

from __future__ import annotations

import contextlib
import mmap
import re
import struct
import sysconfig
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from ..errors import ModelError
from ..files import replacing

# Of a ranked head's rows, the share given to the tokens most frequent in the counted code (the rest: lowest ids), and
# which of the standard library's modules are counted (module docstring: the measured coverage).
COUNTED_SHARE = 0.5
SAMPLE_EVERY = 20

_SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY, _U32 = 8, 9, 4
# ggml type -> (elements per block, bytes per block), for the types a GGUF's rows come in
_BLOCKS = {0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34), 10: (256, 84),
           11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210), 30: (1, 2)}


@dataclass(frozen=True)
class _Tensor:
    name: str
    shape: tuple[int, ...]  # ne: ne[0] is the row length
    kind: int
    offset: int  # from the start of the data section

    def row_bytes(self) -> int:
        if self.kind not in _BLOCKS:
            raise ModelError(f"MTP head: tensor {self.name} has a ggml type ({self.kind}) this trim does not know")
        per, size = _BLOCKS[self.kind]
        return self.shape[0] // per * size

    def n_rows(self) -> int:
        return int(np.prod(self.shape[1:], dtype=np.int64))


class _Gguf:
    """The parts of a GGUF a trim needs: raw key/value records by key, tensor infos, the data section."""

    def __init__(self, path: Path) -> None:
        with path.open("rb") as handle:
            self.map = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        self.pos = 0
        if self._take(4) != b"GGUF":
            raise ModelError(f"{path}: not a GGUF file")
        self.version, n_tensors, n_kv = struct.unpack("<IQQ", self._take(20))
        self.records: dict[str, bytes] = {}  # key -> the whole record (key, type, value), copied as is
        self.values: dict[str, object] = {}  # scalar and string values
        for _ in range(n_kv):
            start = self.pos
            key = self._string()
            kind = self._u32()
            value = self._value(kind)
            self.records[key] = bytes(self.map[start : self.pos])
            if value is not None:
                self.values[key] = value
        self.tensors: dict[str, _Tensor] = {}
        for _ in range(n_tensors):
            name = self._string()
            dims = self._u32()
            shape = struct.unpack(f"<{dims}Q", self._take(8 * dims))
            kind = self._u32()
            (offset,) = struct.unpack("<Q", self._take(8))
            self.tensors[name] = _Tensor(name, tuple(shape), kind, offset)
        self.alignment = int(self.values.get("general.alignment", 32))  # type: ignore[call-overload]
        self.data = -(-self.pos // self.alignment) * self.alignment

    def _take(self, n: int) -> bytes:
        if self.pos + n > len(self.map):
            raise ModelError("MTP head: the model file is truncated")
        out = self.map[self.pos : self.pos + n]
        self.pos += n
        return out

    def _u32(self) -> int:
        return int(struct.unpack("<I", self._take(4))[0])

    def _string(self) -> str:
        (n,) = struct.unpack("<Q", self._take(8))
        return self._take(n).decode("utf-8", "replace")

    def _value(self, kind: int) -> object:
        if kind == _STRING:
            return self._string()
        if kind == _ARRAY:
            inner = self._u32()
            (count,) = struct.unpack("<Q", self._take(8))
            for _ in range(count):
                self._value(inner)
            return None
        if kind not in _SCALAR_SIZES:
            raise ModelError(f"MTP head: unknown GGUF value type {kind}")
        raw = self._take(_SCALAR_SIZES[kind])
        return int.from_bytes(raw, "little", signed=kind in (1, 3, 5, 11)) if kind not in (6, 7, 12) else raw

    def rows(self, tensor: _Tensor, keep: npt.NDArray[np.int64]) -> bytes:
        """The tensor's rows `keep` (quantized bytes) and one zero row after them."""
        width = tensor.row_bytes()
        start = self.data + tensor.offset
        whole = np.frombuffer(self.map, np.uint8, tensor.n_rows() * width, start).reshape(-1, width)
        picked: bytes = whole[keep].tobytes()
        return picked + bytes(width)

    def raw(self, tensor: _Tensor) -> bytes:
        start = self.data + tensor.offset
        return bytes(self.map[start : start + tensor.row_bytes() * tensor.n_rows()])


def _record(key: str, kind: int, payload: bytes) -> bytes:
    name = key.encode()
    return struct.pack("<Q", len(name)) + name + struct.pack("<I", kind) + payload


def _string_payload(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def derive_head(source: Path, dest: Path, keep: Sequence[int]) -> None:
    """Write the MTP-only GGUF of `source`'s NextN layer(s) with the vocabulary `keep` (+ one "other" entry)."""
    model = _Gguf(source)
    arch = str(model.values.get("general.architecture", ""))
    n_blocks = int(model.values.get(f"{arch}.block_count", 0))  # type: ignore[call-overload]
    n_nextn = int(model.values.get(f"{arch}.nextn_predict_layers", 0))  # type: ignore[call-overload]
    if n_nextn <= 0:
        raise ModelError(f"{source.name} has no MTP (NextN) layer to derive a head from")
    ids = np.asarray(keep, np.int64)
    embd = model.tensors.get("token_embd.weight")
    if embd is None or len(ids) == 0 or ids.min() < 0 or ids.max() >= embd.n_rows():
        raise ModelError(f"MTP head: {source.name} has no token_embd rows for the ranked tokens")
    first_mtp = n_blocks - n_nextn
    out: list[tuple[str, tuple[int, ...], int, bytes]] = []
    vocab = len(ids) + 1

    def trimmed(name: str, tensor: _Tensor) -> None:
        out.append((name, (tensor.shape[0], vocab), tensor.kind, model.rows(tensor, ids)))

    trimmed("token_embd.weight", embd)
    out.append(("output_norm.weight", model.tensors["output_norm.weight"].shape,
                model.tensors["output_norm.weight"].kind, model.raw(model.tensors["output_norm.weight"])))
    for il in range(first_mtp, n_blocks):
        prefix = f"blk.{il}."
        head = model.tensors.get(f"{prefix}nextn.shared_head_head.weight") or model.tensors.get(
            "output.weight", embd)
        trimmed(f"{prefix}nextn.shared_head_head.weight", head)
        for name, tensor in model.tensors.items():
            if not name.startswith(prefix) or name.endswith("nextn.shared_head_head.weight"):
                continue
            if name.endswith("nextn.embed_tokens.weight"):
                trimmed(name, tensor)
            else:
                out.append((name, tensor.shape, tensor.kind, model.raw(tensor)))

    records = [r for k, r in model.records.items() if not k.startswith("tokenizer.") and k != f"{arch}.vocab_size"]
    records.append(_record("tokenizer.ggml.model", _STRING, _string_payload("none")))
    records.append(_record(f"{arch}.vocab_size", _U32, struct.pack("<I", vocab)))
    align = model.alignment
    infos, offset = [], 0
    for name, shape, kind, data in out:
        infos.append(_string_payload(name) + struct.pack(f"<I{len(shape)}QIQ", len(shape), *shape, kind, offset))
        offset += -(-len(data) // align) * align
    dest.parent.mkdir(parents=True, exist_ok=True)
    with replacing(dest) as partial, partial.open("wb") as handle:
        handle.write(b"GGUF" + struct.pack("<IQQ", model.version, len(out), len(records)))
        for part in (*records, *infos):
            handle.write(part)
        _pad(handle, align)
        for _name, _shape, _kind, data in out:
            handle.write(data)
            _pad(handle, align)


def _pad(handle: BinaryIO, align: int) -> None:
    handle.write(bytes(-handle.tell() % align))


def ranked_tokens(tokenize: Callable[[str], list[int]], n_vocab: int, n_keep: int,
                  texts: Iterable[str] | None = None) -> list[int]:
    """The `n_keep` token ids a ranked head keeps, in its row order: the COUNTED_SHARE most frequent in `texts` (by
    default a sample of the standard library's modules), then the lowest ids not taken yet."""
    counts = np.zeros(n_vocab, np.int64)
    for text in texts if texts is not None else _stdlib_sample():
        ids = np.asarray(tokenize(text), np.int64)
        ids = ids[(ids >= 0) & (ids < n_vocab)]
        counts += np.bincount(ids, minlength=n_vocab)
    n_keep = min(n_keep, n_vocab)
    by_count = np.lexsort((np.arange(n_vocab), -counts))  # most frequent first, ties by id
    counted = [int(t) for t in by_count[: int(n_keep * COUNTED_SHARE)] if counts[t] > 0]
    taken = set(counted)
    rest = (t for t in range(n_vocab) if t not in taken)
    return counted + [next(rest) for _ in range(n_keep - len(counted))]


def _stdlib_sample() -> Iterator[str]:
    """Every SAMPLE_EVERY-th module of the standard library (sorted by path): about 2M tokens of Python."""
    root = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(root.rglob("*.py"))[::SAMPLE_EVERY]:
        with contextlib.suppress(OSError):
            yield path.read_text(encoding="utf-8", errors="replace")


def head_path(cache: Path, source: Path, n_keep: int) -> Path:
    """Where the derived head of `source` is cached: named by the source's name, size and time, so a changed model
    gets a new one; its token ids (`tokens_path`) lie beside it."""
    stat = source.stat()
    return cache / f"{source.stem}-{stat.st_size}-{stat.st_mtime_ns}-rank{n_keep}.gguf"


def remove_stale_heads(head: Path) -> list[Path]:
    """Delete the heads (and their token ids) derived from earlier versions of `head`'s model file, and those of the
    older `top<N>` naming, for that model; heads of other sizes derived from this version stay. Each is as large as
    the target's MTP block (about 0.5 GB on a 27B model), and a model replaced or re-quantized leaves its old ones
    unreachable. Returns what was deleted."""
    named = re.fullmatch(r"(?P<stem>.+)-(?P<version>\d+-\d+)-rank\d+\.gguf", head.name)
    if named is None:
        return []
    derived = re.compile(
        re.escape(named["stem"]) + r"-(?P<version>\d+-\d+)-(?P<kind>top|rank)\d+(\.gguf|\.tokens\.npy)"
    )
    removed = []
    for path in head.parent.iterdir():
        match = derived.fullmatch(path.name)
        if match and (match["kind"] == "top" or match["version"] != named["version"]):
            with contextlib.suppress(OSError):
                path.unlink()
                removed.append(path)
    return removed


def tokens_path(head: Path) -> Path:
    """The ranked head's token ids (row i of the head is token ids[i]), as a .npy file beside it."""
    return head.with_suffix(".tokens.npy")


def save_tokens(path: Path, keep: Sequence[int]) -> None:
    with replacing(path) as partial, partial.open("wb") as handle:
        np.save(handle, np.asarray(keep, np.int32))


def load_tokens(path: Path) -> npt.NDArray[np.int32] | None:
    """The saved token ids, or None where there are none (or they are unreadable: the head is derived again)."""
    try:
        ids = np.load(path)
    except (OSError, ValueError):
        return None
    return ids.astype(np.int32) if ids.ndim == 1 and ids.size else None
