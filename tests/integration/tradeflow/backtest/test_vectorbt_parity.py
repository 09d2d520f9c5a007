"""Parity with vectorbt's ``Portfolio.from_signals`` on the same signals and cost model.

vectorbt decides and fills on the same bar, so it gets the signals shifted by one candle and
``price=open``: both then fill a decision taken at a close at the next open. ``size=inf`` is
"all in", which is what a target of 1.0 means here.

Stops: vectorbt checks a stop from the bar AFTER the entry bar, ignores the signal on a bar
where a stop fires, and re-enters on the next entry signal. tradeflow also checks the entry
candle (its range traded after the fill at its open), lets a signal at the open go first, and
needs the target back at 0 before re-entering. The stop test therefore uses strictly
alternating signals and drops the trades where those rules could disagree (a stop or target
touched on the entry candle, or touched only intrabar on the exit signal's fill candle); on
everything else the two must agree to the last bit. A trailing stop is not compared: vectorbt
leaves the entry bar's high out of the trailing reference, tradeflow does not.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import vectorbt as vbt

from tradeflow.backtest.engine import run_backtest
from tradeflow.backtest.metrics import max_drawdown
from tradeflow.strategy import CostSettings, ExitSettings, SlippageSettings, TakeProfitTier

N = 4_000
CASH = 10_000.0
REL = 1e-9


def random_walk(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.004, n)))
    # Opens gap away from the previous close, so stops are also gapped through.
    opens = np.r_[100.0, close[:-1]] * np.exp(rng.normal(0, 0.002, n))
    wick = np.abs(rng.normal(0, 0.003, (2, n)))
    return pd.DataFrame({
        "open_time": np.arange(n, dtype=np.int64) * 60_000, "open": opens,
        "high": np.maximum(opens, close) * (1 + wick[0]),
        "low": np.minimum(opens, close) * (1 - wick[1]), "close": close,
    })


def random_signals(n: int, seed: int, p: float = 0.03) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.random(n) < p, rng.random(n) < p


def to_target(entries: np.ndarray, exits: np.ndarray) -> np.ndarray:
    return np.where(entries & ~exits, 1.0, np.where(exits & ~entries, 0.0, np.nan))


def vbt_run(candles: pd.DataFrame, entries: np.ndarray, exits: np.ndarray, fees: float,
            slippage: float, sl: float = np.nan, tp: float = np.nan) -> vbt.Portfolio:
    idx = pd.date_range("2024-01-01", periods=len(candles), freq="1min")

    def col(name: str) -> pd.Series:
        return pd.Series(candles[name].to_numpy(), index=idx)

    def shift(sig: np.ndarray) -> pd.Series:
        return pd.Series(np.r_[False, sig[:-1]], index=idx)

    # Every call passes the same argument types so vectorbt compiles once.
    return vbt.Portfolio.from_signals(
        col("close"), shift(entries), shift(exits), price=col("open"), open=col("open"),
        high=col("high"), low=col("low"), size=np.inf, fees=fees, slippage=slippage,
        init_cash=CASH, sl_stop=sl, tp_stop=tp, stop_entry_price="fillprice",
        stop_exit_price="stopmarket", freq="1min",
    )


def assert_same(ours, pf: vbt.Portfolio) -> None:  # noqa: ANN001 - a BacktestResult
    assert len(ours.trades) == pf.trades.count()
    assert ours.metrics.final_equity == pytest.approx(pf.final_value(), rel=REL)
    np.testing.assert_allclose(ours.equity_curve, pf.value().to_numpy(), rtol=REL)
    orders = pf.orders.records
    np.testing.assert_array_equal(ours.fills["time"].to_numpy() // 60_000, orders["idx"])
    np.testing.assert_allclose(ours.fills["price"].to_numpy(), orders["price"], rtol=REL)
    np.testing.assert_allclose(ours.fills["qty"].to_numpy(), orders["size"], rtol=REL)
    np.testing.assert_allclose(ours.fills["fee"].to_numpy(), orders["fees"], rtol=REL)
    np.testing.assert_allclose(ours.trades["pnl"].to_numpy(), pf.trades.records["pnl"],
                               rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("seed", [0, 1])
def test_signals_with_fees_and_slippage_match_vectorbt(seed: int) -> None:
    candles = random_walk(N, seed)
    entries, exits = random_signals(N, seed + 100)
    costs = CostSettings(taker_bps=10, maker_bps=2, slippage=SlippageSettings(bps=3))
    ours = run_backtest(candles, to_target(entries, exits), costs=costs)
    pf = vbt_run(candles, entries, exits, fees=0.001, slippage=0.0003)
    assert ours.metrics.trade_count > 30
    assert_same(ours, pf)
    m = ours.metrics
    assert m.total_return == pytest.approx(pf.total_return(), rel=REL)
    assert m.sharpe == pytest.approx(pf.sharpe_ratio(), rel=1e-7)
    assert m.sortino == pytest.approx(pf.sortino_ratio(), rel=1e-7)
    assert m.cagr == pytest.approx(pf.annualized_return(), rel=1e-7)
    # vectorbt does not count the starting cash as a peak; on the same basis we agree.
    value = pf.value().to_numpy()
    assert max_drawdown(value[1:], value[0]) == pytest.approx(-pf.max_drawdown(), rel=1e-9)


def comparable_stop_signals(candles: pd.DataFrame, entries: np.ndarray, exits: np.ndarray,
                            slip: float, sl: float, tp: float) -> tuple[np.ndarray, np.ndarray]:
    """Alternating entry/exit signals, without the trades where the stop rules differ."""
    o, h, lo = (candles[c].to_numpy() for c in ("open", "high", "low"))
    n = len(o)
    keep_in, keep_out = np.zeros(n, bool), np.zeros(n, bool)
    ent = np.flatnonzero(entries & ~exits)
    ext = np.flatnonzero(exits & ~entries)
    start = 0
    while True:
        e_pos = np.searchsorted(ent, start)
        if e_pos == len(ent) or ent[e_pos] + 1 >= n:
            break
        e = ent[e_pos]
        x_pos = np.searchsorted(ext, e + 1)
        x = ext[x_pos] if x_pos < len(ext) else n
        fill = e + 1
        entry = o[fill] * (1 + slip)
        stop, take = entry * (1 - sl), (entry * (1 + tp) if tp == tp else np.inf)
        ok = not (lo[fill] <= stop or h[fill] >= take)
        for j in range(fill + 1, min(x + 1, n - 1) + 1):
            gap = o[j] <= stop or o[j] >= take
            touched = gap or lo[j] <= stop or h[j] >= take
            if touched:
                ok = ok and not (j == x + 1 and not gap)
                break
        if ok:
            keep_in[e] = True
            if x < n:
                keep_out[x] = True
        if x >= n:
            break
        start = x + 1 if ok else e + 1
    return keep_in, keep_out


@pytest.mark.parametrize(
    ("costs", "fees", "slip", "tiers"),
    [
        (CostSettings(taker_bps=10, maker_bps=10, slippage=SlippageSettings(bps=3)),
         0.001, 0.0003, ()),
        # A take-profit is a maker order without slippage here; vectorbt has one fee and one
        # slippage for every order, so this case has equal fees and no slippage.
        (CostSettings(taker_bps=8, maker_bps=8, slippage=SlippageSettings(bps=0)),
         0.0008, 0.0, (TakeProfitTier(pct=0.9, fraction=1.0),)),
    ],
)
def test_stop_loss_and_take_profit_match_vectorbt_stops(
    costs: CostSettings, fees: float, slip: float, tiers: tuple[TakeProfitTier, ...]
) -> None:
    candles = random_walk(N, 5)
    raw_in, raw_out = random_signals(N, 6, p=0.02)
    sl_pct = 0.6
    tp = tiers[0].pct / 100 if tiers else np.nan
    entries, exits = comparable_stop_signals(candles, raw_in, raw_out, slip, sl_pct / 100, tp)
    exit_rules = ExitSettings(stop_loss_pct=sl_pct, take_profit=tiers)
    ours = run_backtest(candles, to_target(entries, exits), costs=costs, exits=exit_rules)
    pf = vbt_run(candles, entries, exits, fees=fees, slippage=slip, sl=sl_pct / 100, tp=tp)
    reasons = ours.fills["reason"].value_counts()
    assert reasons.get("stop_loss", 0) >= 5 and reasons.get("signal", 0) >= 10
    if tiers:
        assert reasons.get("take_profit", 0) >= 5
    gapped = ours.fills[(ours.fills["reason"] == "stop_loss")]
    opens = candles["open"].to_numpy()[gapped["time"].to_numpy() // 60_000]
    assert np.any(np.isclose(gapped["price"].to_numpy(), opens * (1 - slip), rtol=1e-12))
    assert_same(ours, pf)
