"""Streamed trades of one series, put in id order after the last stored one.

Pure logic, no I/O: the recorder adds every frame a stream delivers (duplicated, reordered,
after a drop) and takes, at each write, the new trades sorted and de-duplicated together with
the id ranges missing before and between them, which it fetches over REST before writing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tradeflow.exchange.types import TRADE_FRAME_COLUMNS


class TradeSequencer:
    """Pending streamed trades of one series and the last id written to the store."""

    def __init__(self, last_id: int | None = None) -> None:
        self.last_id = last_id
        self._pending: list[pd.DataFrame] = []
        self.received = 0

    def add(self, frame: pd.DataFrame) -> None:
        if len(frame):
            self._pending.append(frame)
            self.received += len(frame)

    @property
    def pending(self) -> int:
        return sum(len(f) for f in self._pending)

    def take(self) -> tuple[pd.DataFrame, list[tuple[int, int]]]:
        """The pending trades newer than ``last_id`` (ascending, each id once) and the id
        ranges ``(first, last)`` missing before and between them; pending is emptied.

        With nothing stored yet the first streamed trade starts the series.
        """
        if not self._pending:
            return _EMPTY, []
        frame = self._pending[0] if len(self._pending) == 1 else pd.concat(
            self._pending, ignore_index=True)
        self._pending = []
        ids = frame["id"].to_numpy()
        if ids.size > 1 and not bool((ids[1:] > ids[:-1]).all()):
            order = np.argsort(ids, kind="stable")
            keep = np.ones(order.size, dtype=bool)
            keep[1:] = ids[order][1:] != ids[order][:-1]
            frame = frame.iloc[order[keep]]
            ids = frame["id"].to_numpy()
        if self.last_id is not None:
            newer = ids > self.last_id
            if not newer.all():
                frame, ids = frame[newer], ids[newer]
        frame = frame.reset_index(drop=True)
        if not ids.size:
            return frame, []
        expected = ids[0] if self.last_id is None else self.last_id + 1
        holes = [(int(expected), int(ids[0]) - 1)] if ids[0] > expected else []
        steps = np.flatnonzero(np.diff(ids) > 1)
        holes += [(int(ids[i]) + 1, int(ids[i + 1]) - 1) for i in steps]
        return frame, holes


def segments(frame: pd.DataFrame, holes: list[tuple[int, int]]
             ) -> list[tuple[str, pd.DataFrame | tuple[int, int]]]:
    """The writes of a take in id order: ``("hole", (first, last))`` to fetch and
    ``("trades", frame)`` parts of the streamed trades between them."""
    out: list[tuple[str, pd.DataFrame | tuple[int, int]]] = []
    ids = frame["id"].to_numpy()
    start = 0
    for first, last in holes:
        cut = int(np.searchsorted(ids, first))
        if cut > start:
            out.append(("trades", frame.iloc[start:cut]))
        out.append(("hole", (first, last)))
        start = cut
    if start < len(frame):
        out.append(("trades", frame.iloc[start:]))
    return out


_EMPTY = pd.DataFrame({c: pd.Series(dtype="int64" if c in ("id", "ts") else
                                    "float64" if c in ("price", "amount") else "str")
                       for c in TRADE_FRAME_COLUMNS})
