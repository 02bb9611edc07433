"""The status line: engine state on the left, model and last-request metrics on the right."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

from engine.events import ProgressEvent, Stats

from ..backend import ModelSummary


@dataclass
class Metrics:
    """The numbers of the last finished request."""

    stats: Stats | None = None
    suggestion_ms: float | None = None
    # (prompt tokens evaluated, prompt tokens) of the last completion: low when state was reused
    suggestion_eval: tuple[int, int] | None = None


def describe_model(summary: ModelSummary | None, stats: Stats | None = None) -> str:
    """The model line; after a request, the drafter it really used (settings may say "auto")."""
    if summary is None:
        return ""
    drafter = stats.drafter if stats is not None and stats.drafter else summary.drafter
    return f"{summary.name} {summary.quant} · kv {summary.kv_type} · draft {drafter}"


def describe_metrics(metrics: Metrics, n_ctx: int | None) -> str:
    parts: list[str] = []
    if metrics.suggestion_ms is not None:
        parts.append(f"suggest {metrics.suggestion_ms:.0f} ms")
        if metrics.suggestion_eval is not None:
            parts.append("eval {}/{} tok".format(*metrics.suggestion_eval))
    stats = metrics.stats
    if stats is not None:
        parts.append(f"{stats.decode_tokens_per_s:.1f} tok/s")
        if stats.draft_proposed:
            parts.append(f"acc {stats.acceptance:.0%}")
        if n_ctx:
            used = stats.prompt_tokens + stats.completion_tokens
            parts.append(f"ctx {used}/{n_ctx}")
    return " · ".join(parts)


def progress_text(task: str, progress: ProgressEvent | None, elapsed: float, rate: float | None) -> str:
    """A running request in words: the prompt read so far, then the answer's length and speed."""
    seconds = f"{elapsed:.0f} s"
    if progress is None:
        return f"{task} · waiting · {seconds}"
    if progress.stage == "prompt":
        return f"{task} · prompt {progress.done:,}/{progress.total:,} tok · {seconds}"
    speed = f" · {rate:.1f} tok/s" if rate else ""
    return f"{task} · {progress.done} tok{speed} · {seconds}"


FINISH_WORDS = {
    "length": "cut off at the token limit",
    "context": "cut off: the context is full",
    "repetition": "stopped: it kept repeating itself",
    "partial": "broken off: the server's stream ended early",
}


class StatusLine(Horizontal):
    """Two one-line Statics; the right one gives way first when the terminal is narrow."""

    def compose(self) -> ComposeResult:
        yield Static("", id="status-state")
        yield Static("", id="status-info")

    def set_state(self, text: str, busy: bool = False, error: bool = False) -> None:
        state = self.query_one("#status-state", Static)
        state.update(text)
        state.set_class(busy, "-busy")
        state.set_class(error, "-error")

    def set_info(self, summary: ModelSummary | None, metrics: Metrics) -> None:
        # the numbers of the last request first: when the line is cut, the static part goes
        model = describe_model(summary, metrics.stats)
        numbers = describe_metrics(metrics, summary.n_ctx if summary else None)
        self.query_one("#status-info", Static).update(
            " │ ".join(part for part in (numbers, model) if part)
        )
