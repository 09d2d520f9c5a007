"""Replay parity for a sources strategy: the trader over recorded candles, serving
config/strategies/rsi_meanrev.yaml through the same SignalStrategy the backtester evaluates
(no model, no registry), places the backtester's orders, and each decision keeps its sources'
signals in the ledger."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.signal_sources import signal_strategy
from tradeflow.backtest import backtest_strategy_portfolio
from tradeflow.strategy import StrategySettings, load_strategy
from trader.ledger import Ledger
from trader.model_source import StrategySource
from trader.replay import ReplayFeed
from trader.runner import Trader

REPO = Path(__file__).resolve().parents[3]
MIN = 60_000
T0 = 1_767_225_600_000
WARM = 400  # candles of history before the replay starts (RSI and 15m trend warm-ups)


def market(n: int, seed: int) -> pd.DataFrame:
    """A 40-minute swing around half-day up and down drifts, plus noise: the 1m RSI reaches
    its bands in both 15m trend regimes, so the strategy enters, takes profit and trails."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    trend = np.cumsum(0.0001 * np.sign(np.sin(2 * np.pi * t / 1440 + seed)))
    swing = 0.004 * np.sin(2 * np.pi * t / 40 + seed)
    close = 100 * np.exp(trend + swing + np.cumsum(rng.normal(0, 0.0007, n)))
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.0007, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.0007, n)))
    return pd.DataFrame({"open_time": T0 + t.astype(np.int64) * MIN, "open": open_,
                         "high": high, "low": low, "close": close, "volume": 1.0})


def rsi_meanrev() -> StrategySettings:
    """The shipped strategy on two symbols; its stateful risk limits (daily loss, order rate,
    drawdown kill switch) relaxed: they are the trader's alone, the backtester has none."""
    base = load_strategy(REPO / "config" / "strategies" / "rsi_meanrev.yaml")
    return base.model_copy(update={
        "symbols": ("BTC/USDT", "ETH/USDT"),
        "risk": base.risk.model_copy(update={
            "max_orders_per_minute": 1000, "daily_loss_limit_pct": 50.0,
            "reduce_drawdown_pct": 60.0, "max_drawdown_pct": 70.0})})


def test_trader_replay_of_rsi_meanrev_places_the_backtesters_orders(tmp_path: Path) -> None:
    settings = rsi_meanrev()
    candles = {"BTC/USDT": market(2000, 11), "ETH/USDT": market(2000, 12)}
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    source = StrategySource(settings)  # no champion: nothing is read from a registry
    trader = Trader(settings, ledger=ledger, feed=ReplayFeed(candles, T0 + WARM * MIN),
                    models=source)
    summary = asyncio.run(trader.run())
    assert summary.candles == 2000 - WARM
    assert ledger.check_consistency(settings.name) == []
    ours = sorted((f.ts, f.symbol, f.side, round(f.amount, 9), round(f.price, 9))
                  for f in ledger.fills(settings.name))

    # The backtester: every row evaluated at once over the whole history, then backtested
    # from the first replayed candle.
    signals = signal_strategy(settings)
    proba = {s: signals.probabilities(f)[WARM:] for s, f in candles.items()}
    frames = {s: f.iloc[WARM:].reset_index(drop=True) for s, f in candles.items()}
    result = backtest_strategy_portfolio(frames, proba, settings)
    expected = sorted((int(r.time), r.symbol, r.side, round(r.qty, 9), round(r.price, 9))
                      for r in result.fills.itertuples(index=False))
    assert len(ours) >= 15 and {r.reason for r in result.fills.itertuples()} >= {
        "signal", "take_profit", "trailing_stop"}
    assert ours == expected
    assert ledger.trader_state(settings.name).cash == pytest.approx(
        float(result.cash_curve[-1]), rel=1e-9)

    # Why: every signal decision names each source's signal and the aggregate's.
    decisions = [d for d in ledger.decisions(settings.name, limit=None) if d.kind == "signal"]
    assert decisions and all(d.model_version == StrategySource.VERSION for d in decisions)
    for d in decisions:
        assert d.signals is not None
        assert [x["source"] for x in d.signals] == ["rsi", "trend_15m", "aggregate"]
        rsi, trend, aggregate = d.signals
        assert rsi["reason"].startswith("RSI(14) = ") and 0.0 <= rsi["confidence"] <= 1.0
        assert trend["reason"].startswith("close / SMA(8) on 15m - 1 = ")
        assert aggregate["reason"] == "unanimous of rsi, trend_15m"
        # unanimous: a BUY decision had both sources saying BUY
        if d.action == "buy":
            assert rsi["type"] == trend["type"] == aggregate["type"] == "BUY"
    ledger.close()
