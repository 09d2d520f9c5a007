"""``python -m simulator`` / ``tradeflow sim``: flags, help, serving and a clean Ctrl-C."""

from __future__ import annotations

import argparse
import json
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from simulator.cli import add_arguments, settings_from_args
from simulator.settings import SimulatorSettings

ROOT = Path(__file__).parents[3]


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_flags_override_the_settings() -> None:
    base = SimulatorSettings(seed=1, faults={"latency_ms": 5})
    args = parse(
        "--port", "0", "--seed", "7", "--days", "3", "--speed", "60", "--signal", "1",
        "--symbols", "BTC/USDT, ETH/BTC", "--start", "2026-01-01T00:00:00Z",
        "--fault", "rate_limit_every=4", "--fault", "truncate_mode=connection",
    )  # fmt: skip
    got = settings_from_args(args, base)
    assert (got.port, got.seed, got.history_days, got.speed) == (0, 7, 3.0, 60.0)
    assert got.signal_strength == 1.0 and got.symbols == ("BTC/USDT", "ETH/BTC")
    assert got.start_time_ms == 1_767_225_600_000
    assert got.faults.rate_limit_every == 4 and got.faults.truncate_mode == "connection"
    assert got.faults.latency_ms == 5
    assert got.venues == ("binance",)
    assert settings_from_args(parse("--venue", "okx, binance,okx"), base).venues == (
        "okx", "binance")
    assert settings_from_args(parse(), base) == base
    with pytest.raises(ValueError):
        settings_from_args(parse("--symbols", "btcusdt"), base)


def test_help_explains_every_flag_and_fault() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "simulator", "--help"], cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0
    flags = ["--port", "--seed", "--days", "--speed", "--signal", "--symbols", "--start",
             "--venue"]
    extras = ["--fault", "/admin/faults", "rate_limit_every", "ws_drop_every", "outages"]
    for word in flags + extras:
        assert word in out.stdout


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["--port", "99999"], "port = 99999: Input should be less than or equal to 65535"),
        (["--fault", "nope=3"], "faults.nope = 3: unknown key; allowed: ban_after_violations, "),
        (["--venue", "binance,kraken"], "venues.1 = 'kraken': Input should be 'binance' or 'okx'"),
    ],
)
def test_a_bad_flag_is_one_line_and_exit_2(argv: list[str], line: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "simulator", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert out.stderr.startswith(f"invalid simulator settings: {line}")
    assert len(out.stderr.strip().splitlines()) == 1


def test_serves_until_interrupted() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "simulator",
            "--port",
            "0",
            "--days",
            "0.1",
            "--symbols",
            "ETH/USDT",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        base_url = re.search(r"http://[\d.]+:\d+", first)
        assert base_url, first
        with urllib.request.urlopen(base_url.group(0) + "/api/v3/exchangeInfo", timeout=5) as r:
            info = json.load(r)
        assert [s["symbol"] for s in info["symbols"]] == ["ETHUSDT"]
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
