"""Pilot tests of every action and binding of the app, on the fake engine (fast).

tests/tui_tests/test_tui_real.py runs the end-to-end paths again on the real default model.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fake_engine import FakeEngine, FakeTasks, default_respond
from textual.command import CommandList
from textual.pilot import Pilot
from tui_helpers import SAMPLE, RecordingApp, idle, make_app, play, ready, status_text, until

from engine.errors import ContextError, GenerationError, LoadCancelled
from engine.events import GenerationRequest
from engine.settings import QcodeSettings
from tui.widgets import AnswerPane, ConfirmScreen, DiffReviewScreen, HelpScreen, PathScreen
from tui.widgets.status import FINISH_WORDS

ADD_BODY = (4, 16)  # the end of `    return a + b`, inside function add


def respond_multiline(request: GenerationRequest) -> str:
    if isinstance(request.prompt, str) and request.prompt.startswith("COMPLETE\n"):
        return "total = a + b\n    print(total)\n    return total"
    return default_respond(request)


# ---- loading ---------------------------------------------------------------------------------


def test_loading_state_shows_until_the_model_is_ready() -> None:
    gate = threading.Event()
    app = make_app(gate=gate)

    async def main() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, lambda: "50%" in status_text(app), what="the load's progress")
            assert "loading: reading fake model 50%" in status_text(app)
            assert app.main.editor.has_focus  # the editor works while the model loads
            await pilot.press("x")
            gate.set()
            await until(pilot, lambda: app.backend is not None, what="the load")
            await pilot.pause()
            assert "ready" in status_text(app)
            assert "fake-coder-1b Q4_K_S · kv q8_0 · draft auto" in status_text(app)
            assert app.main.editor.text.startswith("ximport math")

    asyncio.run(main())


def test_a_failed_load_is_a_notification_and_actions_say_why() -> None:
    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        await pilot.pause()
        assert ("model file /x.gguf does not exist", "error") in app.notes
        assert "model not loaded" in status_text(app)
        await pilot.press("f2")
        await pilot.press("ctrl+space")
        await pilot.pause()
        assert sum("does not exist" in note for note, _ in app.notes) == 3
        assert app.is_running

    play(scenario, make_app(fail="model file /x.gguf does not exist"))


def test_actions_before_the_model_is_loaded_say_it_is_loading() -> None:
    gate = threading.Event()

    def loader(settings, progress):  # type: ignore[no-untyped-def]
        gate.wait(60)  # released by the test: a slow machine must not see the load fail first
        raise GenerationError("never mind")

    app = make_app(loader=loader)

    async def main() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("f2")
            await pilot.pause()
            assert app.noted("still loading")
            gate.set()

    asyncio.run(main())


# ---- completion ------------------------------------------------------------------------------


def test_ctrl_space_shows_ghost_text_and_tab_accepts_it_as_one_undo_step() -> None:
    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        editor = app.main.editor
        editor.move_cursor((4, 4))
        editor.replace("", (4, 4), (4, 16))  # leave `    ` to complete
        before = editor.text
        await pilot.press("ctrl+space")
        await until(pilot, lambda: app.main.job is None and editor.has_ghost, what="the suggestion")
        assert editor.ghost_text == "return a + b\n"
        assert editor.suggestion == "return a + b⏎"  # drawn after the cursor, its line break marked
        assert editor.text == before  # ghost text is not in the buffer
        assert "suggest" in status_text(app) and " ms" in status_text(app)
        await pilot.press("tab")
        assert editor.text == before[: before.index("    \n") + 4] + "return a + b\n" + before[
            before.index("    \n") + 4:]
        assert not editor.has_ghost and editor.suggestion == ""
        await pilot.press("ctrl+z")
        assert editor.text == before

    play(scenario)


def test_the_completion_request_carries_the_cursor_offset() -> None:
    engine = FakeEngine()

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        app.main.editor.move_cursor(ADD_BODY)
        await pilot.press("ctrl+space")
        await idle(pilot, app)
        prompt = engine.requests[-1].prompt
        assert prompt == "COMPLETE\n" + SAMPLE.replace("a + b\n", "a + b<CURSOR>\n", 1)

    play(scenario, make_app(engine=engine))


def test_right_arrow_also_accepts() -> None:
    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        app.main.editor.move_cursor((5, 0))
        await pilot.press("ctrl+space")
        await until(pilot, lambda: app.main.editor.has_ghost)
        await idle(pilot, app)
        await pilot.press("right")
        assert app.main.editor.document[5] == "return a + b"

    play(scenario)


@pytest.mark.parametrize("key", ["escape", "x", "up"])
def test_escape_typing_or_moving_dismisses_the_suggestion(key: str) -> None:
    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        editor = app.main.editor
        editor.move_cursor((5, 0))
        await pilot.press("ctrl+space")
        await until(pilot, lambda: editor.has_ghost)
        await idle(pilot, app)
        await pilot.press(key)
        assert not editor.has_ghost and editor.suggestion == ""
        assert "return a + b" not in editor.document[5]
        assert editor.document[5] == ("x" if key == "x" else "")

    play(scenario)


def screen_rows(editor: Any) -> list[str]:
    """The editor's rows as drawn (gutter included)."""
    return [editor.render_line(y).text for y in range(editor.scrollable_content_region.height)]


def test_a_multi_line_suggestion_pushes_the_code_below_down_and_hides_none() -> None:
    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        editor = app.main.editor
        editor.move_cursor((5, 0))
        editor.insert("    ")
        await pilot.press("ctrl+space")
        await until(pilot, lambda: app.main.job is None and editor.has_ghost)
        await pilot.pause()
        assert editor.suggestion == "total = a + b"  # the first line after the cursor
        rows = [row.rstrip() for row in screen_rows(editor)]
        assert rows[5:11] == [
            " 6      total = a + b",
            " ┆      print(total)",
            " ┆      return total",
            " 7",  # the code below the cursor, two rows lower, none of it covered
            " 8  class Circle:",
            " 9      def __init__(self, radius):",
        ]
        await pilot.press("tab")
        assert editor.document[5:8] == ["    total = a + b", "    print(total)", "    return total"]
        rows = [row.rstrip() for row in screen_rows(editor)]
        assert rows[6:9] == [" 7      print(total)", " 8      return total", " 9"]

    play(scenario, make_app(engine=FakeEngine(respond=respond_multiline)))


def test_a_suggestion_at_the_last_line_of_a_long_file_is_scrolled_into_view() -> None:
    text = "".join(f"def f{i}(x):\n    return x + {i}\n\n" for i in range(20))
    last = text.count("\n")

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        editor = app.main.editor
        editor.move_cursor((last, 0))
        editor.insert("    ")
        await pilot.press("ctrl+space")
        await until(pilot, lambda: app.main.job is None and editor.has_ghost)
        await pilot.pause()
        rows = [row.rstrip() for row in screen_rows(editor)]
        assert rows[-3:] == [f"{last + 1}      total = a + b", " ┆      print(total)", " ┆      return total"]

    play(scenario, make_app(text=text, engine=FakeEngine(respond=respond_multiline)), size=(80, 24))


def test_a_long_suggestion_is_capped_at_what_the_preview_shows_and_tab_inserts_just_that() -> None:
    lines = [f"step_{i} = {i}" for i in range(30)]
    engine = FakeEngine(respond=lambda request: "\n    ".join(lines))

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        editor = app.main.editor
        editor.move_cursor((5, 0))
        editor.insert("    ")
        await pilot.press("ctrl+space")
        await idle(pilot, app)
        cap = editor.max_ghost_lines
        assert 2 <= cap < 30
        assert editor.ghost_text == "\n    ".join(lines[:cap])
        assert engine.cancelled == 1  # it stopped generating once the preview was full
        assert "Tab accepts" in status_text(app)
        rows = screen_rows(editor)
        assert [row.split("┆  ", 1)[1].rstrip() for row in rows[6:5 + cap]] == [
            f"    {line}" for line in lines[1:cap]]
        assert rows[5 + cap].startswith(" 7 ")  # then the code
        await pilot.press("tab")
        assert editor.document[5:5 + cap] == [f"    {line}" for line in lines[:cap]]
        assert editor.document[5 + cap] == ""

    play(scenario, make_app(engine=engine), size=(80, 24))


def test_a_suggestion_ending_in_a_line_break_shows_it() -> None:
    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        editor = app.main.editor
        editor.move_cursor((5, 0))
        await pilot.press("ctrl+space")
        await idle(pilot, app)
        assert editor.ghost_text == "return a + b\n"
        assert editor.suggestion == "return a + b⏎"  # Tab inserts the line break too
        assert screen_rows(editor)[6].startswith(" 7 ")  # no pushed rows

    play(scenario)


@pytest.mark.parametrize(
    ("cursor", "suggestion", "row"),
    [
        # at the end of a short file's line: TextArea cropped every line to the file's widest (17 cells)
        ((1, 4), "return sorted(values, key=abs)", "2      return sorted(values, key=abs)"),
        # before a line's text: the suggestion, its line break, then the text it pushes on
        ((0, 0), "from typing import *\n", "1  from typing import *⏎def mean(values):"),
        # starting with its line break: the rows it pushes below still count, and show whole
        ((0, 17), "\n    return sorted(values, key=abs)", "┆      return sorted(values, key=abs)"),
    ],
)
def test_a_suggestion_wider_than_the_file_shows_whole(cursor: tuple[int, int], suggestion: str, row: str) -> None:
    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        editor = app.main.editor
        editor.move_cursor(cursor)
        await pilot.press("ctrl+space")
        await idle(pilot, app)
        assert editor.ghost_text == suggestion
        assert row in [r.rstrip() for r in screen_rows(editor)]
        pushed = suggestion.count("\n") - suggestion.endswith("\n")  # the rows drawn below the cursor's line
        assert editor.virtual_size.height == editor.document.line_count + pushed  # the last line can show them
        await pilot.press("escape")
        await pilot.pause()
        assert screen_rows(editor)[cursor[0]].rstrip() == ["1  def mean(values):", "2"][cursor[0]]

    app = make_app(text="def mean(values):\n    \n", engine=FakeEngine(respond=lambda request: suggestion))
    play(scenario, app, size=(80, 24))


def test_the_rest_of_the_line_follows_a_multi_line_suggestion_made_inside_it() -> None:
    """Completing inside `print(mean())`: the suggestion's rows come between the cursor and the line's `))`, as
    accepting inserts them; TextArea alone would draw the `))` right after the first row."""
    suggestion = "values,\n           weights"

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        editor = app.main.editor
        editor.move_cursor((0, 11))
        await pilot.press("ctrl+space")
        await idle(pilot, app)
        assert editor.ghost_text == suggestion
        rows = [row.rstrip() for row in screen_rows(editor)]
        assert rows[:3] == ["1  print(mean(values,", "┆             weights))", "2"]
        await pilot.press("tab")
        await pilot.pause()
        assert editor.document[0:2] == ["print(mean(values,", "           weights))"]
        assert [row.rstrip() for row in screen_rows(editor)][:2] == ["1  print(mean(values,", "2             weights))"]

    app = make_app(text="print(mean())\n", engine=FakeEngine(respond=lambda request: suggestion))
    play(scenario, app, size=(80, 24))


def test_the_suggestion_streams_in_as_it_is_decoded() -> None:
    engine = FakeEngine(respond=respond_multiline, gate=threading.Event())

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        editor = app.main.editor
        editor.move_cursor((5, 0))
        editor.insert("    ")
        await pilot.press("ctrl+space")
        await until(pilot, lambda: editor.has_ghost, what="the first piece")
        assert editor.ghost_text == "tota"  # one piece so far, shown while the rest is decoded
        assert app.main.job is not None
        engine.gate.set()
        await idle(pilot, app)
        assert editor.ghost_text == "total = a + b\n    print(total)\n    return total"

    play(scenario, make_app(engine=engine))


def test_typing_while_a_suggestion_streams_cancels_it() -> None:
    engine = FakeEngine(gate=threading.Event())

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        editor = app.main.editor
        editor.move_cursor((5, 0))
        await pilot.press("ctrl+space")
        await until(pilot, lambda: editor.has_ghost, what="the first piece")
        await pilot.press("y")
        assert not editor.has_ghost
        engine.gate.set()
        await idle(pilot, app)
        assert engine.cancelled == 1
        assert not editor.has_ghost  # the rest of the stale suggestion never shows
        assert editor.document[5] == "y"

    play(scenario, make_app(engine=engine))


def test_escape_while_a_suggestion_streams_cancels_and_removes_it() -> None:
    engine = FakeEngine(gate=threading.Event())

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        app.main.editor.move_cursor((5, 0))
        await pilot.press("ctrl+space")
        await until(pilot, lambda: app.main.editor.has_ghost, what="the first piece")
        await pilot.press("escape")
        engine.gate.set()
        await idle(pilot, app)
        assert engine.cancelled == 1 and not app.main.editor.has_ghost
        assert "completion cancelled" in status_text(app) and app.main.editor.text == SAMPLE

    play(scenario, make_app(engine=engine))


def test_a_second_ctrl_space_while_completing_is_ignored() -> None:
    engine = FakeEngine(gate=threading.Event())

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        app.main.editor.move_cursor((5, 0))
        await pilot.press("ctrl+space")
        await until(pilot, lambda: app.main.editor.has_ghost)
        await pilot.press("ctrl+space")
        engine.gate.set()
        await idle(pilot, app)
        assert len(engine.user_requests) == 1 and not app.noted("Busy")

    play(scenario, make_app(engine=engine))


def test_ctrl_at_the_nul_a_terminal_sends_for_ctrl_space_completes_too() -> None:
    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        app.main.editor.move_cursor((5, 0))
        await pilot.press("ctrl+@")
        await until(pilot, lambda: app.main.editor.has_ghost)

    play(scenario)


def test_the_completion_key_comes_from_settings() -> None:
    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        app.main.editor.move_cursor((5, 0))
        await pilot.press("ctrl+space")
        await pilot.pause()
        assert app.main.job is None and not engine.user_requests  # a completion would have started a job at once
        await pilot.press("f9")
        await until(pilot, lambda: app.main.editor.has_ghost)

    engine = FakeEngine()
    play(scenario, make_app(engine=engine, settings=QcodeSettings(complete_key="f9")))


def test_no_suggestion_says_so() -> None:
    engine = FakeEngine(respond=lambda request: "")

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        await pilot.press("ctrl+space")
        await idle(pilot, app)
        assert app.noted("suggested nothing") and not app.main.editor.has_ghost

    play(scenario, make_app(engine=engine))


# ---- tasks -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "task"), [("f2", "explain"), ("f4", "review"), ("f7", "test")])
def test_prose_tasks_stream_into_the_answer_pane(key: str, task: str) -> None:
    engine = FakeEngine()

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        assert app.main.answer.has_class("-hidden")
        app.main.editor.move_cursor(ADD_BODY)
        await pilot.press(key)
        await idle(pilot, app)
        answer = app.main.query_one(AnswerPane)
        assert not answer.has_class("-hidden")
        expected = default_respond(engine.requests[-1])
        if task == "test":  # the engine opened a code fence for it: the pane shows one
            expected = f"```python\n{expected}```"
        assert answer.text == expected
        assert answer.markdown.source == expected
        assert engine.requests[-1].prompt == (
            f"TASK\n{task}\n\n---\ndef add(a, b):\n    return a + b")
        assert f"{task} done" in status_text(app)
        assert "50.0 tok/s · acc 70%" in status_text(app)
        assert isinstance(app.screen, type(app.screen_stack[0]))  # no diff for prose

    play(scenario, make_app(engine=engine))


def test_the_answer_streams_in_pieces_without_reparsing_everything() -> None:
    """MarkdownStream appends: the blocks already shown stay the same widgets."""
    long_answer = "\n\n".join(f"Paragraph {i}: " + "words " * 12 for i in range(40))
    engine = FakeEngine(respond=lambda request: long_answer, piece=16, delay=0.001)

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        await pilot.press("f2")
        await until(pilot, lambda: len(app.main.answer.markdown.children) >= 5, what="five blocks")
        first = app.main.answer.markdown.children[0]
        await idle(pilot, app)
        assert app.main.answer.markdown.children[0] is first
        assert len(app.main.answer.markdown.children) == 40
        answer = app.main.answer
        await until(pilot, lambda: answer.scroll_y == answer.max_scroll_y > 0, what="following the end")

    play(scenario, make_app(engine=engine))


def test_actions_use_the_selection_when_there_is_one() -> None:
    engine = FakeEngine()

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        app.main.editor.select_line(8)  # `    def __init__(self, radius):` plus its newline
        await pilot.press("f2")
        await idle(pilot, app)
        assert engine.requests[-1].prompt.endswith("---\n    def __init__(self, radius):")
        assert "lines 9-9" in app.main.query_one("#answer-title").render().plain  # type: ignore[attr-defined]

    play(scenario, make_app(engine=engine))


def test_actions_use_the_whole_file_outside_any_scope() -> None:
    engine = FakeEngine()

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        app.main.editor.move_cursor((1, 0))
        await pilot.press("f2")
        await idle(pilot, app)
        assert engine.requests[-1].prompt.endswith("---\n" + SAMPLE)

    play(scenario, make_app(engine=engine))


def test_actions_use_the_scope_around_the_cursor_counted_in_characters() -> None:
    engine = FakeEngine()
    text = "x = 'é'\n\nclass A:\n    def f(self):\n        return 1\n"

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        app.main.editor.move_cursor((4, 10))  # inside `return 1`
        await pilot.press("f2")
        await idle(pilot, app)
        assert engine.requests[-1].prompt.endswith("---\n    def f(self):\n        return 1")

    play(scenario, make_app(text=text, engine=engine))


def test_enter_in_the_prompt_line_asks_about_the_code() -> None:
    engine = FakeEngine()

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        app.main.editor.move_cursor(ADD_BODY)
        await pilot.press("ctrl+l")
        assert app.main.prompt.input.has_focus
        await pilot.press(*"what types", "enter")
        await idle(pilot, app)
        assert engine.requests[-1].prompt.startswith("TASK\nask\nwhat types\n---\ndef add")
        assert app.main.answer.text.startswith("## Ask")

    play(scenario, make_app(engine=engine))


def test_refactor_without_an_instruction_asks_for_one_and_enter_runs_it() -> None:
    engine = FakeEngine()

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        app.main.editor.move_cursor(ADD_BODY)
        await pilot.press("f3")
        await pilot.pause()
        assert app.noted("Type what to change") and app.main.prompt.input.has_focus
        assert "instruction for refactor" in app.main.prompt.input.placeholder
        assert engine.user_requests == []
        await pilot.press(*"use sum", "enter")
        await until(pilot, lambda: isinstance(app.screen, DiffReviewScreen), what="the diff")
        assert engine.user_requests[-1].prompt.startswith("TASK\nrefactor\nuse sum\n---\ndef add")
        assert "instruction for refactor" not in app.main.prompt.input.placeholder

    play(scenario, make_app(engine=engine))


def test_the_prompt_text_goes_with_the_next_task_only() -> None:
    engine = FakeEngine()

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        app.main.editor.move_cursor(ADD_BODY)
        app.main.prompt.input.value = "what happens if b is None?"
        await pilot.press("f4")
        await idle(pilot, app)
        assert engine.user_requests[-1].prompt.startswith("TASK\nreview\nwhat happens if b is None?\n")
        assert app.main.prompt.value == ""  # used up
        await pilot.press("f2")
        await idle(pilot, app)
        assert engine.user_requests[-1].prompt.startswith("TASK\nexplain\n\n---")
        title = app.main.query_one("#answer-title").render().plain  # type: ignore[attr-defined]
        assert title == "explain · function add"
        # ↑ in the prompt brings it back
        await pilot.press("ctrl+l", "up")
        assert app.main.prompt.value == "what happens if b is None?"

    play(scenario, make_app(engine=engine))


def test_the_scope_is_shown_and_f8_switches_to_the_whole_file() -> None:
    engine = FakeEngine()

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        scope = app.main.query_one("#prompt-scope")
        app.main.editor.move_cursor(ADD_BODY)
        await pilot.pause()
        assert str(scope.render()) == "function add"
        app.main.editor.move_cursor((12, 10))
        await pilot.pause()
        assert str(scope.render()) == "method Circle.area"
        await pilot.press("f8")
        await pilot.pause()
        assert str(scope.render()) == "file"
        await pilot.press("ctrl+l", *"what does this module do", "enter")
        await idle(pilot, app)
        assert engine.user_requests[-1].prompt.endswith("---\n" + SAMPLE)  # the whole file, not area()
        app.main.editor.select_line(8)
        await pilot.pause()
        assert str(scope.render()) == "lines 9-9"  # a selection still wins
        await pilot.press("f8")
        app.main.editor.move_cursor(ADD_BODY)
        await pilot.pause()
        assert str(scope.render()) == "function add"

    play(scenario, make_app(engine=engine))


@pytest.mark.parametrize(("key", "task"), [("f3", "refactor"), ("f5", "fix"), ("f6", "doc")])
def test_rewrites_open_a_diff_and_accepting_is_one_undo_step(key: str, task: str) -> None:
    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        editor = app.main.editor
        app.main.prompt.input.value = "use sum" if task == "refactor" else ""
        editor.move_cursor(ADD_BODY)
        await pilot.press(key)
        await until(pilot, lambda: isinstance(app.screen, DiffReviewScreen), what="the diff")
        screen = app.screen
        assert isinstance(screen, DiffReviewScreen)
        note = "# refactor: use sum" if task == "refactor" else f"# {task}ed"
        assert f"+{note}" in screen.diff and "--- a/sample.py" in screen.diff
        # the bare code answer shows as a code block
        assert app.main.answer.text == f"```python\n{note}\ndef add(a, b):\n    return a + b\n```"
        await pilot.press("ctrl+y")
        await pilot.pause()
        assert not isinstance(app.screen, DiffReviewScreen)
        assert editor.document[3] == note and editor.document[4] == "def add(a, b):"
        assert editor.text == SAMPLE.replace("def add", note + "\ndef add", 1)
        assert f"{task} applied" in status_text(app)
        assert editor.has_focus
        await pilot.press("ctrl+z")
        assert editor.text == SAMPLE

    play(scenario)


def test_a_rewrite_of_an_indented_method_keeps_its_indentation() -> None:
    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        app.main.editor.move_cursor((12, 10))  # inside Circle.area
        await pilot.press("f6")
        await until(pilot, lambda: isinstance(app.screen, DiffReviewScreen))
        await pilot.press("ctrl+y")
        await pilot.pause()
        assert app.main.editor.document[11] == "    # doced"
        assert app.main.editor.document[12] == "    def area(self):"

    play(scenario)


@pytest.mark.parametrize("keys", [("escape",), ("tab", "tab", "enter"), ("a", "y", "r", "n", "escape")])
def test_rejecting_a_rewrite_leaves_the_buffer_alone(keys: tuple[str, ...]) -> None:
    """Esc, or Tab past Accept to Reject and Enter; letters typed ahead do nothing."""

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        app.main.editor.move_cursor(ADD_BODY)
        await pilot.press("f5")
        await until(pilot, lambda: isinstance(app.screen, DiffReviewScreen))
        for key in keys:
            assert isinstance(app.screen, DiffReviewScreen)
            await pilot.press(key)
            await pilot.pause()
        assert not isinstance(app.screen, DiffReviewScreen)
        assert app.main.editor.text == SAMPLE and "fix rejected" in status_text(app)

    play(scenario)


def test_the_diff_buttons_work_with_the_mouse() -> None:
    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        app.main.editor.move_cursor(ADD_BODY)
        await pilot.press("f5")
        await until(pilot, lambda: isinstance(app.screen, DiffReviewScreen))
        await pilot.click("#diff-accept")
        await pilot.pause()
        assert app.main.editor.text != SAMPLE

    play(scenario)


def test_a_rewrite_is_not_applied_when_its_code_changed_meanwhile() -> None:
    engine = FakeEngine(gate=threading.Event())

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        app.main.editor.move_cursor(ADD_BODY)
        await pilot.press("f5")
        await until(pilot, lambda: app.main.answer.text, what="the first piece")
        app.main.editor.insert("total = ", (4, 11))  # inside the function being fixed
        engine.gate.set()
        await idle(pilot, app)
        assert not isinstance(app.screen, DiffReviewScreen)
        assert app.noted("The code changed since the request")
        assert app.main.editor.document[4] == "    return total = a + b"

    play(scenario, make_app(engine=engine))


def test_a_rewrite_without_code_or_without_changes_says_so() -> None:
    engine = FakeEngine(respond=lambda request: "def add(a, b):\n    return a + b\n")

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        app.main.editor.move_cursor(ADD_BODY)
        await pilot.press("f5")
        await idle(pilot, app)
        assert app.noted("changes nothing") and not isinstance(app.screen, DiffReviewScreen)

    play(scenario, make_app(engine=engine))


# ---- one request at a time, cancel, errors ---------------------------------------------------


@pytest.mark.parametrize("key", ["escape", "ctrl+c"])
def test_escape_or_ctrl_c_cancels_a_running_task(key: str) -> None:
    engine = FakeEngine(gate=threading.Event())

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        await pilot.press("f2")
        await until(pilot, lambda: app.main.answer.text, what="the first piece")
        await pilot.press(key)
        engine.gate.set()
        await idle(pilot, app)
        assert engine.cancelled == 1
        assert app.main.answer.text.endswith("*(cancelled)*")
        assert "explain cancelled" in status_text(app)
        assert "explain cancelled" in status_text(app)

    play(scenario, make_app(engine=engine))


def test_a_cancelled_rewrite_opens_no_diff() -> None:
    engine = FakeEngine(gate=threading.Event())

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        app.main.editor.move_cursor(ADD_BODY)
        await pilot.press("f5")
        await until(pilot, lambda: app.main.answer.text)
        await pilot.press("escape")
        engine.gate.set()
        await until(pilot, lambda: "fix cancelled" in status_text(app), what="the cancel")
        assert not isinstance(app.screen, DiffReviewScreen) and app.main.editor.text == SAMPLE

    play(scenario, make_app(engine=engine))


@pytest.mark.parametrize("finish", ["length", "partial"])
def test_a_rewrite_that_did_not_finish_opens_no_diff(finish: str) -> None:
    engine = FakeEngine(finish=finish)

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        app.main.editor.move_cursor(ADD_BODY)
        await pilot.press("f5")
        await until(pilot, lambda: FINISH_WORDS[finish] in status_text(app), what="the refusal")
        assert not isinstance(app.screen, DiffReviewScreen) and app.main.editor.text == SAMPLE
        assert app.main.answer.text.endswith(f"*({FINISH_WORDS[finish]})*")

    play(scenario, make_app(engine=engine))


def test_one_request_at_a_time() -> None:
    engine = FakeEngine(gate=threading.Event())

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        await pilot.press("f2")
        await until(pilot, lambda: app.main.answer.text)
        await pilot.press("f4")
        await pilot.press("ctrl+space")
        await pilot.pause()
        assert sum("Busy with explain" in note for note, _ in app.notes) == 2
        engine.gate.set()
        await idle(pilot, app)
        assert len(engine.user_requests) == 1
        await pilot.press("f4")  # free again
        await idle(pilot, app)
        assert len(engine.user_requests) == 2

    play(scenario, make_app(engine=engine))


def test_a_new_request_right_after_a_cancel_waits_for_the_engine() -> None:
    """The fake raises if two streams overlap: cancel-then-ask must serialise on the lock."""
    engine = FakeEngine(delay=0.02)

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        await pilot.press("f2")
        await until(pilot, lambda: app.main.answer.text)
        await pilot.press("escape")
        await idle(pilot, app)
        await pilot.press("f4")
        await idle(pilot, app)
        assert not app.noted("two threads")
        assert "review done" in status_text(app)

    play(scenario, make_app(engine=engine))


@pytest.mark.parametrize("error", [
    GenerationError("llama_decode failed with code 1"),
    ContextError("the code to rewrite (9000 tokens) does not fit the context of 8192 tokens"),
    RuntimeError("unexpected"),
])
def test_generation_errors_are_notifications(error: Exception) -> None:
    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        await pilot.press("f2")
        await idle(pilot, app)
        message = str(error) if not isinstance(error, RuntimeError) else "RuntimeError: unexpected"
        assert any(message in note and severity == "error" for note, severity in app.notes)
        assert "explain failed" in status_text(app)
        await pilot.press("f4")  # the app still takes requests
        await idle(pilot, app)
        assert app.is_running

    play(scenario, make_app(engine=FakeEngine(fail_with=error)))


def test_engine_notices_are_notifications() -> None:
    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        await pilot.press("f2")
        await idle(pilot, app)
        assert app.noted("left out the outline")

    play(scenario, make_app(engine=FakeEngine(notice="left out the outline")))


# ---- files -----------------------------------------------------------------------------------


def test_ctrl_s_saves_atomically(tmp_path: Path) -> None:
    target = tmp_path / "m.py"
    target.write_text(SAMPLE)

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        assert app.main.editor.language == "python" and not app.main.dirty
        app.main.editor.insert("# hi\n", (0, 0))
        await pilot.pause()
        assert "m.py ●" in status_text(app)
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert target.read_text() == "# hi\n" + SAMPLE
        assert "m.py ●" not in status_text(app) and not app.main.dirty
        assert sorted(p.name for p in tmp_path.iterdir()) == ["m.py"]

    play(scenario, make_app(text=None, path=target))


def test_saving_an_untitled_buffer_asks_for_a_path(tmp_path: Path) -> None:
    target = tmp_path / "new.py"

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        assert app.main.dirty  # piped text has never been saved
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, PathScreen)
        app.screen.query_one("#open-path").value = str(target)  # type: ignore[attr-defined]
        await pilot.press("enter")
        await pilot.pause()
        assert target.read_text() == "print(1)\n"
        assert app.main.path == target and app.main.editor.language == "python" and not app.main.dirty

    play(scenario, make_app(text="print(1)\n", path=None))


def test_save_as_over_an_existing_file_asks_first(tmp_path: Path) -> None:
    target = tmp_path / "old.py"
    target.write_text("keep\n")

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        await pilot.press("ctrl+s")
        await pilot.pause()
        app.screen.query_one("#open-path").value = str(target)  # type: ignore[attr-defined]
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await pilot.pause()
        assert target.read_text() == "keep\n"

    play(scenario, make_app(text="new\n", path=None))


def test_a_failed_save_is_a_notification(tmp_path: Path) -> None:
    target = tmp_path / "f.py"
    target.write_text("x\n")

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        target.unlink()
        target.mkdir()  # the file became a folder behind our back (root ignores file modes)
        app.main.editor.insert("y")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert any("not a regular file" in note and severity == "error"
                   for note, severity in app.notes)
        assert app.main.dirty and app.is_running

    play(scenario, make_app(text=None, path=target))


def test_ctrl_o_opens_a_file_and_asks_first_about_unsaved_changes(tmp_path: Path) -> None:
    other = tmp_path / "other.rs"
    other.write_text("fn main() {}\n")

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        app.main.editor.insert("# unsaved\n", (0, 0))
        await pilot.press("ctrl+o")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press(*"small.py")  # typed ahead for the path: no letter answers the question
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("enter")  # the focused button is the safe one: keep the changes
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen) and app.main.editor.text.startswith("# unsaved")
        await pilot.press("ctrl+o")
        await pilot.pause()
        await pilot.press("tab", "enter")  # Discard
        await pilot.pause()
        assert isinstance(app.screen, PathScreen)
        app.screen.query_one("#open-path").value = str(other)  # type: ignore[attr-defined]
        await pilot.press("enter")
        await pilot.pause()
        assert app.main.editor.text == "fn main() {}\n" and app.main.path == other
        assert app.main.editor.language == "rust" and not app.main.dirty
        await pilot.press("ctrl+z")
        assert app.main.editor.text == "fn main() {}\n"  # opening is not an undoable edit

    play(scenario)


def test_opening_a_binary_file_is_refused(tmp_path: Path) -> None:
    blob = tmp_path / "b.bin"
    blob.write_bytes(b"\x00\x01")

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        await pilot.press("ctrl+o")
        await pilot.pause()
        app.screen.query_one("#open-path").value = str(blob)  # type: ignore[attr-defined]
        await pilot.press("enter")
        await pilot.pause()
        assert app.noted("is a binary file") and app.main.editor.text == SAMPLE

    play(scenario)


def test_quit_without_changes_exits() -> None:
    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        await pilot.press("ctrl+q")
        await pilot.pause()

    app = play(scenario)
    assert app.return_code == 0 and not app.is_running


def test_quit_with_unsaved_changes_asks_first() -> None:
    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        app.main.editor.insert("z")
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y", "escape")  # y is no answer; Esc stays
        await pilot.pause()
        assert app.is_running and app.main.editor.text.startswith("z")
        await pilot.press("ctrl+q")
        await pilot.pause()
        await pilot.press("left", "enter")  # Quit
        await pilot.pause()

    app = play(scenario)
    assert not app.is_running


def test_shutdown_closes_the_engine() -> None:
    engine = FakeEngine()

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        await pilot.press("f2")
        await idle(pilot, app)

    app = play(scenario, make_app(engine=engine))
    app.shutdown_engine()
    assert engine.closed


def test_quitting_during_a_request_cancels_it_and_closes_the_engine() -> None:
    engine = FakeEngine(gate=threading.Event())

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        await pilot.press("f2")
        await until(pilot, lambda: app.main.answer.text)
        await pilot.press("ctrl+q")
        await pilot.pause()

    app = play(scenario, make_app(engine=engine))
    assert not app.is_running
    started = time.monotonic()
    app.shutdown_engine()
    assert time.monotonic() - started < 30  # the fake holds a stream 60 s unless it is cancelled
    # the held stream would have gone on for minutes: quitting cancelled it
    assert engine.closed and engine.cancelled == 1 and not engine.gate.is_set()



def test_quitting_while_the_model_loads_stops_the_load() -> None:
    """A 27B model takes many seconds to load: quitting must not wait for it (the real load: test_engine.py)."""
    stopped: list[BaseException] = []

    def slow_load(settings: QcodeSettings, progress: Any) -> Any:
        try:
            for i in range(12000):  # two minutes of loading, unless stopped
                progress("loading big.gguf", i / 12000)
                time.sleep(0.01)
        except BaseException as exc:
            stopped.append(exc)
            raise
        raise AssertionError("the load was never stopped")

    app = RecordingApp(QcodeSettings(), Path("sample.py"), SAMPLE, loader=slow_load)

    async def main() -> None:
        async with app.run_test() as pilot:
            await until(pilot, lambda: "loading" in status_text(app), 10, "the loading state")
            await pilot.press("ctrl+q")

    started = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - started < 60  # generous: the load alone would take two minutes
    assert stopped and isinstance(stopped[0], LoadCancelled)


# ---- help, palette, layout -------------------------------------------------------------------


@pytest.mark.parametrize("keys", [("f1",), ("ctrl+t", "question_mark")])
def test_help_screen_lists_the_keys(keys: tuple[str, ...]) -> None:
    """F1 anywhere; `?` only where it types nothing (the answer pane)."""

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        await pilot.press(*keys)
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        rows = app.screen.rows
        assert rows[:5] == app.key_rows()[:5]
        text = "\n".join(f"{key} {description}" for key, description in rows)
        for fragment in ("f1 Keys", "^s Save", "^o Open", "^l Go to the prompt line", "^space Suggest code",
                         "f2 Explain the code", "f7 Write tests", "f8 Switch", "^t Go to the answer pane",
                         "^q Quit", "^c Cancel the running request", "Accept the suggestion"):
            assert fragment in text
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)

    play(scenario)


def test_question_mark_in_the_editor_is_just_text() -> None:
    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        await pilot.press("question_mark")
        assert app.main.editor.text.startswith("?") and not isinstance(app.screen, HelpScreen)

    play(scenario)


def test_command_palette_lists_every_action() -> None:
    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        titles = {command.title for command in app.get_system_commands(app.screen)}
        assert {"Complete", "Explain", "Refactor", "Review", "Fix", "Doc", "Test", "Save", "Open",
                "Cancel request", "Answer", "Prompt", "Scope", "Help", "Quit"} <= titles

    play(scenario)


def test_a_palette_command_runs_its_action() -> None:
    engine = FakeEngine()

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        app.main.editor.move_cursor(ADD_BODY)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Review")

        def review_highlighted() -> bool:  # the palette searches in the background
            commands = app.screen.query_one(CommandList)
            index = commands.highlighted
            return index is not None and "Review" in str(commands.get_option_at_index(index).prompt)

        await until(pilot, review_highlighted, what="the Review command")
        await pilot.press("enter")
        await until(pilot, lambda: engine.requests, what="the review request")
        await idle(pilot, app)
        assert engine.requests[-1].prompt.startswith("TASK\nreview\n")

    play(scenario, make_app(engine=engine))


def test_ctrl_t_toggles_the_answer_pane() -> None:
    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        assert not app.main.answer.display or app.main.answer.has_class("-hidden")
        await pilot.press("ctrl+t")
        await pilot.pause()
        assert app.main.answer.region.width > 0
        await pilot.press("ctrl+t")
        await pilot.pause()
        assert app.main.answer.region.width == 0

    play(scenario)


def test_escape_in_the_prompt_goes_back_to_the_editor() -> None:
    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        await pilot.press("ctrl+l")
        assert app.main.prompt.input.has_focus
        await pilot.press("escape")
        assert app.main.editor.has_focus

    play(scenario)


@pytest.mark.parametrize(("size", "beside"), [((80, 24), False), ((160, 50), True)])
def test_the_answer_goes_beside_the_editor_when_wide_and_below_when_narrow(
    size: tuple[int, int], beside: bool,
) -> None:
    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        await pilot.press("f2")
        await idle(pilot, app)
        editor, answer = app.main.editor.region, app.main.answer.region
        if beside:
            assert answer.x >= editor.right and answer.y == editor.y
        else:
            assert answer.y >= editor.bottom and answer.x == editor.x
        assert editor.height >= 5 and answer.height >= 5

    play(scenario, size=size)


def test_files_without_a_grammar_open_as_plain_text(tmp_path: Path) -> None:
    odd = tmp_path / "notes.cob"
    odd.write_text("IDENTIFICATION DIVISION.\n")

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        assert app.main.editor.language is None and app.main.editor.text == "IDENTIFICATION DIVISION.\n"

    play(scenario, make_app(text=None, path=odd))


def test_the_app_still_works_when_the_engine_lacks_a_grammar_for_scopes() -> None:
    """A language with highlighting but no scope finder: actions fall back to the whole file."""
    engine = FakeEngine()

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        await ready(pilot, app)
        await pilot.press("f2")
        await idle(pilot, app)
        assert engine.requests[-1].prompt.endswith("---\nkey = 1\n")

    play(scenario, make_app(text="key = 1\n", path=Path("c.toml"), engine=engine))


# ---- nothing lost, nothing wrong written (issue 12) ------------------------------------------


def test_ctrl_s_asks_before_overwriting_a_change_made_on_disk(tmp_path: Path) -> None:
    target = tmp_path / "m.py"
    target.write_text(SAMPLE)

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        app.main.editor.insert("# mine\n", (0, 0))
        target.write_text(SAMPLE + "# theirs\n")  # another editor saved meanwhile
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen) and "changed on disk" in app.screen.question
        await pilot.press("enter")  # the focused button: Cancel
        await pilot.pause()
        assert target.read_text() == SAMPLE + "# theirs\n" and app.main.dirty
        await pilot.press("ctrl+s")
        await pilot.pause()
        await pilot.press("left", "enter")  # Overwrite, as asked
        await pilot.pause()
        assert target.read_text() == "# mine\n" + SAMPLE and not app.main.dirty
        # after its own save the app knows the file again: a second save asks nothing
        app.main.editor.insert("# more\n", (0, 0))
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        assert target.read_text() == "# more\n# mine\n" + SAMPLE
        assert sorted(p.name for p in tmp_path.iterdir()) == ["m.py"]

    play(scenario, make_app(text=None, path=target))


def test_a_bom_and_crlf_file_is_saved_as_it_was(tmp_path: Path) -> None:
    target = tmp_path / "w.py"
    target.write_bytes(b"\xef\xbb\xbf" + SAMPLE.replace("\n", "\r\n").encode())

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        assert not app.main.editor.text.startswith("\ufeff")
        app.main.editor.insert("# hi\n", (0, 0))
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert target.read_bytes() == b"\xef\xbb\xbf" + ("# hi\n" + SAMPLE).replace("\n", "\r\n").encode()

    play(scenario, make_app(text=None, path=target))


def test_a_rewrite_that_fails_the_checks_is_not_offered() -> None:
    # the model copied the outline's placeholder back instead of the function
    engine = FakeEngine(respond=lambda request: "# ... function add (lines 4-5) is left out here\n")

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        app.main.editor.move_cursor(ADD_BODY)
        await pilot.press("f5")
        await until(pilot, lambda: app.noted("Not offered for review"), what="the refusal")
        assert not isinstance(app.screen, DiffReviewScreen)
        assert app.noted("Not offered for review: the answer copied qcode's prompt back")
        assert "fix: not offered" in status_text(app) and app.main.editor.text == SAMPLE

    play(scenario, make_app(engine=engine))


def _tested_app(tmp_path: Path, command: str) -> tuple[Path, RecordingApp]:
    target = tmp_path / "sample.py"
    target.write_text(SAMPLE)
    return target, make_app(text=None, path=target, settings=QcodeSettings(test_cmd=command))


@pytest.mark.parametrize("passes", [True, False])
def test_accepting_with_a_test_command_saves_and_tests(tmp_path: Path, passes: bool) -> None:
    command = f"{sys.executable} -c 'import sys; sys.exit({0 if passes else 1})'"
    target, app = _tested_app(tmp_path, command)

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        app.main.editor.move_cursor(ADD_BODY)
        await pilot.press("f5")
        await until(pilot, lambda: isinstance(app.screen, DiffReviewScreen), what="the diff")
        await pilot.press("ctrl+y")
        await until(pilot, lambda: "saved" in status_text(app) or "undone" in status_text(app),
                    30, "the tests")
        if passes:
            assert "fix saved, tests passed" in status_text(app)
            assert target.read_text() == app.main.editor.text != SAMPLE and not app.main.dirty
        else:
            assert "fix undone: tests failed (exit 1)" in status_text(app)
            assert app.noted("The tests failed (exit 1) after the rewrite; sample.py is back")
            assert target.read_text() == SAMPLE and app.main.editor.text == SAMPLE and not app.main.dirty
        assert sorted(p.name for p in tmp_path.iterdir()) == ["sample.py"] + (
            ["sample.py.qcode-bak"] if passes else [])

    play(scenario, app)


def test_fix_with_a_test_command_runs_it_first(tmp_path: Path) -> None:
    command = f"{sys.executable} -c 'import sys; print(\"E  assert 5 == 6\"); sys.exit(1)'"
    _, app = _tested_app(tmp_path, command)
    FakeTasks.seen.clear()

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        app.main.editor.move_cursor(ADD_BODY)
        await pilot.press("f5")
        await until(pilot, lambda: isinstance(app.screen, DiffReviewScreen), 30, "the diff")
        assert app.noted("the tests failed (exit 1) before the fix")
        assert FakeTasks.seen[-1].failure == "E  assert 5 == 6\n"

    play(scenario, app)
