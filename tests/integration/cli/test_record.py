"""`tradeflow record` and `tradeflow backfill --trades` as a user runs them: a recorder killed
with SIGKILL and restarted leaves no hole and no repeat in the stored trade ids; trade history
by time, then again (nothing new); one-line refusals of bad flags."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tests.fixtures.simulator import SimFactory
from tests.integration.tradeflow.recorder.test_recorder import (
    assert_every_trade_once,
    venue_trades,
)
from tradeflow.market.orderflow_store import OrderFlowStore

REPO = Path(__file__).resolve().parents[3]


def write_profile(root: Path, base_url: str, symbols: list[str]) -> Path:
    profile = root / "profile.yaml"
    profile.write_text(yaml.safe_dump({
        "data_dir": str(root / "state"), "symbols": symbols, "timeframes": ["1m"],
        "exchange": {"base_url": base_url},
        "store": {"path": str(root / "market.duckdb")},
        "recorder": {"flush_s": 0.3, "status_s": 0.3, "metrics_port": 0, "batch_s": 0.05}}))
    return profile


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("TRADEFLOW_")}


def cli(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli.main", "--config", str(profile), *args],
                          cwd=REPO, env=env(), capture_output=True, text=True, timeout=300)


def stored_trades(status_file: Path) -> int:
    try:
        return int(json.loads(status_file.read_text())["stored"]["trades"])
    except (OSError, ValueError, KeyError):
        return 0


def test_a_recorder_killed_with_sigkill_resumes_without_hole_or_repeat(
        sim_factory: SimFactory, tmp_path: Path) -> None:
    sim = sim_factory(speed=60.0, ws_update_ms=100)
    profile = write_profile(tmp_path, sim.base_url, ["ETH/USDT"])
    status_file = tmp_path / "state" / "recorder" / "status.json"
    log = (tmp_path / "first.log").open("w")
    first = subprocess.Popen([sys.executable, "-m", "cli.main", "--config", str(profile),
                              "record", "--quiet"], cwd=REPO, env=env(), stdout=log,
                             stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while stored_trades(status_file) < 300:
            assert first.poll() is None, (tmp_path / "first.log").read_text()
            assert time.monotonic() < deadline, "the recorder stored nothing in 60 s"
            time.sleep(0.2)
    finally:
        first.send_signal(signal.SIGKILL)  # mid-write or not: no chance to flush
        first.wait(30)
    killed_at = sim.now_ms()
    time.sleep(2.0)  # two minutes of market the recorder misses
    again = cli(profile, "record", "--seconds", "4", "--quiet")
    assert again.returncode == 0, again.stderr
    line = again.stdout.strip().splitlines()[-1]
    assert line.startswith("recorded ") and "trades fetched over REST" in line
    fetched = int(line.split("tickers; ")[1].split(" trades fetched")[0])
    assert fetched > 0
    with OrderFlowStore(tmp_path / "market.duckdb", read_only=True) as store:
        stored = assert_every_trade_once(store, sim, "ETH/USDT")
        assert stored["ts"].iloc[0] < killed_at < stored["ts"].iloc[-1]
        assert len(store.book_snapshots("binance", "ETH/USDT", kind="close")) >= 1


def test_backfill_trades_by_time_then_nothing_new(sim_factory: SimFactory,
                                                  tmp_path: Path) -> None:
    sim = sim_factory(speed=1e-9)  # a clock at rest
    profile = write_profile(tmp_path, sim.base_url, ["SOL/USDT"])
    done = cli(profile, "backfill", "--trades", "--days", "0.05")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("SOL/USDT: fetched ")
    with OrderFlowStore(tmp_path / "market.duckdb", read_only=True) as store:
        stored = store.trades("binance", "SOL/USDT")
    window = sim.now_ms() - int(0.05 * 86_400_000)
    expected = venue_trades(sim, "SOL/USDT", int(stored["id"].iloc[0]),
                            int(sim.venue.agg_trades("SOL/USDT", limit=1).ids[-1]))
    assert stored["ts"].iloc[0] >= window
    assert stored["id"].tolist() == expected["id"].tolist()
    again = cli(profile, "backfill", "--trades", "--days", "0.05")
    assert again.returncode == 0 and "nothing new" in again.stdout
    by_id = cli(profile, "backfill", "--trades", "--from-id", str(stored["id"].iloc[-1] - 5))
    assert by_id.returncode == 0 and "nothing new" in by_id.stdout


def test_bad_flags_are_refused_in_one_line(tmp_path: Path) -> None:
    profile = write_profile(tmp_path, "http://127.0.0.1:9", ["BTC/USDT"])
    for args, message in [
        (("record", "--seconds", "0"), "--seconds 0.0: must be a positive number"),
        (("backfill", "--from-id", "5"), "--from-id goes with --trades"),
        (("backfill", "--trades", "--from-id", "5", "--days", "1"), "not both"),
    ]:
        done = cli(profile, *args)
        assert done.returncode != 0 and done.stdout == ""
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], done.stderr
