"""The CLI's stdout renderer: plain when piped, highlighted fences on a terminal, never lossy."""

from __future__ import annotations

import io
import random
import re

import pytest

from tui.render import StreamRenderer, lexer_for, render_diff, use_color

ANSI = re.compile(r"\x1b\[[0-9;]*m")

ANSWER = (
    "Here is the fix:\n"
    "```python\n"
    "def add(a, b):\n"
    "    return a + b  # `sum`\n"
    "```\n"
    "Inline `code` and ``two`` ticks stay prose.\n"
    "    ```\n"
    "that indented fence was prose too.\n"
    "~~~~ js\n"
    "const x = 1;\n"
    "~~~\n"
    "still code: the closing fence was too short\n"
    "~~~~\n"
    "The end, no newline"
)


def feed_in_chunks(renderer: StreamRenderer, text: str, seed: int) -> None:
    rng = random.Random(seed)
    position = 0
    while position < len(text):
        step = rng.randint(1, 7)
        renderer.feed(text[position : position + step])
        position += step
    renderer.finish()


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_mode_is_the_text_unchanged() -> None:
    out = io.StringIO()
    feed_in_chunks(StreamRenderer(out, color=False), ANSWER, seed=1)
    assert out.getvalue() == ANSWER


@pytest.mark.parametrize("seed", range(6))
def test_colour_mode_only_adds_escape_codes(seed: int) -> None:
    out = io.StringIO()
    feed_in_chunks(StreamRenderer(out, color=True), ANSWER, seed)
    rendered = out.getvalue()
    assert ANSI.sub("", rendered) == ANSWER
    lines = rendered.splitlines()
    highlighted = {n for n, line in enumerate(lines) if ANSI.search(line)}
    # the python body, the js body (whose too-short "~~~" does not close it), nothing else
    assert {2, 3, 9, 11} <= highlighted <= {2, 3, 9, 10, 11}, lines


def test_fence_language_picks_the_lexer() -> None:
    out = io.StringIO()
    renderer = StreamRenderer(out, color=True)
    renderer.feed("```python\ndef f():\n```\n```\ndef f():\n```\n")
    renderer.finish()
    python_line, text_line = [line for line in out.getvalue().splitlines() if "def" in line]
    assert ANSI.search(python_line)
    assert python_line != text_line  # an info-less fence is not highlighted as python


def test_default_language_applies_to_bare_fences() -> None:
    out = io.StringIO()
    renderer = StreamRenderer(out, color=True, language="python")
    renderer.feed("```\ndef f():\n```\n")
    renderer.finish()
    assert "\x1b[" in out.getvalue().splitlines()[1]


def test_prose_streams_before_its_newline_but_a_fence_waits() -> None:
    out = io.StringIO()
    renderer = StreamRenderer(out, color=True)
    renderer.feed("Hello wor")
    assert out.getvalue() == "Hello wor"
    renderer.feed("ld\n``")
    assert out.getvalue() == "Hello world\n"  # `` may still open a fence
    renderer.feed("`py\nx = 1")
    assert out.getvalue() == "Hello world\n```py\n"  # a code line waits for its newline
    renderer.finish()
    assert ANSI.sub("", out.getvalue()) == "Hello world\n```py\nx = 1"


def test_use_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    assert use_color(FakeTty()) is True
    assert use_color(io.StringIO()) is False
    assert use_color(io.StringIO(), "always") is True
    assert use_color(FakeTty(), "never") is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert use_color(FakeTty()) is False
    monkeypatch.setenv("NO_COLOR", "")  # empty means unset, by the NO_COLOR convention
    assert use_color(FakeTty()) is True
    monkeypatch.setenv("TERM", "dumb")
    assert use_color(FakeTty()) is False


def test_lexer_for_unknown_languages_is_plain_text() -> None:
    assert lexer_for("no-such-language").name == "Text only"
    assert lexer_for(None).name == "Text only"
    assert lexer_for("py {.class}").name == "Python"


def test_render_diff() -> None:
    diff = "--- a\n+++ b\n@@ -1 +1 @@\n-x\n+y\n"
    assert render_diff(diff, color=False) == diff
    coloured = render_diff(diff, color=True)
    assert coloured != diff and ANSI.sub("", coloured) == diff


# progress, notices and Ctrl+C (tui/cli_output.py)


def test_progress_off_a_terminal_is_one_line_per_ten_percent() -> None:
    from tui.cli_output import ProgressLine

    out = io.StringIO()
    progress = ProgressLine(out)
    for step in range(101):
        progress("quantizing", step / 100)
    progress("done", None)
    progress.close()
    lines = out.getvalue().splitlines()
    assert lines[0] == "quantizing: 0%" and lines[-2] == "quantizing: 100%"
    assert len(lines) == 12 and lines[-1] == "done"
    quiet = io.StringIO()
    ProgressLine(quiet, quiet_unless_tty=True)("loading", 0.5)
    assert quiet.getvalue() == ""


def test_progress_on_a_terminal_rewrites_one_line_and_clears_it() -> None:
    from tui.cli_output import ProgressLine

    out = FakeTty()
    progress = ProgressLine(out, quiet_unless_tty=True)
    for step in range(1000):
        progress("loading", step / 1000)
    progress.close()
    text = out.getvalue()
    assert "\n" not in text
    assert text.count("\r\x1b[K") == 100 + 1  # each percent once, then the clear
    assert text.endswith("loading: 99%\r\x1b[K")


def test_consume_routes_text_notices_and_done(capsys: pytest.CaptureFixture[str]) -> None:
    import threading

    from engine.events import DoneEvent, NoticeEvent, Stats, TextEvent
    from tui.cli_output import consume

    pieces: list[str] = []
    events = [TextEvent("a"), NoticeEvent("left out lines 3-9"), TextEvent("b"),
              DoneEvent("ab", Stats(finish_reason="stop"))]
    done = consume(iter(events), pieces.append, threading.Event())
    assert pieces == ["a", "b"] and done.text == "ab" and done.stats.finish_reason == "stop"
    assert capsys.readouterr().err == "qcode: note: left out lines 3-9\n"
    cancel = threading.Event()
    cancel.set()
    done = consume(iter([TextEvent("part")]), None, cancel)  # a stream cut short by Ctrl+C
    assert done.text == "part" and done.stats.finish_reason == "cancelled"


def test_first_ctrl_c_cancels_and_the_second_interrupts() -> None:
    import os
    import signal
    import threading

    from tui.cli_output import sigint_cancels

    cancel = threading.Event()
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt), sigint_cancels(cancel):
        os.kill(os.getpid(), signal.SIGINT)
        assert cancel.wait(5)
        os.kill(os.getpid(), signal.SIGINT)
        threading.Event().wait(5)  # the handler raises here
    assert signal.getsignal(signal.SIGINT) is before
