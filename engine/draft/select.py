"""Pick the drafter for a request: forced by name, or `auto`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import SettingsError
from .base import Drafter
from .ngram import NgramDrafter

if TYPE_CHECKING:
    from ..generate import Engine


@dataclass(frozen=True)
class DraftChoice:
    name: str
    factory: Callable[[], Drafter] | None


def choose_drafter(mode: str, engine: Engine) -> DraftChoice:
    """`auto`: a configured draft model, else the model's MTP head, else n-gram lookup."""
    settings = engine.settings
    if mode == "none":
        return DraftChoice("none", None)
    if mode == "ngram":
        return DraftChoice("ngram", lambda: NgramDrafter(settings.ngram_min, settings.ngram_max))
    if mode == "model" or (mode == "auto" and settings.draft_model is not None):
        if settings.draft_model is None:
            raise SettingsError("--draft model needs a draft model: set draft_model (--draft-model PATH)")
        from .model_drafter import ModelDrafter

        path = settings.draft_model
        return DraftChoice("model", lambda: ModelDrafter(path, engine))
    if mode == "mtp" or (mode == "auto" and engine.info.n_nextn_layers > 0):
        if engine.info.n_nextn_layers == 0:
            raise SettingsError(f"--draft mtp: {engine.info.path.name} has no MTP (NextN) layer")
        from .mtp import MtpDrafter

        return DraftChoice("mtp", lambda: MtpDrafter(engine))
    if mode == "auto":
        return DraftChoice("ngram", lambda: NgramDrafter(settings.ngram_min, settings.ngram_max))
    raise SettingsError(f"unknown drafter {mode!r}: choose none, ngram, mtp, model or auto")
