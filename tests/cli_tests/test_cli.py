"""`qcode` on the real default model, in-process and as a process.

The default model is a small base model, so what it writes is not predictable enough to test
an edit's content; the edit tests therefore come in two kinds: the real model end to end
(the pipeline holds whatever it answers), and scripted answers through the real code
extraction, splicing, parse check, diff and atomic write (exact outcomes).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fake_engine import FakeEngine
from samples import CODE, TIMES, error_lines

from engine.events import DoneEvent, Stats, TextEvent
from tui import cli_commands, cli_settings, cli_tools
from tui.cli import main

RunQcode = Callable[..., subprocess.CompletedProcess[str]]
ANSI = re.compile(r"\x1b\[")
STATS_KEYS = {
    "prompt_tokens", "prompt_tokens_evaluated", "completion_tokens", "ttft_ms",
    "decode_tokens_per_s", "draft_proposed", "draft_accepted", "drafter", "kv_type", "model",
}


# the real model, end to end


@pytest.mark.slow
def test_piped_explain_streams_plain_text(run_qcode: RunQcode) -> None:
    done = run_qcode(["explain", "--max-tokens", "12", "--stats"], stdin=CODE)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
    assert not ANSI.search(done.stdout)  # piped: no colour
    assert done.stdout.endswith("\n")
    stats = [line for line in done.stderr.splitlines() if line.startswith("qcode: stats:")]
    assert len(stats) == 1
    assert re.search(r"prompt \d+ tok .* \d+ tok, ttft \d+ ms, [\d.]+ tok/s", stats[0])
    assert "kv q8_0" in stats[0] and stats[0].endswith(", model Qwen2.5 Coder 1.5B Instruct GGUF")


@pytest.mark.slow
def test_explain_in_process_with_json(
    calc: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["explain", str(calc), "--max-tokens", "8", "--json", "--kv-type", "f16"]) == 0
    captured = capsys.readouterr()
    record = json.loads(captured.out)  # exactly one JSON document, nothing else on stdout
    assert set(record) == {"text", "stats"}
    assert record["text"]
    stats = record["stats"]
    assert set(stats) >= STATS_KEYS
    assert 1 <= stats["completion_tokens"] <= 8
    assert stats["kv_type"] == "f16"  # the flag reached the engine
    assert stats["model"]
    assert stats["prompt_tokens"] > 20


@pytest.mark.slow
def test_ask_about_a_file(calc: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ask", "What does mul return?", str(calc), "--max-tokens", "6"]) == 0
    assert capsys.readouterr().out.strip()


@pytest.mark.slow
def test_explain_does_not_import_textual(run_qcode: RunQcode, calc: Path) -> None:
    done = run_qcode(
        ["explain", str(calc), "--max-tokens", "4"], env={"PYTHONPROFILEIMPORTTIME": "1"}
    )
    assert done.returncode == 0, done.stderr[-2000:]
    imported = {
        line.rsplit("|", 1)[-1].strip()
        for line in done.stderr.splitlines() if line.startswith("import time:")
    }
    assert "llama_cpp" in imported  # the log is real: the model was loaded
    assert "tui.cli_commands" in imported
    assert not {name for name in imported if name.split(".")[0] == "textual"}


@pytest.mark.slow
def test_complete_prints_only_the_insertion(run_qcode: RunQcode, calc: Path) -> None:
    args = ["complete", str(calc), "--line", "9", "--col", "5", "--max-tokens", "8"]
    plain = run_qcode(args)
    assert plain.returncode == 0, plain.stderr
    record = json.loads(run_qcode([*args, "--json"]).stdout)
    assert record["offset"] == CODE.index("return total")
    # the same greedy run twice: stdout carries the insertion text and nothing more
    assert plain.stdout == record["text"]
    assert record["stats"]["completion_tokens"] <= 8


@pytest.mark.slow
def test_complete_from_stdin_with_offset(
    pipe_stdin: Callable[[str], None], capsys: pytest.CaptureFixture[str]
) -> None:
    pipe_stdin(CODE)
    assert main(["complete", "--offset", "15", "--max-tokens", "6", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["offset"] == 15
    assert record["stats"]["completion_tokens"] <= 6


@pytest.mark.slow
def test_refactor_on_the_real_model(run_qcode: RunQcode, calc: Path) -> None:
    """Whatever the small model answers, the file is either rewritten safely or left alone."""
    done = run_qcode(
        ["refactor", str(calc), "-m", "rename mul to times", "--max-tokens", "96", "--apply"]
    )
    backups = [p for p in calc.parent.iterdir() if p.name != calc.name]
    if done.returncode == 0:
        assert done.stdout.startswith("---") or "no changes" in done.stderr
        if backups:
            assert [p.read_text() for p in backups] == [CODE]
            assert "backup:" in done.stderr
    else:
        assert done.returncode == 1
        assert len(error_lines(done.stderr)) == 1
        assert calc.read_text() == CODE
        assert backups == []


@pytest.mark.slow
def test_missing_and_corrupt_model(run_qcode: RunQcode, calc: Path, tmp_path: Path) -> None:
    done = run_qcode(["explain", str(calc), "--model", str(tmp_path / "nope.gguf")])
    assert done.returncode == 1
    assert "neither a model name (coder-1.5b, coder-0.5b) nor a file that exists" in error_lines(done.stderr)[0]
    done = run_qcode(["explain", str(calc), "--model", "coder-9b"])
    assert done.returncode == 1 and "model 'coder-9b' is neither a model name" in error_lines(done.stderr)[0]
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 64)
    done = run_qcode(["explain", str(calc), "--model", str(bad)])
    assert done.returncode == 1
    assert len(error_lines(done.stderr)) == 1
    assert done.stdout == ""


@pytest.mark.slow
def test_ctrl_c_mid_generation(
    calc: Path, spawn_qcode: Callable[..., subprocess.Popen[bytes]]
) -> None:
    process = spawn_qcode(["explain", str(calc), "--max-tokens", "3000"])
    assert process.stdout is not None
    first = process.stdout.read(1)  # blocks until the answer starts streaming
    assert first
    process.send_signal(signal.SIGINT)
    try:
        rest, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, err
    assert b"Traceback" not in err
    assert (first + rest).endswith(b"\n")  # the partial answer was flushed and its line closed


# scripted answers: exact outcomes of the edit path


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> Callable[..., list[Any]]:
    """script(answer, finish="stop") makes the next task stream `answer`; returns its inputs."""
    seen: list[Any] = []

    @contextmanager
    def stub_engine(settings: Any) -> Iterator[FakeEngine]:
        yield FakeEngine()  # stands in for the model; the task's answer is scripted below

    def script(answer: str, finish: str = "stop") -> list[Any]:
        def run_task(engine: Any, task_input: Any, cancel: Any = None) -> Iterator[Any]:
            seen.append(task_input)
            for start in range(0, len(answer), 7):
                yield TextEvent(answer[start : start + 7])
            yield DoneEvent(answer, Stats(completion_tokens=len(answer) // 4, finish_reason=finish))

        monkeypatch.setattr("engine.tasks.run_task", run_task)
        return seen

    monkeypatch.setattr(cli_commands, "_engine", stub_engine)
    return script


def leftovers(folder: Path, keep: str) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != keep)


def test_refactor_prints_a_diff_and_leaves_the_file(
    scripted: Callable[..., list[Any]], calc: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs = scripted(TIMES)
    assert main(["refactor", str(calc), "-m", "rename mul to times"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("--- a/") and "\n-def mul(a, b):\n+def times(a, b):\n" in out
    assert not ANSI.search(out)
    assert calc.read_text() == CODE
    assert inputs[0].task == "refactor" and inputs[0].instruction == "rename mul to times"
    assert inputs[0].language == "python" and inputs[0].path == calc


def test_apply_writes_atomically_with_a_backup(
    scripted: Callable[..., list[Any]], calc: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scripted(TIMES)
    inode = calc.stat().st_ino
    assert main(["refactor", str(calc), "-m", "rename", "--apply"]) == 0
    captured = capsys.readouterr()
    assert calc.read_text() == TIMES
    assert calc.stat().st_ino != inode  # replaced by a rename, never rewritten in place
    (backup,) = leftovers(calc.parent, calc.name)  # and no temporary file left behind
    assert (calc.parent / backup).read_text() == CODE
    assert f"(backup: {calc.parent / backup})" in captured.err
    assert "+def times(a, b):" in captured.out


def test_apply_refuses_a_result_that_does_not_parse(
    scripted: Callable[..., list[Any]], calc: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = CODE.replace("def mul(a, b):", "def mul(a, b:")
    scripted(broken)
    assert main(["fix", str(calc), "--apply"]) == 1
    captured = capsys.readouterr()
    assert "does not parse as python" in error_lines(captured.err)[0]
    assert calc.read_text() == CODE and leftovers(calc.parent, calc.name) == []
    assert "+def mul(a, b:" in captured.out  # the diff is still shown
    scripted(broken)
    assert main(["fix", str(calc), "--apply", "--force"]) == 0
    assert calc.read_text() == broken


def test_apply_refuses_a_rename_that_changes_logic(
    scripted: Callable[..., list[Any]], calc: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = TIMES.replace("total + a", "total * a")
    scripted(wrong)
    assert main(["refactor", str(calc), "-m", "rename mul to times", "--apply", "--json"]) == 1
    captured = capsys.readouterr()
    (line,) = error_lines(captured.err)
    assert "a rename should change only names, but line 8 `total = total + a`" in line and "--force" in line
    assert json.loads(captured.out)["refusals"][0]["check"] == "kind"
    assert calc.read_text() == CODE and leftovers(calc.parent, calc.name) == []
    scripted(wrong)
    assert main(["refactor", str(calc), "-m", "rename mul to times", "--apply", "--force"]) == 0
    assert calc.read_text() == wrong


def test_apply_refuses_a_cut_off_answer_even_with_force(
    scripted: Callable[..., list[Any]], calc: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scripted(TIMES[:40], finish="length")
    assert main(["doc", str(calc), "--apply", "--force"]) == 1
    assert "cut off (length)" in error_lines(capsys.readouterr().err)[0]
    assert calc.read_text() == CODE and leftovers(calc.parent, calc.name) == []


def test_an_interrupted_edit_writes_nothing(
    scripted: Callable[..., list[Any]], calc: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scripted(TIMES[:30], finish="cancelled")
    assert main(["refactor", str(calc), "-m", "x", "--apply"]) == 130
    assert capsys.readouterr().out == ""
    assert calc.read_text() == CODE and leftovers(calc.parent, calc.name) == []


def test_apply_refuses_an_answer_without_code(
    scripted: Callable[..., list[Any]], calc: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scripted("   \n")
    assert main(["refactor", str(calc), "-m", "x", "--apply"]) == 1
    assert "no code could be extracted" in error_lines(capsys.readouterr().err)[0]
    assert calc.read_text() == CODE


def test_a_focused_symbol_is_spliced_back(
    scripted: Callable[..., list[Any]], calc: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs = scripted("def mul(a, b):\n    return a * b\n")
    assert main(["refactor", str(calc), "--symbol", "mul", "-m", "simplify", "--apply"]) == 0
    assert inputs[0].symbol == "mul"
    assert calc.read_text() == CODE[: CODE.index("def mul")] + "def mul(a, b):\n    return a * b\n"


def test_output_writes_elsewhere_and_stdin_works(
    scripted: Callable[..., list[Any]], pipe_stdin: Callable[[str], None], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    scripted(TIMES)
    pipe_stdin(CODE)
    target = tmp_path / "out" / "new.py"
    assert main(["refactor", "-m", "rename", "--output", str(target), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert target.read_text() == TIMES
    assert record["written"] == str(target) and record["backup"] is None
    assert record["result"] == TIMES and record["diff"].startswith("--- a/<stdin>")


def test_ask_without_code(
    scripted: Callable[..., list[Any]], capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("tui.cli_input.stdin_is_piped", lambda: False)  # typed at a prompt
    inputs = scripted("Use a dict.")
    assert main(["ask", "How do I count words?"]) == 0
    assert capsys.readouterr().out == "Use a dict.\n"
    assert (inputs[0].task, inputs[0].code, inputs[0].instruction) == (
        "ask", "", "How do I count words?"
    )


def test_several_files_get_headers_or_json_lines(
    scripted: Callable[..., list[Any]], calc: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    other = tmp_path / "other.py"
    other.write_text("x = 1\n")
    inputs = scripted("Fine.\n")
    assert main(["review", str(calc), str(other)]) == 0
    assert capsys.readouterr().out == f"==> {calc} <==\nFine.\n\n==> {other} <==\nFine.\n"
    assert [i.code for i in inputs] == [CODE, "x = 1\n"]
    assert main(["review", str(calc), str(other), "--json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["file"] for r in records] == [str(calc), str(other)]


def test_options_may_come_before_the_command(
    scripted: Callable[..., list[Any]], calc: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[Any] = []
    real = cli_settings.settings_from

    def spy(args: Any) -> Any:
        seen.append(real(args)[0])
        return real(args)

    monkeypatch.setattr(cli_settings, "settings_from", spy)
    scripted("Fine.")
    assert main(["--kv-type", "f16", "--stats", "--max-tokens=7", "review", str(calc)]) == 0
    assert (seen[0].kv_type_k, seen[0].max_tokens) == ("f16", 7)
    assert "qcode: stats:" in capsys.readouterr().err


@pytest.mark.parametrize(("given", "language"), [(None, "python"), ("py", "python"),
                                                 ("JS", "javascript"), ("cobol", "cobol")])
def test_language_from_content_or_lang(
    given: str | None, language: str, scripted: Callable[..., list[Any]],
    pipe_stdin: Callable[[str], None], capsys: pytest.CaptureFixture[str],
) -> None:
    inputs = scripted("It multiplies.")
    pipe_stdin("#!/usr/bin/env python3\n" + CODE)
    assert main(["review", *(["--lang", given] if given else [])]) == 0
    assert inputs[0].language == language and inputs[0].path is None
    assert capsys.readouterr().out == "It multiplies.\n"


def test_test_writes_a_new_file_and_never_overwrites(
    scripted: Callable[..., list[Any]], calc: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tests = "from calc import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n"
    scripted(tests)
    assert main(["test", str(calc)]) == 0
    target = calc.with_name("test_calc.py")
    assert target.read_text() == tests
    assert f"wrote {target}" in capsys.readouterr().err
    scripted("def test_other():\n    pass\n")
    assert main(["test", str(calc)]) == 1
    assert target.read_text() == tests
    assert main(["test", str(calc), "--force"]) == 0
    assert target.read_text() == "def test_other():\n    pass\n"


def test_colour_on_request(
    scripted: Callable[..., list[Any]], calc: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scripted("It adds.\n```python\ndef add(a, b):\n    return a + b\n```\n")
    assert main(["explain", str(calc), "--color", "always"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("It adds.\n```python\n") and ANSI.search(out)
    scripted(TIMES)
    assert main(["refactor", str(calc), "-m", "x", "--color", "always"]) == 0
    assert ANSI.search(capsys.readouterr().out)


def test_a_missing_symbol_is_an_input_error(
    calc: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real task rejects an unknown --symbol before it asks the model for anything."""

    @contextmanager
    def stub_engine(settings: Any) -> Iterator[FakeEngine]:
        yield FakeEngine(settings=settings)

    monkeypatch.setattr(cli_commands, "_engine", stub_engine)
    assert main(["explain", str(calc), "--symbol", "nope"]) == 2
    assert "no function or class named 'nope'" in error_lines(capsys.readouterr().err)[0]


def test_complete_prints_the_final_text_only(
    calc: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Streamed pieces a final boundary trim takes back never reach stdout."""

    @contextmanager
    def stub_engine(settings: Any) -> Iterator[FakeEngine]:
        yield FakeEngine()  # stands in for the model; the task's answer is scripted below

    def complete_at(engine: Any, text: str, offset: int, **options: Any) -> Iterator[Any]:
        assert (text, offset, options["language"]) == (CODE, CODE.index("total = 0"), "python")
        yield TextEvent("total = 0\n")
        yield TextEvent("    for")
        yield DoneEvent("total = 0", Stats(finish_reason="stop"))

    monkeypatch.setattr(cli_commands, "_engine", stub_engine)
    monkeypatch.setattr("engine.tasks.complete_at", complete_at)
    assert main(["complete", str(calc), "--line", "6", "--col", "5"]) == 0
    assert capsys.readouterr().out == "total = 0"


# model facts and quantization


@pytest.mark.slow
def test_model_facts_of_the_default_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["model"]) == 0
    text = capsys.readouterr().out
    for label in ("path", "architecture", "quant type", "size", "trained context",
                  "FIM tokens", "MTP layers", "memory"):
        assert re.search(rf"^{label} +\S", text, re.MULTILINE), label
    assert main(["model", "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["arch"] == "qwen2" and facts["quant"] == "Q4_K_S"
    assert facts["has_fim"] is True and facts["n_nextn_layers"] == 0
    assert Path(facts["path"]).stat().st_size == facts["size_bytes"]


def test_model_list_shows_the_packaged_models(run_qcode: RunQcode) -> None:
    done = run_qcode(["model", "list", "--json"])
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)["models"]
    assert [row["name"] for row in rows] == ["coder-1.5b", "coder-0.5b"]
    default, fast = rows
    assert default["default"] and default["installed"] and default["draft_model"] == "coder-0.5b"
    assert not fast["default"] and fast["installed"]
    done = run_qcode(["model", "list"])
    assert done.returncode == 0 and "coder-1.5b  Qwen2.5-Coder-1.5B-Instruct (default)" in done.stdout


@pytest.mark.slow
def test_a_model_by_name(run_qcode: RunQcode) -> None:
    done = run_qcode(["model", "--model", "coder-0.5b", "--json"])
    assert done.returncode == 0, done.stderr
    facts = json.loads(done.stdout)
    assert facts["quant"] == "Q4_K_S" and "0.5B" in facts["name"] and facts["vocab_size"] == 151936
    done = run_qcode(["explain", "--model", "coder-0.5b", "--max-tokens", "8", "--stats"],
                     stdin="def f():\n    return 6 * 7\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() and "model Qwen2.5 Coder 0.5B Instruct" in done.stderr


@pytest.mark.slow
def test_quantize_shows_progress_and_model_reads_the_result(
    run_qcode: RunQcode, tmp_path: Path
) -> None:
    from synthetic_qwen35 import build_synthetic_qwen35

    source = build_synthetic_qwen35(tmp_path / "syn-f16.gguf", n_layer=4, weight_type="f16")
    target = tmp_path / "syn-q8.gguf"
    done = run_qcode(["quantize", str(source), str(target), "--type", "q8_0"])
    assert done.returncode == 0, done.stderr
    steps = re.findall(r"^quantizing to Q8_0: (\d+)%$", done.stderr, re.MULTILINE)
    assert len(steps) >= 5 and steps[-1] == "100"
    assert f"wrote {target}" in done.stderr
    facts = json.loads(run_qcode(["model", "--model", str(target), "--json"]).stdout)
    assert (facts["arch"], facts["quant"]) == ("qwen35", "Q8_0")
    assert facts["has_fim"] and facts["n_nextn_layers"] == 1 and facts["is_hybrid"]
    assert facts["size_bytes"] < source.stat().st_size
    done = run_qcode(["quantize", str(source), str(tmp_path / "x.gguf"), "--type", "Q9_Z"])
    assert done.returncode == 1
    assert error_lines(done.stderr)[0].startswith("qcode: error: unknown quant type 'Q9_Z'")


# the interface: `qcode [FILE]`


@pytest.fixture
def fake_app(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Records run_app's arguments instead of starting Textual, as if stdout were a terminal."""
    calls: list[tuple[Any, ...]] = []
    import tui.app

    monkeypatch.setattr(tui.app, "run_app", lambda *args: calls.append(args) or 0)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    monkeypatch.setattr(cli_tools, "_reattach_terminal", lambda: None)
    return calls


def test_bare_qcode_opens_the_interface(
    fake_app: list[tuple[Any, ...]], calc: Path, monkeypatch: pytest.MonkeyPatch,
    pipe_stdin: Callable[[str], None],
) -> None:
    assert main([str(calc), "--kv-type", "f16"]) == 0
    settings, path, text = fake_app[-1]
    # the app reads the file itself (and keeps what it held, so a save can notice a change on disk)
    assert (path, text, settings.kv_type_k) == (calc, None, "f16")
    new = calc.parent / "new.py"  # a new name opens an empty buffer; saving creates the file
    assert main([str(new)]) == 0
    assert fake_app[-1][1:] == (new, None) and not new.exists()
    pipe_stdin("x = 1\n")
    assert main([]) == 0  # `cat x | qcode`
    assert fake_app[-1][1:] == (None, "x = 1\n")
    monkeypatch.setattr("tui.cli_input.stdin_is_piped", lambda: False)
    assert main([]) == 0
    assert fake_app[-1][1:] == (None, None)


# the checks before --apply writes, the test gate, the file on disk


LF_PY = "def add(a, b):\n    return a+b\n\n\ndef sub(a, b):\n    return a-b\n"


def test_the_issues_rewrite_is_refused_with_one_line(
    scripted: Callable[..., list[Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The report: add replaced by the outline's placeholder, and a second sub. It parses, but is refused."""
    path = tmp_path / "lf.py"
    path.write_text(LF_PY)
    scripted("# ... function add (lines 1-2) is left out here\n\n\ndef sub(a, b):\n    return a-b\n")
    args = ["refactor", str(path), "--symbol", "add", "-m", "Add type hints. Change nothing else.", "--apply"]
    assert main([*args, "--json"]) == 1
    captured = capsys.readouterr()
    assert error_lines(captured.err) == [
        f"qcode: error: not writing {path}: the answer copied qcode's prompt back: "
        "'# ... function add (lines 1-2) is left out here' (--force writes it anyway)"
    ]
    record = json.loads(captured.out)
    assert [r["check"] for r in record["refusals"]] == ["scaffolding", "symbol", "definitions"]
    assert record["refused"].startswith("the answer copied") and record["written"] is None
    assert path.read_text() == LF_PY and leftovers(tmp_path, "lf.py") == []


def test_a_crlf_file_is_written_back_crlf(
    scripted: Callable[..., list[Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "crlf.py"
    path.write_bytes(LF_PY.replace("\n", "\r\n").encode())
    # the answer ends in the CR the model saw before the fence: once written as `return a+b\r\r`
    scripted("def add(a: int, b: int) -> int:\r\n    return a+b\r")
    assert main(["refactor", str(path), "--symbol", "add", "-m", "Add type hints.", "--apply"]) == 0
    expected = LF_PY.replace("def add(a, b):", "def add(a: int, b: int) -> int:").replace("\n", "\r\n")
    assert path.read_bytes() == expected.encode()


def test_a_change_on_disk_during_the_answer_is_not_overwritten(
    scripted: Callable[..., list[Any]], calc: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scripted(TIMES)
    import engine.tasks

    answer = engine.tasks.run_task

    def edited_meanwhile(*args: Any, **kwargs: Any) -> Iterator[Any]:
        calc.write_text(CODE + "# mine\n")  # the user saves in their editor while qcode thinks
        yield from answer(*args, **kwargs)

    monkeypatch.setattr("engine.tasks.run_task", edited_meanwhile)
    assert main(["refactor", str(calc), "-m", "rename", "--apply"]) == 1
    assert error_lines(capsys.readouterr().err) == [
        f"qcode: error: {calc} changed on disk since qcode read it; not writing over that change"
    ]
    assert calc.read_text() == CODE + "# mine\n" and leftovers(calc.parent, calc.name) == []


# a test command: calc.mul must multiply
CHECK_MUL = f"{sys.executable} -c 'import calc, sys; r = calc.mul(2, 3); print(\"mul(2, 3) =\", r); sys.exit(r != 6)'"


FAST_MUL = CODE.replace("    total = 0\n    for _ in range(b):\n        total = total + a\n    return total\n",
                        "    return a * b\n")


def test_test_cmd_keeps_a_rewrite_that_passes(
    scripted: Callable[..., list[Any]], calc: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(calc.parent)
    scripted(FAST_MUL)
    assert main(["refactor", str(calc), "-m", "simplify", "--apply", "--json",
                 "--test-cmd", CHECK_MUL]) == 0
    captured = capsys.readouterr()
    record = json.loads(captured.out)
    assert record["test"]["passed"] and not record["test"]["restored"]
    assert calc.read_text() == FAST_MUL and record["backup"]
    assert "qcode: the tests passed" in captured.err


def test_test_cmd_restores_the_original_when_the_tests_fail(
    scripted: Callable[..., list[Any]], calc: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(calc.parent)
    scripted(FAST_MUL.replace("return a * b", "return a + b"))
    assert main(["refactor", str(calc), "-m", "simplify", "--apply",
                 "--test-cmd", CHECK_MUL]) == 3
    captured = capsys.readouterr()
    assert error_lines(captured.err) == [
        f"qcode: error: the tests failed (exit 1) after the rewrite ({CHECK_MUL}); "
        f"{calc} is restored as it was"
    ]
    assert "mul(2, 3) = 5\n" in captured.err  # what failed is shown
    assert calc.read_text() == CODE and leftovers(calc.parent, calc.name) == []


def test_test_cmd_from_the_settings_and_fix_aims_at_the_failure(
    scripted: Callable[..., list[Any]], calc: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(calc.parent)
    broken = CODE.replace("total = total + a", "total = total + b")
    calc.write_text(broken)
    monkeypatch.setenv("QCODE_TEST_CMD", CHECK_MUL)
    inputs = scripted(FAST_MUL)
    assert main(["fix", str(calc), "--apply"]) == 0
    err = capsys.readouterr().err
    assert inputs[0].failure == "mul(2, 3) = 9\n"  # the failing run's output went to the task
    assert "qcode: the tests failed (exit 1): the fix aims at that" in err
    assert calc.read_text() == FAST_MUL
    # passing tests first: the fix is asked without a failure
    inputs = scripted(FAST_MUL)
    assert main(["fix", str(calc)]) == 0
    assert inputs[-1].failure is None and "the tests pass before the fix" in capsys.readouterr().err


# the checks, the gate and hostile inputs on the real model: they hold whatever it answers


def _invariants(path: Path, original: bytes, done: subprocess.CompletedProcess[str]) -> str | None:
    """The file after a real --apply run: rewritten and checked, or untouched. Its new text, or None."""
    from engine.checks import check_rewrite
    from engine.code import find_symbol

    others = sorted(p.name for p in path.parent.iterdir() if p.name != path.name)
    if done.returncode != 0:
        assert len(error_lines(done.stderr)) == 1, done.stderr
        assert path.read_bytes() == original and others == []
        return None
    now = path.read_bytes()
    if now == original:
        assert "no changes" in done.stderr
        return None
    assert others == [f"{path.name}.qcode-bak"] and (path.parent / others[0]).read_bytes() == original
    text, old = now.decode(), original.decode()
    focus = find_symbol(old, "python", "add")
    assert check_rewrite(old, text, "python", focus) == []  # what was written passes the checks
    return text


@pytest.mark.slow
@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_the_issues_refactor_on_the_real_model(run_qcode: RunQcode, tmp_path: Path, newline: str) -> None:
    path = tmp_path / "lf.py"
    original = LF_PY.replace("\n", newline).encode()
    path.write_bytes(original)
    done = run_qcode(["refactor", str(path), "--symbol", "add", "-m", "Add type hints. Change nothing else.",
                      "--apply", "--json"])
    record = json.loads(done.stdout)
    assert isinstance(record["refusals"], list)
    text = _invariants(path, original, done)
    if text is not None:
        assert text.endswith("def sub(a, b):" + newline + "    return a-b" + newline)  # untouched
        assert "\r\r" not in text and text.count("\r\n") == (text.count("\n") if newline == "\r\n" else 0)
        assert "is left out here" not in text and "```" not in text
    else:
        assert done.returncode == 0 or record["refused"]


@pytest.mark.slow
def test_the_test_gate_on_the_real_model(run_qcode: RunQcode, tmp_path: Path) -> None:
    """fix with a test command: the file ends fixed (the tests pass on it) or exactly as it was."""
    path = tmp_path / "calc.py"
    broken = CODE.replace("total = total + a", "total = total + b")
    path.write_bytes(broken.encode())
    done = run_qcode(["fix", str(path), "--symbol", "mul", "--apply", "--json", "--test-cmd", CHECK_MUL],
                     cwd=tmp_path)
    assert done.returncode in (0, 1, 3), done.stderr
    assert "qcode: the tests failed (exit 1): the fix aims at that" in done.stderr
    record = json.loads(done.stdout)
    check = subprocess.run(CHECK_MUL, shell=True, cwd=tmp_path, capture_output=True, check=False)
    if done.returncode == 0 and record["written"]:
        assert check.returncode == 0 and record["test"]["passed"]
    else:
        assert path.read_text() == broken and check.returncode == 1
        assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["calc.py"]
        if done.returncode == 3:
            assert record["test"]["restored"] and not record["test"]["passed"]


MEASURE = """
import resource, subprocess, sys
done = subprocess.run([sys.executable, "-m", "tui.cli", *sys.argv[1:]], capture_output=True, text=True)
sys.stdout.write(done.stdout)
sys.stderr.write(done.stderr)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)
sys.exit(done.returncode)
"""


def _hostile_file(kind: str, folder: Path) -> Path:
    if kind == "one-mb-line":
        path = folder / "min.js"
        path.write_text("var a=[" + ",".join(str(i % 1000) for i in range(260_000))[:1_000_000] + "];\n")
    else:  # 300 nested blocks, then a function under them
        path = folder / "deep.py"
        body = "".join("    " * (i + 1) + f"if x > {i}:\n" for i in range(300)) + "    " * 301 + "return x\n"
        path.write_text("def f(x):\n" + body + "\n\ndef g(y):\n    return y\n")
    return path


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "argv", "code", "message"), [
    ("one-mb-line", ["explain"], 1, "not even the first line of the file fits"),
    ("one-mb-line", ["refactor", "-m", "x", "--apply"], 1, "does not fit the context"),
    ("deep", ["explain", "--max-tokens", "4"], 0, None),
    ("deep", ["fix", "--symbol", "f", "--apply"], 1, "does not fit the context"),
    ("deep", ["fix", "--symbol", "g", "--apply", "--max-tokens", "64"], None, None),
    ("truncated-model", ["fix", "--apply"], 1, "is truncated (tensor data ends before the last tensor)"),
])
def test_hostile_inputs_on_the_real_model(
    tmp_path: Path, kind: str, argv: list[str], code: int | None, message: str | None,
) -> None:
    """One line, the right exit code, nothing written, no traceback, bounded memory (time: the timeout)."""
    from conftest import REPO, qcode_env

    from engine.model import resolve_model_path
    from engine.settings import load_settings

    folder = tmp_path / "work"
    folder.mkdir()
    extra: list[str] = ["--ctx", "2048"]
    if kind == "truncated-model":
        path = folder / "calc.py"
        path.write_text(CODE)
        model = resolve_model_path(load_settings())
        cut = tmp_path / "cut.gguf"
        with model.open("rb") as source, cut.open("wb") as sink:
            sink.write(source.read(32 << 20))  # the header (its vocabulary is megabytes) and the first tensors
            sink.truncate(model.stat().st_size // 2)  # sparse: the rest ends mid-tensor
        extra += ["--model", str(cut)]
    else:
        path = _hostile_file(kind, folder)
    original = path.read_bytes()
    done = subprocess.run([sys.executable, "-c", MEASURE, *argv, str(path), *extra], capture_output=True,
                          text=True, env=qcode_env(), cwd=REPO, timeout=600, check=False)
    *err, peak_kb = done.stderr.rstrip("\n").split("\n")
    assert int(peak_kb) < 4 * 2**20, f"{int(peak_kb) // 1024} MiB"
    stderr = "\n".join(err)
    errors = error_lines(stderr)
    if code is not None:
        assert done.returncode == code, stderr
    if message is not None:
        assert len(errors) == 1 and message in errors[0], stderr
    elif done.returncode != 0:
        assert len(errors) == 1, stderr
    if done.returncode != 0:
        assert path.read_bytes() == original and sorted(p.name for p in folder.iterdir()) == [path.name]
