"""Walk-forward folds over time-stamped samples, with purging and an embargo.

The sample times (candle open times in ms; several symbols may share a time when samples are
pooled) are cut into ``folds + 1`` contiguous blocks of about equal numbers of distinct times.
Block 0 only trains. Fold ``k`` (``k = 1 .. folds``) tests on block ``k`` and trains on samples
strictly before it, with two rules that keep the label of a training sample from seeing the
test block (López de Prado, *Advances in Financial Machine Learning*, ch. 7):

* purge: a sample at ``t`` whose label horizon reaches the test block
  (``t + horizon * period >= test_start``) is dropped; when candles are missing, a label of
  ``horizon`` rows ends later than that, so callers pass each label's real end time;
* embargo: so are the ``embargo`` candles before that, so features built from overlapping
  windows do not straddle the boundary either.

Together: a training sample satisfies ``t + (horizon + embargo) * period < test_start``, so no
training time lies within ``horizon + embargo`` candles of any test time. Training only ever
looks back (an expanding window), so nothing after a test block is used to predict it. Samples
of all symbols at the same time always land in the same block.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Fold", "fold_blocks", "walk_forward_folds"]


@dataclass(frozen=True)
class Fold:
    """One walk-forward split: positions into the sample arrays and the test block's times.

    ``test_start <= t < test_end`` for every test sample; ``train_end`` is the last training
    time (every training sample is at or before it).
    """

    index: int
    train: np.ndarray
    test: np.ndarray
    test_start: int
    test_end: int
    train_end: int


def fold_blocks(times: np.ndarray, folds: int) -> np.ndarray:
    """Block edges: ``folds + 2`` increasing times; block ``b`` is ``[edges[b], edges[b+1])``."""
    if folds < 1:
        raise ValueError(f"folds must be >= 1; got {folds}")
    unique = np.unique(np.asarray(times, dtype=np.int64))
    if unique.size < folds + 1:
        raise ValueError(f"{unique.size} distinct sample times cannot make {folds} folds")
    cuts = np.round(np.linspace(0, unique.size, folds + 2)).astype(np.int64)
    edges = np.empty(folds + 2, dtype=np.int64)
    edges[:-1] = unique[cuts[:-1]]
    edges[-1] = unique[-1] + 1  # the last block includes the last time
    return edges


def walk_forward_folds(
    times: np.ndarray,
    *,
    folds: int,
    horizon: int,
    embargo: int,
    period_ms: int,
    trainable: np.ndarray | None = None,
    label_end: np.ndarray | None = None,
) -> list[Fold]:
    """Folds over ``times`` (any order): contiguous test blocks, purged and embargoed training.

    ``trainable`` (bool per sample, e.g. "has a label") limits which samples may train;
    every sample of a block is tested. ``label_end`` is the open time of the last candle each
    label reads (default ``t + horizon * period``); the purge uses the later of the two.
    Raises ValueError when a fold has no training sample (too little data for this many
    folds, horizon and embargo).
    """
    if horizon < 0 or embargo < 0 or period_ms <= 0:
        raise ValueError("horizon and embargo must be >= 0 and period_ms > 0")
    t = np.asarray(times, dtype=np.int64)
    ok = np.ones(t.shape[0], dtype=bool) if trainable is None else np.asarray(trainable, bool)
    if ok.shape != t.shape:
        raise ValueError("trainable must have one value per sample")
    edges = fold_blocks(t, folds)
    reach = t + horizon * period_ms
    if label_end is not None:
        ends = np.asarray(label_end, dtype=np.int64)
        if ends.shape != t.shape:
            raise ValueError("label_end must have one value per sample")
        reach = np.maximum(reach, ends)
    reach = reach + embargo * period_ms
    out: list[Fold] = []
    for k in range(1, folds + 1):
        start, end = int(edges[k]), int(edges[k + 1])
        test = np.flatnonzero((t >= start) & (t < end))
        train = np.flatnonzero(ok & (reach < start))
        if train.size == 0:
            raise ValueError(
                f"fold {k}: no training sample before {start} once {horizon} + {embargo} "
                "candles are purged; use fewer folds or a longer window"
            )
        # Stable time order within each side: the caller's order for equal times.
        train = train[np.argsort(t[train], kind="stable")]
        test = test[np.argsort(t[test], kind="stable")]
        out.append(Fold(k, train, test, start, end, int(t[train].max())))
    return out
