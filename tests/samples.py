"""Sample source and checks shared by the CLI and server tests (the `calc` fixture is in conftest.py)."""

from __future__ import annotations

# a small Python file with two functions: what the edit and completion tests work on
CODE = (
    "def add(a, b):\n"
    "    return a + b\n"
    "\n"
    "\n"
    "def mul(a, b):\n"
    "    total = 0\n"
    "    for _ in range(b):\n"
    "        total = total + a\n"
    "    return total\n"
)
# CODE after the rename the scripted refactors answer with
TIMES = CODE.replace("def mul(", "def times(")


def error_lines(err: str) -> list[str]:
    """qcode's one-line errors in `err`, which must hold no traceback."""
    assert "Traceback" not in err
    return [line for line in err.splitlines() if line.startswith("qcode: error:")]
