"""Order-book source: the top-of-book quantity imbalance at the candle's close.

It reads the per-candle book columns the order-flow pipeline attaches (recorded snapshots in
a backtest, the streamed book in the trader) and abstains where there is no book.
"""

from __future__ import annotations

import numpy as np

from tradeflow.signals.base import BUY, NEUTRAL, SELL, Frame, SignalSource, SourceSignals, column


class BookImbalance(SignalSource):
    """imbalance = (bid qty - ask qty) / (bid qty + ask qty) over the top ``levels`` levels;
    BUY when >= ``buy_above``, SELL when <= ``sell_below``; confidence = |imbalance|."""

    def __init__(self, levels: int = 1, buy_above: float = 0.3,
                 sell_below: float = -0.3) -> None:
        if not (isinstance(levels, int) and 1 <= levels <= 5):
            raise ValueError(f"levels must be an integer 1-5; got {levels!r}")
        if not -1 < sell_below < buy_above < 1:
            raise ValueError(f"need -1 < sell_below < buy_above < 1; got {sell_below!r} and "
                             f"{buy_above!r}")
        self.levels, self.buy_above, self.sell_below = levels, float(buy_above), float(sell_below)
        self.inputs = ("book_bid_px", "book_ask_px",
                       *(f"book_bid_qty_{i}" for i in range(1, levels + 1)),
                       *(f"book_ask_qty_{i}" for i in range(1, levels + 1)))
        self.describes = f"book imbalance (top {levels})"

    @property
    def warmup(self) -> int:
        return 0

    def compute(self, candles: Frame, symbol: str | None = None) -> SourceSignals:
        k = self.levels
        bid = np.nansum(np.vstack([column(candles, f"book_bid_qty_{i}")
                                   for i in range(1, k + 1)]), axis=0)
        ask = np.nansum(np.vstack([column(candles, f"book_ask_qty_{i}")
                                   for i in range(1, k + 1)]), axis=0)
        missing = np.isnan(column(candles, "book_bid_px")) | np.isnan(column(candles,
                                                                             "book_ask_px"))
        total = bid + ask
        with np.errstate(invalid="ignore", divide="ignore"):
            imb = np.where(total > 0, (bid - ask) / total, 0.0)
        imb = np.where(missing, np.nan, imb)
        direction = np.where(imb >= self.buy_above, BUY,
                             np.where(imb <= self.sell_below, SELL, NEUTRAL))
        direction = np.where(np.isnan(imb), np.nan, direction)
        return SourceSignals.of(direction, np.abs(imb), imb)
