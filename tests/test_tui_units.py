"""The TUI's pieces that need no screen: the worker loop, the engine adapters, the formatters."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from fake_engine import FakeEngine, FakeTasks, fake_loader

from engine.edit import unified_diff
from engine.errors import ContextError, ModelError
from engine.events import DoneEvent, GenerationRequest, Stats, TextEvent
from engine.settings import QcodeSettings
from tui.app import _ordered_bindings, _read_file, _scope_at, _usable_language
from tui.backend import COMPLETION_MAX_TOKENS, EngineBackend, ModelSummary
from tui.jobs import Job, drive
from tui.messages import JobChunk, JobDone, JobFailed, JobNotice
from tui.widgets.diff_review import count_changes
from tui.widgets.help import keys_table
from tui.widgets.status import Metrics, describe_metrics, describe_model


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
    backend.warm("ab", 1, language=None, cancel=cancel, path=Path("a.py"))
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
    assert _usable_language("python") == "python"
    assert _usable_language("cobol") is None  # no grammar installed: plain text, no crash
    assert _usable_language(None) is None


def test_scope_at_counts_from_zero_and_is_none_past_the_last_line() -> None:
    text = "def f():\n    return 1\n"
    scope = _scope_at(text, "python", 1, 4)
    assert scope is not None and scope.name == "f"
    assert _scope_at(text, "python", 2, 0) is None  # the empty row after the final newline
    assert _scope_at(text, None, 1, 4) is None


def test_count_changes_reads_a_unified_diff() -> None:
    assert count_changes(unified_diff("a\nb\n", "a\nc\nd\n", "m.py")) == (2, 1)


def test_read_file_refuses_binary_and_non_utf8(tmp_path: Path) -> None:
    binary = tmp_path / "b.bin"
    binary.write_bytes(b"\x00\x01\x02")
    latin = tmp_path / "l.txt"
    latin.write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(Exception, match="is a binary file"):
        _read_file(binary)
    with pytest.raises(Exception, match="not UTF-8"):
        _read_file(latin)
    assert _read_file(tmp_path / "new.py") is None  # a new file: it opens empty


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


def test_completion_key_bindings_put_complete_first() -> None:
    from tui.app import QcodeApp

    bindings = _ordered_bindings(QcodeApp._merged_bindings.copy(), "ctrl+space")
    keys = list(bindings.key_to_bindings)
    assert keys[0] == "ctrl+space"
    assert {"ctrl+@", "ctrl+at"} <= set(keys)  # the NUL a terminal sends for ctrl+space
    custom = _ordered_bindings(QcodeApp._merged_bindings.copy(), "f9")
    assert next(iter(custom.key_to_bindings)) == "f9" and "ctrl+space" not in custom.key_to_bindings


def test_help_table_has_a_row_per_binding() -> None:
    table = keys_table([("f2", "Explain the code"), ("^s", "Save the file")])
    assert table.row_count == 2
    assert [cell for column in table.columns for cell in column.cells] == [
        "f2", "^s", "Explain the code", "Save the file"]
