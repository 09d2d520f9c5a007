"""Aggregation: the sources' signals of each row into one decision (+1 BUY, -1 SELL, 0 hold).

Inputs are (sources x rows) arrays: ``direction`` (+1/-1/0, NaN = abstain), ``confidence``
and one weight per source. A row where every source abstains holds. The rules are those of
:class:`tradeflow.strategy.AggregationSettings`; the truth tables are tested.
"""

from __future__ import annotations

import numpy as np

from tradeflow.strategy import AggregationSettings


def vote(direction: np.ndarray, min_votes: int | None = None) -> np.ndarray:
    """Majority of the non-abstaining sources, or at least ``min_votes`` of them (k of n);
    a tie, or both sides reaching k, holds."""
    buys = (direction > 0).sum(axis=0)
    sells = (direction < 0).sum(axis=0)
    if min_votes is None:
        voting = (~np.isnan(direction)).sum(axis=0)
        buy, sell = 2 * buys > voting, 2 * sells > voting
    else:
        buy = (buys >= min_votes) & (buys > sells)
        sell = (sells >= min_votes) & (sells > buys)
    return np.where(buy, 1.0, np.where(sell, -1.0, 0.0))


def weighted(direction: np.ndarray, confidence: np.ndarray, weights: np.ndarray,
             threshold: float) -> np.ndarray:
    """score = sum(w * confidence * direction) / sum(w), over non-abstaining sources;
    BUY when score >= threshold, SELL when score <= -threshold."""
    active = ~np.isnan(direction)
    w = np.where(active, np.asarray(weights, dtype=np.float64)[:, None], 0.0)
    num = np.where(active, w * np.nan_to_num(confidence) * np.nan_to_num(direction), 0.0)
    den = w.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.where(den > 0, num.sum(axis=0) / den, 0.0)
    return np.where(score >= threshold, 1.0, np.where(score <= -threshold, -1.0, 0.0))


def unanimous(direction: np.ndarray) -> np.ndarray:
    """BUY (SELL) only when every source says BUY (SELL); one abstention blocks."""
    buy = (direction > 0).all(axis=0)
    sell = (direction < 0).all(axis=0)
    return np.where(buy, 1.0, np.where(sell, -1.0, 0.0))


def aggregate(settings: AggregationSettings, direction: np.ndarray, confidence: np.ndarray,
              weights: np.ndarray) -> np.ndarray:
    """The decision per row under ``settings``."""
    direction = np.atleast_2d(direction)
    if settings.mode == "vote":
        return vote(direction, settings.min_votes)
    if settings.mode == "weighted":
        return weighted(direction, np.atleast_2d(confidence), weights, settings.threshold)
    return unanimous(direction)
