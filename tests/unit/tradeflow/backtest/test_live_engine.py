"""The trader's engine replays the backtester's loop exactly (paper fills, same numbers)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from tradeflow.backtest import backtest_strategy_portfolio
from tradeflow.backtest.live_engine import Candle, PortfolioEngine
from tradeflow.strategy import StrategySettings

MIN = 60_000
T0 = 1_767_225_600_000


def market(n: int, seed: int, gaps: tuple[int, ...] = ()) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.004, n)))
    open_ = np.r_[close[0], close[:-1]] * np.exp(rng.normal(0, 0.001, n))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.003, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.003, n)))
    frame = pd.DataFrame({"open_time": T0 + np.arange(n) * MIN, "open": open_, "high": high,
                          "low": low, "close": close, "volume": 1.0})
    return frame.drop(index=list(gaps)).reset_index(drop=True)


def strategy(**overrides: object) -> StrategySettings:
    base: dict[str, object] = {
        "name": "parity", "symbols": ["BTC/USDT", "ETH/USDT", "SOL/USDT"],
        "features": [{"name": "returns"}],
        "signal": {"enter_above": 0.6, "exit_below": 0.45},
        "sizing": {"kind": "volatility_target", "fraction": 0.5, "target_volatility": 0.05,
                   "volatility_window": 30},
        "exits": {"stop_loss_pct": 1.0, "take_profit": [{"pct": 0.8, "fraction": 0.5},
                                                        {"pct": 1.6, "fraction": 0.5}],
                  "trailing_stop_pct": 0.9, "max_holding_candles": 40},
        "costs": {"taker_bps": 10, "maker_bps": 2,
                  "slippage": {"kind": "volatility", "bps": 1, "volatility_multiplier": 0.2,
                               "volatility_window": 20}},
        "risk": {"max_position_fraction": 0.4, "max_total_exposure": 0.9,
                 "max_orders_per_minute": 1000, "daily_loss_limit_pct": 99,
                 "reduce_drawdown_pct": 98, "max_drawdown_pct": 99},
        "starting_balance": 10_000,
    }
    base.update(overrides)
    return StrategySettings.model_validate(base)


def replay(engine: PortfolioEngine, candles: dict[str, pd.DataFrame],
           proba: dict[str, np.ndarray], warmup: int) -> list[tuple]:
    """Drive the engine like the live runner: one timestamp at a time, open then close."""
    rows: dict[int, dict[str, tuple[Candle, float]]] = {}
    for s, frame in candles.items():
        engine.warm(s, frame["close"].to_numpy()[:warmup])
        for i, row in enumerate(frame.itertuples(index=False)):
            if i < warmup:
                continue
            rows.setdefault(int(row.open_time), {})[s] = (
                Candle(int(row.open_time), row.open, row.high, row.low, row.close),
                float(proba[s][i]))
    fills = []
    for t in sorted(rows):
        now = rows[t]
        fills += engine.on_open(t, {s: c.open for s, (c, _) in now.items()})
        closed, _ = engine.on_close(t, {s: c for s, (c, _) in now.items()},
                                    {s: p for s, (_, p) in now.items()})
        fills += closed
    return [(f.time, f.symbol, f.side, f.qty, f.price, f.fee) for f in fills]


@pytest.mark.parametrize("with_gaps", [False, True])
def test_engine_replay_equals_the_backtester_fill_for_fill(with_gaps: bool) -> None:
    settings = strategy()
    n = 3000
    candles = {s: market(n, i, gaps=(700, 701, 1500) if with_gaps and i == 1 else ())
               for i, s in enumerate(settings.symbols)}
    rng = np.random.default_rng(7)
    proba = {s: np.clip(0.5 + 0.25 * np.sin(np.arange(len(f)) / (9 + i)) +
                        rng.normal(0, 0.08, len(f)), 0, 1)
             for i, (s, f) in enumerate(candles.items())}
    result = backtest_strategy_portfolio(candles, proba, settings)
    expected = [(int(r.time), r.symbol, r.side, r.qty, r.price, r.fee)
                for r in result.fills.itertuples(index=False)]
    ours = replay(PortfolioEngine(settings), candles, proba, 0)
    reasons = set(result.fills["reason"])
    assert {"signal", "trailing_stop", "take_profit"} <= reasons, reasons  # exits are used
    assert len(ours) == len(expected) > 50
    for a, b in zip(ours, expected, strict=True):
        assert a[:3] == b[:3]
        assert a[3:] == pytest.approx(b[3:], rel=1e-9, abs=1e-12)


def test_state_round_trips_through_json_and_continues_identically() -> None:
    import json

    settings = strategy()
    candles = {s: market(600, i) for i, s in enumerate(settings.symbols)}
    proba = {s: np.clip(0.5 + 0.3 * np.sin(np.arange(600) / 7), 0, 1) for s in candles}
    a = PortfolioEngine(settings)
    straight = replay(a, candles, proba, 50)
    b = PortfolioEngine(settings)
    half = {s: f.iloc[:300] for s, f in candles.items()}
    first = replay(b, half, proba, 50)
    restored = PortfolioEngine(settings, state=json.loads(json.dumps(b.to_dict())))
    for s, f in candles.items():
        restored.warm(s, f["close"].to_numpy()[:300])
    rest = {s: f.iloc[300:].reset_index(drop=True) for s, f in candles.items()}
    second = replay(restored, rest, {s: p[300:] for s, p in proba.items()}, 0)
    assert first + second == straight


def test_long_only_is_enforced() -> None:
    with pytest.raises(ValueError, match="long-only"):
        PortfolioEngine(strategy(signal={"allow_short": True}))


def test_kill_switch_flattens_and_blocks_entries() -> None:
    settings = strategy(risk={"max_position_fraction": 0.5, "max_total_exposure": 1.0,
                              "reduce_drawdown_pct": 1.0, "max_drawdown_pct": 2.0},
                        exits={}, symbols=["BTC/USDT"])
    engine = PortfolioEngine(settings, cash=10_000)
    price = 100.0
    engine.warm("BTC/USDT", [price] * 40)
    t = T0
    engine.on_close(t, {"BTC/USDT": Candle(t, price, price, price, price)}, {"BTC/USDT": 0.9})
    t += MIN
    fills = engine.on_open(t, {"BTC/USDT": price})
    assert [f.side for f in fills] == ["buy"]
    crash = price * 0.9  # a 10% drop on a 50% position: 5% drawdown, past the 2% kill switch
    _, decisions = engine.on_close(t, {"BTC/USDT": Candle(t, price, price, crash, crash)},
                                   {"BTC/USDT": 0.9})
    assert engine.risk.mode.value == "halted"
    assert decisions and decisions[0].action == "flatten_halted" and decisions[0].target == 0
    t += MIN
    fills = engine.on_open(t, {"BTC/USDT": crash})
    assert [f.side for f in fills] == ["sell"] and engine.books["BTC/USDT"].position.qty == 0
    _, decisions = engine.on_close(t, {"BTC/USDT": Candle(t, crash, crash, crash, crash)},
                                   {"BTC/USDT": 0.99})
    assert all(d.side is None for d in decisions)
    assert not math.isnan(engine.equity())
