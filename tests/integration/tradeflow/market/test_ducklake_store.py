"""The market store on DuckLake (catalog in PostgreSQL, Parquet data): the store's interface,
idempotent writes from several processes at once, readers beside an open write, compaction."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tradeflow.config import load_settings
from tradeflow.market.store import MarketStore, SeriesKey, open_store

MIN = 60_000
T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC
KEY = SeriesKey("binance", "BTC/USDT", "1m")

pytestmark = pytest.mark.postgres


def candles(start: int, n: int, close: float = 1.5) -> pd.DataFrame:
    t = np.arange(T0 + start * MIN, T0 + (start + n) * MIN, MIN, dtype=np.int64)
    return pd.DataFrame({"open_time": t, "open": 1.0, "high": 2.0, "low": 0.5, "close": close,
                         "volume": 3.0})


def lake(catalog: str, tmp_path: Path) -> MarketStore:
    return MarketStore(tmp_path / "lake", catalog=catalog)


def data_files(store: MarketStore) -> int:
    return int(store.sql(
        "SELECT count(*) AS n FROM __ducklake_metadata_lake.ducklake_data_file f JOIN "
        "__ducklake_metadata_lake.ducklake_table t USING (table_id) WHERE t.table_name = "
        "'candles' AND f.end_snapshot IS NULL AND t.end_snapshot IS NULL")["n"].iloc[0])


def test_the_profile_chooses_ducklake_and_the_store_keeps_one_candle_per_key(
        lake_catalog: str, tmp_path: Path) -> None:
    settings = load_settings(overrides={"data_dir": str(tmp_path), "store": {
        "engine": "ducklake", "catalog": lake_catalog}}, env={})
    store = open_store(settings)
    assert store.location.startswith("ducklake:postgres:") and store.path == str(
        tmp_path / "market-lake")
    assert store.upsert(candles(0, 300), **vars_of(KEY)) == 300
    assert store.upsert(candles(0, 300), **vars_of(KEY)) == 300  # again, unchanged
    store.upsert(candles(100, 300, close=1.7), **vars_of(KEY))  # overlaps, 100 changed
    assert store.bounds(KEY) == (T0, T0 + 399 * MIN, 400)
    assert store.duplicate_count() == 0
    got = store.read(KEY)
    assert got["close"].tolist() == [1.5] * 100 + [1.7] * 300
    # DuckDB's SQL, unqualified table names, through sql() and connection()
    assert store.sql("SELECT count(*) AS n FROM candles")["n"].iloc[0] == 400
    with store.connection() as con:
        assert con.execute("SELECT max(open_time) FROM candles").fetchone() == (
            T0 + 399 * MIN,)
    store.record_unfillable(KEY, T0 - 10 * MIN, T0 - MIN, 10, "outage")
    store.record_unfillable(KEY, T0 - 10 * MIN, T0 - MIN, 10, "outage")
    store.set_listed_from(KEY, T0)
    assert len(store.unfillable(KEY)) == 1 and store.listed_from(KEY) == T0
    # another store of the same lake (as another process would open it) sees the same
    again = MarketStore(tmp_path / "market-lake", catalog=lake_catalog, read_only=True)
    assert again.bounds(KEY) == (T0, T0 + 399 * MIN, 400)


def vars_of(key: SeriesKey) -> dict[str, str]:
    return {"exchange": key.exchange, "symbol": key.symbol, "timeframe": key.timeframe}


def write_overlapping(catalog: str, path: str, seed: int) -> int:
    """One writer process: the same 1,200 candles in 100-candle batches, in its own order."""
    store = MarketStore(path, catalog=catalog)
    order = np.random.default_rng(seed).permutation(12)
    for i in order:
        store.upsert(candles(int(i) * 100, 100), **vars_of(KEY))
    return len(order)


def test_four_processes_writing_one_series_at_once_store_each_candle_once(
        lake_catalog: str, tmp_path: Path) -> None:
    path = str(tmp_path / "lake")
    lake(lake_catalog, tmp_path)  # the schema exists before the race
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        done = pool.starmap(write_overlapping, [(lake_catalog, path, s) for s in range(4)])
    assert done == [12] * 4
    store = lake(lake_catalog, tmp_path)
    assert store.duplicate_count() == 0
    assert store.bounds(KEY) == (T0, T0 + 1199 * MIN, 1200)


def test_a_reader_does_not_wait_for_an_open_write_and_sees_the_last_commit(
        lake_catalog: str, tmp_path: Path) -> None:
    store = lake(lake_catalog, tmp_path)
    store.upsert(candles(0, 100), **vars_of(KEY))
    with store.connection(write=True) as con:
        con.execute("BEGIN TRANSACTION")
        con.register("more", candles(100, 100).assign(
            exchange=KEY.exchange, symbol=KEY.symbol, timeframe=KEY.timeframe))
        con.execute("INSERT INTO candles BY NAME SELECT *, now() AS ingested_at, "
                    "'test' AS source FROM more")
        assert store.bounds(KEY) == (T0, T0 + 99 * MIN, 100)  # the open write is invisible
        con.execute("COMMIT")
    assert store.bounds(KEY) == (T0, T0 + 199 * MIN, 200)


def test_compaction_merges_small_files_and_keeps_every_candle(
        lake_catalog: str, tmp_path: Path) -> None:
    store = lake(lake_catalog, tmp_path)
    for i in range(12):  # 12 appends of 50 candles: 12 Parquet files
        store.upsert(candles(i * 50, 50), **vars_of(KEY))
    store.upsert(candles(0, 20, close=1.9), **vars_of(KEY))  # a replace: deletes + a file
    before = store.read(KEY)
    assert data_files(store) >= 13
    counts = store.compact(keep_hours=0)
    assert data_files(store) == 1
    assert counts["files_after"] < counts["files_before"]
    pd.testing.assert_frame_equal(store.read(KEY), before)
    assert store.duplicate_count() == 0
    leftover = {p.name for p in (tmp_path / "lake").rglob("*.parquet")}
    assert len(leftover) <= 1 + counts["files_after"]  # old files deleted, not just forgotten


def test_compacting_a_duckdb_file_store_is_refused_in_one_line(tmp_path: Path) -> None:
    from tradeflow.errors import UserError

    with pytest.raises(UserError, match="one DuckDB file") as info:
        MarketStore(tmp_path / "market.duckdb").compact()
    assert "\n" not in str(info.value)


def test_validation_quarantines_excludes_and_keeps_its_watermark_on_the_lake(
        lake_catalog: str, tmp_path: Path) -> None:
    from tradeflow.validation.run import run_validation

    settings = load_settings(overrides={
        "data_dir": str(tmp_path), "symbols": ["BTC/USDT"], "timeframes": ["1m"],
        "store": {"engine": "ducklake", "catalog": lake_catalog}}, env={})
    store = open_store(settings)
    frame = candles(0, 600)
    frame.loc[10, "high"] = 0.1  # below the body: stored and quarantined
    assert store.write(frame, **vars_of(KEY)).quarantined == {"high_ge_body": 1}
    first = run_validation(settings, all_candles=True, store=store)
    assert not first.exceeded and "judged 600 candles" in first.text()
    assert len(store.read(KEY, usable_only=True)) < 600  # the quarantined one left out
    again = run_validation(settings, store=store)  # the watermark: nothing new to judge
    assert "judged 0 candles" in again.text()
    assert store.quarantined(KEY)["open_time"].tolist() == [T0 + 10 * MIN]
