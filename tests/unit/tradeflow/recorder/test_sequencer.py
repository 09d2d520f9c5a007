"""The trade sequencer: streamed frames (duplicated, reordered, after a drop) become the new
trades in id order and the id ranges to fetch before and between them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tradeflow.recorder.sequencer import TradeSequencer, segments

T0 = 1_767_225_600_000


def frame(ids: list[int]) -> pd.DataFrame:
    a = np.asarray(ids, dtype=np.int64)
    return pd.DataFrame({"id": a, "ts": T0 + a, "price": 1.0 + a, "amount": np.ones(a.size),
                         "side": pd.array(["buy"] * a.size, dtype="str")})


def test_the_first_streamed_trade_starts_an_empty_series() -> None:
    seq = TradeSequencer()
    seq.add(frame([5, 6, 7]))
    got, holes = seq.take()
    assert got["id"].tolist() == [5, 6, 7] and holes == []
    assert seq.take()[0].empty and seq.pending == 0


def test_repeats_reorders_and_stored_ids_are_dropped() -> None:
    seq = TradeSequencer(last_id=10)
    for ids in ([9, 10, 11], [13, 12], [12, 14], [11]):  # old, reordered, duplicated
        seq.add(frame(ids))
    assert seq.received == 8 and seq.pending == 8
    got, holes = seq.take()
    assert got["id"].tolist() == [11, 12, 13, 14] and holes == []
    assert got["price"].tolist() == [12.0, 13.0, 14.0, 15.0]


def test_holes_before_and_between_are_named_and_segmented_in_order() -> None:
    seq = TradeSequencer(last_id=100)
    seq.add(frame([105, 106, 110, 111, 115]))
    got, holes = seq.take()
    assert holes == [(101, 104), (107, 109), (112, 114)]
    parts = segments(got, holes)
    assert [kind for kind, _ in parts] == ["hole", "trades", "hole", "trades", "hole", "trades"]
    assert [p["id"].tolist() for kind, p in parts if kind == "trades"] == [[105, 106],
                                                                         [110, 111], [115]]
    assert segments(got, []) [0][0] == "trades"
