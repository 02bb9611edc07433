"""qcode on an OpenAI-compatible server.

The main paths run against a real server on loopback that the tests start: llama-cpp-python's own server
(`python -m llama_cpp.server`) on the default model, one at a time. Faults a real server will not produce on demand
(a stream cut after a complete-looking answer, silence, an error event) come from small hand-written servers.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from samples import CODE, TIMES, error_lines

from engine.events import DoneEvent
from engine.settings import load_settings
from tui.cli import main

RunQcode = Callable[..., subprocess.CompletedProcess[str]]
KEY = "qcode-test-key-5c1e9d"
THREADS = str(min(2, os.cpu_count() or 1))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- a real llama-cpp-python server ---------------------------------------------------------------


@contextlib.contextmanager
def llama_server(log: Path, *extra: str, key: str | None = None) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """llama-cpp-python's server on the default model, sampling like the embedded engine's defaults (q8_0 KV)."""
    from engine.model import default_model_path

    port = free_port()
    args = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(default_model_path()),
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--n_threads", THREADS,
        "--n_threads_batch", THREADS, "--type_k", "8", "--type_v", "8", "--flash_attn", "true",
        "--verbose", "False", *extra,
    ]
    if key:
        args += ["--api_key", key]
    with log.open("wb") as sink:
        process = subprocess.Popen(args, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                pytest.fail(f"the server exited ({process.returncode}): {log.read_text()[-2000:]}")
            request = urllib.request.Request(f"{url}/models", headers={"Authorization": f"Bearer {key}"})
            try:
                with urllib.request.urlopen(request, timeout=2):
                    break
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    pytest.fail(f"the server did not come up: {log.read_text()[-2000:]}")
                time.sleep(0.3)
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def server_env(url: str, **extra: str) -> dict[str, str]:
    return {"QCODE_SERVER_URL": url, "QCODE_API_KEY": KEY, "QCODE_CTX": "4096", **extra}


@pytest.mark.slow
class TestTemplateFromTheModelFile:
    """The server names a GGUF this machine can read: qcode renders the same prompts as the embedded engine and
    streams them from /v1/completions. The server wants an API key."""

    @pytest.fixture(scope="class")
    def server(self, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
        with llama_server(tmp_path_factory.mktemp("server") / "server.log", key=KEY) as (url, _):
            yield url

    def test_explain_streams_with_the_url_from_the_environment(
        self, server: str, run_qcode: RunQcode, calc: Path
    ) -> None:
        done = run_qcode(["explain", str(calc), "--max-tokens", "16", "--stats"], env=server_env(server))
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() and error_lines(done.stderr) == []
        (stats,) = [line for line in done.stderr.splitlines() if line.startswith("qcode: stats:")]
        assert "drafter server" in stats and "kv server" in stats and "model Qwen2.5 Coder 1.5B" in stats

    def test_server_flag_and_the_servers_figures(
        self, server: str, calc: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("QCODE_API_KEY", KEY)
        monkeypatch.delenv("QCODE_SERVER_URL", raising=False)
        assert main(["explain", str(calc), "--server", server, "--ctx", "4096", "--max-tokens", "12",
                     "--json"]) == 0
        record = json.loads(capsys.readouterr().out)
        stats = record["stats"]
        assert record["text"] and stats["finish_reason"] in ("length", "eog", "stop")
        assert 1 <= stats["completion_tokens"] <= 12
        assert stats["prompt_tokens"] > 50 and stats["ttft_ms"] > 0 and stats["decode_tokens_per_s"] > 0
        assert stats["drafter"] == "server" and stats["kv_type"] == "server"

    def test_answers_match_the_embedded_engine(self, server: str, monkeypatch: pytest.MonkeyPatch) -> None:
        """Same prompt, greedy, same KV type: the server's answer is the embedded engine's, token for token."""
        from engine.completion import CompletionBudget
        from engine.generate import Engine
        from engine.remote import RemoteEngine
        from engine.tasks import TaskInput, complete_at, run_task

        def final(events: Iterator[Any]) -> DoneEvent:
            return next(e for e in events if isinstance(e, DoneEvent))

        monkeypatch.setenv("QCODE_API_KEY", KEY)
        remote = RemoteEngine(load_settings(server_url=server, n_ctx=4096, max_tokens=24))
        local = Engine(load_settings(n_ctx=4096, max_tokens=24, draft="none", threads=int(THREADS)))
        try:
            for task in (TaskInput("explain", CODE, language="python"),
                         TaskInput("refactor", CODE, language="python", instruction="rename mul to times")):
                there, here = final(run_task(remote, task)), final(run_task(local, task))
                assert there.text == here.text, task.task
                assert there.stats.prompt_tokens == here.stats.prompt_tokens
                assert there.stats.finish_reason == here.stats.finish_reason
            offset = CODE.index("return total")
            budget = CompletionBudget(prefix_tokens=1024, suffix_tokens=32, context_tokens=0)  # not their speeds'
            there = final(complete_at(remote, CODE, offset, language="python", max_tokens=8, budget=budget))
            here = final(complete_at(local, CODE, offset, language="python", max_tokens=8, budget=budget))
            assert there.text == here.text
            assert remote.count_tokens(CODE) == local.count_tokens(CODE)
        finally:
            remote.close()
            local.close()

    def test_refactor_prints_a_diff(self, server: str, run_qcode: RunQcode, calc: Path) -> None:
        done = run_qcode(["refactor", str(calc), "-m", "rename mul to times", "--max-tokens", "64"],
                         env=server_env(server))
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("--- a/") or "no changes" in done.stderr
        assert calc.read_text() == CODE

    def test_complete_prints_only_the_insertion(self, server: str, run_qcode: RunQcode, calc: Path) -> None:
        args = ["complete", str(calc), "--line", "9", "--col", "5", "--max-tokens", "8"]
        plain = run_qcode(args, env=server_env(server))
        assert plain.returncode == 0, plain.stderr
        record = json.loads(run_qcode([*args, "--json"], env=server_env(server)).stdout)
        assert record["offset"] == CODE.index("return total")
        assert plain.stdout == record["text"]
        assert record["stats"]["completion_tokens"] <= 8

    def test_model_prints_the_servers_facts_never_the_key(self, server: str, run_qcode: RunQcode) -> None:
        done = run_qcode(["model", "--server", server], env={"QCODE_API_KEY": KEY})
        assert done.returncode == 0, done.stderr
        facts = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in done.stdout.splitlines())
        assert facts["server kind"] == "llama-cpp-python"
        assert facts["facts from"].startswith("the model file ") and facts["quant type"] == "Q4_K_S"
        # the default model has a chat template, read from its file: qcode renders the prompts
        assert facts["prompts"] == "the model's chat template, rendered by qcode (/v1/completions)"
        assert facts["token counts"] == "the server (/extras/tokenize)"
        assert facts["API key"] == "from $QCODE_API_KEY"
        assert KEY not in done.stdout + done.stderr
        # the key may live in any variable the setting names
        named = run_qcode(["model", "--json"], env={"QCODE_SERVER_URL": server,
                                                     "QCODE_SERVER_API_KEY_ENV": "TEAM_KEY", "TEAM_KEY": KEY})
        assert named.returncode == 0, named.stderr
        assert json.loads(named.stdout)["server_kind"] == "llama-cpp-python" and KEY not in named.stdout

    def test_a_refused_or_missing_key_is_one_line(self, server: str, run_qcode: RunQcode, calc: Path) -> None:
        wrong = run_qcode(["explain", str(calc)], env=server_env(server, QCODE_API_KEY="not-the-key"))
        assert wrong.returncode == 1
        assert error_lines(wrong.stderr) == [
            f"qcode: error: the server at {server} refused the API key from $QCODE_API_KEY (HTTP 401)"
        ]
        assert "not-the-key" not in wrong.stderr + wrong.stdout and wrong.stdout == ""
        missing = run_qcode(["explain", str(calc)], env={"QCODE_SERVER_URL": server})
        assert missing.returncode == 1
        (line,) = error_lines(missing.stderr)
        assert "wants an API key (HTTP 401): put it in $QCODE_API_KEY" in line


@pytest.mark.slow
class TestTheServersChatTemplate:
    """The server's model is only a name (an alias): no template is known here, so tasks go to
    /v1/chat/completions and the server applies its own."""

    @pytest.fixture(scope="class")
    def server(self, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
        log = tmp_path_factory.mktemp("chat-server") / "server.log"
        with llama_server(log, "--model_alias", "qcode-test") as (url, _):
            yield url, log

    def test_model_says_the_server_renders_prompts(self, server: tuple[str, Path], run_qcode: RunQcode) -> None:
        done = run_qcode(["model", "--server", server[0], "--json"])
        assert done.returncode == 0, done.stderr
        facts = json.loads(done.stdout)
        assert facts["server_model"] == "qcode-test" and facts["chat_endpoint"] is True
        assert facts["exact_token_counts"] is True and facts["n_ctx"] == 8192  # not reported: the setting

    def test_explain_streams_through_the_chat_endpoint(
        self, server: tuple[str, Path], run_qcode: RunQcode, calc: Path
    ) -> None:
        url, log = server
        done = run_qcode(["explain", str(calc), "--max-tokens", "12", "--stats"],
                         env={"QCODE_SERVER_URL": url, "QCODE_CTX": "4096"})
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() and "model qcode-test" in done.stderr
        assert '"POST /v1/chat/completions HTTP/1.1" 200' in log.read_text()


@pytest.mark.slow
def test_a_server_killed_mid_answer_leaves_a_partial_answer(
    tmp_path: Path, spawn_qcode: Callable[..., subprocess.Popen[bytes]], calc: Path
) -> None:
    """The answer streams (the first text arrives while generation goes on); then the server dies."""
    with llama_server(tmp_path / "server.log") as (url, server):
        qcode = spawn_qcode(["explain", str(calc), "--max-tokens", "300"],
                            env={"QCODE_SERVER_URL": url, "QCODE_CTX": "4096"})
        assert qcode.stdout is not None and qcode.stderr is not None
        first = os.read(qcode.stdout.fileno(), 4096)
        assert first and qcode.poll() is None  # streamed: text before the end
        server.send_signal(signal.SIGKILL)
        server.wait()
        rest, err = qcode.communicate(timeout=120)
    text = err.decode()
    assert qcode.returncode == 1, text
    assert f"qcode: note: the server at {url} closed the stream mid-answer: the answer is partial" in text
    assert error_lines(text) == ["qcode: error: the answer is partial: the server's stream broke off"]
    assert (first + rest).strip()


# --- hand-written servers for the faults --------------------------------------------------------------


class FaultServer(http.server.ThreadingHTTPServer):
    """Answers /v1/models (and /props when `template` is set); streams `answer` in pieces, then does `ending`:
    "done" (finish_reason and [DONE]), "drop" (closes the connection), "error" (an error event), "silent"
    (says nothing), "http500" (an error status before any event); or misbehaves instead of streaming:
    "garbage" (events that are not JSON, then [DONE]), "endless" (pieces for ever, max_tokens ignored),
    "huge" (one 10 MB event), "stall" (the answer's first pieces, then silence)."""

    daemon_threads = True
    answer: str = TIMES
    ending: str = "drop"
    template: str | None = None
    requests: ClassVar[list[str]] = []
    bodies: ClassVar[list[Any]] = []  # the JSON body of every POST
    # a silent or stalled answer lasts until the test ends: no timing race with the client's timeout
    release = threading.Event()


class FaultHandler(http.server.BaseHTTPRequestHandler):
    server: FaultServer

    def log_message(self, *args: Any) -> None:
        pass

    def _json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/v1/models":
            self._json(200, {"object": "list", "data": [{"id": "fault-model", "owned_by": "tests"}]})
        elif self.path == "/props" and self.server.template:
            self._json(200, {"chat_template": self.server.template})
        else:
            self._json(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        FaultServer.requests.append(self.path)
        FaultServer.bodies.append(json.loads(raw or b"null"))
        if self.path not in ("/v1/completions", "/v1/chat/completions"):
            self._json(404, {"error": {"message": "not found"}})
            return
        server = self.server
        if server.ending == "http500":
            self._json(500, {"error": {"message": "the model fell over"}})
            return
        if server.ending == "silent":
            server.release.wait(60)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        chat = self.path.endswith("chat/completions")

        def event(payload: Any) -> None:
            self.wfile.write(b"data: " + json.dumps(payload).encode() + b"\n\n")
            self.wfile.flush()

        def piece(text: str) -> dict[str, Any]:
            return {"choices": [{"delta": {"content": text}} if chat else {"text": text}]}

        if server.ending in ("garbage", "endless", "huge", "stall"):
            with contextlib.suppress(OSError):  # the client hangs up on a misbehaving server
                self._misbehave(server.ending, event, piece)
            return
        for start in range(0, len(server.answer), 9):
            piece = server.answer[start : start + 9]
            event({"choices": [{"delta": {"content": piece}} if chat else {"text": piece}]})
        if server.ending == "error":
            event({"error": {"message": "out of memory", "type": "server_error"}})
        elif server.ending == "done":
            event({"choices": [{"text": "", "finish_reason": "stop"}]})
            self.wfile.write(b"data: [DONE]\n\n")
        # "drop": the connection closes with the answer unfinished

    def _misbehave(self, ending: str, event: Callable[[Any], None],
                   piece: Callable[[str], dict[str, Any]]) -> None:
        if ending == "garbage":
            for junk in (b"data: {not json\n\n", b"data: \xff\xfe\x00\x01\n\n", b"data: [1, 2]\n\n",
                         b"\xde\xad\xbe\xef\n\n", b"data: [DONE]\n\n"):
                self.wfile.write(junk)
        elif ending == "endless":
            while True:
                event(piece("token "))
        elif ending == "huge":
            event(piece("x" * 10_000_000))
            event({"choices": [{"text": "", "finish_reason": "stop"}]})
            self.wfile.write(b"data: [DONE]\n\n")
        elif ending == "stall":
            event(piece("def add(a, b):\n"))
            self.server.release.wait(60)


@pytest.fixture
def fault_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultServer]:
    server = FaultServer(("127.0.0.1", 0), FaultHandler)
    server.release = threading.Event()
    FaultServer.requests, FaultServer.bodies = [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("QCODE_SERVER_URL", f"http://127.0.0.1:{server.server_address[1]}/v1")
    monkeypatch.delenv("QCODE_API_KEY", raising=False)
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("template", [None, "{% for m in messages %}{{ m['content'] }}\n{% endfor %}"],
                         ids=["chat-endpoint", "template-from-props"])
def test_a_dropped_stream_is_partial_and_never_applied(
    fault_server: FaultServer, template: str | None, calc: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The whole new file arrives, but the stream breaks before its end: qcode refuses to write it."""
    fault_server.template = template
    assert main(["refactor", str(calc), "-m", "rename mul to times", "--apply"]) == 1
    err = capsys.readouterr().err
    assert "closed the stream mid-answer: the answer is partial" in err
    assert error_lines(err) == [f"qcode: error: not writing {calc}: the answer was cut off (partial)"]
    assert calc.read_text() == CODE and sorted(p.name for p in calc.parent.iterdir()) == ["calc.py"]
    assert FaultServer.requests[-1] == ("/v1/completions" if template else "/v1/chat/completions")
    # the same answer, finished properly, is written
    fault_server.ending = "done"
    assert main(["refactor", str(calc), "-m", "rename mul to times", "--apply"]) == 0
    assert calc.read_text() == TIMES


def test_partial_prose_tests_and_completions_fail(
    fault_server: FaultServer, calc: Path, capsys: pytest.CaptureFixture[str],
    pipe_stdin: Callable[[str], None],
) -> None:
    fault_server.answer = "This adds two numbers and multiplies by"
    assert main(["explain", str(calc)]) == 1
    out, err = capsys.readouterr()
    assert out.startswith("This adds two numbers")  # what arrived is shown, and marked
    assert error_lines(err) == ["qcode: error: the answer is partial: the server's stream broke off"]
    fault_server.answer = "    return a *"  # no statement end: the stream's end decides
    assert main(["complete", str(calc), "--line", "9", "--col", "5"]) == 1
    out, err = capsys.readouterr()
    assert out == ""  # an editor must not insert a partial completion
    fault_server.answer = "def test_add():\n    assert add(1, 2) == 3\n"
    pipe_stdin(CODE)
    assert main(["test", "--lang", "python"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "partial" in error_lines(err)[0]


@pytest.mark.parametrize(("ending", "message"), [
    ("error", "failed mid-answer: out of memory: the answer is partial"),
    ("http500", "answered HTTP 500 to POST /v1/chat/completions: the model fell over"),
])
def test_server_errors_are_one_line(
    fault_server: FaultServer, ending: str, message: str, calc: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fault_server.ending = ending
    assert main(["explain", str(calc)]) == 1
    assert message in capsys.readouterr().err


def test_a_stream_that_breaks_before_any_text(
    fault_server: FaultServer, calc: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fault_server.answer = ""
    assert main(["explain", str(calc)]) == 1
    (line,) = error_lines(capsys.readouterr().err)
    assert line.endswith("closed the stream before answering")


def test_a_silent_server_times_out(
    fault_server: FaultServer, calc: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fault_server.ending = "silent"
    monkeypatch.setenv("QCODE_SERVER_TIMEOUT", "0.5")
    started = time.monotonic()
    assert main(["explain", str(calc)]) == 1
    assert time.monotonic() - started < 30  # the server would stay silent for 60 s
    assert error_lines(capsys.readouterr().err) == [
        f"qcode: error: the server at {os.environ['QCODE_SERVER_URL']} sent nothing for 0.5 s (server_timeout)"
    ]
    # a stall after the answer's first pieces: partial, so nothing is written
    fault_server.ending = "stall"
    started = time.monotonic()
    assert main(["fix", str(calc), "--apply"]) == 1
    assert time.monotonic() - started < 30
    err = capsys.readouterr().err
    assert "sent nothing for 0.5 s mid-answer (server_timeout): the answer is partial" in err
    assert error_lines(err) == [f"qcode: error: not writing {calc}: the answer was cut off (partial)"]
    assert calc.read_text() == CODE


def test_cancel_cuts_a_silent_request(fault_server: FaultServer) -> None:
    """A cancel is honoured while the server says nothing (a long prompt evaluating)."""
    from engine.events import GenerationRequest
    from engine.remote import RemoteEngine

    fault_server.ending = "silent"
    remote = RemoteEngine(load_settings())
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    started = time.monotonic()
    done = remote.complete(GenerationRequest("hello", max_tokens=4), cancel)
    assert done.stats.finish_reason == "cancelled" and time.monotonic() - started < 30  # silent for 60 s
    remote.close()


def test_an_unreachable_server_is_one_line(calc: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there any more
    monkeypatch.setenv("QCODE_SERVER_URL", url)
    assert main(["explain", str(calc)]) == 1
    assert error_lines(capsys.readouterr().err) == [
        f"qcode: error: cannot reach the server at {url}: connection refused (is it running? "
        "check server_url / --server)"
    ]


def test_server_settings_are_checked_and_the_key_never_shown(
    run_qcode: RunQcode, calc: Path
) -> None:
    bad = run_qcode(["explain", str(calc), "--server", "ftp://example.org"])
    assert bad.returncode == 2
    assert error_lines(bad.stderr) == [
        "qcode: error: invalid setting server_url (from command line): Value error, expected an http:// or "
        "https:// URL"
    ]
    shown = run_qcode(["config", "--json"], env={"QCODE_API_KEY": KEY, "QCODE_SERVER_URL": "http://h:1/v1/"})
    settings = json.loads(shown.stdout)["settings"]
    assert settings["server_url"]["value"] == "http://h:1/v1"
    assert settings["server_api_key_env"]["value"] == "QCODE_API_KEY"
    assert KEY not in shown.stdout


@pytest.mark.parametrize("template", [None, "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}"],
                         ids=["chat-endpoint", "template-from-props"])
def test_a_chat_turn_travels_as_messages_or_rendered(fault_server: FaultServer, template: str | None) -> None:
    """Without a template qcode can render, the turn's system, user text (whatever it holds), think flag and
    prefill go as messages; with one, qcode renders the turn and sends the text."""
    from engine.events import ChatTurn, GenerationRequest
    from engine.remote import RemoteEngine
    from engine.settings import load_settings

    fault_server.template, fault_server.ending = template, "done"
    remote = RemoteEngine(load_settings())
    user = "explain this\n\x1euser\x1f\x1ethink\x1fon <- odd bytes in the code"
    turn = ChatTurn("be brief", user, prefill="```python\n", think=True)
    try:
        remote.complete(GenerationRequest(turn, max_tokens=8, stop=("```",)))
    finally:
        remote.close()
    body = fault_server.bodies[-1]
    if template is None:
        assert fault_server.requests[-1] == "/v1/chat/completions" and "prompt" not in body
        assert body["messages"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": user},
                                    {"role": "assistant", "content": "```python\n"}]
        assert body["chat_template_kwargs"] == {"enable_thinking": True} and body["continue_final_message"]
    else:
        assert fault_server.requests[-1] == "/v1/completions" and "messages" not in body
        assert body["prompt"] == f"<system>be brief<user>{user}```python\n"
        assert body["stop"] == ["```"]


def test_where_the_endpoints_are() -> None:
    from engine.remote_http import Where

    assert (Where.parse("http://h:8080/v1").api, Where.parse("http://h:8080/v1").root) == ("/v1", "")
    assert (Where.parse("http://h:8080").api, Where.parse("http://h:8080").root) == ("/v1", "")
    proxied = Where.parse("https://gpu.example.org/llm/v1")
    assert (proxied.api, proxied.root, proxied.https, proxied.port) == ("/llm/v1", "/llm", True, None)


# --- a hostile server: bounded time and memory, one line, the right exit code ------------------------


def test_malformed_events_are_one_line(
    fault_server: FaultServer, calc: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fault_server.ending = "garbage"
    assert main(["explain", str(calc)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert error_lines(err) == [
        f"qcode: error: the server at {os.environ['QCODE_SERVER_URL']} sent 3 malformed event(s) (not JSON) "
        "and no answer"
    ]


def test_an_endless_stream_stops_at_what_was_asked(
    fault_server: FaultServer, calc: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fault_server.ending = "endless"
    started = time.monotonic()
    assert main(["explain", str(calc), "--max-tokens", "20"]) == 0
    assert time.monotonic() - started < 30  # generous: it only catches a hang
    out, err = capsys.readouterr()
    assert 20 <= out.count("token") <= 40
    assert "sent more than the 20 tokens asked for; stopped reading" in err
    # a rewrite from it is cut off, so it is never written
    assert main(["refactor", str(calc), "-m", "x", "--apply", "--max-tokens", "20"]) == 1
    assert "cut off (length)" in error_lines(capsys.readouterr().err)[0]
    assert calc.read_text() == CODE and sorted(p.name for p in calc.parent.iterdir()) == ["calc.py"]


def test_a_10_mb_event_is_refused(
    fault_server: FaultServer, calc: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fault_server.ending = "huge"
    assert main(["refactor", str(calc), "-m", "x", "--apply"]) == 1
    (line,) = error_lines(capsys.readouterr().err)
    assert line.endswith("sent an event line over 1 MiB before answering")
    assert calc.read_text() == CODE and sorted(p.name for p in calc.parent.iterdir()) == ["calc.py"]
