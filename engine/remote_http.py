"""HTTP for the remote backend, on the standard library only: JSON calls on one kept-alive connection, and
server-sent-event streams on their own connection that a cancel can cut at any moment.

Every failure becomes a one-line ServerError that names what to change (the URL, the key's variable, the timeout).
The API key travels only in the Authorization header: no message ever contains it.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .errors import QcodeError

# a connect that takes longer than this is a dead host, whatever server_timeout allows for slow answers
CONNECT_TIMEOUT_S = 15.0
_MESSAGE_MAX = 300
# the longest server-sent-event line read: a token stream's events are far smaller
SSE_LINE_MAX = 1 << 20


class ServerError(QcodeError):
    """The inference server is unreachable, refused the request, timed out or failed mid-answer."""


class HttpStatusError(ServerError):
    """The server answered with an HTTP error status; `status` keeps it for callers that probe endpoints."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Where:
    """The server's address: `api` is the OpenAI-style /v1 prefix, `root` the server's own endpoints."""

    url: str  # as the user gave it, for messages
    https: bool
    host: str
    port: int | None
    api: str
    root: str

    @classmethod
    def parse(cls, url: str) -> Where:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ServerError(f"server_url {url!r} is not an http:// or https:// URL")
        try:
            port = parts.port
        except ValueError:
            raise ServerError(f"server_url {url!r} has an invalid port") from None
        base = parts.path.rstrip("/")
        # users copy URLs ending in /v1 (the OpenAI convention); llama.cpp's /props and /tokenize sit above it
        api, root = (base, base[:-3]) if base.endswith("/v1") else (base + "/v1", base)
        return cls(url, parts.scheme == "https", parts.hostname, port, api, root)


def one_line(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= _MESSAGE_MAX else text[: _MESSAGE_MAX - 3] + "..."


def error_detail(raw: bytes) -> str:
    """The human part of an error body: OpenAI's {"error": {"message"}}, FastAPI's {"detail"}, or the text."""
    try:
        data = json.loads(raw)
    except ValueError:
        return one_line(raw.decode("utf-8", "replace"))
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict):
            for key in ("message", "detail", "msg"):
                if error.get(key):
                    return one_line(str(error[key]))
        elif isinstance(error, str):
            return one_line(error)
        if data.get("detail"):
            return one_line(json.dumps(data["detail"]) if not isinstance(data["detail"], str) else data["detail"])
    return one_line(raw.decode("utf-8", "replace"))


class Http:
    def __init__(self, where: Where, api_key: str | None, key_env: str, timeout: float) -> None:
        self.where = where
        self.timeout = timeout
        self.key_env = key_env
        self.has_key = bool(api_key)
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._conn: http.client.HTTPConnection | None = None

    # --- connections ---------------------------------------------------------------------------
    def _connect(self) -> http.client.HTTPConnection:
        w = self.where
        conn: http.client.HTTPConnection
        if w.https:
            conn = http.client.HTTPSConnection(
                w.host, w.port, timeout=min(self.timeout, CONNECT_TIMEOUT_S), context=ssl.create_default_context()
            )
        else:
            conn = http.client.HTTPConnection(w.host, w.port, timeout=min(self.timeout, CONNECT_TIMEOUT_S))
        try:
            conn.connect()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise self.transport_error(exc, connecting=True) from None
        assert conn.sock is not None
        conn.sock.settimeout(self.timeout)
        return conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # --- errors --------------------------------------------------------------------------------
    def transport_error(self, exc: BaseException, *, connecting: bool = False) -> ServerError:
        url = self.where.url
        if isinstance(exc, ServerError):
            return exc
        if isinstance(exc, TimeoutError):
            if connecting:
                return ServerError(f"cannot reach the server at {url}: no answer to connect within "
                                   f"{min(self.timeout, CONNECT_TIMEOUT_S):g} s")
            return ServerError(f"the server at {url} sent nothing for {self.timeout:g} s (server_timeout)")
        if isinstance(exc, ConnectionRefusedError):
            return ServerError(f"cannot reach the server at {url}: connection refused (is it running? "
                               "check server_url / --server)")
        if isinstance(exc, socket.gaierror):
            return ServerError(f"cannot reach the server at {url}: unknown host {self.where.host!r}")
        if isinstance(exc, ssl.SSLError):
            return ServerError(f"TLS with {url} failed: {one_line(exc.reason or str(exc))}")
        if isinstance(exc, http.client.HTTPException | ConnectionError):
            return ServerError(f"the server at {url} closed the connection ({type(exc).__name__})")
        if isinstance(exc, OSError):
            return ServerError(f"cannot reach the server at {url}: {one_line(exc.strerror or str(exc))}")
        return ServerError(f"talking to the server at {url} failed: {type(exc).__name__}")

    def status_error(self, status: int, raw: bytes, what: str) -> HttpStatusError:
        if status in (401, 403):
            if self.has_key:
                message = (f"the server at {self.where.url} refused the API key from ${self.key_env} "
                           f"(HTTP {status})")
            else:
                message = (f"the server at {self.where.url} wants an API key (HTTP {status}): put it in "
                           f"${self.key_env} (setting server_api_key_env names the variable)")
            return HttpStatusError(message, status)
        detail = error_detail(raw)
        return HttpStatusError(
            f"the server at {self.where.url} answered HTTP {status} to {what}" + (f": {detail}" if detail else ""),
            status,
        )

    # --- JSON calls ----------------------------------------------------------------------------
    def call(self, method: str, path: str, body: Any = None) -> Any:
        """One JSON request on the kept-alive connection (reconnecting once if the server closed it)."""
        data = None if body is None else json.dumps(body).encode()
        for attempt in (1, 2):
            reused = self._conn is not None
            conn = self._conn or self._connect()
            self._conn = conn
            try:
                conn.request(method, path, body=data, headers=self._headers)
                response = conn.getresponse()
                raw = response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                self.close()
                if reused and attempt == 1:
                    continue  # a kept-alive connection the server had already closed
                raise self.transport_error(exc) from None
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                raise self.transport_error(exc) from None
            if response.will_close:
                self.close()
            if response.status >= 400:
                raise self.status_error(response.status, raw, f"{method} {path}")
            try:
                return json.loads(raw) if raw else None
            except ValueError:
                raise ServerError(f"the server at {self.where.url} sent invalid JSON for {method} {path}") from None
        raise AssertionError("unreachable")

    def get(self, path: str) -> Any:
        return self.call("GET", path)

    def post(self, path: str, body: Any) -> Any:
        return self.call("POST", path, body)

    # --- streams -------------------------------------------------------------------------------
    def stream(self, path: str, body: Any, cancel: threading.Event) -> SseStream:
        """POST `body` and return its event stream; HTTP errors are raised here, before any event.

        A cancel cuts the connection even while the server has not answered yet: StreamCancelled.
        """
        conn = self._connect()
        assert conn.sock is not None
        watch = CancelWatch(conn.sock, cancel)
        try:
            conn.request("POST", path, body=json.dumps(body).encode(),
                         headers={**self._headers, "Accept": "text/event-stream"})
            response = conn.getresponse()
            if response.status >= 400:
                raw = response.read()
                raise self.status_error(response.status, raw, f"POST {path}")
        except BaseException as exc:
            watch.stop()
            conn.close()
            if cancel.is_set():
                raise StreamCancelled from None
            if isinstance(exc, OSError | http.client.HTTPException):
                raise self.transport_error(exc) from None
            raise
        return SseStream(conn, response, watch)


class StreamCancelled(Exception):
    """The caller cancelled before the server sent its answer's first byte."""


class CancelWatch:
    """Shuts a socket down when `cancel` is set, from a watcher thread: a server that is silent (evaluating a
    long prompt) cannot hold a cancelled request hostage. The server stops generating when its client goes."""

    def __init__(self, sock: socket.socket, cancel: threading.Event) -> None:
        self._sock, self._cancel = sock, cancel
        self._stopped = threading.Event()
        threading.Thread(target=self._watch, name="qcode-cancel-watch", daemon=True).start()

    def _watch(self) -> None:
        while not self._stopped.is_set():
            if self._cancel.wait(0.05):
                self.shut()
                return

    def shut(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        self._stopped.set()


class StreamDropped(Exception):
    """The event stream ended without its end marker: the connection broke or went silent."""


class SseStream:
    """The JSON payloads of a server-sent-event stream, until `data: [DONE]`."""

    def __init__(self, conn: http.client.HTTPConnection, response: http.client.HTTPResponse,
                 watch: CancelWatch) -> None:
        self._conn, self._response, self._watch = conn, response, watch
        self.done_marker = False
        self.malformed = 0  # events whose data was not a JSON object: skipped, but counted

    def close(self) -> None:
        """Cut the connection now (a server stops generating when its client goes away)."""
        self._watch.stop()
        self._watch.shut()
        self._conn.close()
        with contextlib.suppress(OSError, http.client.HTTPException):
            self._response.close()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        data_lines: list[str] = []
        while True:
            try:
                raw = self._response.readline(SSE_LINE_MAX + 1)
            except TimeoutError as exc:
                raise StreamDropped("silence") from exc
            except (OSError, http.client.HTTPException, ValueError) as exc:
                raise StreamDropped(type(exc).__name__) from exc
            if not raw:
                raise StreamDropped("end of stream")
            if len(raw) > SSE_LINE_MAX:  # no token stream sends this much at once: stop reading
                raise StreamDropped("oversized")
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if line.startswith("data:"):
                data_lines.append(line[5:].removeprefix(" "))
                continue
            if line or not data_lines:
                continue  # comments (": ping"), event names, ids; or a blank line between events
            data = "\n".join(data_lines)
            data_lines = []
            if data.strip() == "[DONE]":
                self.done_marker = True
                return
            try:
                payload = json.loads(data)
            except ValueError:
                payload = None  # not ours to judge: skip what is not JSON
            if isinstance(payload, dict):
                yield payload
            else:
                self.malformed += 1
