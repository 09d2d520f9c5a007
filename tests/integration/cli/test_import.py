"""`tradeflow import` as a user runs it: a directory of mixed formats stores exactly the
candles of the files (NULL where a field is absent) and importing it again changes nothing;
a corrupt zip in the middle of a batch is one line and the rest imports; bad flags and a
locked store are one line each, never a traceback."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow.feather as feather
import pytest

from tradeflow.market.store import MarketStore

REPO = Path(__file__).resolve().parents[3]
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
MIN, HOUR = 60_000, 3_600_000
COLUMNS = ("symbol", "timeframe", "open_time", "open", "high", "low", "close", "volume",
           "quote_volume", "trades", "taker_buy_base", "taker_buy_quote")


def cli(store: Path, *args: str, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("TRADEFLOW_")}
    base.update({"TRADEFLOW_STORE__PATH": str(store), "TRADEFLOW_DATA_DIR": str(store.parent),
                 **(env or {})})
    return subprocess.run([sys.executable, "-m", "cli.main", "import", *args], cwd=REPO,
                          env=base, capture_output=True, text=True, timeout=120)


def vision_zip(path: Path, n: int, start: int, header: bool = False) -> pd.DataFrame:
    """A Binance Vision dump of ``n`` 1m candles; returns what it holds."""
    rng = np.random.default_rng(n + start % 997)
    t = start + np.arange(n, dtype=np.int64) * MIN
    o = np.round(rng.uniform(100, 200, n), 2)
    c = np.round(o + rng.normal(0, 1, n), 2)
    frame = pd.DataFrame({
        "open_time": t, "open": o, "high": np.maximum(o, c) + 0.5,
        "low": np.minimum(o, c) - 0.5, "close": c, "volume": np.round(rng.uniform(1, 9, n), 4),
        "quote_volume": np.round(rng.uniform(100, 900, n), 4),
        "trades": rng.integers(1, 500, n), "taker_buy_base": np.round(rng.uniform(0, 1, n), 4),
        "taker_buy_quote": np.round(rng.uniform(0, 90, n), 4)})
    lines = [",".join(str(v) for v in (r.open_time, r.open, r.high, r.low, r.close, r.volume,
                                       r.open_time + MIN - 1, r.quote_volume, r.trades,
                                       r.taker_buy_base, r.taker_buy_quote, 0))
             for r in frame.itertuples()]
    if header:
        lines.insert(0, "open_time,open,high,low,close,volume,close_time,quote_volume,count,"
                        "taker_buy_volume,taker_buy_quote_volume,ignore")
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(path.with_suffix(".csv").name, "\n".join(lines) + "\n")
    return frame


def hourly(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    price = np.round(rng.uniform(10, 20, n), 3)
    return pd.DataFrame({"open_time": T0 + np.arange(n, dtype=np.int64) * HOUR,
                         "open": price, "high": price + 1, "low": price - 1,
                         "close": price + 0.25, "volume": np.round(rng.uniform(0, 5, n), 3)})


@pytest.fixture
def mixed(tmp_path: Path) -> tuple[Path, dict[tuple[str, str], pd.DataFrame]]:
    """A directory of files in every format and what each series must hold."""
    root = tmp_path / "downloads"
    expected: dict[tuple[str, str], pd.DataFrame] = {}
    spot = [vision_zip(root / "spot" / f"BTCUSDT-1m-2024-01-0{d}.zip", 1440,
                       T0 + (d - 1) * 1440 * MIN) for d in (1, 2)]
    expected[("BTC/USDT", "1m")] = pd.concat(spot, ignore_index=True)
    expected[("ETH/USDT:USDT", "1m")] = vision_zip(
        root / "futures" / "um" / "ETHUSDT-1m-2024-01-01.zip", 300, T0, header=True)
    ft = hourly(48, 1)
    rows = [[int(t), o, h, lo, c, v] for t, o, h, lo, c, v in ft.itertuples(index=False)]
    (root / "freqtrade").mkdir()
    (root / "freqtrade" / "SOL_USDT-1h.json.gz").write_bytes(gzip.compress(
        json.dumps(rows).encode()))
    expected[("SOL/USDT", "1h")] = ft
    fe = hourly(24, 2)
    feather.write_feather(fe.assign(date=pd.to_datetime(fe["open_time"], unit="ms", utc=True))
                          .drop(columns="open_time"), root / "freqtrade" /
                          "XRP_USDT_USDT-1h-futures.feather")
    expected[("XRP/USDT:USDT", "1h")] = fe
    (root / "notes.txt").write_text("not candles: skipped when walking the directory\n")
    return root, expected


def table(store: Path) -> pd.DataFrame:
    con = duckdb.connect(str(store), read_only=True)
    try:
        return con.execute("SELECT * FROM candles ORDER BY symbol, timeframe, open_time").df()
    finally:
        con.close()


def test_a_directory_of_mixed_formats_stores_exactly_its_candles_and_again_changes_nothing(
        tmp_path: Path, mixed: tuple[Path, dict[tuple[str, str], pd.DataFrame]]) -> None:
    root, expected = mixed
    store = tmp_path / "market.duckdb"
    proc = cli(store, str(root))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "5 of 5 files imported" in proc.stdout and "Traceback" not in proc.stderr
    assert "NULL: quote_volume, trades, taker_buy_base, taker_buy_quote" in proc.stdout
    stored = table(store)
    assert set(zip(stored["symbol"], stored["timeframe"], strict=True)) == set(expected)
    for (symbol, tf), frame in expected.items():
        got = stored[(stored["symbol"] == symbol) & (stored["timeframe"] == tf)]
        got = got.loc[:, list(COLUMNS[2:])].reset_index(drop=True)
        for column in COLUMNS[2:]:
            want = frame[column].to_numpy(dtype=float) if column in frame else np.full(
                len(frame), np.nan)  # absent from the file: NULL, never a number
            np.testing.assert_array_equal(got[column].to_numpy(dtype=float, na_value=np.nan),
                                          want, err_msg=f"{symbol} {tf} {column}")
    before = table(store)
    again = cli(store, str(root))
    assert again.returncode == 0 and "5 of 5 files imported" in again.stdout
    pd.testing.assert_frame_equal(table(store), before)  # ingested_at and source included
    with MarketStore(store, read_only=True) as s:
        assert s.duplicate_count() == 0


def test_a_corrupt_zip_in_the_middle_of_a_batch_is_one_line_and_the_rest_imports(
        tmp_path: Path) -> None:
    root = tmp_path / "batch"
    for d in range(1, 6):
        vision_zip(root / f"BTCUSDT-1m-2024-01-0{d}.zip", 1440, T0 + (d - 1) * 1440 * MIN)
    bad = root / "BTCUSDT-1m-2024-01-03.zip"
    data = bytearray(bad.read_bytes())
    data[len(data) // 3] ^= 0x5A  # inside the compressed stream
    bad.write_bytes(bytes(data))
    store = tmp_path / "market.duckdb"
    proc = cli(store, str(root / "*.zip"))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    failed = [line for line in proc.stdout.splitlines() if line.startswith("FAILED")]
    assert failed == [f"FAILED {bad}: not a valid zip archive "
                      f"({failed[0].rsplit('(', 1)[1]}"]
    assert "4 of 5 files imported" in proc.stdout
    days = table(store)["open_time"] // (1440 * MIN) - T0 // (1440 * MIN)
    assert sorted(set(days)) == [0, 1, 3, 4] and len(days) == 4 * 1440


@pytest.mark.parametrize(("args", "message", "code"), [
    (["--timeframe", "7x"], "tradeflow import: timeframe '7x' is not valid; allowed: <n><unit>",
     2),
    (["--symbol", "btc-usdt"], "tradeflow import: symbol 'btc-usdt' is malformed; allowed: "
                               "BASE/QUOTE", 2),
    (["--columns", "price=Last"], "tradeflow import: --columns entry 'price=Last'", 2),
])
def test_bad_flags_are_one_line(tmp_path: Path, args: list[str], message: str,
                                code: int) -> None:
    path = tmp_path / "BTCUSDT-1m-2024-01-01.zip"
    vision_zip(path, 5, T0)
    proc = cli(tmp_path / "market.duckdb", str(path), *args)
    assert proc.returncode == code and proc.stdout == ""
    assert proc.stderr.strip().startswith(message) and len(proc.stderr.splitlines()) == 1
    assert not (tmp_path / "market.duckdb").exists()  # nothing left behind


def test_a_store_another_process_holds_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "BTCUSDT-1m-2024-01-01.zip"
    vision_zip(path, 5, T0)
    store = tmp_path / "market.duckdb"
    MarketStore(store).close()
    holder = duckdb.connect(str(store))  # this process holds the write lock
    try:
        proc = cli(store, str(path), env={"TRADEFLOW_STORE__LOCK_RETRIES": "1"})
    finally:
        holder.close()
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    line = proc.stderr.strip()
    assert len(line.splitlines()) == 1
    assert line.startswith(f"tradeflow import: market store {store} stayed locked by another "
                           f"process (PID {os.getpid()})")
