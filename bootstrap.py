#!/usr/bin/env python3
"""Set up tradeflow into ``.venv/`` in this checkout, then run one job.

    python3 bootstrap.py demo [ARGS...]    set up, then run ``tradeflow demo``
    python3 bootstrap.py test [ARGS...]    set up with test extras, then run pytest
    python3 bootstrap.py setup             set up with test extras and stop

Needs only Python >= 3.11 and pip. The virtual environment is (re)installed from
``constraints.txt`` whenever it or ``pyproject.toml`` changes; otherwise set-up is a no-op.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"


def _stamp(extras: str) -> str:
    digest = hashlib.sha256(extras.encode())
    for name in ("pyproject.toml", "constraints.txt"):
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def setup(extras: str) -> None:
    """Create .venv and install the pinned project into it, unless it is already current."""
    stamp_file = VENV / ".tradeflow-stamp"
    # A venv with test extras also serves the demo; never downgrade it.
    wanted = {_stamp(extras), _stamp("test")} if not extras else {_stamp(extras)}
    if stamp_file.exists() and stamp_file.read_text().strip() in wanted:
        return
    if not PY.exists():
        print(f"bootstrap: creating {VENV.relative_to(ROOT)}/", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    target = f".[{extras}]" if extras else "."
    print(f"bootstrap: installing tradeflow{'[' + extras + ']' if extras else ''} "
          "from constraints.txt (first run takes a few minutes)", flush=True)
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1")
    cmd = [str(PY), "-m", "pip", "install", "--quiet", "-c", "constraints.txt", "-e", target]
    if subprocess.call(cmd, cwd=ROOT, env=env) != 0:
        sys.exit("bootstrap: pip install failed (see the messages above)")
    stamp_file.write_text(_stamp(extras) + "\n")


def main(argv: list[str]) -> int:
    if sys.version_info < (3, 11):  # noqa: UP036 - this script may run on an older python3
        sys.exit(f"bootstrap: Python >= 3.11 is required, this is {sys.version.split()[0]}")
    if not argv or argv[0] not in {"demo", "test", "setup"}:
        print(__doc__.strip())
        return 2
    job, rest = argv[0], argv[1:]
    setup("" if job == "demo" else "test")
    os.chdir(ROOT)
    if job == "setup":
        return 0
    if job == "demo":
        cmd = [str(BIN / "tradeflow"), "demo", *rest]
    else:
        cmd = [str(PY), "-m", "pytest", *rest]
    return subprocess.call(cmd)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
