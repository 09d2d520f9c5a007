"""Labels computed by hand: forward return vs threshold, triple barrier, NaN at the tail."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from models.labels import (
    BARRIER_STOP,
    BARRIER_TAKE,
    BARRIER_TIME,
    forward_return,
    forward_return_labels,
    make_labels,
    triple_barrier_labels,
)
from tests.unit.models.test_features_support import random_walk_candles
from tradeflow.strategy import LabelSettings


def path(close: list[float], high: list[float] | None = None,
         low: list[float] | None = None) -> pd.DataFrame:
    c = np.asarray(close, dtype=float)
    return pd.DataFrame({
        "open_time": 60_000 * np.arange(len(c), dtype=np.int64),
        "open": c,
        "high": c if high is None else np.asarray(high, dtype=float),
        "low": c if low is None else np.asarray(low, dtype=float),
        "close": c,
        "volume": np.ones(len(c)),
    }, index=pd.RangeIndex(100, 100 + len(c)))


def test_forward_return_by_hand() -> None:
    close = np.array([100.0, 101.0, 99.0, 102.0, 103.0])
    out = forward_return(close, 2)
    assert out[:3] == pytest.approx([math.log(99 / 100), math.log(102 / 101), math.log(103 / 99)])
    assert np.isnan(out[3:]).all()
    assert np.isnan(forward_return(close[:2], 2)).all()


def test_forward_return_label_against_threshold_in_bps() -> None:
    # +0.30%, +0.20%, a hair under +0.25%, -1%; threshold 25 bps, horizon 1.
    candles = path([100.0, 100.3, 100.5006, 100.751851, 99.744332])
    out = forward_return_labels(candles, 1, 25.0)
    assert out.index.equals(candles.index)
    assert out["label"].tolist()[:4] == [1.0, 0.0, 0.0, 0.0]
    assert np.isnan(out["label"].iloc[4]) and np.isnan(out["fwd_ret"].iloc[4])
    # Strictly greater: a return of exactly the threshold is not a win.
    exact = forward_return_labels(path([100.0, 100.25]), 1, 25.0)
    assert exact["label"].iloc[0] == 0.0
    zero = forward_return_labels(path([100.0, 100.0001, 99.9999]), 1, 0.0)
    assert zero["label"].tolist()[:2] == [1.0, 0.0]


def test_triple_barrier_take_profit_first() -> None:
    # Entry 100, barriers +1% / -1%; candle t+2 touches 101.
    candles = path([100, 100.2, 100.5, 100, 100], high=[100, 100.5, 101.0, 100, 100],
                   low=[100, 99.5, 100.1, 100, 100])
    out = triple_barrier_labels(candles, 1.0, 1.0, 3)
    first = out.iloc[0]
    assert first["label"] == 1.0 and first["barrier"] == BARRIER_TAKE
    assert first["exit_offset"] == 2.0
    assert first["exit_ret"] == pytest.approx(math.log(1.01))


def test_triple_barrier_stop_loss_first() -> None:
    candles = path([100, 99.5, 101.5, 100], high=[100, 99.9, 101.5, 100],
                   low=[100, 98.9, 99.5, 100])
    out = triple_barrier_labels(candles, 1.0, 1.0, 3)
    first = out.iloc[0]
    assert first["label"] == 0.0 and first["barrier"] == BARRIER_STOP
    assert first["exit_offset"] == 1.0
    assert first["exit_ret"] == pytest.approx(math.log(0.99))


def test_triple_barrier_time_limit() -> None:
    candles = path([100, 100.4, 99.6, 100.3, 200], high=[100, 100.9, 99.9, 100.5, 200],
                   low=[100, 100.0, 99.1, 100.1, 200])
    out = triple_barrier_labels(candles, 1.0, 1.0, 3)
    first = out.iloc[0]
    # Candle t+4 would hit the take-profit, but it is past the time limit.
    assert first["label"] == 0.0 and first["barrier"] == BARRIER_TIME
    assert first["exit_offset"] == 3.0
    assert first["exit_ret"] == pytest.approx(math.log(100.3 / 100))


def test_triple_barrier_both_in_one_candle_counts_as_stop() -> None:
    candles = path([100, 100, 100], high=[100, 102, 100], low=[100, 98, 100])
    first = triple_barrier_labels(candles, 1.0, 1.0, 2).iloc[0]
    assert first["label"] == 0.0 and first["barrier"] == BARRIER_STOP
    assert first["exit_offset"] == 1.0


def test_triple_barrier_uses_candles_after_t_only() -> None:
    # Candle t itself spans both barriers; only t+1.. count.
    candles = path([100, 100.5, 100.5], high=[105, 101.2, 100.5], low=[95, 100.4, 100.5])
    first = triple_barrier_labels(candles, 1.0, 1.0, 2).iloc[0]
    assert first["barrier"] == BARRIER_TAKE and first["exit_offset"] == 1.0


def test_incomplete_horizon_is_nan_even_if_a_barrier_was_hit() -> None:
    candles = path([100, 100, 100, 110, 100], high=[100, 100, 100, 110, 100])
    out = triple_barrier_labels(candles, 1.0, 1.0, 3)
    assert out.iloc[:2].notna().all().all()
    assert out.iloc[2:].isna().all().all()  # row 2 sees the +10% at t+1 but its horizon is cut


def test_labels_match_a_plain_python_reference_on_random_candles() -> None:
    candles = random_walk_candles(600, seed=5, sigma=3e-3)
    out = triple_barrier_labels(candles, 0.5, 0.4, 10)
    h, low, c = (candles[k].to_numpy() for k in ("high", "low", "close"))
    for t in range(len(c) - 10):
        barrier, offset = BARRIER_TIME, 10
        for j in range(1, 11):
            if low[t + j] <= c[t] * 0.996:
                barrier, offset = BARRIER_STOP, j
                break
            if h[t + j] >= c[t] * 1.005:
                barrier, offset = BARRIER_TAKE, j
                break
        assert (out["barrier"].iloc[t], out["exit_offset"].iloc[t]) == (barrier, offset), t
    assert set(out["barrier"].dropna()) == {BARRIER_TAKE, BARRIER_STOP, BARRIER_TIME}
    assert out["label"].iloc[-10:].isna().all() and out["label"].iloc[:-10].notna().all()


def test_make_labels_follows_the_strategy_settings() -> None:
    candles = random_walk_candles(200, seed=1)
    fwd = make_labels(candles, LabelSettings.model_validate(
        {"kind": "forward_return", "horizon": 5, "threshold_bps": 10}))
    pd.testing.assert_frame_equal(fwd, forward_return_labels(candles, 5, 10.0))
    tb = make_labels(candles, LabelSettings.model_validate(
        {"kind": "triple_barrier", "horizon": 7, "take_profit_pct": 0.3, "stop_loss_pct": 0.2}))
    pd.testing.assert_frame_equal(tb, triple_barrier_labels(candles, 0.3, 0.2, 7))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: forward_return_labels(c, 0, 10.0), "horizon must be an integer >= 1"),
        (lambda c: forward_return_labels(c, 2, float("nan")), "threshold_bps must be finite"),
        (lambda c: triple_barrier_labels(c, 0.0, 1.0, 5), "take_profit_pct must be a number > 0"),
        (lambda c: triple_barrier_labels(c, 1.0, 100.0, 5), "stop_loss_pct must be < 100"),
        (lambda c: triple_barrier_labels(c, 1.0, 1.0, 2.5),  # type: ignore[arg-type]
         "horizon must be an integer"),
    ],
)
def test_bad_label_parameters(call: Callable[[pd.DataFrame], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call(path([100.0] * 10))
