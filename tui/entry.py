"""The `qcode` console script: Ctrl+C while Python is still importing exits quietly with 130.

tui.cli turns Ctrl+C into exit 130 once its main() runs; before that, during the imports (a few hundred ms), the
default handler would print a KeyboardInterrupt traceback. This module imports nothing heavy itself.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType


def _exit_quietly(signum: int, frame: FrameType | None) -> None:
    sys.stderr.write("\n")
    os._exit(130)  # nothing to flush or clean up yet


def main() -> int:
    previous = signal.signal(signal.SIGINT, _exit_quietly)
    from tui.cli import main as cli_main

    signal.signal(signal.SIGINT, previous)
    return cli_main()
