"""Turning a model's answer into a new text: extract its code, splice it in, diff it.

Writing the result is engine.files' job (atomic, with a backup); checking it first, engine.checks'.
"""

from __future__ import annotations

import difflib
import os
import re
import textwrap
from dataclasses import dataclass

from .code import Span, name_parts, parses_cleanly, symbols
from .errors import InputError
from .languages import fence_names

# --------------------------------------------------------------------------------------------
# Diffs


def unified_diff(old: str, new: str, path: str, *, context: int = 3) -> str:
    """A unified diff from `old` to `new` with a/ and b/ headers, "" when they are equal.

    A last line without a newline is marked as git does, so the diff applies with `patch`/`git
    apply`.
    """
    if old == new:
        return ""
    name = path.replace(os.sep, "/").removeprefix("./").lstrip("/")
    lines = difflib.unified_diff(
        old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=f"a/{name}",
        tofile=f"b/{name}",
        n=context,
    )
    out: list[str] = []
    for line in lines:
        if line.endswith("\n"):
            out.append(line)
        else:
            out.append(line + "\n\\ No newline at end of file\n")
    return "".join(out)


# --------------------------------------------------------------------------------------------
# Code in a model's answer

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n]*)$")
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)


@dataclass(frozen=True)
class _Block:
    info: str
    code: str
    closed: bool


def _fenced_blocks(answer: str) -> list[_Block]:
    """Markdown fenced blocks; an unclosed last block runs to the end (a cut answer)."""
    blocks: list[_Block] = []
    lines = answer.split("\n")
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None or (opening["fence"][0] == "`" and "`" in opening["info"]):
            i += 1
            continue
        fence, indent = opening["fence"], len(opening["indent"])
        body: list[str] = []
        i += 1
        closed = False
        while i < len(lines):
            closing = _FENCE.match(lines[i])
            if (
                closing is not None
                and closing["fence"][0] == fence[0]
                and len(closing["fence"]) >= len(fence)
                and not closing["info"].strip()
            ):
                closed = True
                i += 1
                break
            line = lines[i]
            # Content is indented as much as the fence was; take that much off.
            strip = min(indent, len(line) - len(line.lstrip(" ")))
            body.append(line[strip:])
            i += 1
        blocks.append(_Block(opening["info"].strip(), "\n".join(body), closed))
    return blocks


def _info_language(info: str) -> str:
    # "python title=x.py", "{.python}", "py:main.py" all name python.
    word = re.split(r"[\s:{},]", info.strip().lstrip("{.").lower(), maxsplit=1)[0]
    return word


_PROSE_WORDS = re.compile(
    r"^(here|this|the|i|i'?ve|below|above|note|sure|certainly|okay|ok|in|it|these|that|"
    r"explanation|changes?|summary|let|we|to|now|first|finally|also)\b",
    re.IGNORECASE,
)
_CODE_HINTS = re.compile(
    r"[;{}()\[\]=<>]|^\s*(def|class|import|from|return|fn|func|function|const|let|var|pub|use|"
    r"package|if|for|while|#include|public|private)\b|^\s+\S"
)


def _looks_like_prose(line: str) -> bool:
    stripped = line.strip()
    if not stripped:
        return False
    words = stripped.split()
    sentence = len(words) >= 3 and stripped[-1] in ".:!?" and not _CODE_HINTS.search(stripped)
    return bool(_PROSE_WORDS.match(stripped) and len(words) >= 2) or sentence


def _looks_like_code(text: str) -> bool:
    lines = [ln for ln in text.split("\n") if ln.strip()]
    if not lines:
        return False
    codeish = sum(1 for ln in lines if _CODE_HINTS.search(ln) and not _looks_like_prose(ln))
    return codeish / len(lines) >= 0.6


def _strip_prose(text: str) -> str:
    lines = text.split("\n")
    while lines and (not lines[0].strip() or _looks_like_prose(lines[0])):
        lines.pop(0)
    while lines and (not lines[-1].strip() or _looks_like_prose(lines[-1])):
        lines.pop()
    return "\n".join(lines)


def extract_code(answer: str, language: str | None) -> str | None:
    """The code in a model's answer, ending with one newline; None when it holds no code.

    Fenced blocks win: the largest whose info string names `language`, else the largest untagged
    or other block (a block tagged with another language only when nothing else is there). An
    unclosed fence (a cut answer) runs to the end. Without fences, the whole answer, less prose
    lines before and after, counts when it parses cleanly or looks like code.
    """
    answer = _THINK.sub("", answer.replace("\r\n", "\n"))
    if "<think>" in answer:  # an unclosed thinking block holds no answer yet
        answer = answer.split("<think>", 1)[0]
    blocks = [b for b in _fenced_blocks(answer) if b.code.strip()]
    if blocks:
        names = fence_names(language) if language else frozenset()
        matching = [b for b in blocks if _info_language(b.info) in names]
        untagged = [b for b in blocks if not b.info]
        pool = matching or untagged or blocks
        best = max(pool, key=lambda b: len(b.code))
        return best.code.strip("\n") + "\n"
    candidate = _strip_prose(answer).strip("\n")
    if not candidate.strip():
        return None
    # A bare word like "OK" parses as Python: a clean parse counts only with some code in it.
    parsed = bool(parses_cleanly(candidate, language)) and bool(_CODE_HINTS.search(candidate))
    if parsed or _looks_like_code(candidate):
        return candidate + "\n"
    return None


# --------------------------------------------------------------------------------------------
# Splicing a replacement into a file


def _indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def whole_span(text: str) -> Span:
    """The span of all of `text`: splicing over it fits a whole-file answer to the file's habits."""
    return Span("file", "lines", 1, text.count("\n") + 1, 0, len(text))


def _newline_of(text: str) -> str:
    """The line ending most lines of `text` use; "" when it has none."""
    crlf, lf = text.count("\r\n"), text.count("\n")
    if not lf:
        return ""
    return "\r\n" if crlf * 2 > lf else "\n"


def _endings(old: str, fallback: str) -> tuple[dict[str, str], str]:
    """Each line of `old` (without its ending) mapped to the ending it had, and the usual ending."""
    usual = _newline_of(old) or fallback
    known: dict[str, str] = {}
    for line in old.split("\n")[:-1]:
        known.setdefault(line.removesuffix("\r"), "\r\n" if line.endswith("\r") else "\n")
    return known, usual


def _tabs_for_spaces(lines: list[str]) -> list[str]:
    """Lines indented with spaces re-indented with tabs, one per indentation step."""
    widths = sorted({len(ln) - len(ln.lstrip(" ")) for ln in lines if ln.startswith(" ")})
    step = widths[0] if widths else 0
    if not step:
        return lines
    out = []
    for line in lines:
        spaces = len(line) - len(line.lstrip(" "))
        out.append("\t" * (spaces // step) + " " * (spaces % step) + line[spaces:])
    return out


def _uses_tabs(text: str) -> bool:
    indented = [ln for ln in text.split("\n") if ln[:1] in (" ", "\t") and ln.strip()]
    return bool(indented) and all(ln.startswith("\t") for ln in indented)


def splice(original: str, span: Span, replacement: str) -> str:
    """`original` with the text of `span` replaced by `replacement`, made to fit the file.

    Models often return a method dedented to column 0, or over-indented: the replacement's
    first line is moved to the span's indentation and every other line by the same amount.
    Spaces become tabs where the region was indented with tabs. Line endings follow the file:
    a line the region had keeps its ending, a new line takes the region's usual one (so a CRLF
    file stays CRLF and a mixed one changes only where the code changed); a stray carriage
    return the model wrote is dropped.
    """
    start, end = span.start_byte, span.end_byte
    if not 0 <= start <= end <= len(original):
        raise InputError(f"the span {span.describe()} lies outside the text")
    old = original[start:end]
    line_start = original.rfind("\n", 0, start) + 1
    lead = original[line_start:start]

    lines = [line.rstrip("\r") for line in replacement.strip("\r\n").split("\n")]
    while lines and not lines[0].strip():
        lines.pop(0)
    if _uses_tabs(original[line_start:end]) and not _uses_tabs("\n".join(lines)):
        lines = _tabs_for_spaces(lines)
    if not lines:
        new_lines: list[str] = []
    else:
        given = _indent_of(lines[0])
        if not lead.strip():
            # The span starts in its line's indentation (or at the line start).
            target = lead + _indent_of(old.split("\n", 1)[0])
            first_prefix = target[len(lead) :]
        else:
            # The span starts after code on its line: only later lines take its indentation.
            target = _indent_of(original[line_start : original.find("\n", line_start)])
            first_prefix = ""
        new_lines = []
        for index, line in enumerate(lines):
            if not line.strip():
                new_lines.append("")
            elif index == 0:
                new_lines.append(first_prefix + line[len(given) :])
            elif line.startswith(given):
                new_lines.append(target + line[len(given) :])
            else:
                new_lines.append(line)  # less indented than the first line: leave it be
    known, usual = _endings(old, _newline_of(original) or "\n")
    if old.endswith("\n") and new_lines:
        new_lines.append("")  # the region's last line ending stays
    new = "".join(
        line + (known.get(line, usual) if index < len(new_lines) - 1 else "")
        for index, line in enumerate(new_lines)
    )
    return original[:start] + new + original[end:]


def _same_code(text: str) -> str:
    return textwrap.dedent(text.replace("\r\n", "\n")).strip()


def _short_name(name: str) -> str:
    return (name_parts(name) or [name])[-1]


def drop_echoed_definitions(answer: str, original: str, focus: Span, language: str | None) -> str:
    """`answer` (the code for the focused symbol) without the definitions it copied from the rest of the file.

    The prompt shows the file around the focus as context, and a small model sometimes writes one of those
    definitions back beside the one it was asked to change. An outermost definition of the answer that is not the
    focused one and equals (indentation aside) a definition of `original` outside the focus is such an echo, not an
    edit: spliced in, it would define that symbol twice. Echoes are dropped only where the focused symbol stays.
    """
    name = _short_name(focus.name)
    found = symbols(answer, language)
    if not any(_short_name(d.name) == name for d in found):
        return answer
    elsewhere = {
        _same_code(original[d.start_byte : d.end_byte])
        for d in symbols(original, language)
        if d.end_byte <= focus.start_byte or d.start_byte >= focus.end_byte
    }
    kept, at, outer_end = [], 0, -1
    for d in found:  # in order: a nested definition starts before the end of the one that holds it
        if d.start_byte < outer_end:
            continue
        outer_end = d.end_byte
        if _short_name(d.name) != name and _same_code(answer[d.start_byte : d.end_byte]) in elsewhere:
            kept.append(answer[at : d.start_byte])
            at = d.end_byte + (len(answer[d.end_byte :]) - len(answer[d.end_byte :].lstrip(" \t\r\n")))
    return answer if at == 0 else "".join(kept) + answer[at:]


def region_replacement(buffer: str, start: int, end: int, result: str) -> str:
    """The new text of buffer[start:end], from `result`: the whole buffer as a rewrite of that region left it.

    Raises InputError when `result` changed anything before or after the region. The region keeps its own
    trailing newlines, so a model's extra (or missing) blank line at its end is no change.
    """
    if not 0 <= start <= end <= len(buffer):
        raise InputError(f"the region {start}-{end} lies outside the text (0-{len(buffer)})")
    head, tail = buffer[:start], buffer[end:]
    if len(result) < len(head) + len(tail) or not (result.startswith(head) and result.endswith(tail)):
        raise InputError("the rewrite changed code outside its region")
    region = buffer[start:end]
    proposed = result[len(head) : len(result) - len(tail)]
    return proposed.rstrip("\n") + region[len(region.rstrip("\n")) :]
