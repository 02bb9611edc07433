"""qcode's headless engine: import it without a terminal (it never imports textual or rich)."""

from typing import TYPE_CHECKING

from .errors import (
    ContextError,
    GenerationError,
    InputError,
    ModelError,
    QcodeError,
    SettingsError,
    TemplateError,
)
from .events import DoneEvent, Event, GenerationRequest, NoticeEvent, ProgressEvent, Stats, TextEvent
from .settings import QcodeSettings, load_settings

if TYPE_CHECKING:
    from .generate import Engine

__all__ = [
    "ContextError",
    "DoneEvent",
    "Engine",
    "Event",
    "GenerationError",
    "GenerationRequest",
    "InputError",
    "ModelError",
    "NoticeEvent",
    "ProgressEvent",
    "QcodeError",
    "QcodeSettings",
    "SettingsError",
    "Stats",
    "TemplateError",
    "TextEvent",
    "load_settings",
]


def __getattr__(name: str) -> object:
    # Engine pulls in llama.cpp: import it only when asked, so `qcode config` starts fast
    if name == "Engine":
        from .generate import Engine

        return Engine
    raise AttributeError(name)
