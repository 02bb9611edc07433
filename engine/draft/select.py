"""Pick the drafting plan for a request: forced by name, or `auto`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import SettingsError
from .base import Drafter, DraftHost
from .ngram import NgramDrafter
from .plan import EDIT_PRIOR, PROSE_PRIOR

# In `auto`, n-gram lookup is preferred to a costly drafter only for a match this long: a shorter one is as likely
# a coincidence as a copy, and the MTP head or draft model guesses better there.
AUTO_NGRAM_MIN_TOKENS = 4
NGRAM_PRIORS = (EDIT_PRIOR, PROSE_PRIOR)


@dataclass(frozen=True)
class SourceSpec:
    name: str
    factory: Callable[[], Drafter]
    costly: bool = False
    min_tokens: int = 1
    priors: tuple[float, float] | None = None  # see DraftSource.priors


@dataclass(frozen=True)
class DraftChoice:
    name: str
    sources: tuple[SourceSpec, ...] = ()


def choose_drafter(mode: str, host: DraftHost) -> DraftChoice:
    """`auto`: n-gram lookup for long matches, else a configured draft model or the model's MTP head."""
    settings = host.settings
    # lookup acceptance depends on the task, so it restarts per request; a model drafter's is the model's and carries
    ngram = SourceSpec("ngram", lambda: NgramDrafter(settings.ngram_min, settings.ngram_max), priors=NGRAM_PRIORS)
    if mode == "none":
        return DraftChoice("none")
    if not host.can_draft:
        if mode == "auto":
            return DraftChoice("none")
        raise SettingsError(
            f"--draft {mode}: drafting was off when the model loaded (no rollback slots for its recurrent state)"
        )
    if mode == "ngram":
        return DraftChoice("ngram", (ngram,))
    costly: SourceSpec | None = None
    if mode == "model" or (mode == "auto" and settings.draft_model is not None):
        from ..model import draft_model_for, resolve_model
        from .model_drafter import ModelDrafter

        found = (
            resolve_model(settings.draft_model, setting="draft_model") if settings.draft_model is not None
            else draft_model_for(host.info.path)  # the packaged target's own pair
        )
        if found is None:
            raise SettingsError("--draft model needs a draft model: set draft_model (--draft-model NAME|PATH)")
        path = found
        costly = SourceSpec("model", lambda: ModelDrafter(path, host), costly=True)
    elif mode == "mtp" or (mode == "auto" and host.info.n_nextn_layers > 0):
        if host.info.n_nextn_layers == 0:
            raise SettingsError(f"--draft mtp: {host.info.path.name} has no MTP (NextN) layer")
        from .mtp import MtpDrafter

        costly = SourceSpec("mtp", lambda: MtpDrafter(host), costly=True)
    if costly is not None:
        if mode == "auto":
            long_ngram = dataclasses.replace(ngram, min_tokens=AUTO_NGRAM_MIN_TOKENS)
            return DraftChoice(f"ngram+{costly.name}", (long_ngram, costly))
        return DraftChoice(costly.name, (costly,))
    if mode == "auto":
        return DraftChoice("ngram", (ngram,))
    raise SettingsError(f"unknown drafter {mode!r}: choose none, ngram, mtp, model or auto")
