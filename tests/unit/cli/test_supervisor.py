"""Background services: started in their own session, recorded, stopped with children."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from cli.supervisor import Services, free_port
from tradeflow.errors import UserError


def test_start_record_and_stop_with_children(tmp_path: Path) -> None:
    services = Services(tmp_path / "services")
    marker = tmp_path / "ready"
    code = ("import pathlib, subprocess, sys, time;"
            "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
            f"pathlib.Path({str(marker)!r}).write_text('x'); time.sleep(60)")
    started = services.start("sleeper", [sys.executable, "-c", code], ready=marker.exists,
                             timeout=30)
    assert services.running("sleeper") == started and started.alive
    assert services.start("sleeper", [sys.executable, "-c", "raise SystemExit"]) == started
    assert Services(tmp_path / "services").load()["sleeper"].pid == started.pid
    assert services.stop("sleeper", grace=5) is True
    time.sleep(0.2)
    assert not started.alive and services.running("sleeper") is None
    assert services.stop("sleeper") is False


def test_a_service_that_dies_while_starting_is_one_clear_error(tmp_path: Path) -> None:
    services = Services(tmp_path / "services")
    with pytest.raises(UserError, match="exited with code 3 while starting"):
        services.start("broken", [sys.executable, "-c", "raise SystemExit(3)"],
                       ready=lambda: False, timeout=10)


def test_free_port_prefers_the_given_one_when_free() -> None:
    port = free_port()
    assert free_port(port) == port
