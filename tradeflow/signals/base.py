"""Signal sources: a frame of candles in, one signal per row out (Freqtrade's shape).

A source's :meth:`SignalSource.compute` is vectorized over the rows it is given: the backtester
calls it once on a symbol's whole history, the trader on a window ending at the newest closed
candle, and both read the row they decide on. So a source must only use rows up to each row
(the look-ahead check in ``tradeflow check-lookahead`` tests exactly that).

Per row a source says BUY (+1), SELL (-1), nothing (0) or abstains (NaN: not warm, or no data,
e.g. no recorded order book), with a confidence in [0, 1] and the value it looked at (the RSI,
the imbalance, ...), which becomes the reason in words.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd

Frame = pd.DataFrame | Mapping[str, np.ndarray]

BUY, SELL, NEUTRAL = 1.0, -1.0, 0.0


def column(candles: Frame, name: str) -> np.ndarray:
    """One column of a candle frame (or mapping of arrays) as contiguous float64."""
    try:
        values = candles[name]
    except KeyError:
        raise ValueError(f"candles lack the column {name!r}") from None
    return np.ascontiguousarray(np.asarray(values, dtype=np.float64))


def rows_of(candles: Frame) -> int:
    return len(candles["open_time"])


@dataclass(frozen=True, slots=True)
class SourceSignals:
    """A source's output over ``n`` rows: direction (+1/-1/0, NaN = abstain), confidence in
    [0, 1] and the value it is based on (for reasons)."""

    direction: np.ndarray
    confidence: np.ndarray
    value: np.ndarray

    @classmethod
    def of(cls, direction: np.ndarray, confidence: np.ndarray | float = 1.0,
           value: np.ndarray | None = None) -> SourceSignals:
        d = np.asarray(direction, dtype=np.float64)
        c = np.clip(np.broadcast_to(np.asarray(confidence, dtype=np.float64), d.shape), 0.0, 1.0)
        c = np.where(np.isnan(d), np.nan, c)
        v = d.copy() if value is None else np.asarray(value, dtype=np.float64)
        if v.shape != d.shape:
            raise ValueError(f"value has shape {v.shape}, direction {d.shape}")
        return cls(d, c, v)


class SignalSource(ABC):
    """Base of every source, built-in or user-written (see docs/strategies.md).

    Subclasses take their YAML parameters as keyword arguments in ``__init__`` and implement
    :meth:`compute` and :attr:`warmup`. ``inputs`` names per-candle order-flow columns the
    source reads besides open/high/low/close/volume (the backtester attaches the recorded
    ones, the trader streams them; they are NaN where nothing was recorded).
    """

    #: what the value is, in reasons: "RSI(14)"
    describes: str = "value"
    inputs: tuple[str, ...] = ()

    @property
    @abstractmethod
    def warmup(self) -> int:
        """Rows before the first row this source may give a signal on."""

    @abstractmethod
    def compute(self, candles: Frame, symbol: str | None = None) -> SourceSignals:
        """One signal per row of ``candles``, each using that row and earlier ones only."""


class SignalType(StrEnum):
    BUY = "BUY"
    SELL = "SELL"
    HOLD = "HOLD"
    ABSTAIN = "ABSTAIN"


def signal_type(direction: float) -> SignalType:
    if math.isnan(direction):
        return SignalType.ABSTAIN
    return SignalType.BUY if direction > 0 else SignalType.SELL if direction < 0 \
        else SignalType.HOLD


@dataclass(frozen=True, slots=True)
class Signal:
    """One source's signal at one candle: what, from whom, how sure and why."""

    type: SignalType
    source: str
    confidence: float
    reason: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (a NaN confidence, the aggregate's, becomes None): what the ledger keeps."""
        conf = None if math.isnan(self.confidence) else float(self.confidence)
        return {"source": self.source, "type": self.type.value, "confidence": conf,
                "reason": self.reason, "metadata": dict(self.metadata)}

    def line(self) -> str:
        conf = "" if math.isnan(self.confidence) else f" ({self.confidence:.2f})"
        return f"{self.source}: {self.type.value}{conf} - {self.reason}"
