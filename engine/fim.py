"""Fill-in-the-middle prompts laid out the way Qwen2.5-Coder was trained: repository level, prefix-suffix-middle.

    <|repo_name|>{repo}
    <|file_sep|>{path of a neighbouring file}
    {its text}
    <|file_sep|>{path of the current file}
    <|fim_prefix|>{before the cursor}<|fim_suffix|>{after the cursor}<|fim_middle|>

The layout is pure: a list of text pieces and markers. Each backend renders the markers its own way (the embedded
engine as the model's token ids, a server as marker text) and says which markers its model has: without
<|repo_name|> and <|file_sep|> the repository part is left out, and without the FIM triple only the text before the
cursor is sent (a plain continuation).

Everything that stays the same while the user types comes first (repository, neighbouring files, the current file's
path, the text before the cursor), so an engine that reuses the longest cached prefix evaluates only the tokens from
the edit on.
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass
from enum import Enum


class Marker(Enum):
    """A FIM control token, named as llama.cpp's vocabulary getters name it (llama_vocab_fim_pre, ...)."""

    REPO = "fim_rep"
    FILE = "fim_sep"
    PREFIX = "fim_pre"
    SUFFIX = "fim_suf"
    MIDDLE = "fim_mid"


# Qwen's marker texts; llama.cpp finds these (and other families' FIM triples) in a vocabulary by name
QWEN_MARKERS: dict[Marker, str] = {
    Marker.REPO: "<|repo_name|>", Marker.FILE: "<|file_sep|>", Marker.PREFIX: "<|fim_prefix|>",
    Marker.SUFFIX: "<|fim_suffix|>", Marker.MIDDLE: "<|fim_middle|>",
}
FIM_TRIPLE = frozenset((Marker.PREFIX, Marker.SUFFIX, Marker.MIDDLE))
REPO_PAIR = frozenset((Marker.REPO, Marker.FILE))

Piece = str | Marker


@dataclass(frozen=True)
class SourceFile:
    """A neighbouring file as the prompt shows it: its path in the repository and its text (or outline)."""

    path: str
    text: str


@dataclass(frozen=True)
class FimParts:
    """What a completion prompt is made of.

    suffix None makes a warm-up prompt: it ends after the prefix, so evaluating it fills the cache with everything a
    later completion in the same window reuses.
    """

    prefix: str
    suffix: str | None = ""
    path: str = ""  # the current file's path in the repository; "" leaves the repository part out
    repo: str = ""
    files: tuple[SourceFile, ...] = ()


def layout(parts: FimParts, markers: Set[Marker]) -> list[Piece]:
    """The prompt as pieces, using only the markers the model has."""
    if not markers >= FIM_TRIPLE:
        return [parts.prefix]
    pieces: list[Piece] = []
    if markers >= REPO_PAIR and parts.path:
        pieces += [Marker.REPO, f"{parts.repo}\n"]
        for file in parts.files:
            pieces += [Marker.FILE, f"{file.path}\n{_with_newline(file.text)}\n"]
        pieces += [Marker.FILE, f"{parts.path}\n"]
    pieces += [Marker.PREFIX, parts.prefix]
    if parts.suffix is not None:
        pieces += [Marker.SUFFIX, parts.suffix, Marker.MIDDLE]
    return [piece for piece in pieces if piece != ""]


def render_text(parts: FimParts, markers: dict[Marker, str]) -> str:
    """The prompt as one string, markers written as their text (for a server that tokenizes it)."""
    return "".join(markers[p] if isinstance(p, Marker) else p for p in layout(parts, markers.keys()))


def _with_newline(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"
