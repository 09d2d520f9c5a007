"""The ML signal source and the composition of a strategy's sources (``models`` layer).

:class:`MLSource` turns a candle model's probability (the registry champion, a registered
version) into a signal: BUY at ``p >= buy_above``, SELL at ``p < sell_below``, confidence
``|2p - 1|``; it abstains where the model has no probability (not warm). The rest of the
sources are :mod:`tradeflow.signals`' built-ins or user classes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tradeflow.signals.base import BUY, NEUTRAL, SELL, Frame, SignalSource, SourceSignals
from tradeflow.signals.builder import build_strategy
from tradeflow.signals.ensemble import SignalStrategy
from tradeflow.strategy import StrategySettings


class MLSource(SignalSource):
    """The strategy's model as a signal source."""

    describes = "p(up)"

    def __init__(self, model: Any, buy_above: float = 0.6, sell_below: float = 0.4) -> None:
        if not 0 <= sell_below < buy_above <= 1:
            raise ValueError(f"need 0 <= sell_below < buy_above <= 1; got {sell_below!r} and "
                             f"{buy_above!r}")
        self.model, self.buy_above, self.sell_below = model, float(buy_above), float(sell_below)
        pipeline = getattr(model, "pipeline", None)
        self.inputs = tuple(getattr(pipeline, "inputs", ()) or ())

    @property
    def warmup(self) -> int:
        return int(self.model.warmup)

    def compute(self, candles: Frame, symbol: str | None = None) -> SourceSignals:
        import pandas as pd

        frame = candles if isinstance(candles, pd.DataFrame) else pd.DataFrame(candles)
        p = np.asarray(self.model.probabilities(frame, symbol), dtype=np.float64)
        direction = np.where(p >= self.buy_above, BUY, np.where(p < self.sell_below, SELL,
                                                                  NEUTRAL))
        direction = np.where(np.isnan(p), np.nan, direction)
        return SourceSignals.of(direction, np.abs(2.0 * p - 1.0), p)


def needs_model(strategy: StrategySettings) -> bool:
    """Whether the strategy's sources include the ML source (so the registry is needed)."""
    return any(s.kind == "ml" for s in strategy.sources)


def signal_strategy(strategy: StrategySettings, load_model: Callable[[], Any] | None = None,
                    source: str | None = None) -> SignalStrategy:
    """The strategy's :class:`SignalStrategy`; ``load_model`` gives the ML source's model and
    is called only when the strategy has one (once)."""
    cache: list[Any] = []

    def ml(**params: Any) -> SignalSource:
        if load_model is None:
            raise ValueError("the ml source needs a model, and none is available here")
        if not cache:
            cache.append(load_model())
        return MLSource(cache[0], **params)

    return build_strategy(strategy, {"ml": ml}, source)
