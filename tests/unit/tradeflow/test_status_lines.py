"""Status files read as of now: a stopped or vanished writer is shown stopped, its streams
disconnected, with ages counted on; breakers that opened are listed."""

from __future__ import annotations

import os
import subprocess
import sys

from cli.commands.status import _render
from tradeflow import timeframes
from tradeflow.status_lines import breaker_lines, pid_alive, settle

STREAMS = [{"symbol": "BTC/USDT", "state": "connected", "last_message_age_s": 0.013,
            "reconnects": 0},
           {"symbol": "ETH/USDT", "state": "failed", "last_message_age_s": None,
            "reconnects": 4}]


def test_a_running_writer_is_left_as_it_wrote() -> None:
    data = {"pid": os.getpid(), "updated_at": 1000.0, "streams": STREAMS}
    out = settle(data, 1001.0)
    assert out["running"] and out["liveness"] == f"running, pid {os.getpid()}"
    assert out["streams"] == STREAMS


def test_a_trader_that_stopped_says_when_and_its_streams_are_disconnected() -> None:
    data = {"pid": os.getpid(), "updated_at": 1_767_225_600.0,
            "stopped_at": 1_767_225_600.0, "streams": STREAMS}
    out = settle(data, 1_767_225_600.0 + 3600)
    assert not out["running"]
    assert out["liveness"] == "stopped at 2026-01-01 00:00:00 UTC"
    assert [s["state"] for s in out["streams"]] == ["disconnected", "failed"]
    assert out["streams"][0]["last_message_age_s"] == 3600.0
    assert data["streams"][0]["state"] == "connected"  # the input is not changed
    text = _render("s", "paper", {}, {**out, "age_s": 3600.0}, timeframes)
    assert "trader stopped at 2026-01-01 00:00:00 UTC" in text
    assert "stream BTC/USDT   disconnected last message 3600.0s ago" in text


def test_a_writer_whose_pid_is_gone_is_shown_stopped() -> None:
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    pid = int(child.stdout)
    assert not pid_alive(pid) and pid_alive(os.getpid()) and not pid_alive(None)
    out = settle({"pid": pid, "updated_at": 1_767_225_600.0, "streams": STREAMS}, 1_767_225_660.0)
    assert out["liveness"] == f"stopped: pid {pid} is gone (last status at 2026-01-01 " \
                              "00:00:00 UTC)"
    assert out["streams"][0]["state"] == "disconnected"


def test_a_recorder_that_marked_its_streams_stopped_stopped_when_it_wrote() -> None:
    streams = [{"symbol": "BTC/USDT", "stream": "trades", "state": "stopped"}]
    out = settle({"pid": os.getpid(), "updated_at": 1_767_225_600.0, "streams": streams},
                 1_767_225_700.0)
    assert out["liveness"] == "stopped at 2026-01-01 00:00:00 UTC"
    assert out["streams"][0]["state"] == "disconnected"


def test_breakers_that_opened_are_listed() -> None:
    breakers = [{"name": "binance", "state": "closed", "failures": 0, "opened": 0,
                 "retry_in_s": None},
                {"name": "kraken", "state": "open", "failures": 5, "opened": 2,
                 "retry_in_s": 12.5}]
    assert breaker_lines(breakers) == [
        "  breaker kraken open, probe in 12.5s (opened 2x, 5 failures in a row)"]
    text = _render("s", "paper", {}, {"streams": [], "age_s": 1.0, "pid": 7,
                                      "breakers": breakers}, timeframes)
    assert "breaker kraken open" in text and "binance" not in text
