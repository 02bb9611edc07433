"""Run a subject's checks against a version of its code: in a fresh temporary folder, in a separate Python
process, through the product's own test-command runner (engine.gate.run_tests: a time limit, and the process and
its children killed past it). Nothing outside that folder is read or written, so the user's files are never touched.
"""

from __future__ import annotations

import shlex
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

DEFAULT_TIMEOUT_S = 10.0

# Imports the code (as `subject`) and the checks, runs every test_* function in order, and reports the first
# failure in one line, as a test runner would: the failing check, and for a comparison what its left side gave.
_RUNNER = '''\
import ast, linecache, os, sys, traceback
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

def frame_of(error):
    frames = [(f, n) for f, n in traceback.walk_tb(error.__traceback__)
              if os.path.basename(f.f_code.co_filename) == "checks.py"]
    return frames[0] if frames else (None, 0)  # the check itself, not a helper it called

def got(line, frame):
    try:
        test = ast.parse(line.strip()).body[0].test
        left = test.left if isinstance(test, ast.Compare) else test.args[0]
        value = eval(compile(ast.Expression(left), "checks.py", "eval"), frame.f_globals, frame.f_locals)
        return f" (the left side gave {value!r})"
    except Exception:
        return ""

try:
    import checks
except BaseException as error:
    print(f"ERROR importing the code: {type(error).__name__}: {error}")
    sys.exit(1)
for name, check in list(vars(checks).items()):
    if not name.startswith("test_") or not callable(check):
        continue
    try:
        check()
    except BaseException as error:
        frame, number = frame_of(error)
        line = linecache.getline(frame.f_code.co_filename, number).strip() if frame else ""
        if isinstance(error, AssertionError):
            print(f"FAIL {name}: {line}{got(line, frame) if frame else ''}")
        else:
            print(f"ERROR {name}: {type(error).__name__}: {error} in `{line}`")
        sys.exit(1)
print("OK")
'''


# what several subjects' checks use (`from helpers import close, raises`)
_HELPERS = '''\
def close(a, b):
    """Equal, floats within a relative 1e-9 (a rewrite may reorder float arithmetic)."""
    if isinstance(a, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(close(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return abs(a - b) <= 1e-9 * max(1.0, abs(b))
    return a == b


def raises(error, call):
    try:
        call()
    except error:
        return True
    return False
'''


@dataclass(frozen=True)
class CheckRun:
    passed: bool
    detail: str  # "OK", or the first failure in one line
    timed_out: bool = False


def run_checks(code: str, checks: str, timeout: float = DEFAULT_TIMEOUT_S) -> CheckRun:
    """Run `checks` (which import `subject`) against `code` in a throwaway folder."""
    from engine.gate import run_tests

    with tempfile.TemporaryDirectory(prefix="qcode-quality-") as folder:
        root = Path(folder)
        (root / "subject.py").write_text(code, encoding="utf-8")
        (root / "checks.py").write_text(checks, encoding="utf-8")
        (root / "helpers.py").write_text(_HELPERS, encoding="utf-8")
        (root / "run_checks.py").write_text(_RUNNER, encoding="utf-8")
        # -I: no user site, no PYTHON* variables, the current folder not on the path; -B: no .pyc files
        command = f"{shlex.quote(sys.executable)} -I -B run_checks.py"
        run = run_tests(command, timeout=timeout, cwd=root)
    if run.exit_code is None:
        return CheckRun(False, f"timed out after {timeout:g} s", timed_out=True)
    lines = [line for line in run.output.splitlines() if line.strip()]
    last = lines[-1] if lines else f"no output (exit status {run.exit_code})"
    return CheckRun(run.passed and last == "OK", last[:500])
