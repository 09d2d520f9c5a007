"""`tradeflow stream` as a user runs it: live lines from the simulator, a summary, a clean exit;
one-line refusals of bad flags and unknown symbols."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.fixtures.simulator import SimFactory
from tests.integration.cli.test_record import env, write_profile

REPO = Path(__file__).resolve().parents[3]


def stream(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli.main", "--config", str(profile), "stream",
                           *args], cwd=REPO, env=env(), capture_output=True, text=True,
                          timeout=120)


def test_stream_prints_live_updates_and_exits_cleanly(sim_factory: SimFactory,
                                                      tmp_path: Path) -> None:
    sim = sim_factory(speed=60.0, ws_update_ms=100)
    profile = write_profile(tmp_path, sim.base_url, ["BTC/USDT"])
    done = stream(profile, "--exchange", "binance", "--symbols", "BTC/USDT", "ETH/USDT",
                  "--channels", "ticker,trades", "--seconds", "3")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "binance: disconnected -> connecting (connect)"
    for symbol in ("BTC/USDT", "ETH/USDT"):
        assert any(f"binance {symbol} ticker: last " in line for line in lines)
        assert any(f"binance {symbol} trades: " in line for line in lines)
    assert "binance: connected -> disconnected (stopped)" in lines
    summary = [line for line in lines if "messages," in line]
    assert len(summary) == 4 and all("0 reconnects" in line for line in summary)
    assert "Traceback" not in done.stderr


def test_bad_flags_and_symbols_are_refused_in_one_line(sim_factory: SimFactory,
                                                       tmp_path: Path) -> None:
    sim = sim_factory(speed=1e-9)
    profile = write_profile(tmp_path, sim.base_url, ["BTC/USDT"])
    cases = [
        (["--channels", "ticker,quotes"], 2,
         "tradeflow stream: --channels ticker,quotes: allowed: candles, trades, ticker, book"),
        (["--seconds", "0"], 2, "tradeflow stream: --seconds 0.0: must be a positive number"),
        (["--exchange", "binanse"], 2,
         "tradeflow stream: --exchange binanse: not a ccxt exchange id (e.g. binance, kraken)"),
        (["--symbols", "NOPE/USDT", "--seconds", "1"], 1,
         "tradeflow stream: BadSymbol: binance does not list NOPE/USDT"),
    ]
    for args, code, message in cases:
        done = stream(profile, *args)
        assert done.returncode == code, (args, done.stderr)
        assert done.stderr.strip().splitlines()[-1] == message
        assert "Traceback" not in done.stderr


def test_stream_from_two_venues_at_once(sim_factory: SimFactory, tmp_path: Path) -> None:
    """The issue's command: one manager, the same pair from the simulator's Binance and OKX."""
    sim = sim_factory(speed=60.0, ws_update_ms=100, venues=("binance", "okx"))
    profile = write_profile(tmp_path, sim.base_url, ["BTC/USDT"])
    done = stream(profile, "--exchange", "binance,okx", "--symbols", "BTC/USDT",
                  "--channels", "ticker,trades", "--seconds", "3")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    for venue in ("binance", "okx"):
        assert f"{venue}: disconnected -> connecting (connect)" in lines
        assert any(f" {venue} BTC/USDT ticker: last " in line for line in lines)
        assert any(f" {venue} BTC/USDT trades: " in line for line in lines)
        assert f"{venue}: connected -> disconnected (stopped)" in lines
    summary = [line for line in lines if "messages," in line]
    assert sorted(line.split(":")[0] for line in summary) == [
        "binance BTC/USDT ticker", "binance BTC/USDT trades", "okx BTC/USDT ticker",
        "okx BTC/USDT trades"]
    assert "Traceback" not in done.stderr
