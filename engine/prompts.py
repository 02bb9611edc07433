"""Prompts: task templates from prompts/ (strict: a missing variable is an error), the model's chat template,
a plain format for base models, and fill-in-the-middle prompts from the model's own FIM tokens."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .errors import QcodeError, SettingsError, TemplateError
from .events import ChatTurn
from .model import ModelInfo

_SENTINEL = "\x00qcode-user-turn\x00"
_task_env = jinja2.Environment(
    undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False
)


def _user_template(name: str, override_dir: Path | None) -> Path | None:
    if override_dir is None:
        return None
    candidate = override_dir.expanduser() / f"{name}.txt"
    return candidate if candidate.is_file() else None


def template_text(name: str, override_dir: Path | None) -> str:
    """The template for `name`: the user's folder first, then the packaged prompts/."""
    user = _user_template(name, override_dir)
    if user is not None:
        try:
            return user.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SettingsError(f"prompt template {user} (prompts_dir) cannot be read: {exc}") from None
    try:
        return resources.files("prompts").joinpath(f"{name}.txt").read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TemplateError(f"no prompt template named {name!r}") from None


def _failed(name: str, override_dir: Path | None, detail: str) -> QcodeError:
    """A template error; one in the user's own folder is theirs to fix, so a settings error (exit 2)."""
    user = _user_template(name, override_dir)
    if user is not None:
        return SettingsError(f"prompt template {user} (prompts_dir){detail}")
    return TemplateError(f"prompt template {name!r}{detail}")


def check_template(name: str, override_dir: Path | None) -> None:
    """Parse the template now, so a syntax error is reported before a model loads."""
    try:
        _task_env.parse(template_text(name, override_dir))
    except jinja2.TemplateSyntaxError as exc:
        raise _failed(name, override_dir, f" line {exc.lineno}: {exc.message}") from None


def render(name: str, override_dir: Path | None, **variables: Any) -> str:
    """Render a task template; a variable it uses but was not given is an error, not an empty string."""
    source = template_text(name, override_dir)
    try:
        return _task_env.from_string(source).render(**variables).strip()
    except jinja2.UndefinedError as exc:
        raise _failed(name, override_dir, f": {exc.message}") from None
    except jinja2.TemplateSyntaxError as exc:
        raise _failed(name, override_dir, f" line {exc.lineno}: {exc.message}") from None


@dataclass(frozen=True)
class BuiltPrompt:
    text: str
    prefix_chars: int  # text[:prefix_chars] is the same for every request of this task
    stops: tuple[str, ...] = ()  # where an answer in this format ends, besides the model's end token


# a base model in the plain format tends to start another "### Task" section after a prose answer
PLAIN_PROSE_STOPS = ("\n### ",)


def build_prompt(
    info: ModelInfo, system: str, user: str, *, prefill: str = "", think: bool = False
) -> BuiltPrompt:
    """A single-turn prompt: the model's chat template when it has one, else a plain format.

    `prefill` starts the answer (for example an opening code fence), so the model writes code straight away.
    """
    if info.chat_template:
        head = _render_chat(info.chat_template, system, _SENTINEL, think)
        prefix_chars = head.index(_SENTINEL)
        text = head.replace(_SENTINEL, user)
        return BuiltPrompt(text + prefill, prefix_chars)
    head = f"{system}\n\n"
    stops = () if prefill else PLAIN_PROSE_STOPS
    return BuiltPrompt(f"{head}### Task\n{user}\n\n### Answer\n{prefill}", len(head), stops)


def render_turn(info: ModelInfo, turn: ChatTurn) -> BuiltPrompt:
    """A chat turn as the model reads it (build_prompt)."""
    return build_prompt(info, turn.system, turn.user, prefill=turn.prefill, think=turn.think)


def _raise_exception(message: str) -> None:
    raise TemplateError(f"the model's chat template refused the prompt: {message}")


@functools.lru_cache(maxsize=4)
def _chat_template(template: str) -> jinja2.Template:
    """The model's chat template, compiled once: compiling it took 11-15 ms of every request (coder-0.5b)."""
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env.from_string(template)


def _render_chat(template: str, system: str, user: str, think: bool) -> str:
    try:
        return _chat_template(template).render(
            messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
            add_generation_prompt=True,
            enable_thinking=think,
            bos_token="",  # llama.cpp's tokenizer adds BOS itself where the model wants one
            eos_token="",
        )
    except jinja2.TemplateError as exc:
        raise TemplateError(f"the model's chat template failed: {exc}") from None
