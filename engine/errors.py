"""Errors that reach the user as one line: each carries a message fit to print as is."""

from __future__ import annotations


class QcodeError(Exception):
    """Base of every error qcode reports to the user (one line, no traceback)."""

    exit_code = 1


class SettingsError(QcodeError):
    """A setting has an invalid value; the message names the setting and its source."""

    exit_code = 2


class ModelError(QcodeError):
    """The model file is missing, truncated, not a GGUF, or failed to load."""


class LoadCancelled(QcodeError):
    """The model load was stopped on request (the app quit while the model was loading)."""


class InputError(QcodeError):
    """The user's input cannot be used: binary, not UTF-8, empty, or unreadable."""

    exit_code = 2


class ContextError(QcodeError):
    """The request does not fit the context window even after trimming."""


class TemplateError(QcodeError):
    """A prompt template is missing or refers to a variable the task did not give."""


class GenerationError(QcodeError):
    """llama.cpp failed while decoding."""
