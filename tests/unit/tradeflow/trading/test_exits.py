"""Exit rules through the trader's per-candle API, and parity with the backtest loop."""

from __future__ import annotations

import json
import math
from typing import NamedTuple

import numpy as np
import pandas as pd
import pytest

from tradeflow.backtest.engine import run_backtest
from tradeflow.strategy import CostSettings, ExitSettings, SlippageSettings, TakeProfitTier
from tradeflow.trading.exits import (
    ExitParams,
    ExitReason,
    Phase,
    PositionState,
    apply_fill,
    release_reentry_lock,
    step_exits,
)


class Bar(NamedTuple):
    open: float
    high: float
    low: float


def long_at(price: float, qty: float = 10.0) -> PositionState:
    return apply_fill(PositionState(), qty, price)


def test_apply_fill_opens_adds_reduces_and_flips() -> None:
    s = long_at(100, 10)
    assert (s.side, s.qty, s.base_qty, s.entry_price, s.extreme) == (1, 10, 10, 100, 100)
    s = apply_fill(s, 10, 110)
    assert (s.qty, s.base_qty, s.entry_price) == (20, 20, 105)
    s = apply_fill(s, -5, 120)
    assert (s.qty, s.base_qty, s.entry_price) == (15, 20, 105)
    s = apply_fill(s, -20, 90)
    assert (s.side, s.qty, s.entry_price, s.held) == (-1, 5, 90, 0)
    assert apply_fill(s, 5, 80).side == 0


def test_stop_loss_intrabar_and_gap() -> None:
    exits = ExitSettings(stop_loss_pct=2)
    s, fills = step_exits(long_at(100), Bar(99, 99.5, 97.5), exits, slippage=0.001)
    assert [(f.reason, f.qty, f.trigger, f.taker) for f in fills] == [
        (ExitReason.STOP_LOSS, 10, 98, True)]
    assert fills[0].price == pytest.approx(98 * 0.999)
    assert (s.side, s.lock) == (0, 1)
    _, fills = step_exits(long_at(100), Bar(96, 97, 95), exits)
    assert fills[0].trigger == 96


def test_short_side_is_symmetric() -> None:
    exits = ExitSettings(stop_loss_pct=2, take_profit=(TakeProfitTier(pct=1, fraction=0.5),))
    short = apply_fill(PositionState(), -10, 100)
    s, fills = step_exits(short, Bar(100, 100.5, 98.8), exits)
    assert [(f.reason, f.qty, f.price, f.taker) for f in fills] == [
        (ExitReason.TAKE_PROFIT, 5, 99, False)]
    assert (s.qty, s.lock, s.extreme) == (5, -1, 98.8)
    _, fills = step_exits(s, Bar(100, 102.5, 99.5), exits, slippage=0.001)
    assert fills[0].reason is ExitReason.STOP_LOSS
    assert fills[0].price == pytest.approx(102 * 1.001)


def test_tiers_fill_in_order_and_stop_takes_the_rest_after_an_open_gap() -> None:
    tiers = (TakeProfitTier(pct=1, fraction=0.25), TakeProfitTier(pct=2, fraction=0.25),
             TakeProfitTier(pct=5, fraction=0.5))
    exits = ExitSettings(stop_loss_pct=1, take_profit=tiers)
    # Opens above both lower tiers (filled at the open), then falls to the stop in the candle.
    s, fills = step_exits(long_at(100), Bar(102.5, 102.5, 98.5), exits)
    assert [(f.reason, f.tier, f.qty, f.price) for f in fills] == [
        (ExitReason.TAKE_PROFIT, 0, 2.5, 102.5),
        (ExitReason.TAKE_PROFIT, 1, 2.5, 102.5),
        (ExitReason.STOP_LOSS, None, 5.0, 99.0),
    ]
    assert s.side == 0


def test_trailing_reference_updates_after_the_check_and_holding_counts_candles() -> None:
    exits = ExitSettings(trailing_stop_pct=10, max_holding_candles=3)
    s = long_at(100)
    s, fills = step_exits(s, Bar(100, 120, 99), exits)
    assert not fills
    assert (s.extreme, s.held) == (120, 1)
    s, fills = step_exits(s, Bar(119, 119, 107.5), exits)
    assert [f.reason for f in fills] == [ExitReason.TRAILING_STOP]
    assert fills[0].trigger == pytest.approx(108)
    s = long_at(100)
    for _ in range(3):
        s, fills = step_exits(s, Bar(100, 100, 100), exits)
        assert not fills
    s, fills = step_exits(s, Bar(101, 101, 101), exits, slippage=0.002)
    assert [(f.reason, f.trigger) for f in fills] == [(ExitReason.MAX_HOLDING, 101)]
    assert fills[0].price == pytest.approx(101 * 0.998)


def test_open_phase_alone_ignores_the_candle_range() -> None:
    exits = ExitSettings(stop_loss_pct=2)
    s, fills = step_exits(long_at(100), Bar(99, 99, 90), exits, phase=Phase.OPEN)
    assert not fills and s.side == 1 and s.held == 0
    s, fills = step_exits(s, Bar(99, 99, 90), exits, phase=Phase.INTRABAR)
    assert fills[0].trigger == 98


def test_lock_release_and_state_round_trip() -> None:
    s, _ = step_exits(long_at(100), Bar(90, 90, 90), ExitSettings(stop_loss_pct=2))
    assert s.lock == 1
    assert release_reentry_lock(s, 0.5).lock == 1
    assert release_reentry_lock(s, 0.0).lock == 0
    assert release_reentry_lock(s, -0.5).lock == 0
    data = json.loads(json.dumps(s.to_dict()))
    back = PositionState.from_dict(data)
    assert back.lock == 1 and math.isnan(back.entry_price)


def _random_candles(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.006, n)))
    opens = np.r_[100, close[:-1]] * (1 + rng.normal(0, 0.002, n))
    spread = np.abs(rng.normal(0, 0.004, (2, n)))
    return pd.DataFrame({
        "open_time": np.arange(n, dtype=np.int64) * 60_000, "open": opens,
        "high": np.maximum(opens, close) * (1 + spread[0]),
        "low": np.minimum(opens, close) * (1 - spread[1]), "close": close,
    })


@pytest.mark.parametrize("allow_short", [False, True])
def test_trader_stepping_reproduces_the_backtest_exit_fills_exactly(allow_short: bool) -> None:
    n = 3_000
    candles = _random_candles(n, 7)
    rng = np.random.default_rng(3)
    lo = -1.0 if allow_short else 0.0
    levels = np.where(rng.random(n) < 0.4, 0.0, rng.uniform(lo, 1.0, n))
    target = np.where(rng.random(n) < 0.1, levels, np.nan)
    exits = ExitSettings(
        stop_loss_pct=1.0, trailing_stop_pct=1.5, max_holding_candles=15,
        take_profit=(TakeProfitTier(pct=0.5, fraction=0.3), TakeProfitTier(pct=1, fraction=0.3)),
    )
    costs = CostSettings(taker_bps=10, maker_bps=2, slippage=SlippageSettings(
        kind="volatility", bps=1, volatility_multiplier=0.2, volatility_window=20))
    result = run_backtest(candles, target, costs=costs, exits=exits, allow_short=allow_short)
    fills = result.fills
    exit_fills = fills[fills["reason"] != "signal"]
    assert {"stop_loss", "trailing_stop", "take_profit", "max_holding"} <= set(exit_fills["reason"])

    from tradeflow.trading.costs import next_fill_slippage

    compiled = ExitParams.from_settings(exits)
    closes = candles["close"].to_numpy()
    signal_fills = fills[fills["reason"] == "signal"].groupby("time")
    by_time = {t: g for t, g in signal_fills}
    state = PositionState()
    stepped = []
    for t, bar in enumerate(candles.itertuples(index=False)):
        slip = next_fill_slippage(closes[:t], costs.slippage)
        state, got = step_exits(state, bar, compiled, slippage=slip, phase=Phase.OPEN)
        stepped += [(bar.open_time, f) for f in got]
        for row in by_time.get(bar.open_time, pd.DataFrame()).itertuples():
            signed = row.qty if row.side == "buy" else -row.qty
            state = apply_fill(state, signed, row.price)
        state, got = step_exits(state, bar, compiled, slippage=slip, phase=Phase.INTRABAR)
        stepped += [(bar.open_time, f) for f in got]
    assert len(stepped) == len(exit_fills)
    for (time, f), row in zip(stepped, exit_fills.itertuples(), strict=True):
        assert (time, f.reason.value, f.qty, f.price) == (row.time, row.reason, row.qty, row.price)
        assert (f.tier if f.tier is not None else -1) == row.tier
