"""Shared fixtures: the real default model loaded once, and a way to run `qcode` as a process."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Generator, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
RunQcode = Callable[..., subprocess.CompletedProcess[str]]
# Fixtures that load a model through llama.cpp: every test using one is marked slow.
MODEL_FIXTURES = frozenset({"real_engine", "qwen35_model", "qwen35_engine"})
_running: list[pytest.Item] = []  # the test being set up, run or torn down


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`slow` marks every test that loads a model, so `pytest -m "not slow"` is a fast loop: those using a model
    fixture here; the others carry the marker themselves, which pytest_sessionstart's guard checks."""
    for item in items:
        if MODEL_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def pytest_configure(config: pytest.Config) -> None:
    """The tests' own cache folder for this session, its `models` a link to the user's (the packaged models are
    assembled once and shared): cost calibrations and derived heads land there, so the user's cache gains no files
    from the tests and no test reads a cost curve that an earlier run measured. Engines made here neither keep nor
    read the costs they learn online (draft_calibration off), so no test starts from what an earlier test's engine
    timed; tests of calibration and learned costs ask for them."""
    from engine.settings import cache_dir

    models = cache_dir() / "models"
    models.mkdir(parents=True, exist_ok=True)
    own = Path(tempfile.mkdtemp(prefix="qcode-test-cache-"))
    (own / "models").symlink_to(models, target_is_directory=True)
    os.environ["QCODE_CACHE_DIR"] = str(own)
    os.environ["QCODE_DRAFT_CALIBRATION"] = "off"
    config.add_cleanup(lambda: shutil.rmtree(own, ignore_errors=True))


def pytest_sessionstart(session: pytest.Session) -> None:
    """A test not marked slow that loads a model in this process (its fixtures included) fails, naming the marker
    it lacks. A test that runs qcode as a process on a model cannot be seen from here: it is marked by hand."""
    import llama_cpp

    load = llama_cpp.llama_model_load_from_file

    def guarded(path: bytes, params: Any) -> Any:
        model = load(path, params)
        item = _running[-1] if _running else None
        if model and item is not None and item.get_closest_marker("slow") is None:
            llama_cpp.llama_model_free(model)
            pytest.fail(f"{item.nodeid} loads a model ({path.decode(errors='replace')}): mark it slow")
        return model

    llama_cpp.llama_model_load_from_file = guarded


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, object, object]:
    _running.append(item)
    try:
        return (yield)
    finally:
        _running.pop()


def qcode_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a qcode subprocess: no user config, no stray QCODE_* settings.

    QCODE_CACHE_DIR (the session's, see pytest_configure) is kept so the default model is built once and shared.
    """
    env = {
        key: value for key, value in os.environ.items()
        if not key.startswith("QCODE_") or key == "QCODE_CACHE_DIR"
    }
    env.pop("NO_COLOR", None)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def run_qcode_process(
    args: Sequence[str],
    stdin: str | bytes | int | None = None,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | str | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """Run `python -m tui.cli ARGS` with `stdin` piped in (None: an empty pipe; an int: that fd).

    stdout and stderr come back as text (undecodable bytes replaced).
    """
    feed: dict[str, Any] = (
        {"stdin": stdin} if isinstance(stdin, int)
        else {"input": stdin.encode() if isinstance(stdin, str) else (stdin or b"")}
    )
    done = subprocess.run(
        [sys.executable, "-m", "tui.cli", *args],
        **feed,
        capture_output=True,
        env=qcode_env(env),
        cwd=cwd or REPO,
        timeout=timeout,
        check=False,
    )
    return subprocess.CompletedProcess(
        done.args,
        done.returncode,
        done.stdout.decode("utf-8", "replace"),
        done.stderr.decode("utf-8", "replace"),
    )


@pytest.fixture
def run_qcode() -> RunQcode:
    """run_qcode(args, stdin=None, *, env=None, cwd=None, timeout=600) -> CompletedProcess[str].

    stdin: text or bytes to pipe in, None for an empty pipe, or a file descriptor (a pty).
    """
    return run_qcode_process


@pytest.fixture
def spawn_qcode() -> Callable[..., subprocess.Popen[bytes]]:
    """spawn_qcode(args, env=None) -> Popen with stdout/stderr pipes, for signals mid-run."""

    def spawn(args: Sequence[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "tui.cli", *args], stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=qcode_env(env), cwd=REPO,
        )

    return spawn


@pytest.fixture
def pipe_stdin(monkeypatch: pytest.MonkeyPatch) -> Callable[[str | bytes], None]:
    """For in-process runs: make sys.stdin a pipe holding the given text or bytes."""

    def feed(data: str | bytes) -> None:
        raw = data.encode() if isinstance(data, str) else data
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8"))

    return feed


@pytest.fixture(scope="session")
def default_settings() -> Any:
    """The default settings (model None: the packaged default model)."""
    from engine.settings import load_settings

    return load_settings()


@pytest.fixture(scope="session")
def real_engine(default_settings: Any) -> Iterator[Any]:
    """One Engine on the real default model for the whole session; never use it from two threads."""
    from engine import Engine

    engine = Engine(default_settings)
    try:
        yield engine
    finally:
        engine.close()


@pytest.fixture(scope="session")
def qwen35_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny synthetic Qwen3.6-shaped GGUF (hybrid DeltaNet + attention, one MTP layer), built once."""
    from synthetic_qwen35 import synthetic_qwen35_path

    return synthetic_qwen35_path(tmp_path_factory.mktemp("qwen35"))


@pytest.fixture(scope="session")
def qwen35_engine(qwen35_model: Path) -> Iterator[Any]:
    """An Engine on the synthetic qwen35 model; never use it from two threads."""
    from engine import Engine, load_settings

    engine = Engine(load_settings(model=qwen35_model, n_ctx=2048, batch_size=256, draft="ngram"))
    try:
        yield engine
    finally:
        engine.close()


@pytest.fixture
def calc(tmp_path: Path) -> Path:
    """samples.CODE as a file."""
    from samples import CODE

    path = tmp_path / "calc.py"
    path.write_text(CODE)
    return path
