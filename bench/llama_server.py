"""One llama-server process on loopback, for the benchmarks that run qcode beside it (bench/peer.py on the CPU,
bench/gpu/mtp_duel.py on the device): start it (alone, or several at once and then wait), ask for greedy
completions by token ids, read its log when it fails, stop it."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

START_TIMEOUT_S = 300.0
REQUEST_TIMEOUT_S = 900.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LlamaServer:
    """llama-server with `args` (model, context, threads, drafting ...) on a free loopback port. Its log goes to
    `log_dir/server-LABEL.log` (kept) or, without a log_dir, to a temporary file removed on stop()."""

    binary: Path
    args: list[str]
    label: str
    log_dir: Path | None = None
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    starts: int = 0
    launched_at: float = 0.0
    load_s: float | None = None  # seconds from launch() to the first healthy answer

    def command(self) -> list[str]:
        return [str(self.binary), "--host", "127.0.0.1", "--port", str(self.port), *self.args]

    def launch(self) -> None:
        """Start the process and return at once (ready() says when it has loaded)."""
        self.port = free_port()
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            self.log_path = self.log_dir / f"server-{self.label}.log"
        else:
            handle, name = tempfile.mkstemp(prefix=f"llama-server-{self.label}-", suffix=".log")
            os.close(handle)
            self.log_path = Path(name)
        self.launched_at = time.perf_counter()
        self.load_s = None
        with open(self.log_path, "wb") as out:
            self.process = subprocess.Popen(self.command(), stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL)
        self.starts += 1

    def ready(self) -> bool:
        """True once the model is loaded; raises, with the log's end, if the process has exited."""
        if self.process is None:
            raise RuntimeError(f"llama-server ({self.label}) was not started")
        if self.process.poll() is not None:
            raise RuntimeError(f"llama-server ({self.label}) exited with {self.process.returncode}: {self.log_tail()}")
        with contextlib.suppress(OSError, http.client.HTTPException, RuntimeError):  # 503 while loading
            if self.request("GET", "/health").get("status") == "ok":
                if self.load_s is None:
                    self.load_s = time.perf_counter() - self.launched_at
                return True
        return False

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        self.launch()
        wait_ready([self], timeout)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self.log_dir is None and self.log_path is not None:
            self.log_path.unlink(missing_ok=True)
            self.log_path = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, chars: int = 1500) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        return self.log_path.read_text(errors="replace")[-chars:]

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT_S)
        try:
            payload = json.dumps(body).encode() if body is not None else None
            connection.request(method, path, body=payload, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            data = response.read()
            if response.status != 200:
                raise RuntimeError(f"llama-server {path}: HTTP {response.status}: {data[:300]!r}")
            result: dict[str, Any] = json.loads(data)
            return result
        finally:
            connection.close()

    def complete(self, prompt: Sequence[int], max_tokens: int, stop: Sequence[str] = (),
                 ignore_eos: bool = False) -> dict[str, Any]:
        """A greedy completion of `prompt` (token ids), sampling set so greedy answers match qcode's."""
        return self.request("POST", "/completion", {
            "prompt": list(prompt), "n_predict": max_tokens, "stop": list(stop), "ignore_eos": ignore_eos,
            "temperature": 0.0, "top_k": 1, "repeat_penalty": 1.0, "min_p": 0.0, "cache_prompt": True,
            "return_tokens": True, "stream": False,
        })


def wait_ready(servers: Sequence[LlamaServer], timeout: float) -> None:
    """Wait until every server answers /health (servers launched together load side by side)."""
    end = time.monotonic() + timeout
    waiting = list(servers)
    while waiting:
        waiting = [server for server in waiting if not server.ready()]
        if waiting and time.monotonic() > end:
            tails = "; ".join(f"{s.label}: {s.log_tail(300)}" for s in waiting)
            raise RuntimeError(f"llama-server not ready after {timeout:.0f} s: {tails}")
        if waiting:
            time.sleep(0.2)
