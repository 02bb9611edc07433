"""Where a completion generated at a cursor should stop."""

from __future__ import annotations

import re
from collections.abc import Iterator

# A line that closes a block (brace languages, shell and Ruby-like keywords).
_CLOSER = re.compile(r"^(\}|\)|\]|end\b|fi\b|done\b|esac\b)")


def _indent_width(line: str) -> int:
    expanded = line.expandtabs(4)
    return len(expanded) - len(expanded.lstrip())


def _opens_block(line: str, language: str | None) -> bool:
    code = line.rstrip()
    if language == "python":
        return code.endswith(":")
    return code.endswith(("{", "(", "[")) or (language is None and code.endswith(":"))


def _lines_with_ends(text: str) -> Iterator[tuple[int, str, bool]]:
    """(offset, line, terminated) for each line of `text`."""
    pos = 0
    while pos < len(text):
        nl = text.find("\n", pos)
        if nl == -1:
            yield pos, text[pos:], False
            return
        yield pos, text[pos:nl], True
        pos = nl + 1


def trim_completion(
    generated: str, prefix: str, suffix: str, language: str | None, *, final: bool = False
) -> tuple[str, bool]:
    """Cut a completion generated at a cursor (between `prefix` and `suffix`) where it should stop.

    Returns (text to insert, hit_boundary). hit_boundary is True once the completion has run past
    what belongs at the cursor, so the caller can stop generating. The boundaries:
    - the cursor is inside a line of code: the end of that line, less any text the line already
      ends with (`foo(` + `a, b)` before a suffix `)` gives `a, b`);
    - a later line that dedents below the cursor's block (a closing `}` is kept unless the suffix
      already has it);
    - after the completion went into a deeper block, a blank line and a line back at its level;
    - a line identical to the suffix's next non-blank line (it would be duplicated);
    - between two statements of a block (the next code after the cursor's line is at its level), one
      statement, the one being typed or a new one on a blank line: the next line back at that level ends it (a
      closing bracket continues the statement).
    The last, unterminated line may still grow: it is judged for duplication and for a closing
    `}` only when `final` is True (generation ended). With `final`, trailing blank lines go too.
    """
    current = prefix.rsplit("\n", 1)[-1]
    rest_of_line = suffix.split("\n", 1)[0].rstrip("\r")
    if current.strip() and rest_of_line.strip():
        return _trim_single_line(generated, rest_of_line, final)

    if rest_of_line.strip():
        # The cursor sits in the indentation of an existing line: insert whole lines before it.
        next_line: str | None = current + rest_of_line
        ending = "\n" + current
    else:
        later = suffix.split("\n")[1:]
        next_line = next((ln.rstrip("\r") for ln in later if ln.strip()), None)
        ending = ""

    def finish(text: str) -> str:
        body = re.sub(r"(\n[ \t\r]*)+$", "", text)
        return body + ending if body.strip() else ""

    before = prefix[: len(prefix) - len(current)].rstrip("\n").rsplit("\n", 1)[-1]
    base: int | None = None  # lines below this indentation leave the cursor's block
    if current.strip():
        base = _indent_width(current) + (1 if _opens_block(current, language) else 0)
    elif current:
        base = _indent_width(current)
    elif before.strip() and _opens_block(before, language):
        base = _indent_width(before) + 1
    closers = language != "python"

    went_deeper = False
    blank_seen = False
    # between two statements of a block (the next code at the block's level): one statement
    gap_level = _indent_width(next_line) if next_line is not None else None
    started = False  # whether that statement has begun (the cursor's line may be left as it is)
    for index, (offset, line, terminated) in enumerate(_lines_with_ends(generated)):
        complete = terminated or final
        if index == 0:
            whole = current + line  # the cursor's line as completed
            started = bool(line.strip())
            if not whole.strip():
                continue
            if not current.strip() and complete and next_line is not None and (
                whole.rstrip() == next_line.rstrip()
            ):
                return "", True
            if current.strip() and terminated and _opens_block(whole, language):
                base = _indent_width(whole) + 1
            elif base is None:
                base = _indent_width(whole)
            continue
        if not line.strip():
            blank_seen = True
            continue
        width = _indent_width(line)
        if base is None:
            base = width
            started = True
            continue
        if complete and next_line is not None and line.rstrip() == next_line.rstrip():
            return finish(generated[:offset]), True
        if width < base:
            if closers and _CLOSER.match(line.strip()):
                if not complete:
                    break  # wait for the closing line to end
                if next_line is None or next_line.strip() != line.strip():
                    return finish(generated[: offset + len(line)]), True
            return finish(generated[:offset]), True
        if width == base and went_deeper and blank_seen:
            return finish(generated[:offset]), True
        if (
            started and width == base == gap_level and line.strip()[0] not in ")]}"
        ):
            return finish(generated[:offset]), True
        started = True
        went_deeper = went_deeper or width > base
        blank_seen = False
    return (finish(generated) if final else generated), False


def _trim_single_line(generated: str, rest_of_line: str, final: bool) -> tuple[str, bool]:
    newline = generated.find("\n")
    if newline == -1 and not final:
        return generated, False
    line = generated if newline == -1 else generated[:newline]
    tail = rest_of_line.strip()
    if line.rstrip().endswith(tail):
        # The model wrote what already follows the cursor: keep only what comes before it.
        return line.rstrip()[: -len(tail)], True
    return line, newline != -1
