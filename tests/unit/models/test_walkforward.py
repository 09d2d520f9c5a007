"""Walk-forward folds: purge + embargo gap, disjoint contiguous test blocks, time order."""

from __future__ import annotations

import numpy as np
import pytest

from models.walkforward import fold_blocks, walk_forward_folds

MIN = 60_000
T0 = 1_700_000_000_000 // MIN * MIN


def pooled_times(n: int, symbols: int = 3, seed: int = 0) -> np.ndarray:
    """Times of several symbols pooled and shuffled, with a few candles missing per symbol."""
    rng = np.random.default_rng(seed)
    parts = []
    for _ in range(symbols):
        t = T0 + np.arange(n, dtype=np.int64) * MIN
        parts.append(t[rng.random(n) > 0.02])
    times = np.concatenate(parts)
    return times[rng.permutation(times.size)]


@pytest.mark.parametrize(("folds", "horizon", "embargo"), [(5, 10, 10), (3, 15, 40), (8, 1, 0)])
def test_no_training_time_within_horizon_plus_embargo_of_any_test_time(
    folds: int, horizon: int, embargo: int
) -> None:
    times = pooled_times(6_000)
    out = walk_forward_folds(times, folds=folds, horizon=horizon, embargo=embargo, period_ms=MIN)
    assert len(out) == folds
    gap = (horizon + embargo) * MIN
    for fold in out:
        train, test = times[fold.train], times[fold.test]
        # Every training time precedes every test time by more than the gap.
        assert train.max() + gap < test.min()
        distance = np.abs(test[:, None] - train[None, ::50]).min()
        assert distance > gap
        assert fold.train_end == train.max()
        assert (test >= fold.test_start).all() and (test < fold.test_end).all()
        # The purge is exact: the first sample that was dropped is within the gap.
        dropped = np.unique(times[(times < fold.test_start) & (times + gap >= fold.test_start)])
        assert dropped.size > 0 and not np.isin(dropped, train).any()


def test_test_folds_are_disjoint_contiguous_ordered_and_cover_the_tail() -> None:
    times = pooled_times(5_000, symbols=2, seed=1)
    out = walk_forward_folds(times, folds=4, horizon=10, embargo=10, period_ms=MIN)
    seen = np.concatenate([f.test for f in out])
    assert seen.size == np.unique(seen).size  # no sample tested twice
    for a, b in zip(out, out[1:], strict=False):
        assert a.test_end == b.test_start  # consecutive blocks
        assert times[a.test].max() < times[b.test].min()
        assert a.train.size < b.train.size  # expanding window
    # Every sample from the first test block on is tested exactly once.
    assert seen.size == int((times >= out[0].test_start).sum())
    # All symbols' samples at one time fall in one block.
    for fold in out:
        block = set(times[fold.test].tolist())
        outside = np.setdiff1d(np.arange(times.size), fold.test)
        assert not block.intersection(times[outside].tolist())
    # Positions come back in time order.
    for fold in out:
        assert (np.diff(times[fold.test]) >= 0).all() and (np.diff(times[fold.train]) >= 0).all()


def test_blocks_hold_about_equal_numbers_of_distinct_times() -> None:
    times = T0 + np.arange(10_000, dtype=np.int64) * MIN
    edges = fold_blocks(times, 4)
    sizes = np.diff(edges) // MIN
    assert edges[0] == times[0] and edges[-1] == times[-1] + 1
    assert sizes.max() - sizes.min() <= 1


def test_untrainable_samples_are_tested_but_never_trained_on() -> None:
    times = T0 + np.arange(3_000, dtype=np.int64) * MIN
    trainable = np.ones(times.size, dtype=bool)
    trainable[::7] = False  # e.g. rows whose label is unknown
    out = walk_forward_folds(times, folds=3, horizon=5, embargo=5, period_ms=MIN,
                             trainable=trainable)
    for fold in out:
        assert trainable[fold.train].all()
        assert not trainable[fold.test].all()


def test_too_little_history_is_a_clear_error() -> None:
    times = T0 + np.arange(60, dtype=np.int64) * MIN
    with pytest.raises(ValueError, match="fold 1: no training sample"):
        walk_forward_folds(times, folds=5, horizon=10, embargo=10, period_ms=MIN)
    with pytest.raises(ValueError, match="cannot make 5 folds"):
        walk_forward_folds(times[:3], folds=5, horizon=1, embargo=0, period_ms=MIN)
    with pytest.raises(ValueError, match="trainable"):
        walk_forward_folds(times, folds=2, horizon=1, embargo=0, period_ms=MIN,
                           trainable=np.ones(3, dtype=bool))


def test_labels_reaching_across_a_gap_are_purged_by_their_real_end() -> None:
    # 1m samples with a 3-hour hole right where the test block starts (one fold: the halves).
    times = T0 + np.arange(4_000, dtype=np.int64) * MIN
    times[2_000:] += 180 * MIN
    horizon = 10
    # A label reads the close 10 ROWS later: across the hole, that is 3 hours later.
    label_end = times[np.minimum(np.arange(times.size) + horizon, times.size - 1)]
    kwargs = {"folds": 1, "horizon": horizon, "embargo": 0, "period_ms": MIN}
    (blind,) = walk_forward_folds(times, **kwargs)
    (aware,) = walk_forward_folds(times, **kwargs, label_end=label_end)
    assert blind.test_start == aware.test_start == times[2_000]
    # Purging by t + horizon candles keeps the 10 labels that read test candles...
    leaked = label_end[blind.train] >= blind.test_start
    assert leaked.sum() == horizon
    # ...the real label ends purge them, and nothing else.
    assert (label_end[aware.train] < aware.test_start).all()
    assert aware.train.size == blind.train.size - horizon
