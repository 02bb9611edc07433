"""RemoteEngine: the Backend on an OpenAI-compatible inference server (llama-server, llama-cpp-python's server,
vLLM), over the standard library only.

How prompts travel (decided once, when the backend opens):
- completions mode: qcode renders the prompt itself, exactly as the embedded engine would, and streams it raw
  from /v1/completions. Used when the model's chat template is known: from the GGUF itself when the server names a
  model file readable on this machine (/props model_path, or llama-cpp-python's model id), else from llama-server's
  /props. A base model without a template gets the plain format, as in the embedded engine.
- chat mode: when no template is known (vLLM, a remote llama-cpp-python) the server applies its own template:
  a request's chat turn goes as system and user messages to /v1/chat/completions; a code task's opening fence goes
  as an assistant prefill (continue_final_message) and, for servers that ignore that, an echoed fence is dropped and
  stops apply here.
Completion at a cursor always uses /v1/completions: a text FIM prompt when the server's tokenizer knows FIM marker
tokens (llama-cpp-python's `suffix` parameter is not used: it puts token id 0 where the FIM tokens belong), else
the prefix alone.
Token counts come from the server's tokenizer (/tokenize, /extras/tokenize); a server without one gets an
estimate of 3 characters a token, and then a prompt is never refused here for its size (the server decides).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .backend import OneRequestAtATime
from .errors import ContextError, ModelError
from .events import ChatTurn, DoneEvent, Event, FinishReason, GenerationRequest, NoticeEvent, Stats, TextEvent
from .fim import QWEN_MARKERS, FimParts, Marker, render_text
from .model import FIM_MARKERS, ModelInfo, Progress, read_model_info
from .prompts import build_prompt, render_turn
from .remote_http import (
    SSE_LINE_MAX,
    Http,
    HttpStatusError,
    ServerError,
    StreamCancelled,
    StreamDropped,
    Where,
)
from .settings import QcodeSettings
from .text_stream import TextStream

__all__ = ["RemoteEngine", "ServerError"]

ESTIMATE_CHARS_PER_TOKEN = 3
# what a server's chat template adds to a turn's text (role headers), unseen in chat mode: a generous estimate
CHAT_TURN_OVERHEAD_TOKENS = 16
_COUNT_CACHE = 512
_FENCE = "```"


@dataclasses.dataclass(frozen=True)
class _Tokenizer:
    path: str
    style: str  # llama.cpp, vllm, llama-cpp-python
    bos: int  # tokens the endpoint adds to every text (llama-cpp-python adds BOS)


class RemoteEngine(OneRequestAtATime):
    """The engine interface on a server; one request at a time, like the embedded Engine."""

    def __init__(self, settings: QcodeSettings, progress: Progress | None = None) -> None:
        super().__init__()
        self.settings = settings
        where = Where.parse(settings.server_url)
        key_env = settings.server_api_key_env
        api_key = (os.environ.get(key_env) or None) if key_env else None
        self.http = Http(where, api_key, key_env, settings.server_timeout)
        self._counts: OrderedDict[str, int] = OrderedDict()
        if progress:
            progress(f"connecting to {where.url}", None)
        try:
            self._probe()
        except BaseException:
            self.http.close()
            raise
        if progress:
            progress(f"connected to {where.url}", 1.0)

    # --- what the server tells ------------------------------------------------------------------
    def _probe(self) -> None:
        where, settings = self.http.where, self.settings
        try:
            listing = self.http.get(f"{where.api}/models")
        except HttpStatusError as exc:
            if exc.status != 404:
                raise
            raise ServerError(f"{where.url} does not look like an OpenAI-compatible server: GET {where.api}/models "
                              "answered HTTP 404 (the URL usually ends in /v1)") from None
        models = [m for m in (listing or {}).get("data", []) if isinstance(m, dict) and m.get("id")]
        if settings.server_model:
            chosen = next((m for m in models if m["id"] == settings.server_model), None)
            if chosen is None and models:
                names = ", ".join(str(m["id"]) for m in models[:8])
                raise ServerError(f"the server at {where.url} has no model {settings.server_model!r} "
                                  f"(it serves: {names}); check server_model / --server-model")
            entry: dict[str, Any] = chosen or {"id": settings.server_model}
        elif models:
            entry = models[0]
        else:
            raise ServerError(f"the server at {where.url} lists no model at GET {where.api}/models; "
                              "name one with server_model / --server-model")
        self.model_id = str(entry["id"])
        owner = str(entry.get("owned_by", ""))
        meta: dict[str, Any] = entry["meta"] if isinstance(entry.get("meta"), dict) else {}
        props = self._optional("GET", f"{where.root}/props") or {}
        self.flavor = ("llama.cpp" if owner == "llamacpp" or props.get("default_generation_settings")
                       else "vllm" if owner == "vllm" else "")
        n_ctx_server = _int(entry.get("max_model_len")) or _int(meta.get("n_ctx")) or _int(
            (props.get("default_generation_settings") or {}).get("n_ctx"))
        self.n_ctx_source = "server" if n_ctx_server else "setting n_ctx (the server does not report its context)"
        self._n_ctx = n_ctx_server or settings.n_ctx
        self.tokenizer = self._find_tokenizer()
        if self.tokenizer and not self.flavor:
            self.flavor = {"llama-cpp-python": "llama-cpp-python"}.get(self.tokenizer.style, "")
        self.flavor = self.flavor or "OpenAI-compatible"

        # the model's facts: its own GGUF when this machine can read it, else what the server says
        self.local_gguf: Path | None = None
        info: ModelInfo | None = None
        for candidate in (props.get("model_path"), self.model_id):
            if isinstance(candidate, str) and candidate.endswith(".gguf") and Path(candidate).is_file():
                try:
                    info = read_model_info(Path(candidate))
                except (ModelError, OSError):
                    continue
                self.local_gguf = Path(candidate)
                break
        if info is None:
            template = props.get("chat_template") if isinstance(props.get("chat_template"), str) else None
            info = ModelInfo(
                path=Path(self.model_id), arch="unknown", name=Path(self.model_id).name or self.model_id,
                quant=str(props.get("model_ftype") or meta.get("ftype") or "unknown"),
                size_bytes=_int(meta.get("size")), n_ctx_train=_int(meta.get("n_ctx_train")),
                vocab_size=_int(meta.get("n_vocab")), n_layer=0, n_embd=_int(meta.get("n_embd")), has_fim=True,
                chat_template=(template.strip() or None) if template else None, n_nextn_layers=0,
                is_hybrid=False, is_recurrent=False, n_swa=0,
            )
        # chat mode: no template qcode can render, so the server applies its own to the turn's messages
        self.chat_mode = self.local_gguf is None and (info.chat_template is None or not _renders(info))
        if self.chat_mode:
            info = dataclasses.replace(info, chat_template=None)
        self.fim_markers = self._find_fim() if info.has_fim else None
        self.info = dataclasses.replace(info, has_fim=self.fim_markers is not None)

    def _optional(self, method: str, path: str, body: Any = None) -> Any:
        """An endpoint only some servers have: None where it is missing or fails (a refused key still raises)."""
        try:
            return self.http.call(method, path, body)
        except HttpStatusError as exc:
            if exc.status in (401, 403):
                raise
            return None

    def _find_tokenizer(self) -> _Tokenizer | None:
        """The server's tokenizer endpoint, checked on real text (a wrong body can still answer 200)."""
        root = self.http.where.root
        styles = {"llama.cpp": f"{root}/tokenize", "vllm": f"{root}/tokenize",
                  "llama-cpp-python": f"{root}/extras/tokenize"}
        order = [self.flavor] if self.flavor in styles else ["llama-cpp-python", "llama.cpp", "vllm"]
        for style in order:
            candidate = _Tokenizer(styles[style], style, 0)
            # llama.cpp and vLLM are asked for no special tokens; llama-cpp-python adds BOS, so measure it
            base = self._count_with(candidate, "") if style == "llama-cpp-python" else 0
            text = self._count_with(candidate, "def f(x):\n    return x") if base is not None else None
            if base is not None and text is not None and text > base:
                return dataclasses.replace(candidate, bos=base)
        return None

    def _count_with(self, t: _Tokenizer, text: str, *, probing: bool = True) -> int | None:
        body: dict[str, Any] = (
            {"content": text, "add_special": False} if t.style == "llama.cpp"
            else {"model": self.model_id, "prompt": text, "add_special_tokens": False} if t.style == "vllm"
            else {"input": text, "model": self.model_id}
        )
        reply = self._optional("POST", t.path, body) if probing else self.http.post(t.path, body)
        tokens = reply.get("tokens") if isinstance(reply, dict) else None
        if isinstance(tokens, list):
            return max(0, len(tokens) - t.bos)
        if probing:
            return None
        raise ServerError(f"the server at {self.http.where.url} sent no tokens from {t.path}")

    def _tokenize_count(self, text: str) -> int:
        assert self.tokenizer is not None
        count = self._count_with(self.tokenizer, text, probing=False)
        assert count is not None
        return count

    def _find_fim(self) -> dict[Marker, str] | None:
        """The FIM marker family whose three markers are each one token of the server's vocabulary, with Qwen's
        repository markers where the family is Qwen's and the vocabulary has them."""
        if self.tokenizer is None:
            return None
        families = zip(FIM_MARKERS["prefix"], FIM_MARKERS["suffix"], FIM_MARKERS["middle"], strict=True)
        for pre, suf, mid in families:
            if self._tokenize_count(pre + suf + mid) == 3:
                found = {Marker.PREFIX: pre, Marker.SUFFIX: suf, Marker.MIDDLE: mid}
                repo, file = QWEN_MARKERS[Marker.REPO], QWEN_MARKERS[Marker.FILE]
                if pre == QWEN_MARKERS[Marker.PREFIX] and self._tokenize_count(repo + file) == 2:
                    found.update({Marker.REPO: repo, Marker.FILE: file})
                return found
        return None

    # --- the Backend interface ------------------------------------------------------------------
    @property
    def n_ctx(self) -> int:
        return self._n_ctx

    @property
    def kv_type(self) -> str:
        return "server"

    @property
    def exact_counts(self) -> bool:
        return self.tokenizer is not None

    def count_tokens(self, text: str) -> int:
        if not text:
            return 0
        if self.tokenizer is None:
            return -(-len(text) // ESTIMATE_CHARS_PER_TOKEN)
        cached = self._counts.get(text)
        if cached is None:
            cached = self._counts[text] = self._tokenize_count(text)
            if len(self._counts) > _COUNT_CACHE:
                self._counts.popitem(last=False)
        else:
            self._counts.move_to_end(text)
        return cached

    def count_turn_tokens(self, turn: ChatTurn) -> int:
        if self.chat_mode:
            return self.count_tokens(f"{turn.system}\n{turn.user}\n{turn.prefill}") + CHAT_TURN_OVERHEAD_TOKENS
        return self.count_tokens(render_turn(self.info, turn).text)

    def fim_prompt(self, parts: FimParts) -> str:
        return render_text(parts, self.fim_markers or {})

    def close(self) -> None:
        self.http.close()

    def describe(self) -> list[tuple[str, str]]:
        """The server's facts for `qcode model`, as (name, value) rows; the API key is never shown."""
        info = self.info
        if self.chat_mode:
            prompts = "the server's chat template (/v1/chat/completions)"
        elif info.chat_template:
            prompts = "the model's chat template, rendered by qcode (/v1/completions)"
        else:
            prompts = "plain format for a base model (/v1/completions)"
        key_env = self.settings.server_api_key_env
        return [
            ("server", self.http.where.url),
            ("server kind", self.flavor),
            ("model", self.model_id),
            ("name", info.name),
            ("facts from", f"the model file {self.local_gguf}" if self.local_gguf else "the server"),
            ("architecture", info.arch),
            ("quant type", info.quant),
            ("context", f"{self.n_ctx} tokens ({self.n_ctx_source})"),
            ("trained context", f"{info.n_ctx_train} tokens" if info.n_ctx_train else "unknown"),
            ("prompts", prompts),
            ("FIM tokens", " ".join(self.fim_markers.values()) if self.fim_markers
             else "no (completion uses the prefix)"),
            ("token counts", f"the server ({self.tokenizer.path})" if self.tokenizer
             else f"estimated ({ESTIMATE_CHARS_PER_TOKEN} characters a token)"),
            ("API key", f"from ${key_env}" if self.http.has_key else "none"),
        ]

    # --- streaming ------------------------------------------------------------------------------
    def _stream(self, request: GenerationRequest, cancel: threading.Event) -> Iterator[Event]:
        s = self.settings
        started = time.perf_counter()
        stops, chat = request.stop, None  # chat: the turn the server renders (chat mode)
        prompt: str | list[int] = ""  # else the prompt sent raw, rendered here
        if not isinstance(request.prompt, ChatTurn):
            prompt = request.prompt
        elif self.chat_mode:
            chat = request.prompt
        else:
            built = render_turn(self.info, request.prompt)
            prompt, stops = built.text, stops + built.stops
        if not (chat or prompt):
            raise ContextError("the prompt is empty")
        if isinstance(prompt, list):
            prompt_tokens = len(prompt)
        else:
            # the server adds BOS where the model wants one; llama-cpp-python's tokenizer tells us so
            counted = self.count_turn_tokens(chat) if chat else self.count_tokens(prompt)
            prompt_tokens = counted + (self.tokenizer.bos if self.tokenizer else 0)
        max_new = request.max_tokens or s.max_tokens
        limited = False
        if self.exact_counts or isinstance(prompt, list):
            if prompt_tokens >= self.n_ctx - 1:
                raise ContextError(f"the prompt is {prompt_tokens} tokens but the server's context holds "
                                   f"{self.n_ctx}; give less input" + ("" if self.n_ctx_source == "server"
                                                                        else " or raise --ctx"))
            room = self.n_ctx - prompt_tokens - 1
            limited, max_new = room < max_new, max(1, min(max_new, room))
        body: dict[str, Any] = {"model": self.model_id, "max_tokens": max_new, "stream": True,
                                "stream_options": {"include_usage": True}}
        temperature = s.temperature if request.temperature is None else request.temperature
        top_k = s.top_k if request.top_k is None else request.top_k
        seed = s.seed if request.seed is None else request.seed
        body["temperature"] = temperature
        body["top_p"] = s.top_p if request.top_p is None else request.top_p
        if top_k > 0:
            body["top_k"] = top_k
        if seed >= 0:
            body["seed"] = seed
        # the embedded engine samples with top-k, top-p and temperature only: llama.cpp servers default to a
        # repetition penalty (llama-cpp-python 1.1) and min-p 0.05, which would make their answers differ
        body["min_p"] = 0.0
        if self.flavor in ("llama.cpp", "llama-cpp-python"):
            body["repeat_penalty"] = 1.0
        # a chat model may repeat the prefilled fence itself: then its stops are applied here, after the echo
        local_stops = bool(chat and chat.prefill)
        if stops and not local_stops:
            body["stop"] = list(stops)
        if chat is not None:
            path = f"{self.http.where.api}/chat/completions"
            messages = [{"role": "system", "content": chat.system}] if chat.system.strip() else []
            messages.append({"role": "user", "content": chat.user})
            if chat.prefill:
                messages.append({"role": "assistant", "content": chat.prefill})
                body.update(continue_final_message=True, add_generation_prompt=False)
            body["messages"] = messages
            body["chat_template_kwargs"] = {"enable_thinking": chat.think}
        else:
            path = f"{self.http.where.api}/completions"
            body["prompt"] = prompt
        stats = Stats(prompt_tokens=prompt_tokens, prompt_tokens_evaluated=prompt_tokens, drafter="server",
                      kv_type=self.kv_type, model=self.info.name)
        yield from self._run(path, body, stops, stats, cancel, started, chat, limited)

    def _run(
        self, path: str, body: dict[str, Any], stops: tuple[str, ...], stats: Stats, cancel: threading.Event,
        started: float, chat: ChatTurn | None, limited: bool,
    ) -> Iterator[Event]:
        text = TextStream(stops if chat and chat.prefill else ())
        echo = _EchoFilter(chat.prefill if chat else "")
        if cancel.is_set():
            yield DoneEvent("", dataclasses.replace(stats, finish_reason="cancelled"))
            return
        try:
            events = self.http.stream(path, body, cancel)
        except StreamCancelled:
            yield DoneEvent("", dataclasses.replace(stats, finish_reason="cancelled"))
            return
        url = self.http.where.url
        finish: FinishReason | None = None
        server_finish: str | None = None
        usage: dict[str, Any] = {}
        timings: dict[str, Any] = {}
        chunks = 0
        first_at: float | None = None
        dropped = overrun = ""
        max_new = int(body["max_tokens"])
        # each event holds at least one token, and no token is this long
        max_chunks, max_chars = max_new + 16, max_new * 64 + 4096
        try:
            for payload in events:
                error = _stream_error(payload)
                if error:
                    dropped = f"the server at {url} failed {{when}}: {error}"
                    break
                usage = payload.get("usage") or usage
                timings = payload.get("timings") or timings
                choices = payload.get("choices") or []
                choice = choices[0] if choices and isinstance(choices[0], dict) else {}
                piece = choice.get("text")
                if piece is None:
                    delta = choice.get("delta") or {}
                    piece = delta.get("content") if isinstance(delta, dict) else None
                if piece:
                    chunks += 1
                    if chunks > max_chunks or len(text.text) + len(piece) > max_chars:
                        # a server that ignores max_tokens: what was asked for has come, stop reading
                        overrun = f"the server at {url} sent more than the {max_new} tokens asked for; stopped reading"
                        finish = "length"
                        break
                    if first_at is None:
                        first_at = time.perf_counter()
                        stats.ttft_ms = (first_at - started) * 1000
                    shown = text.add(echo.feed(piece).encode())
                    if shown:
                        yield TextEvent(shown)
                    if text.stopped:
                        finish = "stop"
                        break
                server_finish = choice.get("finish_reason") or server_finish
                if cancel.is_set():
                    finish = "cancelled"
                    break
        except StreamDropped as exc:
            if cancel.is_set():
                finish = "cancelled"
            elif str(exc) == "oversized":
                dropped = f"the server at {url} sent an event line over {SSE_LINE_MAX >> 20} MiB {{when}}"
            elif server_finish is None:
                dropped = (f"the server at {url} sent nothing for {self.http.timeout:g} s {{when}} (server_timeout)"
                           if str(exc) == "silence" else f"the server at {url} closed the stream {{when}}")
        finally:
            events.close()
        if finish is None and not dropped and not events.done_marker and server_finish is None:
            dropped = f"the server at {url} closed the stream {{when}}"
        tail = text.add(echo.finish().encode()) if not text.stopped else ""
        tail += text.finish()
        if tail:
            yield TextEvent(tail)
        if events.malformed and not text.text:
            raise ServerError(f"the server at {url} sent {events.malformed} malformed event(s) (not JSON) "
                              "and no answer")
        if dropped and not text.text:
            raise ServerError(dropped.replace("{when}", "before answering"))
        if overrun:
            yield NoticeEvent(overrun)
        if dropped:
            yield NoticeEvent(dropped.replace("{when}", "mid-answer") + ": the answer is partial")
            finish = "partial"
        if finish is None:
            if server_finish == "length":
                finish = "context" if limited else "length"
            else:
                finish = "stop" if stops and server_finish == "stop" else "eog"
        self._fill_stats(stats, usage, timings, text.text, chunks, first_at, finish)
        yield DoneEvent(text.text, stats)

    def _fill_stats(
        self, stats: Stats, usage: dict[str, Any], timings: dict[str, Any], answer: str, chunks: int,
        first_at: float | None, finish: FinishReason,
    ) -> None:
        """The server's own figures where it reports them (llama.cpp's timings, OpenAI usage), else ours."""
        ended = time.perf_counter()
        stats.finish_reason = finish
        if usage.get("prompt_tokens"):
            stats.prompt_tokens = stats.prompt_tokens_evaluated = _int(usage["prompt_tokens"])
            cached = _int((usage.get("prompt_tokens_details") or {}).get("cached_tokens"))
            stats.prompt_tokens_evaluated -= min(cached, stats.prompt_tokens)
        if "prompt_n" in timings:
            stats.prompt_tokens_evaluated = _int(timings["prompt_n"])
            stats.prompt_tokens = stats.prompt_tokens_evaluated + _int(timings.get("cache_n"))
        completion = _int(timings.get("predicted_n")) or _int(usage.get("completion_tokens"))
        if not completion and answer:
            # no figures (llama-cpp-python, or we hung up): the server's tokenizer, else one token per chunk
            completion = chunks
            if self.exact_counts and finish != "partial":  # after a failure the server may be gone
                with contextlib.suppress(ServerError):
                    completion = self.count_tokens(answer)
        stats.completion_tokens = completion
        if timings.get("predicted_per_second"):
            stats.decode_tokens_per_s = float(timings["predicted_per_second"])
            stats.decode_s = float(timings.get("predicted_ms", 0.0)) / 1000
        elif first_at is not None:
            stats.decode_s = ended - first_at
            stats.decode_tokens_per_s = (completion - 1) / stats.decode_s if completion > 1 and stats.decode_s else 0
        stats.draft_proposed = _int(timings.get("draft_n"))
        stats.draft_accepted = _int(timings.get("draft_n_accepted"))
        stats.draft_steps = 0


class _EchoFilter:
    """Drops a code fence the model writes although the prompt prefilled one (servers that ignore prefill)."""

    def __init__(self, prefill: str) -> None:
        self._active = prefill.lstrip().startswith(_FENCE)
        self._held = ""

    def feed(self, piece: str) -> str:
        if not self._active:
            return piece
        self._held += piece
        stripped = self._held.lstrip()
        if len(stripped) < len(_FENCE) and _FENCE.startswith(stripped):
            return ""  # could still become a fence
        if not stripped.startswith(_FENCE):
            return self.finish()
        if "\n" not in stripped:
            return ""  # the fence's info string is still coming
        self._active = False
        rest = stripped.split("\n", 1)[1]
        self._held = ""
        return rest

    def finish(self) -> str:
        held, self._held, self._active = self._held, "", False
        return held


def _stream_error(payload: dict[str, Any]) -> str:
    """The message of an error sent inside an event stream (llama.cpp and vLLM both do)."""
    error = payload.get("error")
    if payload.get("object") == "error" and not error:
        error = payload
    if isinstance(error, dict):
        return str(error.get("message") or error.get("type") or "error")
    return str(error) if error else ""


def _renders(info: ModelInfo) -> bool:
    """Whether qcode's template sandbox can render the server's chat template (else the server renders it)."""
    try:
        build_prompt(info, "system", "user")
    except Exception:  # a TemplateError, or whatever else a foreign template raises in the sandbox
        return False
    return True


def _int(value: Any) -> int:
    try:
        return int(value) if value is not None and not isinstance(value, bool) else 0
    except (TypeError, ValueError):
        return 0
