"""The trader benchmark's instrumented parts: a model, signal strategy, ledger and trader
that add the time of each part of a timestamp's work (features, predict, commit) to
:class:`Parts`. Loaded by bench/trader.py (the live latency run only)."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np
import pandas as pd

from models.estimators import Estimator
from models.pyfunc import CandleModel
from tradeflow.backtest.live_engine import Candle, Decision
from trader.ledger import Ledger
from trader.runner import Trader


@dataclass
class Parts:
    """Seconds spent per processed timestamp, by part of the trader's work."""

    features: float = 0.0
    predict: float = 0.0
    commit: float = 0.0
    rows: list[tuple[int, float, float, float, float, float]] = field(default_factory=list)


class TimedEstimator:
    """An estimator that adds its ``predict_proba`` time to ``parts.predict``."""

    def __init__(self, inner: Estimator, parts: Parts) -> None:
        self.inner, self.parts = inner, parts
        self.kind, self.columns = inner.kind, inner.columns

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> Self:
        self.inner.fit(X, y)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        start = time.perf_counter()
        out = self.inner.predict_proba(X)
        self.parts.predict += time.perf_counter() - start
        return out

    def predict_rows(self, data: np.ndarray) -> np.ndarray:
        """The serving path, timed the same way."""
        start = time.perf_counter()
        out = self.inner.predict_rows(data)  # type: ignore[attr-defined]
        self.parts.predict += time.perf_counter() - start
        return out

    def feature_importance(self) -> dict[str, float]:
        return self.inner.feature_importance()


class TimedPipeline:
    """The model's feature pipeline, adding its compute time to ``parts.features``."""

    def __init__(self, inner: Any, parts: Parts) -> None:
        self.inner, self.parts = inner, parts

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def compute(self, candles: pd.DataFrame) -> pd.DataFrame:
        start = time.perf_counter()
        out = self.inner.compute(candles)
        self.parts.features += time.perf_counter() - start
        return out

    def compute_block(self, candles: pd.DataFrame) -> np.ndarray:
        start = time.perf_counter()
        out = self.inner.compute_block(candles)
        self.parts.features += time.perf_counter() - start
        return out


class TimedModel(CandleModel):
    """The trained model, its features and predictions timed into ``parts``."""

    def __init__(self, model: CandleModel, parts: Parts) -> None:
        super().__init__(model.pipeline,
                         {k: TimedEstimator(e, parts) for k, e in model.estimators.items()},
                         model.metadata, momentum_horizon=model.momentum_horizon)
        self.pipeline = TimedPipeline(model.pipeline, parts)  # type: ignore[assignment]
        self.parts = parts


class TimedSignals:
    """A sources strategy whose evaluation (every source and the aggregate, one call per symbol)
    is timed into ``parts.predict``; it has no separate feature step."""

    accepts_columns = True

    def __init__(self, inner: Any, parts: Parts) -> None:
        self.inner, self.parts = inner, parts
        self.warmup, self.timeframe, self.inputs = inner.warmup, inner.timeframe, inner.inputs

    def predict_last(self, candles: Any, symbol: str | None = None) -> float:
        return self.decide_last(candles, symbol)[0]

    def decide_last(self, candles: Any, symbol: str | None = None) -> tuple[float, list[Any]]:
        start = time.perf_counter()
        out = self.inner.decide_last(candles, symbol)
        self.parts.predict += time.perf_counter() - start
        return out


class TimedLedger(Ledger):
    """The ledger, adding the commit of each grouped transaction to ``parts.commit``."""

    parts: Parts

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        body_done = math.nan
        with super().transaction():
            yield
            body_done = time.perf_counter()
        self.parts.commit += time.perf_counter() - body_done


class TimedTrader(Trader):
    """The trader, noting when each timestamp's processing starts and what it cost."""

    parts: Parts
    started: dict[int, float]

    async def process(self, t: int, batch: Mapping[str, Candle]) -> list[Decision]:
        self.parts.features = self.parts.predict = self.parts.commit = 0.0
        self.started[t] = time.perf_counter()
        return await super().process(t, batch)
