"""The widgets and screens of the qcode app."""

from .answer import AnswerPane
from .dialogs import ConfirmScreen, PathScreen
from .diff_review import DiffReviewScreen
from .editor import CodeEditor
from .footer import QcodeFooter
from .help import HelpScreen
from .prompt import PromptLine
from .status import Metrics, StatusLine

__all__ = [
    "AnswerPane",
    "CodeEditor",
    "ConfirmScreen",
    "DiffReviewScreen",
    "HelpScreen",
    "Metrics",
    "PathScreen",
    "PromptLine",
    "QcodeFooter",
    "StatusLine",
]
