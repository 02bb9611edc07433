"""The commands that are not tasks: model, quantize, config, and opening the interface."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from engine.errors import InputError
from engine.settings import QcodeSettings, describe_settings, load_settings

from . import cli_input, cli_settings
from .cli_input import read_stdin
from .cli_output import ProgressLine, err_line, print_json

# model, quantize, config


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{n} B"
        size /= 1024
    return f"{n} B"


def run_model(args: argparse.Namespace) -> int:
    from engine.model import read_model_info, resolve_model_path

    if args.action == "list":
        return _list_models(args.json)
    settings = load_settings(
        model=args.model, server_url=args.server, server_model=args.server_model
    )
    if settings.server_url and not args.model:
        return _server_model(settings, args.json)
    progress = ProgressLine()
    try:
        path = resolve_model_path(settings, progress)
    finally:
        progress.close()
    info = read_model_info(path)
    data = info.to_dict()
    if args.json:
        print_json(data)
        return 0
    rows = [
        ("path", str(info.path)),
        ("name", info.name),
        ("architecture", info.arch),
        ("quant type", info.quant),
        ("size", f"{_size(info.size_bytes)} ({info.size_bytes} bytes)"),
        ("trained context", f"{info.n_ctx_train} tokens"),
        ("vocabulary", f"{info.vocab_size} tokens"),
        ("layers", f"{data.get('n_layer', '?')} (embedding {data.get('n_embd', '?')})"),
        ("FIM tokens", "yes" if info.has_fim else "no"),
        ("chat template", "yes" if info.chat_template else "no"),
        ("MTP layers", str(info.n_nextn_layers)),
        ("memory", str(data.get("memory", ""))),
    ]
    width = max(len(name) for name, _ in rows)
    sys.stdout.write("".join(f"{name:<{width}}  {value}\n" for name, value in rows))
    return 0


def _list_models(as_json: bool) -> int:
    """The packaged models: installed or not, built or not, where, how large, which is the default."""
    from engine.model import read_model_info
    from engine.packaged import PACKAGED_MODELS, installed_models, models_dir, ready_path

    installed = {model.name for model in installed_models()}
    default = next((m.name for m in PACKAGED_MODELS if m.name in installed or ready_path(m)), None)
    rows: list[dict[str, Any]] = []
    for model in PACKAGED_MODELS:
        ready = ready_path(model)
        info = read_model_info(ready) if ready else None
        rows.append({
            "name": model.name,
            "model": model.title,
            "default": model.name == default,
            "installed": model.name in installed,
            "built": ready is not None,
            "quant": info.quant if info else None,
            "size_bytes": info.size_bytes if info else None,
            "path": str(ready or models_dir() / model.file_name),
            "draft_model": model.draft,
            "install": f"pip install 'qcode[{model.extra}]'",
        })
    if as_json:
        print_json({"models": rows})
        return 0
    lines = []
    for row in rows:
        if row["built"]:
            state = f"{row['quant']}, {_size(row['size_bytes'])}, {row['path']}"
        elif row["installed"]:
            state = "installed; built into the cache at first use"
        else:
            state = f"not installed: {row['install']}"
        mark = " (default)" if row["default"] else ""
        lines.append(f"{row['name']:<11} {row['model']}{mark}\n            {state}\n")
    sys.stdout.write("".join(lines))
    return 0


def _server_model(settings: QcodeSettings, as_json: bool) -> int:
    """`qcode model` with a server: what the server says about its model (never the API key)."""
    from engine.remote import RemoteEngine

    progress = ProgressLine(quiet_unless_tty=True)
    try:
        remote = RemoteEngine(settings, progress)
    finally:
        progress.close()
    try:
        rows = remote.describe()
        if as_json:
            data = remote.info.to_dict()
            data.update(
                server=settings.server_url, server_kind=remote.flavor, server_model=remote.model_id,
                n_ctx=remote.n_ctx, fim_markers=list((remote.fim_markers or {}).values()),
                chat_endpoint=remote.chat_mode, exact_token_counts=remote.exact_counts,
            )
            print_json(data)
            return 0
        width = max(len(name) for name, _ in rows)
        sys.stdout.write("".join(f"{name:<{width}}  {value}\n" for name, value in rows))
        return 0
    finally:
        remote.close()


def run_quantize(args: argparse.Namespace) -> int:
    from engine.quantize import quantize

    source, dest = Path(args.source), Path(args.dest)
    if not source.is_file():
        problem = "no such file" if not source.exists() else "not a file"
        raise InputError(f"{source}: {problem}")
    progress = ProgressLine()
    try:
        quantize(source, dest, args.type, progress, threads=args.threads or 0)
    finally:
        progress.close()
    err_line(f"wrote {dest} ({_size(dest.stat().st_size)})")
    return 0


def _toml_value(value: Any) -> str:
    if value is None:
        return '""'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    import json

    return json.dumps(str(value))


def run_config(args: argparse.Namespace) -> int:
    from engine.settings import config_path

    settings, overrides = cli_settings.settings_from(args)
    rows = describe_settings(settings, overrides)
    if args.json:
        print_json({
            "config_file": str(config_path()),
            "settings": {
                name: {"value": str(value) if isinstance(value, Path) else value, "source": source}
                for name, value, source in rows
            },
        })
        return 0
    path = config_path()
    lines = [f"# config file: {path}" + ("" if path.is_file() else " (not present)")]
    width = max(len(name) + 3 + len(_toml_value(value)) for name, value, _ in rows)
    for name, value, source in rows:
        assignment = f"{name} = {_toml_value(value)}"
        lines.append(f"{assignment:<{width}}  # {source}")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


# the interface


def run_interface(args: argparse.Namespace) -> int:
    settings, _ = cli_settings.settings_from(args)
    if not sys.stdout.isatty():
        raise InputError("the interface needs a terminal; in pipes use a command (qcode --help)")
    name = getattr(args, "file", None)
    path: Path | None = None
    text: str | None = None
    if name == "-" or (name is None and cli_input.stdin_is_piped()):
        text = read_stdin().text
        _reattach_terminal()
    elif name is not None:
        from .files import open_for_editor

        # a name that does not exist yet is a new file, and an empty file opens: this is an editor
        opened = open_for_editor(Path(name))
        path, text = opened.path, None
    from .app import run_app

    result = run_app(settings, path, text)
    return result if isinstance(result, int) else 0


def _reattach_terminal() -> None:
    """After reading piped code, read keys from the terminal again."""
    import os

    try:
        tty = os.open("/dev/tty", os.O_RDONLY)
    except OSError:
        raise InputError(
            "the interface needs a terminal for keys; in pipes use a command (qcode --help)"
        ) from None
    os.dup2(tty, 0)
    os.close(tty)
    sys.stdin = open(0, closefd=False)  # noqa: SIM115 - fd 0 lives for the process
