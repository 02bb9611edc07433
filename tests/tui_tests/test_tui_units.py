"""The TUI's pieces that need no screen: the worker loop, the engine adapters, the formatters."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from fake_engine import FakeEngine, FakeTasks, fake_loader

from engine.code import detect_language
from engine.edit import unified_diff
from engine.errors import ContextError, InputError, ModelError, QcodeError
from engine.events import CUT_OFF, DoneEvent, GenerationRequest, ProgressEvent, Stats, TextEvent
from engine.files import FileChanged
from engine.settings import QcodeSettings
from tui import actions, files
from tui.backend import COMPLETION_MAX_TOKENS, EngineBackend, ModelSummary
from tui.jobs import Job, drive
from tui.main_screen import scope_at, usable_language
from tui.messages import JobChunk, JobDone, JobFailed, JobNotice, JobProgress
from tui.widgets.diff_review import count_changes
from tui.widgets.editor import cap_lines, ghost_rows
from tui.widgets.help import keys_table
from tui.widgets.status import FINISH_WORDS, Metrics, describe_metrics, describe_model, progress_text


def run_drive(job: Job, events, lock: threading.Lock | None = None) -> list[object]:
    posted: list[object] = []
    drive(job, events, lock or threading.Lock(), posted.append)
    return posted


def test_drive_streams_chunks_then_done() -> None:
    events = [TextEvent("a"), TextEvent("b"), DoneEvent("ab", Stats(completion_tokens=2))]
    posted = run_drive(Job(1, "task", "explain"), lambda: iter(events))
    assert [type(m) for m in posted] == [JobChunk, JobChunk, JobDone]
    assert [m.text for m in posted[:2]] == ["a", "b"]
    done = posted[-1]
    assert done.text == "ab" and not done.cancelled and done.stats.completion_tokens == 2


def test_drive_reports_qcode_errors_as_their_message() -> None:
    def events():
        yield TextEvent("x")
        raise ContextError("the request needs 9000 tokens but the context holds 8192")

    posted = run_drive(Job(2, "task", "review"), events)
    assert isinstance(posted[-1], JobFailed)
    assert posted[-1].error == "the request needs 9000 tokens but the context holds 8192"


def test_drive_turns_crashes_into_failures() -> None:
    def events():
        raise ValueError("boom")
        yield  # pragma: no cover

    posted = run_drive(Job(3, "task", "fix"), events)
    assert isinstance(posted[-1], JobFailed) and "ValueError: boom" in posted[-1].error


def test_drive_cancelled_before_start_never_opens_the_engine() -> None:
    job = Job(4, "complete", "complete")
    job.cancel.set()
    opened: list[bool] = []
    posted = run_drive(job, lambda: opened.append(True) or iter(()))
    assert not opened
    assert isinstance(posted[-1], JobDone) and posted[-1].cancelled


def test_drive_shows_nothing_after_a_cancel_but_lets_the_engine_finish() -> None:
    job = Job(5, "task", "explain")
    finished: list[bool] = []

    def events():
        yield TextEvent("one")
        job.cancel.set()  # the user pressed Esc; the engine still has a step to finish
        yield TextEvent("two")
        yield DoneEvent("onetwo", Stats(completion_tokens=2, finish_reason="cancelled"))
        finished.append(True)

    posted = run_drive(job, events)
    assert finished == [True]  # read to the end: the engine was not cut off mid-step
    assert [m.text for m in posted if isinstance(m, JobChunk)] == ["one"]
    assert posted[-1].cancelled and posted[-1].text == "one"
    assert posted[-1].stats.finish_reason == "cancelled"


def test_drive_waits_for_the_engine_lock() -> None:
    lock = threading.Lock()
    lock.acquire()
    posted: list[object] = []
    worker = threading.Thread(target=drive, args=(
        Job(6, "task", "explain"), lambda: iter([DoneEvent("x")]), lock, posted.append))
    worker.start()
    worker.join(0.2)
    assert worker.is_alive() and posted == []  # still waiting for the first request to finish
    lock.release()
    worker.join(5)
    assert isinstance(posted[-1], JobDone)


def test_drive_forwards_notices() -> None:
    engine = FakeEngine(notice="input trimmed to fit the context")
    backend = EngineBackend(engine, FakeTasks, QcodeSettings())
    job = Job(7, "task", "explain")
    posted = run_drive(job, lambda: backend.run_task(
        "explain", "x = 1\n", path=None, language="python", instruction=None, lines=None,
        cancel=job.cancel))
    assert isinstance(posted[0], JobNotice)
    assert posted[0].message == "input trimmed to fit the context"


def test_engine_backend_passes_the_task_and_completion_through() -> None:
    engine = FakeEngine(kv_type="server")  # the engine's own label (a server says "server")
    settings = QcodeSettings(kv_type_k="q8_0", kv_type_v="f16", draft="ngram")
    backend = EngineBackend(engine, FakeTasks, settings)
    assert backend.summary == ModelSummary("fake-coder-1b", "Q4_K_S", "server", "ngram", 4096)
    cancel = threading.Event()
    code = "x = 1\ny = 2\n"
    list(backend.run_task("refactor", code, path=Path("a.py"), language="python",
                          instruction="rename y", lines=(2, 2), cancel=cancel))
    assert engine.requests[-1].prompt == "TASK\nrefactor\nrename y\n---\ny = 2"
    answer = "```python\nz = 2\n```\n"
    result = backend.rewritten("refactor", code, answer, path=None, language="python",
                               instruction="rename y", lines=(2, 2))
    assert result.text == "x = 1\nz = 2\n" and result.problems == ()
    copied = backend.rewritten("refactor", code, "```python\n<|im_end|>\n", path=None,
                               language="python", instruction="rename y", lines=(2, 2))
    assert copied.refusal() is not None and copied.refusal().check == "scaffolding"  # type: ignore[union-attr]
    events = list(backend.complete("ab", 1, language=None, cancel=cancel))
    assert engine.requests[-1].prompt == "COMPLETE\na<CURSOR>b"
    assert engine.requests[-1].max_tokens == COMPLETION_MAX_TOKENS
    assert isinstance(events[-1], DoneEvent)
    backend.evaluate_ahead("warm-up", "ab", 1, language=None, cancel=cancel, path=Path("a.py"))
    assert engine.requests[-1].prompt == "WARM\na<CURSOR>" and engine.requests[-1].max_tokens == 1
    backend.close()
    assert engine.closed


def test_fake_loader_fails_with_a_model_error() -> None:
    with pytest.raises(ModelError, match="no such model"):
        fake_loader(fail="no such model")(QcodeSettings(), lambda text, fraction: None)


def test_fake_engine_refuses_two_streams_at_once() -> None:
    engine = FakeEngine()
    first = engine.stream(GenerationRequest("a"))
    next(first)
    with pytest.raises(RuntimeError, match="two threads"):
        next(engine.stream(GenerationRequest("b")))
    first.close()


def test_highlighting_falls_back_to_plain_text() -> None:
    assert detect_language(Path("x.py"), "") == "python"
    assert usable_language("python") == "python"
    assert usable_language("cobol") is None  # no grammar installed: plain text, no crash
    assert usable_language(None) is None


def test_scope_at_counts_from_zero_and_is_none_past_the_last_line() -> None:
    text = "def f():\n    return 1\n"
    scope = scope_at(text, "python", 1, 4)
    assert scope is not None and scope.name == "f"
    assert scope_at(text, "python", 2, 0) is None  # the empty row after the final newline
    assert scope_at(text, None, 1, 4) is None


def test_count_changes_reads_a_unified_diff() -> None:
    assert count_changes(unified_diff("a\nb\n", "a\nc\nd\n", "m.py")) == (2, 1)


def test_opening_refuses_binary_non_utf8_and_directories(tmp_path: Path) -> None:
    binary = tmp_path / "b.bin"
    binary.write_bytes(b"\x00\x01\x02")
    latin = tmp_path / "l.txt"
    latin.write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(InputError, match="is a binary file"):
        files.open_for_editor(binary)
    with pytest.raises(InputError, match="not UTF-8"):
        files.open_for_editor(latin)
    with pytest.raises(InputError, match="is a directory"):
        files.open_for_editor(tmp_path)


def test_a_new_name_and_an_empty_file_open_empty(tmp_path: Path) -> None:
    assert files.open_for_editor(tmp_path / "new.py") == files.OpenedFile(tmp_path / "new.py", "", new=True)
    empty = tmp_path / "empty.py"
    empty.write_text("")
    opened = files.open_for_editor(empty)
    assert (opened.text, opened.new, opened.snapshot.size) == ("", False, 0)  # type: ignore[union-attr]


def test_saving_creates_keeps_a_bom_and_refuses_a_change_made_on_disk(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(QcodeError, match="cannot write"):
        files.save(blocker / "inside.py", "y\n")
    target = tmp_path / "ok.py"
    snapshot = files.save(target, "y\n", bom=True)
    assert target.read_bytes() == b"\xef\xbb\xbfy\n"
    assert files.open_for_editor(target).snapshot == snapshot
    target.write_text("theirs\n")
    with pytest.raises(FileChanged):
        files.save(target, "mine\n", expect=snapshot)
    assert target.read_text() == "theirs\n"


def test_status_formatters() -> None:
    summary = ModelSummary("gemma", "Q4_K_M", "q8_0", "auto", 8192)
    assert describe_model(summary) == "gemma Q4_K_M · kv q8_0 · draft auto"
    assert describe_model(summary, Stats(drafter="ngram")).endswith("draft ngram")
    stats = Stats(prompt_tokens=300, completion_tokens=12, decode_tokens_per_s=85.25,
                  draft_proposed=10, draft_accepted=6)
    text = describe_metrics(Metrics(stats=stats, suggestion_ms=123.4, suggestion_eval=(5, 300)),
                            8192)
    assert text == "suggest 123 ms · eval 5/300 tok · 85.2 tok/s · acc 60% · ctx 312/8192"
    assert "acc" not in describe_metrics(Metrics(stats=Stats(completion_tokens=1)), 8192)


def test_the_completion_key_comes_with_the_nul_a_terminal_sends_for_it() -> None:
    assert actions.completion_keys("ctrl+space") == "ctrl+space,ctrl+@,ctrl+at"
    assert actions.completion_keys("f9") == "f9"
    assert actions.completion_keys("f9, ctrl+@") == "f9,ctrl+@,ctrl+space,ctrl+at"


def test_the_table_puts_help_save_open_prompt_first_and_feeds_every_level() -> None:
    table = actions.commands("ctrl+space")
    shown = [command.label for command in table if command.footer]
    assert shown[:5] == ["Help", "Save", "Open", "Prompt", "Complete"]
    assert shown[5:11] == ["Explain", "Refactor", "Review", "Fix", "Doc", "Test"]
    main = actions.main_screen_bindings(table)
    assert [binding.description for binding in main if binding.show] == shown
    # the app-level commands run on the app from the main screen too
    assert {b.action for b in main if b.description in ("Help", "Quit")} == {"app.help", "app.quit"}
    assert [b.action for b in actions.bindings(table, "app")] == ["help", "quit", "command_palette"]
    rows = actions.help_rows(table, {"f1": "F1"})
    assert rows[0] == ("F1", table[0].help) and len(rows) == len(table) + len(actions.EXTRA_HELP)


def test_tasks_can_come_from_another_registry() -> None:
    @dataclass(frozen=True)
    class Row:
        name: str
        key: str
        help: str
        kind: str = "prose"

    table = actions.commands("f9", [Row("explain", "f2", "Explain it"), Row("lint", "f10", "Lint it")])
    tasks = [c for c in table if c.group == actions.TASK_GROUP]
    assert [(c.action, c.keys, c.label, c.help) for c in tasks] == [
        ("task('explain')", "f2", "Explain", "Explain it"), ("task('lint')", "f10", "Lint", "Lint it")]


def test_help_table_has_a_row_per_binding() -> None:
    table = keys_table([("f2", "Explain the code"), ("^s", "Save the file")])
    assert table.row_count == 2
    assert [cell for column in table.columns for cell in column.cells] == [
        "f2", "^s", "Explain the code", "Save the file"]


def test_drive_forwards_progress_until_a_cancel() -> None:
    job = Job(8, "task", "explain")
    events = [ProgressEvent("prompt", 0, 900, 0.0), ProgressEvent("prompt", 512, 900, 4.0),
              TextEvent("a"), ProgressEvent("decode", 16, 64, 6.0), DoneEvent("a", Stats())]
    posted = run_drive(job, lambda: iter(events))
    assert [type(m) for m in posted] == [JobProgress, JobProgress, JobChunk, JobProgress, JobDone]
    assert posted[1].progress == ProgressEvent("prompt", 512, 900, 4.0)

    cancelled = Job(9, "task", "explain")

    def stream():
        yield ProgressEvent("prompt", 0, 900, 0.0)
        cancelled.cancel.set()
        yield ProgressEvent("prompt", 512, 900, 4.0)
        yield DoneEvent("", Stats(finish_reason="cancelled"))

    assert [type(m) for m in run_drive(cancelled, stream)] == [JobProgress, JobDone]


def test_progress_text_reads_the_prompt_then_the_answer() -> None:
    assert progress_text("explain", None, 2.4, None) == "explain · waiting · 2 s"
    prompt = ProgressEvent("prompt", 1024, 4210, 9.0)
    assert progress_text("explain", prompt, 9.2, None) == "explain · prompt 1,024/4,210 tok · 9 s"
    decode = ProgressEvent("decode", 48, 512, 14.0)
    assert progress_text("explain", decode, 14.4, 31.25) == "explain · 48 tok · 31.2 tok/s · 14 s"
    assert set(FINISH_WORDS) == set(CUT_OFF) - {"cancelled"}  # every way an answer is cut off has words


def test_cap_lines_keeps_whole_lines() -> None:
    assert cap_lines("a\nb\nc\n", 2) == "a\nb"
    assert cap_lines("a\nb", 2) == "a\nb"
    assert cap_lines("a\nb\n", 2) == "a\nb\n"  # two lines and the break after them: all shown
    assert ghost_rows("a\nb\n") == ["a", "b⏎"] and ghost_rows("\n") == ["⏎"] and ghost_rows("a") == ["a"]
