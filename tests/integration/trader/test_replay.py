"""Replay parity: the trader over recorded candles places the backtester's orders."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tradeflow.backtest import backtest_strategy_portfolio
from tradeflow.strategy import StrategySettings
from trader.ledger import Ledger
from trader.model_source import FixedModel
from trader.replay import ReplayFeed
from trader.runner import Trader

MIN = 60_000
T0 = 1_767_225_600_000


class WiggleModel:
    """A deterministic window model: p(up) from the last 5-candle return, squashed."""

    warmup = 20
    timeframe = "1m"

    def predict_last(self, candles: pd.DataFrame, symbol: str | None = None) -> float:
        close = candles["close"].to_numpy()
        r = np.log(close[-1] / close[-6])
        return float(1.0 / (1.0 + np.exp(-r * 400.0)))


def market(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.003, n)))
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.002, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.002, n)))
    return pd.DataFrame({"open_time": T0 + np.arange(n) * MIN, "open": open_, "high": high,
                         "low": low, "close": close, "volume": 1.0})


def strategy() -> StrategySettings:
    return StrategySettings.model_validate({
        "name": "replay", "symbols": ["BTC/USDT", "ETH/USDT"], "features": [{"name": "returns"}],
        "signal": {"enter_above": 0.6, "exit_below": 0.45},
        "sizing": {"kind": "fixed_fraction", "fraction": 0.45},
        "exits": {"stop_loss_pct": 0.8, "take_profit": [{"pct": 0.6, "fraction": 0.5}],
                  "max_holding_candles": 30},
        "costs": {"taker_bps": 10, "maker_bps": 2, "slippage": {"kind": "fixed", "bps": 2}},
        "risk": {"max_position_fraction": 0.5, "max_total_exposure": 0.9,
                 "max_orders_per_minute": 100, "daily_loss_limit_pct": 50,
                 "reduce_drawdown_pct": 60, "max_drawdown_pct": 70},
    })


def run_replay(ledger_path: Path, candles: dict[str, pd.DataFrame], start: int):  # noqa: ANN201
    settings = strategy()
    ledger = Ledger(f"sqlite:///{ledger_path}")
    trader = Trader(settings, ledger=ledger, feed=ReplayFeed(candles, start),
                    models=FixedModel(WiggleModel(), "7"))
    summary = asyncio.run(trader.run())
    return settings, ledger, summary


def window_probabilities(candles: pd.DataFrame, start_index: int) -> np.ndarray:
    model, out = WiggleModel(), np.full(len(candles), np.nan)
    for i in range(start_index, len(candles)):
        window = candles.iloc[max(0, i - model.warmup): i + 1]
        out[i] = model.predict_last(window) if len(window) > model.warmup else np.nan
    return out


def test_trader_replay_places_the_backtesters_orders(tmp_path: Path) -> None:
    candles = {"BTC/USDT": market(1500, 1), "ETH/USDT": market(1500, 2)}
    warm = 100
    start = T0 + warm * MIN
    settings, ledger, summary = run_replay(tmp_path / "ledger.db", candles, start)
    assert summary.candles == 1500 - warm
    assert ledger.check_consistency(settings.name) == []
    fills = ledger.fills(settings.name)
    ours = sorted((f.ts, f.symbol, f.side, round(f.amount, 9), round(f.price, 9)) for f in fills)

    replayed = {s: f.iloc[warm:].reset_index(drop=True) for s, f in candles.items()}
    proba = {s: window_probabilities(candles[s], warm)[warm:] for s in candles}
    result = backtest_strategy_portfolio(replayed, proba, settings)
    expected = sorted((int(r.time), r.symbol, r.side, round(r.qty, 9), round(r.price, 9))
                      for r in result.fills.itertuples(index=False))
    assert len(ours) > 30
    assert ours == expected
    decisions = ledger.decisions(settings.name, limit=10)
    assert all(d.model_version == "7" for d in decisions)
    state = ledger.trader_state(settings.name)
    assert state.cash == pytest.approx(float(result.cash_curve[-1]), rel=1e-9)


def test_restart_from_a_snapshot_continues_identically(tmp_path: Path) -> None:
    candles = {"BTC/USDT": market(900, 3), "ETH/USDT": market(900, 4)}
    start = T0 + 100 * MIN
    _, whole, _ = run_replay(tmp_path / "whole.db", candles, start)
    halfway = {s: f.iloc[:500] for s, f in candles.items()}
    settings, ledger, _ = run_replay(tmp_path / "parts.db", halfway, start)
    ledger.close()
    # Second run on the same ledger: resumes after the last processed candle.
    _, resumed, summary = run_replay(tmp_path / "parts.db", candles, start)
    assert summary.candles == 400
    key = lambda f: (f.ts, f.symbol, f.side, round(f.amount, 9), round(f.price, 9))  # noqa: E731
    assert sorted(map(key, resumed.fills(settings.name))) == sorted(
        map(key, whole.fills(settings.name)))
    assert resumed.check_consistency(settings.name) == []
