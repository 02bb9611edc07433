"""Pilot tests for what a first day of use ran into (issue 14), each as users of editors and Textual apps expect.

On the fake engine; tests/tui_tests/test_tui_real.py runs the same paths on the real model.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from fake_engine import FakeEngine, default_respond
from textual import events
from textual.pilot import Pilot
from textual.widgets import Button
from textual.widgets._footer import FooterKey
from textual.widgets._toast import Toast
from tui_helpers import SAMPLE, RecordingApp, idle, make_app, play, ready, status_text, until

from engine.events import GenerationRequest
from tui.widgets import ConfirmScreen, DiffReviewScreen, HelpScreen
from tui.widgets.status import FINISH_WORDS

ADD_BODY = (4, 16)


def long_file(lines: int = 40) -> str:
    """A file longer than an 80x24 screen, one small function per few lines."""
    return "".join(f"def f{i}(x):\n    return x + {i}\n\n" for i in range(lines // 3))


def doc_respond(extra_lines: int, change_code: bool) -> object:
    """A doc answer: `extra_lines` comment lines over the function, and maybe a changed line of code."""

    def respond(request: GenerationRequest) -> str:
        prompt = request.prompt if isinstance(request.prompt, str) else ""
        if "\ndoc\n" not in prompt:
            return default_respond(request)
        code = prompt.partition("\n---\n")[2]
        if change_code:
            code = code.replace("a + b", "a - b")
        return "".join(f"# note {i}\n" for i in range(extra_lines)) + code + "\n"

    return respond


# ---- 1. the diff review ------------------------------------------------------------------------


async def review_doc_of_add(pilot: Pilot[int], app: RecordingApp) -> DiffReviewScreen:
    app.main.editor.move_cursor(ADD_BODY)
    await pilot.press("f6")
    await until(pilot, lambda: isinstance(app.screen, DiffReviewScreen), what="the diff")
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, DiffReviewScreen)
    return screen


def test_a_23_line_diff_at_80x24_keeps_its_buttons_and_keys_on_screen() -> None:
    engine = FakeEngine(respond=doc_respond(14, change_code=False))  # type: ignore[arg-type]

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        screen = await review_doc_of_add(pilot, app)
        assert len(screen.diff.splitlines()) == 23
        body = screen.query_one("#diff-body")
        assert body.max_scroll_y > 0 and body.has_focus  # longer than the room: it scrolls
        for button in screen.query(Button):
            assert 0 <= button.region.y < 23 and button.region.right <= 80  # on screen, above the footer
        footer = {key.description: key for key in screen.query(FooterKey)}
        assert {"Accept", "Reject"} <= set(footer)
        assert all(key.region.y == 23 for key in footer.values())
        await pilot.press("pagedown", "end")
        assert body.scroll_y == body.max_scroll_y
        for button in screen.query(Button):
            assert button.region.y < 23
        await pilot.press("ctrl+y")
        await pilot.pause()
        assert app.main.editor.document[3] == "# note 0"

    play(scenario, make_app(engine=engine), size=(80, 24))


def test_a_doc_rewrite_that_changes_code_is_flagged_with_the_reason() -> None:
    engine = FakeEngine(respond=doc_respond(1, change_code=True))  # type: ignore[arg-type]

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        screen = await review_doc_of_add(pilot, app)
        warning = str(screen.query_one("#diff-warning").render())
        assert "a doc task should change only comments and docstrings" in warning
        assert "line 5 `return a + b` became `return a - b`" in warning  # the file's line number
        assert screen.query_one("#diff-reject").has_focus  # the safe choice
        assert "flagged" in status_text(app)
        await pilot.press("enter")
        await pilot.pause()
        assert app.main.editor.text == SAMPLE

    play(scenario, make_app(engine=engine), size=(80, 24))


def test_a_rewrite_within_its_kind_is_not_flagged() -> None:
    engine = FakeEngine(respond=doc_respond(1, change_code=False))  # type: ignore[arg-type]

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        screen = await review_doc_of_add(pilot, app)
        assert screen.warning is None and not screen.query("#diff-warning")

    play(scenario, make_app(engine=engine))


# ---- 3. progress, and how an answer ended --------------------------------------------------------


def test_progress_shows_the_prompt_read_then_the_answer_speed_and_clears_old_figures() -> None:
    engine = FakeEngine(prompt_gate=threading.Event(), gate=threading.Event())
    engine.prompt_gate.set()  # open for the warm-up and the first request
    engine.gate.set()

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        await pilot.press("f2")
        await idle(pilot, app)
        assert "50.0 tok/s" in status_text(app)  # the finished request's figures
        engine.prompt_gate.clear()
        engine.gate.clear()
        app.main.editor.move_cursor(ADD_BODY)
        await pilot.press("f4")
        await until(pilot, lambda: "prompt" in status_text(app), what="prompt progress")
        total = engine.count_tokens(engine.requests[-1].prompt)  # type: ignore[arg-type]
        assert f"review · prompt {total // 2}/{total} tok" in status_text(app)
        assert "50.0 tok/s" not in status_text(app) and "acc" not in status_text(app)  # cleared at the start
        engine.prompt_gate.set()
        engine.gate.set()
        await until(pilot, lambda: " tok/s · " in status_text(app).split("│")[1] or app.main.job is None)
        await idle(pilot, app)
        assert "review done" in status_text(app)

    play(scenario, make_app(engine=engine))


@pytest.mark.parametrize("finish", ["length", "repetition", "context"])
def test_an_answer_cut_off_is_labelled_so_not_done(finish: str) -> None:
    engine = FakeEngine(finish=finish)

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        await pilot.press("f2")
        await idle(pilot, app)
        assert f"explain: {FINISH_WORDS[finish]}" in status_text(app)
        assert "done" not in status_text(app)
        assert app.main.answer.text.endswith(f"*({FINISH_WORDS[finish]})*")

    play(scenario, make_app(engine=engine))


def test_a_completion_warms_up_when_the_file_opens() -> None:
    engine = FakeEngine()

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        warm = [request for request in engine.requests if request.max_tokens == 1]
        assert len(warm) == 1 and warm[0].prompt == "WARM\n<CURSOR>"  # at the cursor, where the file opened
        assert "ready" in status_text(app)  # the warm-up shows no progress of its own

    play(scenario, make_app(engine=engine))


def test_a_pause_in_typing_evaluates_the_completion_prompt_ahead_once() -> None:
    engine = FakeEngine()

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        await idle(pilot, app)
        app.main.editor.move_cursor(ADD_BODY)
        before = len(engine.requests)
        await pilot.press("x", "y", "z")
        await until(pilot, lambda: len(engine.requests) > before, what="the prefetch")
        await idle(pilot, app)
        await pilot.pause(0.2)  # longer than PREFETCH_DELAY: a last one would have started
        await idle(pilot, app)
        ahead = engine.requests[before:]
        cursor = app.main.editor.offset_of(app.main.editor.cursor_location)
        text = app.main.editor.text
        # one at a time (the fake engine refuses a second thread), the last for the text as it is now
        assert ahead[-1].prompt == f"COMPLETE\n{text[:cursor]}<CURSOR>{text[cursor:]}" and len(ahead) <= 3
        assert all(r.max_tokens == 1 for r in ahead) and "ready" in status_text(app)  # nothing shown of their own
        await pilot.press("ctrl+space")  # the completion itself is asked as before
        await idle(pilot, app)
        assert engine.requests[-1].prompt == ahead[-1].prompt and engine.requests[-1].max_tokens != 1

    play(scenario, make_app(engine=engine))


def test_a_request_during_the_warm_up_cancels_it_and_runs() -> None:
    engine = FakeEngine(prompt_gate=threading.Event())
    app = make_app(engine=engine)

    async def scenario(pilot: Pilot[int]) -> None:
        await until(pilot, lambda: app.main.job is not None and app.main.job.kind == "warm", what="warm-up")
        # the warm-up is held in the engine (its worker thread may start late on a loaded machine: a cancel set
        # before it reaches the engine never shows there)
        await until(pilot, lambda: len(engine.requests) == 1, what="the warm-up to reach the engine")
        await pilot.press("f2")
        await until(pilot, lambda: engine.cancelled == 1, what="the warm-up to give way")
        engine.prompt_gate.set()
        await idle(pilot, app)
        assert "explain done" in status_text(app) and not app.noted("Busy")

    async def main() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            await scenario(pilot)

    asyncio.run(main())


# ---- 4. new and empty files -------------------------------------------------------------------------


def test_a_new_file_opens_empty_and_saving_creates_it(tmp_path: Path) -> None:
    target = tmp_path / "new.py"

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        assert app.main.editor.text == "" and "new.py ●" in status_text(app)
        await pilot.press(*"x = 1")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert target.read_text() == "x = 1" and "new.py ●" not in status_text(app)

    play(scenario, make_app(text=None, path=target))


def test_an_empty_file_opens(tmp_path: Path) -> None:
    empty = tmp_path / "empty.py"
    empty.write_text("")

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        assert app.main.editor.text == "" and "empty.py │" in status_text(app)
        assert app.main.editor.language == "python"

    play(scenario, make_app(text=None, path=empty))


# ---- 5. 80x24 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("width", [80, 120, 140])
def test_the_footer_shows_help_save_open_and_prompt(width: int) -> None:
    """The task keys fold into one entry unless every key fits; from 120 columns none is cut off."""
    def shown() -> list[str]:
        keys = app.main.query(FooterKey)
        return [key.description for key in keys if key.region.width and key.region.right <= width]

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        folded = width < 140
        await until(pilot, lambda: "Help" in shown() and ("Tasks" in shown()) == folded, what="the footer")
        assert shown()[:5] == ["Help", "Save", "Open", "Prompt", "Complete"]
        if folded:
            assert "Tasks" in shown() and "Quit" in shown()  # the task keys fold into one entry
        else:
            assert {"Explain", "Refactor", "Review", "Fix", "Doc", "Test", "Quit"} <= set(shown())
        if width >= 120:
            assert len(shown()) == len(app.main.query(FooterKey))  # every key whole on screen

    app = make_app()
    play(scenario, app, size=(width, 24))


def test_opening_the_answer_at_80x24_gives_it_room_and_keeps_the_cursor_line_visible() -> None:
    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        editor = app.main.editor
        editor.move_cursor((18, 8))  # low on the screen: the pane opening below would hide it
        await pilot.pause()
        await pilot.press("f2")
        await idle(pilot, app)
        answer = app.main.answer
        await until(pilot, lambda: answer.region.height >= 9, what="the answer pane")
        assert editor.region.height >= 8

        def cursor_line_shown() -> bool:
            top = editor.scroll_offset.y
            return top <= 18 < top + editor.scrollable_content_region.height

        # the editor scrolls once its new size is laid out: a frame or two after the pane opens
        await until(pilot, cursor_line_shown, timeout=5, what="the cursor's line in view")

    play(scenario, make_app(text=long_file()), size=(80, 24))


# ---- 7. the answer pane ------------------------------------------------------------------------------


def test_ctrl_t_focuses_the_answer_to_scroll_it_and_back() -> None:
    long_answer = "\n\n".join(f"Paragraph {i}." for i in range(60))
    engine = FakeEngine(respond=lambda request: long_answer, piece=64)

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        await pilot.press("f2")
        await idle(pilot, app)
        answer = app.main.answer
        answer.scroll_home(animate=False)
        await pilot.press("ctrl+t")
        await pilot.pause()
        assert answer.has_focus
        await pilot.press("pagedown")
        await pilot.pause()
        assert answer.scroll_y > 0
        await pilot.press("escape")  # back to the editor, the pane stays
        assert app.main.editor.has_focus and not answer.has_class("-hidden")
        await pilot.press("ctrl+t", "ctrl+t")  # focus it, then hide it
        assert app.main.editor.has_focus and answer.has_class("-hidden")

    play(scenario, make_app(engine=engine), size=(80, 24))


def test_code_in_answers_wraps_instead_of_being_clipped() -> None:
    line = "result = compute(" + ", ".join(f"argument_{i}" for i in range(12)) + ")"
    engine = FakeEngine(respond=lambda request: f"Like this:\n\n```python\n{line}\n```\n", piece=64)

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        await pilot.press("f2")
        await idle(pilot, app)
        await pilot.pause()
        fence = app.main.answer.query_one("MarkdownFence")
        label = fence.query_one("#code-content")
        assert label.region.right <= app.main.answer.region.right
        assert label.region.height >= 3  # one long line, wrapped
        assert fence.max_scroll_x == 0

    play(scenario, make_app(engine=engine), size=(80, 24))


def test_opening_another_file_clears_the_answer(tmp_path: Path) -> None:
    other = tmp_path / "other.py"
    other.write_text("y = 2\n")

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        await pilot.press("f2")
        await idle(pilot, app)
        assert app.main.answer.text
        await pilot.press("ctrl+o")
        await pilot.pause()
        app.screen.query_one("#open-path").value = str(other)  # type: ignore[attr-defined]
        await pilot.press("enter")
        await pilot.pause()
        assert app.main.editor.text == "y = 2\n"
        assert app.main.answer.text == "" and app.main.answer.has_class("-hidden")

    play(scenario)


def test_notices_do_not_cover_the_status_line() -> None:
    app = make_app()

    async def main() -> None:
        async with app.run_test(size=(80, 24), notifications=True) as pilot:
            await ready(pilot, app)
            app.notify("something happened", timeout=30)
            await until(pilot, lambda: app.screen.query(Toast), what="the notice")
            await pilot.pause()
            toast = app.screen.query_one(Toast)
            assert not toast.region.overlaps(app.main.status.region)
            assert not toast.region.overlaps(app.main.prompt.region)
            assert toast.region.y < 5

    asyncio.run(main())


# ---- 8. conventions (Esc and Ctrl+C cancel: test_tui_app) ------------------------------------------


def test_ctrl_c_without_a_request_copies_the_selection() -> None:
    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        app.main.editor.select_line(3)
        await pilot.press("ctrl+c")
        assert app.clipboard == app.main.editor.selected_text == "def add(a, b):"
        assert app.main.editor.text == SAMPLE

    play(scenario)


@pytest.mark.parametrize(("line", "column", "expected"), [
    (3, 14, "    "),  # after `def add(a, b):` one level deeper
    (4, 16, "    "),  # after `    return a + b`: the same level
    (0, 11, ""),  # after `import math`
])
def test_enter_auto_indents(line: int, column: int, expected: str) -> None:
    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        editor = app.main.editor
        editor.move_cursor((line, column))
        await pilot.press("enter")
        assert editor.document[line + 1] == expected
        assert editor.cursor_location == (line + 1, len(expected))
        await pilot.press("ctrl+z")
        assert editor.text == SAMPLE

    play(scenario)


def test_question_mark_types_into_the_editor_and_the_prompt_but_opens_help_in_the_answer() -> None:
    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        await pilot.press("question_mark")
        assert app.main.editor.text.startswith("?")
        await pilot.press("ctrl+l", "question_mark")
        assert app.main.prompt.input.value == "?"
        await pilot.press("escape", "ctrl+t", "question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)

    play(scenario)


def test_the_scope_label_follows_typing_once_it_pauses() -> None:
    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        editor = app.main.editor
        editor.move_cursor(editor.document.end)
        await pilot.press(*"def g():", "enter", *"return 1")
        scope = app.main.query_one("#prompt-scope")
        await until(pilot, lambda: str(scope.render()) == "function g", what="the label of the new function")

    play(scenario)


def test_keys_typed_just_before_a_task_key_reach_the_editor_first(tmp_path: Path) -> None:
    """A task key is a priority binding and runs at once, while keys typed just before it still wait in the
    editor's queue: sent as one burst (as a fast typist or a pasted key sequence does), Down x3 then F2 explains
    the function the cursor moved into, `x` then Ctrl+Space completes after the x, and `y` then Ctrl+Q asks
    about the unsaved y."""
    gate = threading.Event()
    gate.set()  # open for the warm-up
    engine = FakeEngine(gate=gate)

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        await ready(pilot, app)
        gate.clear()  # the explain request is held, so its job can be read
        try:
            for key in ("down", "down", "down", "f2"):
                app.post_message(events.Key(key, None))
            await until(pilot, lambda: app.main.job is not None, what="the explain request")
            assert app.main.job is not None and app.main.job.target == "function add"
        finally:
            gate.set()
        await idle(pilot, app)
        app.main.editor.move_cursor((4, 4))
        for key, character in (("x", "x"), ("ctrl+space", None)):
            app.post_message(events.Key(key, character))
        await until(pilot, lambda: any("<CURSOR>" in str(r.prompt) for r in engine.user_requests),
                    what="the completion request")
        completion = next(str(r.prompt) for r in engine.user_requests if "<CURSOR>" in str(r.prompt))
        assert "    x<CURSOR>return a + b" in completion
        await idle(pilot, app)
        await pilot.press("ctrl+s")
        await until(pilot, lambda: not app.main.dirty, what="the save")
        for key, character in (("y", "y"), ("ctrl+q", None)):
            app.post_message(events.Key(key, character))
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the quit confirmation")

    path = tmp_path / "sample.py"
    path.write_text(SAMPLE)
    play(scenario, make_app(SAMPLE, path, engine=engine))
