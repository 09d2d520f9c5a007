"""The trader's window of recent candles per symbol: the served model's input."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

WINDOW_COLUMNS = ("open_time", "open", "high", "low", "close", "volume")


class CandleWindow:
    """The most recent candles of one symbol as numpy columns (the model's input window).

    Column-major, so each column of the window is a contiguous slice (no copies when the
    model turns the frame back into arrays). ``extra`` names further per-candle columns
    (order-flow inputs) appended after the candle's; a frame without them extends with NaN.
    """

    def __init__(self, size: int, extra: tuple[str, ...] = ()) -> None:
        self.size = max(size, 2)
        self.extra = tuple(extra)
        self.names = WINDOW_COLUMNS + self.extra
        self.data = np.zeros((len(self.names), 2 * self.size), dtype=np.float64)
        self.n = 0

    def extend(self, frame: pd.DataFrame) -> None:
        full = frame.reindex(columns=list(self.names))
        for row in full.itertuples(index=False):
            self.append(row)

    def append(self, row: Any) -> None:
        if self.n == self.data.shape[1]:
            self.data[:, : self.size] = self.data[:, self.n - self.size: self.n]
            self.n = self.size
        self.data[:, self.n] = row
        self.n += 1

    def columns(self) -> dict[str, np.ndarray]:
        """The window as column arrays (what the model reads; no frame is built per candle)."""
        lo = max(0, self.n - self.size)
        out = {name: self.data[i, lo: self.n] for i, name in enumerate(self.names)}
        out["open_time"] = out["open_time"].astype(np.int64)
        return out

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.columns(), copy=False)
