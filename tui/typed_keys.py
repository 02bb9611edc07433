"""Key actions that run after the keys typed before them.

The app's bindings are priority bindings: Textual runs one as soon as the app reads the key, while each key read
before it was only forwarded to the focused widget's queue, from where it bubbles up, one queue at a time, through
the widget's ancestors to the app (where Down meets the editor's binding). A burst (a fast typist, a pasted key
sequence, tmux) of Down Down F2 would explain the code at the old cursor, `x` then Ctrl+Space would complete before
the x, and `x` then Ctrl+Q would quit without asking about the x. An action that reads the buffer, the cursor or
the prompt line takes the same path as those keys instead: queued at the focused widget, then at each ancestor in
turn, so it runs after every key ahead of it has been handled, wherever that was.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from textual.app import App
from textual.dom import DOMNode

P = ParamSpec("P")


class OnScreen(Protocol):
    @property
    def app(self) -> App[Any]: ...


S = TypeVar("S", bound=OnScreen)


def after_typed_keys(
    action: Callable[Concatenate[S, P], object],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, None]]:
    """Run `action` once every key sent before it has been handled."""

    async def queued(self: S, /, *args: P.args, **kwargs: P.kwargs) -> None:
        async def run() -> None:
            result = action(self, *args, **kwargs)
            if inspect.isawaitable(result):
                await result

        app = self.app

        def hop(node: DOMNode) -> None:
            parent = node.parent  # where a key bubbles next (a screen's is the app)
            if node is app or parent is None:
                node.call_later(run)
            else:
                node.call_later(hop, parent)

        hop(app.focused or app)

    functools.update_wrapper(queued, action)
    return queued
