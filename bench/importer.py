"""Benchmark: importing a year of 1m Binance Vision monthly zips into the market store.

The dumps are made from the simulator's market (BTC/USDT, all of 2024: 527,040 candles in 12
``BTCUSDT-1m-2024-MM.zip`` files with their ``.CHECKSUM``), exactly as data.binance.vision
lays them out. Timed: ``tradeflow.market.importer.import_paths`` into a fresh store file
(checksum, unzip with CRC check, parse, timeframe and grid checks and the store's contract
check in reader threads, each file streamed into the store's INSERT as it is ready, one
transaction per 600k candles). Baseline, same run: DuckDB's own ``read_csv`` of the same
CSVs, already unzipped, into a table of a fresh database file. Goal: >= 0.5x the baseline's
candles/s.

    .venv/bin/python bench/importer.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import duckdb
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from simulator.clock import SimClock  # noqa: E402
from simulator.settings import SimulatorSettings  # noqa: E402
from simulator.venue import Venue  # noqa: E402
from tradeflow.market.importer import (  # noqa: E402
    ImportFailure,
    ImportOptions,
    import_paths,
)
from tradeflow.market.store import MarketStore  # noqa: E402

YEAR_START = 1_704_067_200_000  # 2024-01-01 00:00 UTC
YEAR_END = 1_735_689_600_000    # 2025-01-01 00:00 UTC
MIN = 60_000


def year_of_klines() -> list[tuple[int, str]]:
    """(open_time, Binance Vision CSV line) of every 1m candle of 2024 from the simulator."""
    settings = SimulatorSettings(start_time_ms=YEAR_END, history_days=366,
                                 symbols=("BTC/USDT",))
    venue = Venue(settings, SimClock(settings.start_time_ms, settings.speed, wall=lambda: 0))
    k = venue.klines("BTC/USDT", "1m", YEAR_START, YEAR_END - MIN, limit=10**7)
    p, q = k.price_decimals, k.qty_decimals
    cols = [k.open_time, *(getattr(k, c) / 10**p for c in ("open", "high", "low", "close")),
            k.volume / 10**q, k.open_time + MIN - 1, k.quote / 1e8, k.trades,
            k.taker_base / 10**q, k.taker_quote / 1e8]
    fmt = ["{:d}", *[f"{{:.{p}f}}"] * 4, f"{{:.{q}f}}", "{:d}", "{:.8f}", "{:d}",
           f"{{:.{q}f}}", "{:.8f}"]
    lines = []
    for row in zip(*cols, strict=True):
        cells = [f.format(int(v) if f == "{:d}" else float(v)) for f, v in zip(fmt, row,
                                                                                 strict=True)]
        lines.append((int(row[0]), ",".join(cells) + ",0"))
    return lines


def write_dumps(lines: list[tuple[int, str]], zips: Path, csvs: Path) -> list[Path]:
    """Monthly zips with .CHECKSUM files, and the same CSVs unzipped for the baseline."""
    months: dict[str, list[str]] = {}
    for t, line in lines:
        months.setdefault(str(np.datetime64(t, "ms").astype("datetime64[M]")), []).append(line)
    paths = []
    for month, rows in sorted(months.items()):
        name = f"BTCUSDT-1m-{month}"
        text = "\n".join(rows) + "\n"
        (csvs / f"{name}.csv").write_text(text)
        path = zips / f"{name}.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(f"{name}.csv", text)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        (zips / f"{name}.zip.CHECKSUM").write_text(f"{digest}  {path.name}\n")
        paths.append(path)
    return paths


def duckdb_read_csv(csvs: Path, db: Path) -> int:
    """The baseline: DuckDB reads the unzipped CSVs into a table of a fresh file."""
    con = duckdb.connect(str(db))
    try:
        con.execute(
            "CREATE TABLE klines AS SELECT * FROM read_csv(?, header = false, columns = {"
            "'open_time': 'BIGINT', 'open': 'DOUBLE', 'high': 'DOUBLE', 'low': 'DOUBLE', "
            "'close': 'DOUBLE', 'volume': 'DOUBLE', 'close_time': 'BIGINT', "
            "'quote_volume': 'DOUBLE', 'trades': 'BIGINT', 'taker_buy_base': 'DOUBLE', "
            "'taker_buy_quote': 'DOUBLE', 'ignore': 'VARCHAR'})",
            [str(csvs / "*.csv")])
        return int(con.execute("SELECT count(*) FROM klines").fetchone()[0])
    finally:
        con.close()


def tradeflow_import(paths: list[Path], db: Path) -> int:
    store = MarketStore(db)
    try:
        outcomes = import_paths(store, paths, ImportOptions())
    finally:
        store.close()
    failed = [o for o in outcomes if isinstance(o, ImportFailure)]
    assert not failed, failed
    return sum(o.rows for o in outcomes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print("making a year of 1m candles with the simulator ...", flush=True)
    lines = year_of_klines()
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        root = Path(tmp)
        zips, csvs = root / "zips", root / "csvs"
        zips.mkdir()
        csvs.mkdir()
        paths = write_dumps(lines, zips, csvs)
        size = sum(p.stat().st_size for p in paths)
        raw = sum(p.stat().st_size for p in csvs.iterdir())
        base_times, ours_times = [], []
        for i in range(args.repeat):
            db = root / f"baseline-{i}.duckdb"
            start = time.perf_counter()
            n_base = duckdb_read_csv(csvs, db)
            base_times.append(time.perf_counter() - start)
            db = root / f"store-{i}.duckdb"
            start = time.perf_counter()
            n_ours = tradeflow_import(paths, db)
            ours_times.append(time.perf_counter() - start)
            assert n_base == n_ours == len(lines), (n_base, n_ours, len(lines))
    base, ours = min(base_times), min(ours_times)
    n = len(lines)
    print(f"import benchmark: {n:,} 1m candles of 2024 in {len(paths)} monthly zips "
          f"({size / 1e6:.1f} MB zipped, {raw / 1e6:.1f} MB of CSV), best of {args.repeat}; "
          f"load {os.getloadavg()[0]:.2f}")
    print(f"  baseline  DuckDB read_csv of the unzipped CSVs  {base:7.3f} s  "
          f"{n / base:12,.0f} candles/s")
    print(f"  tradeflow import_paths of the zips            {ours:7.3f} s  "
          f"{n / ours:12,.0f} candles/s   {base / ours:5.2f}x the baseline (goal >= 0.5x)")


if __name__ == "__main__":
    main()
