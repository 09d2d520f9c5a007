"""Hand-computed single-symbol backtests: fills, costs, exits, re-entry, shorts, cash."""

from __future__ import annotations

import statistics

import numpy as np
import pandas as pd
import pytest

from tradeflow.backtest.engine import backtest_strategy, run_backtest
from tradeflow.strategy import (
    CostSettings,
    ExitSettings,
    FeatureSpec,
    RiskSettings,
    SignalSettings,
    SizingSettings,
    SlippageSettings,
    StrategySettings,
    TakeProfitTier,
)

NAN = float("nan")
FREE = CostSettings(taker_bps=0, maker_bps=0, slippage=SlippageSettings(bps=0))
MINUTE = 60_000


def make_candles(opens, highs=None, lows=None, closes=None) -> pd.DataFrame:
    """Candles one minute apart; high/low default to the body of the candle."""
    o = np.asarray(opens, dtype=float)
    c = o.copy() if closes is None else np.asarray(closes, dtype=float)
    h = np.maximum(o, c) if highs is None else np.asarray(highs, dtype=float)
    lo = np.minimum(o, c) if lows is None else np.asarray(lows, dtype=float)
    return pd.DataFrame({"open_time": np.arange(len(o), dtype=np.int64) * MINUTE, "open": o,
                         "high": h, "low": lo, "close": c, "volume": 1.0})


def costs(taker: float = 0.0, maker: float = 0.0, slip: float = 0.0) -> CostSettings:
    return CostSettings(taker_bps=taker, maker_bps=maker, slippage=SlippageSettings(bps=slip))


def test_decision_fills_at_next_open_without_costs() -> None:
    c = make_candles([100, 101, 102, 103, 104], closes=[100.5, 101.5, 102.5, 103.5, 104.5])
    r = run_backtest(c, [1.0, NAN, NAN, 0.0, NAN], costs=FREE)
    fills = r.fills
    assert list(fills["time"]) == [1 * MINUTE, 4 * MINUTE]
    assert list(fills["price"]) == [101.0, 104.0]
    qty = 10_000 / 101
    assert fills["qty"].iloc[0] == pytest.approx(qty, rel=1e-15)
    assert r.equity_curve[0] == 10_000
    assert r.equity_curve[1] == pytest.approx(qty * 101.5, rel=1e-15)
    assert r.equity_curve[-1] == pytest.approx(qty * 104, rel=1e-15)
    assert r.trades["exit_reason"].tolist() == ["signal"]


def test_taker_fee_cuts_the_quantity_to_the_cash_and_is_charged_on_exit() -> None:
    c = make_candles([100, 101, 102, 103, 104])
    r = run_backtest(c, [1.0, NAN, NAN, 0.0, NAN], costs=costs(taker=10))
    qty = 10_000 / 1.001 / 101
    buy, sell = r.fills.iloc[0], r.fills.iloc[1]
    assert buy["qty"] == pytest.approx(qty, rel=1e-14)
    assert buy["fee"] == pytest.approx(10_000 - 10_000 / 1.001, rel=1e-12)
    assert r.cash_curve[1] == 0.0
    assert sell["fee"] == pytest.approx(qty * 104 * 0.001, rel=1e-12)
    assert r.equity_curve[-1] == pytest.approx(qty * 104 * 0.999, rel=1e-12)
    trade = r.trades.iloc[0]
    assert trade["fees"] == pytest.approx(buy["fee"] + sell["fee"], rel=1e-12)
    assert trade["pnl"] == pytest.approx(r.equity_curve[-1] - 10_000, rel=1e-9)


def test_fixed_slippage_is_adverse_on_both_sides() -> None:
    c = make_candles([100, 101, 102, 103, 104])
    r = run_backtest(c, [1.0, NAN, NAN, 0.0, NAN], costs=costs(slip=5))
    assert r.fills["price"].tolist() == pytest.approx([101 * 1.0005, 104 * 0.9995], rel=1e-15)


def test_volatility_slippage_uses_only_candles_closed_before_the_fill() -> None:
    closes = [100, 102, 99, 101, 104, 103, 105, 106]
    opens = [100, *closes[:-1]]
    slip = CostSettings(taker_bps=0, maker_bps=0, slippage=SlippageSettings(
        kind="volatility", bps=1, volatility_multiplier=0.5, volatility_window=3))
    target = [NAN, NAN, NAN, NAN, 1.0, NAN, NAN, NAN]
    r = run_backtest(make_candles(opens, closes=closes), target, costs=slip)
    returns = [closes[i] / closes[i - 1] - 1 for i in (2, 3, 4)]
    expected = opens[5] * (1 + max(1e-4, 0.5 * statistics.stdev(returns)))
    assert r.fills["price"].iloc[0] == pytest.approx(expected, rel=1e-14)
    # The fill candle's own close (and later ones) must not move the fill price.
    changed = closes[:5] + [150, 160, 170]
    r2 = run_backtest(make_candles(opens, closes=changed), target, costs=slip)
    assert r2.fills["price"].iloc[0] == r.fills["price"].iloc[0]


def test_partial_position_changes() -> None:
    c = make_candles([100, 100, 110, 120, 120, 120], closes=[100, 110, 120, 120, 120, 120])
    r = run_backtest(c, [1.0, 0.5, NAN, 1.0, NAN, NAN], costs=FREE)
    pos = r.position_matrix[:, 0]
    assert pos[1] == pytest.approx(100.0)
    # Equity at close 1 is 11000; half of it at the next open (110) is 50 units.
    assert pos[2] == pytest.approx(50.0)
    assert r.cash_curve[2] == pytest.approx(5_500.0)
    # Back to 1.0: equity at close 3 is 11500 -> 95.83 units at 120, all the cash.
    assert pos[4] == pytest.approx(11_500 / 120, rel=1e-12)
    assert r.cash_curve[4] == pytest.approx(0.0, abs=1e-9)
    assert r.cash_curve.min() >= 0.0
    assert r.fills["side"].tolist() == ["buy", "sell", "buy"]


def _stop_candles(open2: float) -> pd.DataFrame:
    return make_candles(
        [100, 100, open2, 98], highs=[100, 101, 99.5, 99], lows=[100, 99, 97.5, 97],
        closes=[100, 100, 98, 98],
    )


@pytest.mark.parametrize(("open2", "gap"), [(99.0, False), (97.0, True)])
def test_stop_loss_fills_at_stop_or_gapped_open_with_taker_fee_and_slippage(
    open2: float, gap: bool
) -> None:
    r = run_backtest(_stop_candles(open2), [1.0, NAN, NAN, NAN],
                     costs=costs(taker=10, maker=2, slip=5), exits=ExitSettings(stop_loss_pct=2))
    entry = 100 * 1.0005
    stop = entry * (1 - 0.02)
    sell = r.fills.iloc[1]
    ref = open2 if gap else stop
    assert sell["time"] == 2 * MINUTE
    assert sell["reason"] == "stop_loss"
    assert sell["price"] == pytest.approx(ref * 0.9995, rel=1e-14)
    assert sell["fee"] == pytest.approx(sell["qty"] * sell["price"] * 0.001, rel=1e-12)
    assert r.position_matrix[2, 0] == 0.0


def test_take_profit_tiers_close_fractions_of_the_original_position() -> None:
    tiers = (TakeProfitTier(pct=1, fraction=0.3), TakeProfitTier(pct=2, fraction=0.3),
             TakeProfitTier(pct=3, fraction=0.4))
    c = make_candles(
        [100, 100, 100.5, 102.5, 102.6, 103],
        highs=[100, 100.5, 101.5, 102.8, 103.2, 103.5],
        lows=[100, 99.9, 100.2, 102.2, 102.4, 102.8],
        closes=[100, 100.2, 101.2, 102.6, 103.0, 103.2],
    )
    r = run_backtest(c, [1.0, NAN, NAN, NAN, NAN, NAN], costs=costs(taker=10, maker=2, slip=5),
                     exits=ExitSettings(take_profit=tiers))
    entry = 100 * 1.0005
    base = r.fills["qty"].iloc[0]
    tp = r.fills.iloc[1:]
    assert tp["reason"].tolist() == ["take_profit"] * 3
    assert tp["tier"].tolist() == [0, 1, 2]
    assert tp["time"].tolist() == [2 * MINUTE, 3 * MINUTE, 4 * MINUTE]
    # Tier 1 gapped through at the open: filled at the better open price; no slippage anywhere.
    assert tp["price"].tolist() == pytest.approx([entry * 1.01, 102.5, entry * 1.03], rel=1e-14)
    assert tp["qty"].tolist() == pytest.approx([0.3 * base, 0.3 * base, 0.4 * base], rel=1e-12)
    assert (tp["fee"] / (tp["qty"] * tp["price"])).tolist() == pytest.approx([0.0002] * 3)
    assert r.position_matrix[4, 0] == 0.0
    assert len(r.closed_trades) == 3


def test_trailing_stop_level_uses_only_earlier_candles() -> None:
    c = make_candles(
        [100, 100, 106, 109, 108],
        highs=[100, 105, 110, 109.5, 108],
        lows=[100, 98.5, 104, 107, 108],
        closes=[100, 104, 108, 108, 108],
    )
    r = run_backtest(c, [1.0, NAN, NAN, NAN, NAN], costs=FREE,
                     exits=ExitSettings(trailing_stop_pct=2))
    # Entry candle: level from the entry price (98), not hit by 98.5. Candle 2: level from
    # the entry candle's high 105 (102.9); its own high 110 would put it at 107.8 > low 104.
    sell = r.fills.iloc[1]
    assert sell["time"] == 3 * MINUTE
    assert sell["reason"] == "trailing_stop"
    assert sell["price"] == pytest.approx(110 * 0.98, rel=1e-15)


def test_max_holding_exits_at_the_open_after_the_limit() -> None:
    c = make_candles([100, 100, 101, 102, 103])
    r = run_backtest(c, [1.0, NAN, NAN, NAN, NAN], costs=costs(taker=10, slip=5),
                     exits=ExitSettings(max_holding_candles=2))
    sell = r.fills.iloc[1]
    assert sell["time"] == 3 * MINUTE
    assert sell["reason"] == "max_holding"
    assert sell["price"] == pytest.approx(102 * 0.9995, rel=1e-15)


def test_stop_wins_when_stop_and_target_share_a_candle() -> None:
    c = make_candles([100, 100, 100, 100], highs=[100, 100.5, 103, 100],
                     lows=[100, 99.5, 97, 100])
    exits = ExitSettings(stop_loss_pct=2, take_profit=(TakeProfitTier(pct=2, fraction=1),))
    r = run_backtest(c, [1.0, NAN, NAN, NAN], costs=FREE, exits=exits)
    assert r.fills["reason"].tolist() == ["signal", "stop_loss"]
    assert r.fills["price"].iloc[1] == pytest.approx(98.0)


def test_no_reentry_after_an_exit_until_the_target_returns_to_zero() -> None:
    n = 10
    opens = [100, 100, 99] + [97] * (n - 3)
    lows = [100, 99.5, 97] + [96.5] * (n - 3)
    c = make_candles(opens, lows=lows)
    target = [1.0, NAN, NAN, 1.0, 0.5, 0.0, 1.0, NAN, NAN, NAN]
    r = run_backtest(c, target, costs=FREE, exits=ExitSettings(stop_loss_pct=2))
    assert r.fills["reason"].tolist() == ["signal", "stop_loss", "signal"]
    assert r.fills["time"].tolist() == [1 * MINUTE, 2 * MINUTE, 7 * MINUTE]


def test_short_position_profits_from_a_fall_and_can_flip() -> None:
    c = make_candles([100, 100, 90, 80, 80], closes=[100, 95, 85, 80, 80])
    r = run_backtest(c, [-1.0, NAN, 0.0, NAN, NAN], costs=FREE, allow_short=True)
    assert r.position_matrix[1, 0] == pytest.approx(-100.0)
    assert r.equity_curve[1] == pytest.approx(10_500.0)
    assert r.equity_curve[-1] == pytest.approx(12_000.0)
    assert r.trades["side"].tolist() == ["short"]
    flip = run_backtest(c, [1.0, -1.0, NAN, NAN, NAN], costs=FREE, allow_short=True)
    assert flip.fills["side"].tolist() == ["buy", "sell", "sell"]
    assert flip.position_matrix[2, 0] < 0
    with pytest.raises(ValueError, match="must lie in"):
        run_backtest(c, [-1.0, NAN, NAN, NAN, NAN])


def test_the_last_candles_decision_is_not_filled() -> None:
    c = make_candles([100, 101, 102, 103])
    r = run_backtest(c, [NAN, NAN, NAN, 1.0], costs=FREE)
    assert len(r.fills) == 0
    assert (r.equity_curve == 10_000).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cash_never_negative_with_costs_exits_and_random_targets(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 400
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    opens = np.r_[100, close[:-1]] * (1 + rng.normal(0, 0.002, n))
    c = make_candles(opens, highs=np.maximum(opens, close) * 1.004,
                     lows=np.minimum(opens, close) * 0.996, closes=close)
    # Half the decisions go flat: after an exit only a 0 re-arms entries.
    levels = np.where(rng.random(n) < 0.5, 0.0, rng.random(n))
    target = np.where(rng.random(n) < 0.2, levels, NAN)
    exits = ExitSettings(stop_loss_pct=1, trailing_stop_pct=2, max_holding_candles=20,
                         take_profit=(TakeProfitTier(pct=1, fraction=0.5),))
    r = run_backtest(c, target, costs=costs(taker=10, maker=2, slip=3), exits=exits)
    assert len(r.fills) > 20
    assert r.cash_curve.min() >= 0.0
    assert r.position_matrix.min() >= 0.0
    # Equity bookkeeping closes: the pnl of all trades (incl. open) explains the change.
    assert r.trades["pnl"].sum() == pytest.approx(r.equity_curve[-1] - 10_000, rel=1e-9)


def test_backtest_strategy_applies_sizing_signal_and_position_cap() -> None:
    strategy = StrategySettings(
        name="t", symbols=("BTC/USDT",), features=(FeatureSpec(name="rsi"),),
        signal=SignalSettings(enter_above=0.6, exit_below=0.5),
        sizing=SizingSettings(kind="fixed_fraction", fraction=0.8),
        risk=RiskSettings(max_position_fraction=0.5), costs=FREE, starting_balance=1_000,
    )
    c = make_candles([100] * 6)
    r = backtest_strategy(c, [0.7, 0.55, 0.4, 0.65, 0.3, 0.5], strategy)
    assert r.fills["time"].tolist() == [1 * MINUTE, 3 * MINUTE, 4 * MINUTE, 5 * MINUTE]
    assert r.fills["qty"].iloc[0] == pytest.approx(5.0)
    assert r.metrics.final_equity == pytest.approx(1_000)
