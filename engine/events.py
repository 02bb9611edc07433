"""What a request asks for and what a generation streams back."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

# partial: the answer was cut short by a failure (a dropped server stream): never to be applied
# repetition: the answer went round in a loop and was stopped (engine.repetition)
FinishReason = Literal["eog", "stop", "length", "cancelled", "context", "partial", "repetition"]
# answers that stopped before their end: a rewrite or completion from one is never written or offered
CUT_OFF: frozenset[str] = frozenset({"length", "cancelled", "context", "partial", "repetition"})


@dataclass(frozen=True)
class ChatTurn:
    """A single-turn chat: the embedded engine renders it with the model's chat template (a plain format for a base
    model), a server in chat mode receives it as messages."""

    system: str
    user: str
    prefill: str = ""  # the answer's start (an opening code fence), so the model writes code straight away
    think: bool = False  # the template's thinking block (Qwen3's enable_thinking)


@dataclass(frozen=True)
class GenerationRequest:
    """One single-turn request. `None` fields take the engine's settings."""

    prompt: ChatTurn | str | list[int]  # a chat turn, or a raw prompt as text or tokens
    max_tokens: int | None = None
    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    drafter: str | None = None  # none, ngram, mtp, model, auto
    # the first prefix_chars characters of a raw text prompt are a reusable prefix (a chat turn's is its system part)
    prefix_chars: int = 0
    # the same for a token prompt: its first prefix_tokens tokens are kept as a snapshot to restore later
    prefix_tokens: int = 0
    # background work (a warm-up): the prompt is evaluated in batches of at most this many tokens, so that a cancel
    # takes effect within one of them (0: the engine's full batch)
    batch_tokens: int = 0
    # text the answer is likely to copy (the code being edited), or its tokens: the n-gram drafter searches it first
    reference: str | list[int] = ""


@dataclass
class Stats:
    prompt_tokens: int = 0
    prompt_tokens_evaluated: int = 0
    completion_tokens: int = 0
    ttft_ms: float = 0.0
    decode_tokens_per_s: float = 0.0
    decode_s: float = 0.0
    draft_proposed: int = 0
    draft_accepted: int = 0
    draft_steps: int = 0
    drafter: str = "none"
    kv_type: str = ""
    model: str = ""
    finish_reason: FinishReason = "eog"

    @property
    def acceptance(self) -> float:
        return self.draft_accepted / self.draft_proposed if self.draft_proposed else 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["acceptance"] = round(self.acceptance, 4)
        data["ttft_ms"] = round(self.ttft_ms, 2)
        data["decode_tokens_per_s"] = round(self.decode_tokens_per_s, 2)
        data["decode_s"] = round(self.decode_s, 4)
        return data

    def one_line(self) -> str:
        text = (
            f"prompt {self.prompt_tokens} tok ({self.prompt_tokens_evaluated} evaluated), "
            f"{self.completion_tokens} tok, ttft {self.ttft_ms:.0f} ms, "
            f"{self.decode_tokens_per_s:.1f} tok/s, drafter {self.drafter}"
        )
        if self.draft_proposed:
            text += f" ({self.draft_accepted}/{self.draft_proposed} accepted)"
        return text + f", kv {self.kv_type}, {self.finish_reason}, model {self.model}"


@dataclass(frozen=True)
class TextEvent:
    """A piece of the answer, always whole UTF-8 characters."""

    text: str


@dataclass(frozen=True)
class NoticeEvent:
    """Something the user should know that is not part of the answer (trimmed input, ...)."""

    message: str


@dataclass(frozen=True)
class ProgressEvent:
    """How far a request has got, for a progress line; never part of the answer.

    stage "prompt": `done` of the `total` prompt tokens this request evaluates (a reused prefix is not counted);
    stage "decode": `done` answer tokens of at most `total`. `elapsed_s` counts from the request's start.
    """

    stage: Literal["prompt", "decode"]
    done: int
    total: int
    elapsed_s: float


@dataclass(frozen=True)
class DoneEvent:
    text: str
    stats: Stats = field(default_factory=Stats)
    tokens: tuple[int, ...] = ()  # the answer's tokens, for tests and benchmarks


Event = TextEvent | NoticeEvent | ProgressEvent | DoneEvent
