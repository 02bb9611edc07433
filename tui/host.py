"""What the main screen needs of the app that holds it (the app implements it; tests may too)."""

from __future__ import annotations

import threading
from typing import Protocol

from engine.settings import QcodeSettings

from .backend import EngineBackend


class Host(Protocol):
    settings: QcodeSettings
    backend: EngineBackend | None  # None while the model loads, or when it failed to
    load_error: str | None
    engine_lock: threading.Lock  # one request on the engine at a time, a cancelled one until it unwound
