"""A manual check (not collected by pytest): RemoteEngine against a real llama-server, on the synthetic qwen35
model (chat template, FIM tokens, MTP head).

    python tests/llama_server_check.py /path/to/llama-server

Build llama-server from llama-cpp-python's vendored llama.cpp (`cmake --build b --target llama-server`). It starts
one server (ngram-mod drafting, an API key) and prints what qcode learns and answers: the template from /props
(the model file is hidden from qcode, as on another machine), /tokenize counts, FIM markers, server timings and
draft figures, the chat endpoint with an assistant prefill, a cancel mid-answer and a refused key.
Outputs are random text (random weights); the check is that every path runs and reports.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from samples import CODE  # noqa: E402
from synthetic_qwen35 import synthetic_qwen35_path  # noqa: E402

from engine.events import DoneEvent, GenerationRequest  # noqa: E402
from engine.fim import FimParts  # noqa: E402
from engine.remote import RemoteEngine  # noqa: E402
from engine.settings import load_settings  # noqa: E402
from engine.tasks import TaskInput, complete_at, run_task  # noqa: E402

SERVER = sys.argv[1]
KEY = "k-123"


def start(model: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    with open(f"/tmp/server-{port}.log", "wb") as log:
        proc = subprocess.Popen([SERVER, "-m", str(model), "--port", str(port), "-c", "4096", "--jinja", "-t", "8",
                                 "-ctk", "q8_0", "-ctv", "q8_0", "-fa", "on", "--api-key", KEY, *extra],
                                stdout=log, stderr=subprocess.STDOUT)
    for _ in range(300):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.2)
    print(Path(f"/tmp/server-{port}.log").read_text()[-3000:])
    raise SystemExit("server did not start")


def final(events) -> DoneEvent:  # type: ignore[no-untyped-def]
    return next(e for e in events if isinstance(e, DoneEvent))


def exercise(label: str, port: int) -> None:
    os.environ["QCODE_API_KEY"] = KEY
    r = RemoteEngine(load_settings(server_url=f"http://127.0.0.1:{port}/v1", max_tokens=48, temperature=0))
    print(f"== {label}")
    for name, value in r.describe():
        print(f"   {name:14} {value}")
    print("   count_tokens(CODE) =", r.count_tokens(CODE))
    for task in (TaskInput("explain", CODE, language="python"),
                 TaskInput("refactor", CODE, language="python", instruction="rename mul to times")):
        t = time.time()
        done = final(run_task(r, task))
        print(f"   {task.task}: {time.time() - t:.2f}s {done.stats.one_line()}")
        print(f"      text {done.text[:120]!r}")
    print("   fim prompt:", repr(r.fim_prompt(FimParts("def f(x):\n    ", "\n"))))
    done = final(complete_at(r, CODE, CODE.index("return total"), language="python", max_tokens=8))
    print(f"   complete: {done.text!r} {done.stats.one_line()}")
    # the chat path (vLLM's), on llama-server: system+user messages and an assistant prefill
    chat = RemoteEngine(load_settings(server_url=f"http://127.0.0.1:{port}/v1", max_tokens=24))
    chat.chat_mode, chat.info = True, dataclasses.replace(chat.info, chat_template=None)
    for task in (TaskInput("explain", CODE, language="python"),
                 TaskInput("refactor", CODE, language="python", instruction="rename mul to times")):
        done = final(run_task(chat, task))
        print(f"   chat {task.task}: {done.stats.one_line()}")
        print(f"      text {done.text[:120]!r}")
    # cancel mid-answer
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    t = time.time()
    done = r.complete(GenerationRequest("def main():\n", max_tokens=4000), cancel)
    print(f"   cancel: {time.time() - t:.2f}s finish={done.stats.finish_reason} chars={len(done.text)}")
    r.close()
    chat.close()


Path("/tmp/q35").mkdir(exist_ok=True)
model = synthetic_qwen35_path(Path("/tmp/q35"))
print("model", model, model.stat().st_size)
import engine.remote as remote_module  # noqa: E402
from engine.errors import ModelError, QcodeError  # noqa: E402


def props_only(label: str, port: int) -> None:
    """As from another machine: the GGUF is not readable here, so the template comes from /props."""
    def unreadable(path: Path) -> None:
        raise ModelError("not here")

    saved = remote_module.read_model_info
    remote_module.read_model_info = unreadable  # type: ignore[assignment]
    try:
        exercise(label, port)
    finally:
        remote_module.read_model_info = saved
    os.environ["QCODE_API_KEY"] = "wrong"
    try:
        RemoteEngine(load_settings(server_url=f"http://127.0.0.1:{port}/v1"))
    except QcodeError as exc:
        print("   wrong key:", exc)


for label, port, extra in (("props-only", 18083, ["--spec-type", "ngram-mod"]),):
    proc = start(model, port, *extra)
    try:
        props_only(label, port)
    except Exception as exc:  # keep going: report every configuration
        print(f"   FAILED: {type(exc).__name__}: {exc}")
        print(Path(f"/tmp/server-{port}.log").read_text()[-1500:])
    finally:
        proc.terminate()
        proc.wait()
