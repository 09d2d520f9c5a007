"""Six `tradeflow backfill` processes write one DuckLake market store at once (the scale
profile's store, its catalog on the PostgreSQL at 127.0.0.1:5432) while a seventh reads it:
four on different series, two on the same series. No process fails, no candle is stored
twice, every candle of every series is there, and the reader's queries all return."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.fixtures.simulator import SimFactory
from tradeflow import timeframes
from tradeflow.market.store import MarketStore, SeriesKey

ROOT = Path(__file__).resolve().parents[3]
SCALE = ROOT / "config" / "scale.yaml"
DAYS = 1.0

READER = """
import sys, time
from pathlib import Path
from tradeflow.market.store import MarketStore
store = MarketStore(sys.argv[1], catalog=sys.argv[2], read_only=True)
stop, reads, seen = Path(sys.argv[3]), 0, 0
while not stop.exists():
    if store.sql("SELECT count(*) AS n FROM duckdb_tables() WHERE table_name = 'candles'")[
            "n"].iloc[0] == 0:
        continue  # no writer has created the tables yet
    with store.connection() as con:  # coverage and a gap scan, as validate and train run them
        con.execute("SELECT symbol, timeframe, count(*), min(open_time), max(open_time) "
                    "FROM candles GROUP BY ALL").fetchall()
        gaps = con.execute("SELECT count(*) FROM (SELECT open_time - lag(open_time) OVER "
                           "(PARTITION BY symbol, timeframe ORDER BY open_time) AS step "
                           "FROM candles) WHERE step > 60000 AND step <> 300000").fetchone()
    seen = max(seen, int(store.sql("SELECT count(*) AS n FROM candles")["n"].iloc[0]))
    reads += 1
print(reads, seen)
"""


def backfill(env: dict[str, str], symbol: str, timeframe: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", "--config", str(SCALE), "backfill", "--no-progress",
         "--symbols", symbol, "--timeframes", timeframe, "--days", str(DAYS)],
        cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.postgres
@pytest.mark.slow
def test_six_backfill_processes_and_a_reader_share_the_ducklake_store(
        sim_factory: SimFactory, lake_catalog: str, tmp_path: Path) -> None:
    sim = sim_factory(history_days=2.0, speed=1e-9)  # a still clock: one "now" for everyone
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEFLOW_")}
    env.update(TRADEFLOW_DATA_DIR=str(tmp_path), TRADEFLOW_EXCHANGE__BASE_URL=sim.base_url,
               TRADEFLOW_STORE__CATALOG=lake_catalog, TRADEFLOW_BACKFILL__TASK_RUNNER="local",
               PYTHONPATH=str(ROOT))
    lake, stop = tmp_path / "market-lake", tmp_path / "stop-reading"
    # Nothing exists yet: the first processes race to create the catalog and the tables.
    reader = subprocess.Popen([sys.executable, "-c", READER, str(lake), lake_catalog,
                               str(stop)], cwd=ROOT, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    series = [("BTC/USDT", "1m"), ("ETH/USDT", "1m"), ("SOL/USDT", "1m"), ("BTC/USDT", "5m"),
              ("ETH/USDT", "5m"), ("ETH/USDT", "5m")]  # the last two: one series, twice
    writers = [backfill(env, symbol, tf) for symbol, tf in series]
    results = [(w.wait(timeout=600), *w.communicate()) for w in writers]
    stop.touch()
    r_out, r_err = reader.communicate(timeout=120)
    for (code, out, err), (symbol, tf) in zip(results, series, strict=True):
        assert code == 0, f"{symbol} {tf}: {err[-2000:]}"
        assert "Traceback" not in err and "FAILED" not in out, err[-2000:]
    assert reader.returncode == 0, r_err[-2000:]
    reads, seen = (int(x) for x in r_out.split())
    assert reads >= 1 and seen > 0  # it read while the writers wrote, and saw candles

    store = MarketStore(lake, catalog=lake_catalog, read_only=True)
    assert store.duplicate_count() == 0
    now = sim.now_ms()
    assert sorted((k.symbol, k.timeframe) for k in store.series()) == sorted(set(series))
    for symbol, tf in set(series):
        key = SeriesKey("binance", symbol, tf)
        step = timeframes.duration_ms(tf)
        first, last, count = store.bounds(key) or (0, 0, 0)
        # every closed candle of the window, none missing in between
        assert last == timeframes.last_closed_open(now, tf), (key, last)
        assert first <= now - DAY_MS * DAYS + step, (key, first)
        assert count == (last - first) // step + 1, (key, count)
        assert store.unfillable(key) == []

    # The day's many small files merged by `tradeflow store compact`; the candles unchanged.
    before = store.sql("SELECT * EXCLUDE (ingested_at) FROM candles ORDER BY ALL")
    compact = subprocess.run(
        [sys.executable, "-m", "cli.main", "--config", str(SCALE), "store", "compact",
         "--keep-hours", "0"], cwd=ROOT, env=env, text=True, capture_output=True, timeout=300)
    assert compact.returncode == 0, compact.stderr[-2000:]
    files = re.search(r"(\d+) data files before, (\d+) after", compact.stdout)
    assert files is not None and int(files[2]) < int(files[1]), compact.stdout
    after = MarketStore(lake, catalog=lake_catalog, read_only=True)
    pd.testing.assert_frame_equal(
        after.sql("SELECT * EXCLUDE (ingested_at) FROM candles ORDER BY ALL"), before)


def test_store_compact_on_a_duckdb_file_profile_is_refused_in_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEFLOW_")}
    env.update(TRADEFLOW_DATA_DIR=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "cli.main", "store", "compact"], cwd=ROOT,
                          env=env, text=True, capture_output=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "one DuckDB file" in proc.stderr


DAY_MS = 86_400_000
