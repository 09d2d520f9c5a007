"""Per-candle order-flow inputs: trade sums against pandas, the close boundary, NaN coverage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.order_flow import (
    BOOK_INPUTS,
    BOOK_LEVELS,
    TRADE_INPUTS,
    attach,
    book_inputs,
    book_row,
    coverage,
    trade_inputs,
)
from tests.unit.models.order_flow_support import make_tape
from tests.unit.models.test_features_support import MINUTE_MS, T0


def trades(*rows: tuple[int, float, float, str]) -> pd.DataFrame:
    ts, price, amount, side = zip(*rows, strict=True)
    return pd.DataFrame({"id": np.arange(1, len(rows) + 1), "ts": ts, "price": price,
                         "amount": amount, "side": side})


def test_trade_sums_match_a_pandas_groupby_of_the_tape() -> None:
    tape = make_tape(600, seed=3)
    t = tape.trades
    start = (int(tape.candles["open_time"].iloc[0]), None)  # recorded from the first candle
    out = trade_inputs(tape.candles["open_time"].to_numpy(), "1m", t, start)
    minute = (t["ts"] - tape.candles["open_time"].iloc[0]) // MINUTE_MS
    g = pd.DataFrame({
        "m": minute, "q": t["amount"], "pv": t["price"] * t["amount"],
        "p2v": t["price"] ** 2 * t["amount"], "buy": np.where(t["side"] == "buy", t["amount"], 0),
    }).groupby("m")
    expected = {
        "trade_count": g.size(), "trade_qty": g["q"].sum(), "trade_pv": g["pv"].sum(),
        "trade_p2v": g["p2v"].sum(), "trade_buy_qty": g["buy"].sum(),
    }
    assert set(out) == set(TRADE_INPUTS)
    for name, series in expected.items():
        full = series.reindex(np.arange(600), fill_value=0.0).to_numpy(dtype=float)
        np.testing.assert_allclose(out[name], full, rtol=1e-12, err_msg=name)
    # Shuffled input gives the same sums (the tape is sorted first).
    shuffled = trade_inputs(tape.candles["open_time"].to_numpy(), "1m",
                            t.sample(frac=1.0, random_state=1).drop(columns="id"), start)
    np.testing.assert_allclose(shuffled["trade_pv"], out["trade_pv"], rtol=1e-12)


def test_a_trade_at_the_close_opens_the_next_candle() -> None:
    open_time = np.array([T0, T0 + MINUTE_MS])
    tape = trades((T0, 10.0, 1.0, "buy"), (T0 + MINUTE_MS - 1, 11.0, 2.0, "sell"),
                  (T0 + MINUTE_MS, 12.0, 4.0, "buy"))
    out = trade_inputs(open_time, "1m", tape)
    assert out["trade_count"].tolist() == [2.0, 1.0]
    assert out["trade_qty"].tolist() == [3.0, 4.0]
    assert out["trade_pv"].tolist() == [32.0, 48.0]
    assert out["trade_buy_qty"].tolist() == [1.0, 4.0]


def test_candles_outside_the_recording_are_nan_and_quiet_recorded_ones_zero() -> None:
    open_time = T0 + MINUTE_MS * np.arange(6)
    tape = trades((T0 + MINUTE_MS, 10.0, 1.0, "buy"), (T0 + 3 * MINUTE_MS + 5, 10.0, 1.0, "buy"))
    out = trade_inputs(open_time, "1m", tape, covered=(None, T0 + 5 * MINUTE_MS))
    # Before the first trade: not recorded; minute 2 recorded without a trade: 0; minute 5
    # closes after the recording's end: not recorded.
    np.testing.assert_array_equal(out["trade_count"], [np.nan, 1, 0, 1, 0, np.nan])
    empty = trade_inputs(open_time, "1m", tape.iloc[:0])
    assert np.isnan(empty["trade_qty"]).all()


def test_a_hole_in_the_trade_ids_makes_the_candles_it_spans_nan() -> None:
    open_time = T0 + MINUTE_MS * np.arange(5)
    tape = trades((T0 + 10, 10.0, 1.0, "buy"), (T0 + MINUTE_MS + 10, 10.0, 1.0, "buy"),
                  (T0 + 3 * MINUTE_MS + 10, 10.0, 1.0, "sell"),
                  (T0 + 4 * MINUTE_MS + 10, 10.0, 1.0, "sell"))
    tape.loc[2:, "id"] += 7  # ids 3..9 were never recorded
    out = trade_inputs(open_time, "1m", tape, covered=(T0, None))
    np.testing.assert_array_equal(out["trade_count"], [1, np.nan, np.nan, np.nan, 1])


def snapshots(*rows: tuple[int, float, float]) -> pd.DataFrame:
    return pd.DataFrame({
        "ts": [r[0] for r in rows],
        "bid_price": [np.array([r[1], r[1] - 1]) for r in rows],
        "bid_amount": [np.array([1.0, 2.0]) for _ in rows],
        "ask_price": [np.array([r[2]]) for r in rows],
        "ask_amount": [np.array([3.0]) for _ in rows],
    })


def test_the_book_at_the_close_is_the_latest_snapshot_stamped_at_or_before_it() -> None:
    open_time = T0 + MINUTE_MS * np.arange(4)
    close0, close1 = T0 + MINUTE_MS, T0 + 2 * MINUTE_MS
    snaps = snapshots((close0 - 5_000, 99.0, 101.0), (close0, 100.0, 102.0),
                      (close0 + 1, 200.0, 202.0), (close1 - 1, 300.0, 302.0),
                      (T0 + 4 * MINUTE_MS - 60_000, 400.0, 402.0))
    out = book_inputs(open_time, "1m", snaps)
    # Stamped AT the close: the book at the decision instant, so candle 0's; a millisecond
    # later belongs to candle 1, which takes its latest (close1 - 1). Candle 2 closes at the
    # last snapshot; for candle 3 that one is exactly one candle old: too old.
    np.testing.assert_array_equal(out["book_bid_px"], [100.0, 300.0, 400.0, np.nan])
    np.testing.assert_array_equal(out["book_ask_px"], [102.0, 302.0, 402.0, np.nan])
    assert out["book_bid_qty_2"][0] == 2.0 and np.isnan(out["book_ask_qty_2"][0])
    older = book_inputs(open_time, "1m", snaps, max_age_ms=MINUTE_MS + 1)
    assert older["book_bid_px"][3] == 400.0


def test_book_row_keeps_the_top_levels_and_marks_short_books() -> None:
    row = book_row(np.arange(12.0, 0, -1), np.ones(12), [13.0], [5.0])
    assert row.shape == (len(BOOK_INPUTS),)
    assert row[0] == 12.0 and row[1] == 13.0
    assert np.isfinite(row[2:2 + BOOK_LEVELS]).all()
    assert row[2 + BOOK_LEVELS] == 5.0 and np.isnan(row[3 + BOOK_LEVELS:]).all()
    assert np.isnan(book_row([], [], [], [])).all()


def test_attach_adds_exactly_the_inputs_asked_for_and_reports_coverage() -> None:
    tape = make_tape(120, seed=5)
    start = int(tape.candles["open_time"].iloc[60])
    late = tape.trades[tape.trades["ts"] >= start]
    out = attach(tape.candles, "1m", ("trade_qty", "book_bid_px"), late, None,
                 covered=(start, None))
    assert list(out.columns) == [*tape.candles.columns, "trade_qty", "book_bid_px"]
    assert np.isnan(out["book_bid_px"]).all()
    assert coverage(out) == pytest.approx({"trades": 60 / 120, "book": 0.0})
    assert coverage(tape.candles) == {}
