"""The settings a command line asks for: its options over the config file and the environment."""

from __future__ import annotations

import argparse
from typing import Any

from engine.settings import QcodeSettings, load_settings


def settings_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The command line's settings; None where an option was not given."""
    def get(name: str) -> Any:
        return getattr(args, name, None)

    return {
        "model": get("model"),
        "n_ctx": get("ctx"),
        "kv_type_k": get("kv_type"),
        "kv_type_v": get("kv_type"),
        "draft": get("draft"),
        "draft_model": get("draft_model"),
        "threads": get("threads"),
        "max_tokens": get("max_tokens"),
        "temperature": get("temperature"),
        "seed": get("seed"),
        "think": get("think"),
        "server_url": get("server"),
        "server_model": get("server_model"),
        "test_cmd": get("test_cmd"),
    }


def settings_from(args: argparse.Namespace) -> tuple[QcodeSettings, dict[str, Any]]:
    overrides = settings_overrides(args)
    return load_settings(**overrides), overrides
