"""The served model is primed on a synthetic window before the trader's first live candle."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tradeflow import timeframes
from trader.model_source import FixedModel, synthetic_window


class Recording:
    """Counts its calls and checks each window is warm, on the grid and well-formed."""

    warmup = 30
    timeframe = "1h"

    def __init__(self) -> None:
        self.calls: list[tuple[str | None, int]] = []

    def predict_last(self, candles: pd.DataFrame, symbol: str | None = None) -> float:
        t = candles["open_time"].to_numpy()
        assert (np.diff(t) == timeframes.duration_ms(self.timeframe)).all()
        assert (candles["high"] >= candles[["open", "close"]].max(axis=1)).all()
        assert (candles["low"] <= candles[["open", "close"]].min(axis=1)).all()
        self.calls.append((symbol, len(candles)))
        return 0.5


def test_prime_scores_every_symbol_once_on_a_warm_window() -> None:
    model = Recording()
    served = FixedModel(model, "4").load()
    out = served.prime(["BTC/USDT", "ETH/USDT"])
    assert out == {"BTC/USDT": 0.5, "ETH/USDT": 0.5}  # warm: not NaN
    assert model.calls == [("BTC/USDT", 32), ("ETH/USDT", 32)]


@pytest.mark.parametrize("timeframe", ["1m", "1h", "1d", "1w", "1M"])
def test_synthetic_window_is_on_the_grid_of_any_timeframe(timeframe: str) -> None:
    w = synthetic_window(14, timeframe)
    t = w["open_time"]
    assert t.dtype == np.int64 and len(t) == 14 and (np.diff(t) > 0).all()
    assert all(timeframes.floor(int(x), timeframe) == x for x in t)
    assert all(timeframes.next_open(int(a), timeframe) == b for a, b in zip(t[:-1], t[1:],
                                                                          strict=True))
    assert set(w) == {"open_time", "open", "high", "low", "close", "volume"}


def test_the_synthetic_window_runs_a_real_pipeline_to_finite_features() -> None:
    """Priming must reach every feature kernel: a NaN row would stop before the booster."""
    from models.features import FeaturePipeline
    from tradeflow.strategy import load_strategy

    pipeline = FeaturePipeline.from_strategy(load_strategy("config/strategies/momentum_xgb.yaml"))
    window = synthetic_window(1441, "1m")
    block = pipeline.compute_block(window)
    assert block.shape[0] == 1441 and np.isfinite(block[-1]).all()


class Constant:
    """A window model with a fixed p(up): the champion behind an ml source."""

    warmup = 5
    timeframe = "1m"

    def __init__(self, p: float) -> None:
        self.p = p

    def probabilities(self, candles: pd.DataFrame, symbol: str | None = None) -> np.ndarray:
        out = np.full(len(candles), self.p)
        out[: self.warmup] = np.nan
        return out

    def predict_last(self, candles: pd.DataFrame, symbol: str | None = None) -> float:
        return float(self.probabilities(candles, symbol)[-1])


class Promotions:
    """A champion source whose next poll finds version 2 (p = 0.1) promoted."""

    def __init__(self) -> None:
        self.first = FixedModel(Constant(0.9), "1").load()
        self.polled: list[str] = []

    def load(self):  # noqa: ANN201
        return self.first

    async def newer(self, current):  # noqa: ANN001, ANN201
        self.polled.append(current.version)
        return FixedModel(Constant(0.1), "2").load()


def ml_strategy():  # noqa: ANN201
    from tradeflow.strategy import StrategySettings

    return StrategySettings.model_validate({
        "name": "mixed", "symbols": ["BTC/USDT"], "sources": [
            {"kind": "ml", "buy_above": 0.6, "sell_below": 0.4},
            {"kind": "rsi", "period": 3, "buy_below": 99, "sell_above": 99.5}],
        "aggregation": {"mode": "vote", "min_votes": 1}})


def test_a_strategy_source_serves_the_sources_around_the_champion_and_its_successor() -> None:
    import asyncio

    from trader.model_source import StrategySource

    champion = Promotions()
    source = StrategySource(ml_strategy(), champion)
    served = source.load()
    assert served.version == "1" and source.load() is served  # built once
    window = synthetic_window(100, "1m")  # RSI(3) warm-up: 60 rows
    probs, why = served.decide_all({"BTC/USDT": window})
    assert probs == {"BTC/USDT": 1.0}  # the champion (p 0.9) says BUY
    ml, rsi, aggregate = why["BTC/USDT"]
    assert (ml.source, ml.type, ml.reason) == ("ml", "BUY", "p(up) = 0.9")
    assert ml.confidence == pytest.approx(0.8) and aggregate.type == "BUY"
    newer = asyncio.run(source.newer(served))
    assert champion.polled == ["1"] and newer is not None and newer.version == "2"
    assert newer.decide_all({"BTC/USDT": window})[1]["BTC/USDT"][0].type == "SELL"
    # too short a window: no probability and no reasons
    short = {k: v[:3] for k, v in window.items()}
    assert newer.decide_all({"BTC/USDT": short})[1] == {}


def test_a_technical_strategy_is_served_without_opening_the_registry(tmp_path) -> None:  # noqa: ANN001
    from tradeflow.config import load_settings
    from tradeflow.strategy import load_strategy
    from trader.model_source import StrategySource, model_source

    settings = load_settings(env={}, overrides={"data_dir": str(tmp_path)})
    source = model_source(settings, load_strategy("config/strategies/rsi_meanrev.yaml"))
    assert isinstance(source, StrategySource) and source.champion is None
    served = source.load()
    assert served.version == "signals" and served.inputs == ()
    assert list(tmp_path.iterdir()) == []  # no MLflow database or run directory appeared
