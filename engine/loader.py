"""open_backend: the one place that knows both backends (each imports engine.backend, so backend cannot)."""

from __future__ import annotations

from .backend import Backend
from .model import Progress
from .settings import QcodeSettings


def open_backend(settings: QcodeSettings, progress: Progress | None = None) -> Backend:
    """The server named by settings.server_url, else the embedded engine (which loads the model: slow)."""
    if settings.server_url:
        from .remote import RemoteEngine

        return RemoteEngine(settings, progress)
    from .generate import Engine

    return Engine(settings, progress)
