"""Run a subject's checks against a version of its code: in a fresh temporary folder, in a separate Python
process, with a time limit. Nothing outside that folder is read or written, so the user's files are never touched.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

DEFAULT_TIMEOUT_S = 10.0

# Imports the code (as `subject`) and the checks, runs every test_* function in order, and reports the first
# failure as one line: the failing assert's source, or the exception and the check line it came from.
_RUNNER = '''\
import os, sys, traceback
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

def where(error):
    frames = [f for f in traceback.extract_tb(error.__traceback__) if os.path.basename(f.filename) == "checks.py"]
    return (frames[0].line or "").strip() if frames else ""  # the check itself, not a helper it called

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
    except AssertionError as error:
        print(f"FAIL {where(error)}")
        sys.exit(1)
    except BaseException as error:
        print(f"ERROR {type(error).__name__}: {error} in `{where(error)}`")
        sys.exit(1)
print("OK")
'''


@dataclass(frozen=True)
class CheckRun:
    passed: bool
    detail: str  # "OK", or the first failure in one line
    timed_out: bool = False


def run_checks(code: str, checks: str, timeout: float = DEFAULT_TIMEOUT_S) -> CheckRun:
    """Run `checks` (which import `subject`) against `code` in a throwaway folder."""
    with tempfile.TemporaryDirectory(prefix="qcode-quality-") as folder:
        root = Path(folder)
        (root / "subject.py").write_text(code, encoding="utf-8")
        (root / "checks.py").write_text(checks, encoding="utf-8")
        (root / "run_checks.py").write_text(_RUNNER, encoding="utf-8")
        env = {"PATH": os.environ.get("PATH", ""), "HOME": folder, "LC_ALL": "C.UTF-8"}
        # -I: no user site, no PYTHON* variables, the current folder not on the path; -B: no .pyc files
        process = subprocess.Popen(
            [sys.executable, "-I", "-B", str(root / "run_checks.py")],
            cwd=folder, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, errors="replace", start_new_session=True,
        )
        try:
            output, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            return CheckRun(False, f"timed out after {timeout:g} s", timed_out=True)
    lines = [line for line in output.splitlines() if line.strip()]
    last = lines[-1] if lines else f"no output (exit status {process.returncode})"
    return CheckRun(process.returncode == 0 and last == "OK", last[:500])


def _kill_group(process: subprocess.Popen[str]) -> None:
    """Kill the checks and anything the code under test started."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()
    process.communicate()
