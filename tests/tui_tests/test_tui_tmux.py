"""Run tests/tui_tests/tmux_smoke.sh: `qcode file.py` in a real terminal (tmux, 80x24) on the default model."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_tmux_smoke_completion_in_a_real_terminal() -> None:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("QCODE_") or key == "QCODE_CACHE_DIR"}
    env["QCODE"] = f"{shlex.quote(sys.executable)} -m tui.cli"
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run(
        ["bash", str(Path(__file__).with_name("tmux_smoke.sh"))], env=env, capture_output=True,
        text=True, timeout=900, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "tmux smoke: OK" in done.stdout
