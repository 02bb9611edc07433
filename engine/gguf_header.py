"""Read a GGUF file's metadata without loading it, so a bad file fails clearly before llama.cpp runs.

Hand-written rather than gguf-py's GGUFReader: that reader builds numpy arrays for every tensor and for every string
of the vocabulary, where qcode needs only the key/value header, steps over huge string arrays (the vocabulary, the
merges) by their lengths alone, and must turn any truncation into one message.
"""

from __future__ import annotations

import bisect
import functools
import mmap
import re
import struct
from collections.abc import Collection
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
_U64 = struct.Struct("<Q")
# while stepping over a string array, the offset of every _CHECKPOINT-th string is kept, so a string found by
# a byte search can be given its index without a second walk
_CHECKPOINT = 4096


@dataclass
class GgufHeader:
    version: int
    tensor_count: int
    metadata: dict[str, Any]
    tensor_data_start: int
    largest_tensor_offset: int
    # the tokens asked for (read_gguf_header's `markers`) that the vocabulary holds, by text -> id
    marker_tokens: dict[str, int] = field(default_factory=dict)


class _Reader:
    def __init__(self, handle: BinaryIO, path: Path, size: int) -> None:
        self.handle, self.path, self.size = handle, path, size
        self._map: mmap.mmap | None = None

    @property
    def map(self) -> mmap.mmap:
        """The file, memory-mapped (read-only) on first use: string arrays are walked in place, without a copy."""
        if self._map is None:
            self._map = mmap.mmap(self.handle.fileno(), 0, access=mmap.ACCESS_READ)
        return self._map

    def close(self) -> None:
        if self._map is not None:
            self._map.close()

    def truncated(self) -> ModelError:
        return ModelError(f"{self.path} is truncated (the GGUF header ends early)")

    def read(self, n: int) -> bytes:
        data = self.handle.read(n)
        if len(data) != n:
            raise self.truncated()
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
            raise self.truncated()
        self.handle.seek(n, 1)

    def skip_strings(self, count: int) -> tuple[int, int, list[int]]:
        """Step over `count` strings from the current position, reading only their lengths.

        Returns where they start and end, and the offset of every _CHECKPOINT-th string (for string_index).
        """
        start = offset = self.handle.tell()
        data, unpack = self.map, _U64.unpack_from
        checkpoints: list[int] = []
        try:
            for first in range(0, count, _CHECKPOINT):
                checkpoints.append(offset)
                for _ in range(min(_CHECKPOINT, count - first)):
                    offset += 8 + unpack(data, offset)[0]
        except (struct.error, OverflowError):  # a length runs past the end of the file
            raise self.truncated() from None
        if offset > len(data):
            raise self.truncated()
        self.handle.seek(offset)
        return start, offset, checkpoints

    def string_index(self, checkpoints: list[int], at: int) -> int | None:
        """The index of the string whose length field is at `at`, or None if no string of the walk starts there."""
        slot = bisect.bisect_right(checkpoints, at) - 1
        if slot < 0:
            return None
        offset, index, unpack = checkpoints[slot], slot * _CHECKPOINT, _U64.unpack_from
        while offset < at:
            offset += 8 + unpack(self.map, offset)[0]
            index += 1
        return index if offset == at else None

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
        elif item_kind == _STRING:
            self.skip_strings(count)
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


def read_gguf_header(path: Path, markers: Collection[str] = ()) -> GgufHeader:
    """Parse the header; raise ModelError for a missing, non-GGUF, truncated or corrupt file.

    `markers` are token texts to look up in the vocabulary (FIM tokens, say): the ones it holds come back in
    marker_tokens with their ids. They are found by a byte search; no token is decoded.
    """
    if not path.exists():
        raise ModelError(f"model file {path} does not exist")
    if not path.is_file():
        raise ModelError(f"model path {path} is not a file")
    size = path.stat().st_size
    try:
        with path.open("rb") as handle:
            reader = _Reader(handle, path, size)
            try:
                if size < 24 or reader.read(4) != GGUF_MAGIC:
                    raise ModelError(f"{path} is not a GGUF model file")
                version = reader.scalar(4)
                if version < 2:
                    raise ModelError(f"{path} uses GGUF version {version}; qcode needs version 2 or newer")
                tensor_count, kv_count = reader.scalar(10), reader.scalar(10)
                metadata: dict[str, Any] = {}
                found: dict[str, int] = {}
                for _ in range(kv_count):
                    key = reader.string()
                    kind = reader.scalar(4)
                    if key == "tokenizer.ggml.tokens":
                        metadata[key], found = _read_tokens(reader, kind, frozenset(markers))
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
            finally:
                reader.close()
    except OSError as exc:
        raise ModelError(f"cannot read model file {path}: {exc.strerror or exc}") from exc
    if tensor_count and start + largest >= size:
        raise ModelError(f"{path} is truncated (tensor data ends before the last tensor)")
    return GgufHeader(version, tensor_count, metadata, start, largest, found)


@functools.lru_cache(maxsize=8)
def _marker_pattern(markers: frozenset[str]) -> re.Pattern[bytes]:
    # longest first, so a marker that contains another is matched whole
    texts = sorted((m.encode() for m in markers), key=len, reverse=True)
    return re.compile(b"|".join(re.escape(text) for text in texts))


def _read_tokens(reader: _Reader, kind: int, markers: frozenset[str]) -> tuple[_Skimmed, dict[str, int]]:
    """Step over the vocabulary without decoding it; find the `markers` among its tokens by a byte search."""
    if kind != _ARRAY:
        raise ModelError(f"{reader.path} is corrupt (tokenizer.ggml.tokens is not an array)")
    item_kind, count = reader.scalar(4), reader.scalar(10)
    if item_kind != _STRING:
        raise ModelError(f"{reader.path} is corrupt (tokens are not strings)")
    if count > reader.size:
        raise ModelError(f"{reader.path} is corrupt (an array longer than the file)")
    start, end, checkpoints = reader.skip_strings(count)
    found: dict[str, int] = {}
    if markers:
        for match in _marker_pattern(markers).finditer(reader.map, start, end):
            text = match.group().decode()
            # a token is exactly the marker only if a string of the vocabulary starts right before it,
            # with the marker's length
            at = match.start() - 8
            if at < start or _U64.unpack_from(reader.map, at)[0] != len(match.group()):
                continue
            index = reader.string_index(checkpoints, at)
            if index is not None:
                found.setdefault(text, index)
    return _Skimmed(count), found
