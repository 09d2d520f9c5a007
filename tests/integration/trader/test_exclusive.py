"""One trader per strategy and ledger: a second is refused; a killed holder frees the lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from trader.exclusive import StrategyBusy, strategy_lock

ROOT = Path(__file__).resolve().parents[3]
HOLDER = """
import sys, time
from trader.exclusive import strategy_lock
with strategy_lock(sys.argv[1], sys.argv[2]):
    print("held", flush=True)
    time.sleep(120)
"""


def hold_in_child(url: str, strategy: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, url, strategy], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def take_within(url: str, strategy: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with strategy_lock(url, strategy):
                return True
        except StrategyBusy:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)


def check_lock(url: str) -> None:
    strategy = f"s-{uuid.uuid4().hex[:8]}"
    child = hold_in_child(url, strategy)
    try:
        with pytest.raises(StrategyBusy, match="already being traded"), \
                strategy_lock(url, strategy):
            pass
        with strategy_lock(url, f"{strategy}-other"):  # another strategy is free
            pass
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    assert take_within(url, strategy, 10), "a killed holder's lock is released"
    with strategy_lock(url, strategy):  # and a normal exit releases it too
        pass
    with strategy_lock(url, strategy):
        pass


def test_sqlite_ledger_strategy_lock(tmp_path: Path) -> None:
    check_lock(f"sqlite:///{tmp_path / 'ledger.db'}")


def test_postgres_ledger_strategy_lock(postgres_url: str) -> None:
    check_lock(postgres_url)
