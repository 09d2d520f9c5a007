"""A strategy's sources and aggregation as one object the backtester and the trader both call.

:class:`SignalStrategy` has the model interface the rest of tradeflow already speaks
(``warmup``, ``timeframe``, ``probabilities`` over all rows, ``predict_last`` on a window,
``features`` for the look-ahead check), so the backtester, the trader's replay and the live
trader run the same sources through the same code. The decision of a row becomes the
"probability" the strategy's signal hysteresis reads: BUY = 1, SELL = 0, hold = 0.5 (between
``exit_below`` and ``enter_above``, which the strategy settings enforce), NaN while not warm.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tradeflow.signals.base import Frame, Signal, SignalSource, rows_of, signal_type
from tradeflow.signals.combiners import aggregate
from tradeflow.strategy import AggregationSettings

HOLD_P = 0.5


@dataclass(frozen=True)
class NamedSource:
    """A source as the strategy names and weighs it."""

    label: str
    weight: float
    source: SignalSource


@dataclass(frozen=True)
class Evaluation:
    """Every source's signals and the decision over the rows of one frame."""

    labels: tuple[str, ...]
    direction: np.ndarray   # sources x rows
    confidence: np.ndarray  # sources x rows
    value: np.ndarray       # sources x rows
    decision: np.ndarray    # rows: +1 / -1 / 0, NaN while not warm

    def probability(self) -> np.ndarray:
        d = self.decision
        return np.where(np.isnan(d), np.nan, np.where(d > 0, 1.0, np.where(d < 0, 0.0, HOLD_P)))


class SignalStrategy:
    """Sources plus an aggregation rule, evaluated vectorized over a frame of candles."""

    accepts_columns = True  # sources read NumPy columns: the trader's window is passed as is

    def __init__(self, sources: Sequence[NamedSource], aggregation: AggregationSettings,
                 timeframe: str) -> None:
        if not sources:
            raise ValueError("a signal strategy needs at least one source")
        self.sources = tuple(sources)
        self.aggregation = aggregation
        self._timeframe = timeframe
        self.weights = np.array([s.weight for s in self.sources], dtype=np.float64)
        self.inputs = tuple(dict.fromkeys(c for s in self.sources for c in s.source.inputs))

    @property
    def warmup(self) -> int:
        return max(int(s.source.warmup) for s in self.sources)

    @property
    def timeframe(self) -> str:
        return self._timeframe

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(s.label for s in self.sources)

    def describe(self) -> str:
        """``vote of rsi, trend_15m`` (for output and reports)."""
        return f"{self.aggregation.mode} of {', '.join(self.labels)}"

    def evaluate(self, candles: Frame, symbol: str | None = None) -> Evaluation:
        """Every source on every row, and the aggregate decision."""
        n = rows_of(candles)
        outs = [s.source.compute(candles, symbol) for s in self.sources]
        for s, o in zip(self.sources, outs, strict=True):
            if o.direction.shape != (n,):
                raise ValueError(f"source {s.label} returned {o.direction.shape[0]} signals "
                                 f"for {n} candles")
        direction = np.vstack([o.direction for o in outs])
        confidence = np.vstack([o.confidence for o in outs])
        value = np.vstack([o.value for o in outs])
        decision = aggregate(self.aggregation, direction, confidence, self.weights)
        decision[: min(self.warmup, n)] = np.nan
        return Evaluation(self.labels, direction, confidence, value, decision)

    def probabilities(self, candles: Frame, symbol: str | None = None) -> np.ndarray:
        """The decision of every row as the probability the signal hysteresis reads."""
        return self.evaluate(candles, symbol).probability()

    def predict_last(self, candles: Frame, symbol: str | None = None) -> float:
        """The same evaluation, read at the newest row (what the trader calls)."""
        return float(self.probabilities(candles, symbol)[-1])

    def features(self, candles: Frame, symbol: str | None = None) -> pd.DataFrame:
        """Per row: each source's direction, confidence and value, and the decision."""
        ev = self.evaluate(candles, symbol)
        cols: dict[str, np.ndarray] = {}
        for i, label in enumerate(ev.labels):
            cols[label] = ev.direction[i]
            cols[f"{label}_confidence"] = ev.confidence[i]
            cols[f"{label}_value"] = ev.value[i]
        cols["decision"] = ev.decision
        return pd.DataFrame(cols)

    def decide_last(self, candles: Frame, symbol: str | None = None
                    ) -> tuple[float, list[Signal]]:
        """:meth:`predict_last` and :meth:`explain` from one evaluation (the trader's call)."""
        ev = self.evaluate(candles, symbol)
        return float(ev.probability()[-1]), self._signals(ev, -1)

    def explain(self, candles: Frame, symbol: str | None = None) -> list[Signal]:
        """Each source's signal at the newest row, then the aggregate's: why it decided."""
        return self._signals(self.evaluate(candles, symbol), -1)

    def _signals(self, ev: Evaluation, row: int) -> list[Signal]:
        out = []
        for i, s in enumerate(self.sources):
            v = float(ev.value[i, row])
            reason = f"{s.source.describes} = {v:.4g}" if not math.isnan(v) else "no data"
            out.append(Signal(signal_type(float(ev.direction[i, row])), s.label,
                              float(ev.confidence[i, row]), reason, {"weight": s.weight}))
        d = float(ev.decision[row])
        out.append(Signal(signal_type(d), "aggregate", math.nan, self.describe()))
        return out
