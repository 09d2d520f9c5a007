"""Start the simulator in a child process (benchmarks run it apart from the code they time)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def launch(*args: str) -> tuple[subprocess.Popen[str], str]:
    """``python -m simulator --port 0 ARGS``; the process and the base URL it prints first."""
    cmd = [sys.executable, "-m", "simulator", "--port", "0", *args]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    match = re.search(r"http://[\d.]+:\d+", proc.stdout.readline())
    if not match:
        proc.kill()
        raise SystemExit("the simulator did not start")
    return proc, match.group(0)
