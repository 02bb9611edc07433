"""Read a GGUF file's metadata without loading it, so a bad file fails clearly before llama.cpp runs.

Hand-written rather than gguf-py's GGUFReader: that reader memory-maps the file and builds arrays for every tensor,
where qcode needs only the key/value header, skims huge token arrays, and must turn any truncation into one message.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from .errors import ModelError

GGUF_MAGIC = b"GGUF"
_SCALARS: dict[int, tuple[str, int]] = {
    0: ("<B", 1), 1: ("<b", 1), 2: ("<H", 2), 3: ("<h", 2), 4: ("<I", 4), 5: ("<i", 4),
    6: ("<f", 4), 7: ("<?", 1), 10: ("<Q", 8), 11: ("<q", 8), 12: ("<d", 8),
}
_STRING, _ARRAY = 8, 9
# Arrays longer than this are skimmed (only their length is kept) unless the key is wanted in full.
_KEEP_ARRAY_MAX = 64


@dataclass
class GgufHeader:
    version: int
    tensor_count: int
    metadata: dict[str, Any]
    tensor_data_start: int
    largest_tensor_offset: int
    # tokens whose text looks like a special marker (<|...|>, <...>), by text -> id
    special_tokens: dict[str, int] = field(default_factory=dict)


class _Reader:
    def __init__(self, handle: BinaryIO, path: Path, size: int) -> None:
        self.handle, self.path, self.size = handle, path, size

    def read(self, n: int) -> bytes:
        data = self.handle.read(n)
        if len(data) != n:
            raise ModelError(f"{self.path} is truncated (the GGUF header ends early)")
        return data

    def scalar(self, kind: int) -> Any:
        fmt, width = _SCALARS[kind]
        return struct.unpack(fmt, self.read(width))[0]

    def string(self) -> str:
        length = self.scalar(10)
        if length > self.size:
            raise ModelError(f"{self.path} is corrupt (a string longer than the file)")
        return self.read(length).decode("utf-8", errors="replace")

    def skip(self, n: int) -> None:
        if self.handle.tell() + n > self.size:
            raise ModelError(f"{self.path} is truncated (the GGUF header ends early)")
        self.handle.seek(n, 1)

    def value(self, kind: int, key: str, keep_full: bool) -> Any:
        if kind in _SCALARS:
            return self.scalar(kind)
        if kind == _STRING:
            return self.string()
        if kind != _ARRAY:
            raise ModelError(f"{self.path} is corrupt (unknown value type {kind} for {key})")
        item_kind, count = self.scalar(4), self.scalar(10)
        if count > self.size:
            raise ModelError(f"{self.path} is corrupt (an array longer than the file)")
        if keep_full or count <= _KEEP_ARRAY_MAX:
            return [self.value(item_kind, key, keep_full) for _ in range(count)]
        if item_kind in _SCALARS:
            self.skip(_SCALARS[item_kind][1] * count)
        else:
            for _ in range(count):
                self.value(item_kind, key, False)
        return _Skimmed(count)


@dataclass(frozen=True)
class _Skimmed:
    """An array whose items were not kept; only its length is known."""

    length: int

    def __len__(self) -> int:
        return self.length


def read_gguf_header(path: Path) -> GgufHeader:
    """Parse the header; raise ModelError for a missing, non-GGUF, truncated or corrupt file."""
    if not path.exists():
        raise ModelError(f"model file {path} does not exist")
    if not path.is_file():
        raise ModelError(f"model path {path} is not a file")
    size = path.stat().st_size
    try:
        with path.open("rb") as handle:
            reader = _Reader(handle, path, size)
            if size < 24 or reader.read(4) != GGUF_MAGIC:
                raise ModelError(f"{path} is not a GGUF model file")
            version = reader.scalar(4)
            if version < 2:
                raise ModelError(f"{path} uses GGUF version {version}; qcode needs version 2 or newer")
            tensor_count, kv_count = reader.scalar(10), reader.scalar(10)
            metadata: dict[str, Any] = {}
            special: dict[str, int] = {}
            for _ in range(kv_count):
                key = reader.string()
                kind = reader.scalar(4)
                if key == "tokenizer.ggml.tokens":
                    metadata[key], special = _read_tokens(reader, kind)
                else:
                    metadata[key] = reader.value(kind, key, keep_full=False)
            largest = 0
            for _ in range(tensor_count):
                reader.string()
                n_dims = reader.scalar(4)
                reader.skip(8 * n_dims + 4)
                largest = max(largest, reader.scalar(10))
            alignment = int(metadata.get("general.alignment", 32))
            start = -(-handle.tell() // alignment) * alignment
    except OSError as exc:
        raise ModelError(f"cannot read model file {path}: {exc.strerror or exc}") from exc
    if tensor_count and start + largest >= size:
        raise ModelError(f"{path} is truncated (tensor data ends before the last tensor)")
    return GgufHeader(version, tensor_count, metadata, start, largest, special)


def _read_tokens(reader: _Reader, kind: int) -> tuple[_Skimmed, dict[str, int]]:
    """Skim the vocabulary in bulk, keeping only marker-like tokens (FIM, chat, think) by text."""
    if kind != _ARRAY:
        raise ModelError(f"{reader.path} is corrupt (tokenizer.ggml.tokens is not an array)")
    item_kind, count = reader.scalar(4), reader.scalar(10)
    if item_kind != _STRING:
        raise ModelError(f"{reader.path} is corrupt (tokens are not strings)")
    special: dict[str, int] = {}
    start = reader.handle.tell()
    # a vocabulary rarely averages 64 bytes a token; read more only if it does
    buffer = reader.handle.read(min(count * 64 + 8, reader.size - start))
    offset, unpack = 0, struct.Struct("<Q").unpack_from
    for index in range(count):
        if offset + 8 > len(buffer):
            reader.handle.seek(start)
            buffer = reader.handle.read(reader.size - start)
            if offset + 8 > len(buffer):
                raise ModelError(f"{reader.path} is truncated (the GGUF header ends early)")
        (length,) = unpack(buffer, offset)
        offset += 8
        if length < 40 and length and buffer[offset] == 60:  # "<"
            text = buffer[offset : offset + length].decode("utf-8", errors="replace")
            if text.endswith(">"):
                special.setdefault(text, index)
        offset += length
    if offset > len(buffer):
        raise ModelError(f"{reader.path} is truncated (the GGUF header ends early)")
    reader.handle.seek(start + offset)
    return _Skimmed(count), special
