"""Bad input and usage errors: one line on stderr, the right exit code, no model needed.

Every case here fails before the model loads, so these run in milliseconds in-process;
a few run as a subprocess too, to prove the real entry point behaves the same.
"""

from __future__ import annotations

import os
import pty
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tui.cli import main

RunQcode = Callable[..., subprocess.CompletedProcess[str]]


def one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got: {err!r}"
    assert lines[0].startswith("qcode"), lines
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    made = {
        "binary": tmp_path / "blob.py",
        "latin1": tmp_path / "latin.py",
        "empty": tmp_path / "empty.py",
        "blank": tmp_path / "blank.py",
        "dir": tmp_path / "folder",
        "good": tmp_path / "good.py",
    }
    made["binary"].write_bytes(b"print(1)\x00\x01\x02")
    made["latin1"].write_bytes("caf\u00e9 = 1\n".encode("latin-1"))
    made["empty"].write_bytes(b"")
    made["blank"].write_text("  \n\n\t\n")
    made["dir"].mkdir()
    made["good"].write_text("def f():\n    return 1\n")
    return made


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("binary", "is a binary file"),
        ("latin1", "is not UTF-8 text"),
        ("empty", "is empty"),
        ("blank", "is empty"),
        ("dir", "is a directory"),
    ],
)
@pytest.mark.parametrize("command", ["explain", "refactor", "complete"])
def test_unusable_files(
    command: str, name: str, message: str, files: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([command, str(files[name])]) == 2
    captured = capsys.readouterr()
    assert message in one_error_line(captured.err)
    assert captured.out == ""


def test_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "nope.py"
    assert main(["review", str(missing)]) == 2
    assert one_error_line(capsys.readouterr().err) == f"qcode: error: {missing}: no such file"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(capsys: pytest.CaptureFixture[str], files: dict[str, Path]) -> None:
    files["good"].chmod(0)
    try:
        assert main(["explain", str(files["good"])]) == 2
    finally:
        files["good"].chmod(0o644)
    assert "permission denied" in one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"", "<stdin> is empty"), (b"\n  \n", "<stdin> is empty"),
     (b"\xff\xfe\x00x", "<stdin> is a binary file"), (b"\xe9t\xe9", "<stdin> is not UTF-8")],
)
def test_bad_stdin(
    data: bytes, message: str, pipe_stdin: Callable[[bytes], None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    pipe_stdin(data)
    assert main(["explain"]) == 2
    assert message in one_error_line(capsys.readouterr().err)


def test_bad_stdin_as_dash_among_files(
    pipe_stdin: Callable[[bytes], None], capsys: pytest.CaptureFixture[str],
    files: dict[str, Path],
) -> None:
    pipe_stdin(b"")
    assert main(["explain", str(files["good"]), "-"]) == 2
    assert "<stdin> is empty" in one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["explain", "--no-such-option", "x.py"], "unrecognized arguments: --no-such-option"),
        (["explain", "--lines", "9:3", "x.py"], "argument --lines: expected 1 <= A <= B"),
        (["explain", "--lines", "a:b", "x.py"], "argument --lines: expected A:B"),
        (["explain", "--symbol", "f", "--lines", "1:2", "x.py"], "not allowed with argument"),
        (["refactor", "--apply", "--output", "y.py", "x.py"], "not allowed with argument"),
        (["explain", "--kv-type", "q3", "x.py"], "invalid choice: 'q3'"),
        (["explain", "--max-tokens", "many", "x.py"], "invalid int value"),
        (["quantize", "in.gguf"], "the following arguments are required: OUT"),
        (["expalin", "x.py"], "unrecognized arguments: x.py"),
        (["expalin"], "unknown command 'expalin'"),
    ],
)
def test_usage_errors_are_one_line_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert message in one_error_line(captured.err)
    assert captured.out == ""


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["explain", "--ctx", "10"], {}, "invalid setting n_ctx (from command line)"),
        (["explain", "--temperature", "-1"], {}, "invalid setting temperature"),
        (["explain"], {"QCODE_TOP_P": "2"}, "invalid setting top_p (from environment variable"),
        (["config"], {"QCODE_DRAFT": "psychic"}, "invalid setting draft"),
    ],
)
def test_invalid_settings(
    argv: list[str], env: dict[str, str], message: str, files: dict[str, Path],
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("QCODE_CONFIG", str(files["blank"]))  # an empty TOML: no user config
    assert main([*argv, str(files["good"])] if argv[0] != "config" else argv) == 2
    assert message in one_error_line(capsys.readouterr().err)


def test_bad_config_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config.toml"
    config.write_text("n_ctx = [unclosed\n")
    monkeypatch.setenv("QCODE_CONFIG", str(config))
    assert main(["config"]) == 2
    assert "is not valid TOML" in one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--line", "9", "--col", "1"], "--line 9 is past the end"),
        (["--line", "1", "--col", "40"], "--col 40 is past the end of line 1"),
        (["--line", "1"], "--line and --col go together"),
        (["--offset", "999"], "--offset 999 is outside"),
        (["--offset", "-1"], "--offset -1 is outside"),
        (["--offset", "3", "--line", "1", "--col", "1"], "either --offset or --line/--col"),
    ],
)
def test_complete_positions(
    argv: list[str], message: str, files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["complete", str(files["good"]), *argv]) == 2
    assert message in one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["refactor"], "refactor needs an instruction"), (["ask", " "], "ask needs a question")],
)
def test_missing_instruction_fails_before_the_model_loads(
    argv: list[str], message: str, files: dict[str, Path], capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    # a model that does not exist: looking for it would be a different error
    assert main([*argv, str(files["good"]), "--model", str(tmp_path / "none.gguf")]) == 2
    assert message in one_error_line(capsys.readouterr().err)


def test_apply_needs_a_file(
    pipe_stdin: Callable[[bytes], None], capsys: pytest.CaptureFixture[str]
) -> None:
    pipe_stdin(b"x = 1\n")
    assert main(["fix", "--apply"]) == 2
    assert "--apply needs a FILE" in one_error_line(capsys.readouterr().err)


def test_test_never_overwrites_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "calc.py"
    source.write_text("def add(a, b):\n    return a + b\n")
    existing = tmp_path / "test_calc.py"
    existing.write_text("# mine\n")
    assert main(["test", str(source)]) == 1
    assert "test_calc.py already exists" in one_error_line(capsys.readouterr().err)
    assert existing.read_text() == "# mine\n"


def test_corrupt_model_for_the_model_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"this is not a gguf file at all" * 10)
    assert main(["model", "--model", str(bad)]) == 1
    one_error_line(capsys.readouterr().err)
    assert main(["model", "--model", str(tmp_path / "missing.gguf")]) == 1
    assert "nor a file that exists" in one_error_line(capsys.readouterr().err)


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("explain", "refactor", "complete", "quantize", "config", "bench"):
        assert command in out
    assert main(["refactor", "--help"]) == 0
    assert "--apply" in capsys.readouterr().out


def test_bench_hook(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--help"]) == 0
    assert "--drafters" in capsys.readouterr().out


# the real entry point, as a process


def test_subprocess_errors(run_qcode: RunQcode, files: dict[str, Path]) -> None:
    done = run_qcode(["explain", str(files["binary"])])
    assert done.returncode == 2
    assert "is a binary file" in one_error_line(done.stderr)
    done = run_qcode(["explain"], stdin=b"")
    assert done.returncode == 2
    assert one_error_line(done.stderr) == "qcode: error: <stdin> is empty"
    done = run_qcode(["explain", "--bogus"])
    assert done.returncode == 2
    one_error_line(done.stderr)
    assert done.stdout == ""


def test_no_input_on_a_terminal(run_qcode: RunQcode) -> None:
    """`qcode explain` typed at a prompt, with no file and nothing piped: usage error."""
    leader, follower = pty.openpty()
    try:
        done: Any = run_qcode(["explain"], stdin=follower, timeout=60)
    finally:
        os.close(leader)
        os.close(follower)
    assert done.returncode == 2
    assert "no input" in one_error_line(done.stderr)


def test_the_interface_needs_a_terminal(run_qcode: RunQcode, files: dict[str, Path]) -> None:
    done = run_qcode([str(files["good"])])
    assert done.returncode == 2
    assert "needs a terminal" in one_error_line(done.stderr)


def test_unreadable_file_even_as_root(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], files: dict[str, Path]
) -> None:
    """The same message when reading fails with EACCES (root ignores chmod 0, so fake it)."""

    real_open = Path.open

    def refuse(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self == files["good"]:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refuse)
    assert main(["explain", str(files["good"]), "--model", str(files["good"].with_name("none.gguf"))]) == 2
    assert one_error_line(capsys.readouterr().err) == (
        f"qcode: error: {files['good']}: permission denied"
    )


# hostile inputs (issue 12): one line, the right exit code, nothing written, bounded time and memory


def test_a_50_mb_file_is_refused_unread(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    big = tmp_path / "big.py"
    with big.open("wb") as handle:
        handle.truncate(50 * 2**20)  # sparse: its size is what counts, it is never read
    assert main(["refactor", str(big), "-m", "x", "--apply"]) == 2
    assert one_error_line(capsys.readouterr().err) == (
        f"qcode: error: {big} is too large (50.0 MiB; qcode reads files up to 16 MiB)"
    )
    assert big.stat().st_size == 50 * 2**20 and sorted(p.name for p in tmp_path.iterdir()) == ["big.py"]


def test_too_much_on_stdin(pipe_stdin: Callable[[bytes], None], capsys: pytest.CaptureFixture[str]) -> None:
    pipe_stdin(b"x = 1\n" * (3 * 2**20))  # 18 MiB
    assert main(["explain"]) == 2
    assert "<stdin> is too large" in one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize(("tail", "message"), [
    (b"\xc3\x28 = 1\n", "is not UTF-8 text (bad byte at offset 5000000)"),
    (b"\x00", "is a binary file (it contains NUL bytes, the first at offset 5000000)"),
])
@pytest.mark.parametrize("command", ["explain", "fix"])
def test_bad_bytes_deep_in_a_large_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, tail: bytes, message: str
) -> None:
    path = tmp_path / "large.py"
    path.write_bytes(b"x = 1\n" * (5_000_000 // 6) + b"xx" + tail + b"y = 2\n" * 1000)
    before = path.read_bytes()
    assert main([command, str(path), "--apply"] if command == "fix" else [command, str(path)]) == 2
    assert one_error_line(capsys.readouterr().err) == f"qcode: error: {path} {message}"
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["large.py"]


@pytest.mark.parametrize(("template", "message"), [
    ("Explain {% if code %}{{ code }}", "line 1: Unexpected end of template"),
    ("Explain {{ code }\n", "line 1: unexpected '}'"),
])
def test_a_prompt_override_with_a_syntax_error(
    tmp_path: Path, files: dict[str, Path], capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, template: str, message: str,
) -> None:
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "explain.txt").write_text(template)
    monkeypatch.setenv("QCODE_PROMPTS_DIR", str(prompts))
    # a model that does not exist: the template is checked before any model is looked for
    assert main(["explain", str(files["good"]), "--model", str(tmp_path / "none.gguf")]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"qcode: error: prompt template {prompts / 'explain.txt'} (prompts_dir) ")
    assert message in line


@pytest.mark.parametrize("content", [
    b'{"n_ctx": 4096}\n',  # JSON
    b"\x7fELF\x02\x01\x01\x00\x00\x00",  # a binary
    b"n_ctx = 4096\nname = \"caf\xe9\"\n",  # not UTF-8
    b"[model\npath = 1\n",  # an unclosed table
])
def test_a_config_file_that_is_not_toml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    files: dict[str, Path], content: bytes,
) -> None:
    config = tmp_path / "config.toml"
    config.write_bytes(content)
    monkeypatch.setenv("QCODE_CONFIG", str(config))
    for argv in (["config"], ["explain", str(files["good"])]):
        assert main(argv) == 2
        assert f"config file {config} is not valid TOML" in one_error_line(capsys.readouterr().err)
