"""Quarantine: idempotent entries, reads around them, and the fetch and import borders."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tradeflow import timeframes
from tradeflow.contracts.schemas import ContractError, check_candles
from tradeflow.market.backfill import Window, backfill_series, coverage_frame
from tradeflow.market.importer import import_file
from tradeflow.market.quarantine import (
    add_quarantine,
    load_clean_candles,
    quarantine_failures,
    quarantine_rows,
    release_quarantine,
)
from tradeflow.market.store import MarketStore, SeriesKey

MIN = 60_000
DAY = 86_400_000
T0 = 1_704_067_200_000
KEY = SeriesKey("binance", "BTC/USDT", "1m")


def candles(n: int = 10, start: int = T0) -> pd.DataFrame:
    times = start + np.arange(n, dtype=np.int64) * MIN
    price = 100.0 + (times - T0) // MIN  # a function of time: a refetch gets the same values
    return pd.DataFrame({
        "open_time": times,
        "open": price, "high": price + 1, "low": price - 1, "close": price + 0.5,
        "volume": np.full(n, 3.0),
    })


def stored(store: MarketStore, frame: pd.DataFrame) -> None:
    store.upsert(frame, exchange=KEY.exchange, symbol=KEY.symbol, timeframe=KEY.timeframe)


def stored_before_the_contract(store: MarketStore, frame: pd.DataFrame) -> None:
    """Candles as a store of an earlier release kept them: written without any check."""
    with store.connection(write=True) as con:
        con.register("legacy", frame)
        con.execute("INSERT INTO candles (exchange, symbol, timeframe, open_time, open, high, "
                    "low, close, volume, ingested_at, source) SELECT ?, ?, ?, open_time, open, "
                    "high, low, close, volume, now(), 'legacy' FROM legacy",
                    [KEY.exchange, KEY.symbol, KEY.timeframe])
        con.unregister("legacy")


def failing_pairs(*pairs: tuple[int, str]) -> pd.DataFrame:
    return pd.DataFrame(list(pairs), columns=["open_time", "rule"]).astype(
        {"open_time": "int64", "rule": object})


def test_quarantine_rows_carry_the_raw_values_once_per_row_and_rule() -> None:
    frame = candles()
    frame.loc[3, ["low", "close"]] = [-1.0, 0.0]  # two price cells, one rule
    frame.loc[5, "volume"] = np.nan
    rows = quarantine_rows(frame, check_candles(frame, "1m"))
    assert rows[["open_time", "rule"]].values.tolist() == [
        [T0 + 3 * MIN, "price_positive"], [T0 + 5 * MIN, "volume_not_nan"]]
    assert rows.loc[0, ["open", "high", "low", "close"]].tolist() == [103.0, 104.0, -1.0, 0.0]
    assert np.isnan(rows.loc[1, "volume"])


def test_quarantine_is_idempotent_and_never_touches_candles() -> None:
    store = MarketStore(":memory:")
    frame = candles()
    frame.loc[2, "high"] = 50.0
    frame.loc[6, "volume"] = np.nan
    stored_before_the_contract(store, frame)
    before = store.read(KEY)
    check = check_candles(frame, "1m")
    assert quarantine_failures(store, KEY, frame, check, source="validate") == 2
    assert quarantine_failures(store, KEY, frame, check, source="validate") == 0
    assert quarantine_failures(store, KEY, frame, check, source="rest") == 0
    entries = store.quarantined(KEY)
    assert entries[["open_time", "rule", "source"]].values.tolist() == [
        [T0 + 2 * MIN, "high_ge_body", "validate"], [T0 + 6 * MIN, "volume_not_nan", "validate"]]
    pd.testing.assert_frame_equal(store.read(KEY), before)
    # New raw values for the same key and rule are a new finding.
    frame.loc[2, "high"] = 40.0
    assert quarantine_failures(store, KEY, frame, check_candles(frame, "1m"),
                               source="validate") == 1


def test_read_excluding_quarantined_candles() -> None:
    store = MarketStore(":memory:")
    stored(store, candles())
    other = SeriesKey("binance", "ETH/USDT", "1m")
    store.upsert(candles(), exchange=other.exchange, symbol=other.symbol,
                 timeframe=other.timeframe)
    bad = pd.DataFrame({"open_time": [T0 + 4 * MIN], "rule": ["high_ge_body"], "open": [1.0],
                        "high": [0.5], "low": [0.1], "close": [1.0], "volume": [1.0]})
    add_quarantine(store, KEY, bad, source="test")
    times = store.read(KEY, usable_only=True)["open_time"].tolist()
    assert len(times) == 9 and T0 + 4 * MIN not in times
    assert len(store.read(KEY)) == 10  # the default read is unchanged
    assert len(store.read(other, usable_only=True)) == 10  # per series
    window = store.read(KEY, T0 + 3 * MIN, T0 + 5 * MIN, columns=("open_time", "close"),
                        usable_only=True)
    assert window["open_time"].tolist() == [T0 + 3 * MIN, T0 + 5 * MIN]


def test_load_clean_candles_refuses_unvalidated_bad_rows_then_reads_around_them() -> None:
    store = MarketStore(":memory:")
    frame = candles()
    frame.loc[7, "low"] = frame.loc[7, "close"] + 5  # low above the body
    stored_before_the_contract(store, frame)
    with pytest.raises(ContractError, match="low_le_body 1"):
        load_clean_candles(store, KEY)
    quarantine_failures(store, KEY, frame, check_candles(frame, "1m"), source="validate")
    clean = load_clean_candles(store, KEY, T0, T0 + 9 * MIN)
    assert len(clean) == 9 and T0 + 7 * MIN not in clean["open_time"].tolist()
    assert load_clean_candles(store, KEY, T0 + 7 * MIN, T0 + 7 * MIN).empty


class BadPageSource:
    """Binance-like pages of 1m candles with planted faults at given open times."""

    def __init__(self, now: int, faults: dict[int, dict[str, float]],
                 duplicate: int | None = None) -> None:
        self.now, self.faults, self.duplicate = now, faults, duplicate

    async def fetch_ohlcv(self, symbol: str, timeframe: str, since: int | None = None,
                          limit: int | None = None, until: int | None = None) -> pd.DataFrame:
        lo = -(-(since or 0) // MIN) * MIN
        hi = min(until if until is not None else self.now, self.now)
        times = np.arange(lo, hi + 1, MIN, dtype=np.int64)[: limit or 500]
        page = candles(len(times), int(times[0])) if len(times) else candles(0)
        for t, values in self.faults.items():
            for column, value in values.items():
                page.loc[page["open_time"] == t, column] = value
        if self.duplicate is not None and (page["open_time"] == self.duplicate).any():
            twin = page[page["open_time"] == self.duplicate].copy()
            twin["close"] += 0.25  # same key, different values
            at = int(np.flatnonzero(page["open_time"] == self.duplicate)[0]) + 1
            page = pd.concat([page.iloc[:at], twin, page.iloc[at:]], ignore_index=True)
        return page


def test_backfill_stores_a_bad_candle_as_sent_and_quarantines_it() -> None:
    now = T0 + DAY + 30 * MIN + 5_000
    bad_time = T0 + DAY - 100 * MIN
    nan_time = T0 + DAY - 50 * MIN
    dup_time = T0 + DAY - 20 * MIN
    source = BadPageSource(now, {bad_time: {"high": 1.0}, nan_time: {"close": np.nan}},
                           duplicate=dup_time)
    store = MarketStore(":memory:")
    report = asyncio.run(backfill_series(source, store, KEY, Window(start=T0), now,
                                         page_limit=1000, empty_retry_delay=0))
    entries = store.quarantined(KEY)
    assert sorted(zip(entries["open_time"], entries["rule"], strict=True)) == [
        (bad_time, "high_ge_body"), (nan_time, "price_not_nan"),
        (dup_time, "unique_open_time"), (dup_time, "unique_open_time")]
    assert report.quarantined == 4
    assert set(entries["source"]) == {"rest"}
    # Stored as the exchange sent it; the candle without a close cannot be stored at all.
    assert store.read(KEY, bad_time, bad_time)["high"].tolist() == [1.0]
    assert store.read(KEY, nan_time, nan_time).empty
    assert store.duplicate_count() == 0
    clean = store.read(KEY, usable_only=True)["open_time"]
    assert not clean.isin([bad_time, nan_time, dup_time]).any()
    assert coverage_frame([report])["quarantined"].tolist() == [4]
    # A second run fetches little and re-finds nothing new.
    again = asyncio.run(backfill_series(source, store, KEY, Window(start=T0), now,
                                        page_limit=1000, empty_retry_delay=0))
    assert again.quarantined == 0 and len(store.quarantined(KEY)) == 4


def test_import_quarantines_bad_candles_of_a_well_formed_file(tmp_path: Path) -> None:
    rows = []
    for i in range(5):
        t = T0 + i * MIN
        high = "42010.5" if i != 2 else "41000.0"  # below the body
        rows.append(f"{t},42000.1,{high},41990.0,42005.2,12.5,{t + 59_999},1,1,1,1,0")
    path = tmp_path / "BTCUSDT-1m-2024-01.csv"
    path.write_text("\n".join(rows) + "\n")
    store = MarketStore(":memory:")
    result = import_file(store, path)
    assert result.rows == 5 and result.quarantined == {"high_ge_body": 1}
    entries = store.quarantined(KEY)
    assert entries[["open_time", "rule", "high", "source"]].values.tolist() == [
        [T0 + 2 * MIN, "high_ge_body", 41000.0, f"import:{path.name}"]]
    assert len(store.read(KEY)) == 5
    assert import_file(store, path).quarantined == {}  # re-import: nothing new
    assert timeframes.iso(int(entries["open_time"].iloc[0])) == "2024-01-01 00:02"


def test_a_corrected_candle_is_released_and_an_unchanged_one_stays() -> None:
    store = MarketStore(":memory:")
    frame = candles()
    frame.loc[2, "high"] = 50.0      # high below the body
    frame.loc[6, "low"] = -1.0       # a negative price (a store of an earlier release)
    stored_before_the_contract(store, frame)
    assert quarantine_failures(store, KEY, frame, check_candles(frame, "1m"),
                               source="validate") == 2
    stored(store, candles().iloc[[2]])  # a re-import brings the exchange's corrected candle
    failing = failing_pairs((T0 + 6 * MIN, "price_positive"))  # what the rules say now
    assert release_quarantine(store, KEY, T0, None, failing) == 1
    left = store.quarantined(KEY)
    assert left["open_time"].tolist() == [T0 + 6 * MIN]
    released = store.sql("SELECT open_time, rule, high, source FROM candles_quarantine_released")
    assert released.values.tolist() == [[T0 + 2 * MIN, "high_ge_body", 50.0, "validate"]]
    assert T0 + 2 * MIN in set(store.read(KEY, usable_only=True)["open_time"])
    assert release_quarantine(store, KEY, T0, None, failing) == 0  # nothing more to release


def test_an_entry_is_not_released_while_its_candle_still_fails_or_is_outside_the_window(
) -> None:
    store = MarketStore(":memory:")
    frame = candles()
    frame.loc[3, "high"] = 50.0
    stored(store, frame)             # quarantined by the store as it is written
    worse = frame.iloc[[3]].copy()
    worse["high"] = 40.0             # replaced, but by another bad candle
    stored(store, worse)
    still = failing_pairs((T0 + 3 * MIN, "high_ge_body"))
    assert release_quarantine(store, KEY, T0, None, still) == 0
    stored(store, candles().iloc[[3]])
    none = failing_pairs()
    assert release_quarantine(store, KEY, T0 + 4 * MIN, None, none) == 0
    assert release_quarantine(store, KEY, T0, T0 + 2 * MIN, none) == 0
    assert release_quarantine(store, KEY, T0, T0 + 3 * MIN, none) == 2  # both findings


def test_a_soft_rule_entry_is_released_once_it_passes_though_the_candle_is_unchanged() -> None:
    store = MarketStore(":memory:")
    stored(store, candles())
    row = candles().iloc[[5]].assign(rule="extreme_wick")
    add_quarantine(store, KEY, row, source="validate")
    assert release_quarantine(store, KEY, T0, None,
                              failing_pairs((T0 + 5 * MIN, "extreme_wick"))) == 0
    assert release_quarantine(store, KEY, T0, None, failing_pairs()) == 1
    assert store.quarantined(KEY).empty


def test_validation_releases_what_it_quarantined_once_the_candle_is_corrected(
        tmp_path: Path) -> None:
    from tradeflow.config import load_settings
    from tradeflow.validation.run import check_series, plan_validation

    settings = load_settings(env={}, overrides={
        "data_dir": str(tmp_path), "symbols": ["BTC/USDT"], "timeframes": ["1m"]})
    plan = plan_validation(settings, window_days=1, now_ms=T0 + 10 * MIN + 1_000)
    store = MarketStore(":memory:")
    frame = candles()
    frame.loc[4, "high"] = 50.0
    stored_before_the_contract(store, frame)
    first = check_series(store, KEY, plan)
    assert (first.hard_failed, first.quarantined, first.released) == (1, 1, 0)
    stored(store, candles().iloc[[4]])
    second = check_series(store, KEY, plan)
    assert (second.hard_failed, second.quarantined, second.released) == (0, 0, 1)
    assert store.quarantined(KEY).empty
