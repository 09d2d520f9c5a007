"""Recorded candles played through the trader as if they were streaming.

A replay uses the live trader unchanged: the same engine, ledger and paper broker; only the
feed differs. Candles before ``start`` are the warm-up history; from ``start`` on they are
delivered one timestamp at a time. With a fixed model, its orders equal the backtester's on
the same candles, which the tests check.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import pandas as pd

from tradeflow.backtest.live_engine import Candle


class ReplayFeed:
    """A feed over recorded candles (one frame per symbol, ascending open times)."""

    def __init__(self, candles: Mapping[str, pd.DataFrame], start: int) -> None:
        self.frames = {s: f.sort_values("open_time").reset_index(drop=True)
                       for s, f in candles.items()}
        self.start = start

    async def history(self, symbol: str, start: int, end: int) -> pd.DataFrame:
        frame = self.frames[symbol]
        mask = (frame["open_time"] >= start) & (frame["open_time"] <= end)
        return frame.loc[mask].reset_index(drop=True)

    async def last_closed(self) -> int:
        """The replay's "now": the newest candle before ``start``."""
        before = [int(f["open_time"][f["open_time"] < self.start].max())
                  for f in self.frames.values() if (f["open_time"] < self.start).any()]
        return max(before)

    async def candles(self, since: Mapping[str, int | None]) -> AsyncIterator[
            tuple[int, dict[str, Candle]]]:
        rows: dict[int, dict[str, Candle]] = {}
        for s, frame in self.frames.items():
            after = since.get(s)
            for r in frame.itertuples(index=False):
                t = int(r.open_time)
                if after is not None and t <= after:
                    continue
                rows.setdefault(t, {})[s] = Candle(t, float(r.open), float(r.high),
                                                   float(r.low), float(r.close),
                                                   float(r.volume))
        for t in sorted(rows):
            yield t, rows[t]

    def status(self) -> list[object]:
        return []

    async def close(self) -> None:
        return None
