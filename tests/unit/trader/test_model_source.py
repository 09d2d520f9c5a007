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
