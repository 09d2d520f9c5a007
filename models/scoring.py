"""Scores of out-of-sample predictions: AUC, log loss, Sharpe significance, MLflow-safe numbers.

``sharpe_confidence`` answers "is this after-fee edge distinguishable from zero?" with a
moving-block bootstrap of the per-candle equity returns (blocks keep the autocorrelation that
holding a position for several candles creates). A random walk must give an interval that
contains 0; a planted signal a lower bound above it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

__all__ = [
    "auc_and_log_loss",
    "finite_metrics",
    "sharpe_confidence",
    "sharpe_tstat",
]


def auc_and_log_loss(y: np.ndarray, proba: np.ndarray) -> tuple[float, float]:
    """ROC AUC and log loss over the rows where both are known; NaN when undefined.

    AUC needs both classes; the log loss clips probabilities to ``[1e-15, 1 - 1e-15]``, so a
    constant p = 0 (the flat baseline) scores about 34.5 * (share of label 1).
    """
    from sklearn.metrics import log_loss, roc_auc_score

    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(proba, dtype=np.float64)
    known = np.isfinite(y) & np.isfinite(p)
    y, p = y[known], p[known]
    if y.size == 0:
        return math.nan, math.nan
    loss = float(log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0.0, 1.0]))
    if np.unique(y).size < 2:
        return math.nan, loss
    return float(roc_auc_score(y, p)), loss


def _returns(equity: np.ndarray, start: float) -> np.ndarray:
    eq = np.asarray(equity, dtype=np.float64)
    prev = np.concatenate(([start], eq[:-1]))
    return eq / prev - 1.0


def sharpe_tstat(equity: np.ndarray, start: float) -> float:
    """t-statistic of the mean per-candle return (= per-candle Sharpe * sqrt(n)); NaN if n < 2."""
    r = _returns(equity, start)
    if r.size < 2:
        return math.nan
    std = float(np.std(r, ddof=1))
    if std == 0.0:
        return 0.0 if float(np.mean(r)) == 0.0 else math.copysign(math.inf, float(np.mean(r)))
    return float(np.mean(r) / std * math.sqrt(r.size))


def sharpe_confidence(
    equity: np.ndarray,
    start: float,
    periods_per_year: float,
    *,
    block: int = 60,
    resamples: int = 500,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Moving-block bootstrap interval of the annualised Sharpe ratio (NaN when too short).

    Returns ``(low, high)`` at ``level``. Resamples concatenate random blocks of ``block``
    consecutive per-candle returns until the original length is reached; a flat curve gives
    ``(0, 0)``.
    """
    r = _returns(equity, start)
    n = r.size
    if n < 2 * block or n < 10:
        return math.nan, math.nan
    if not np.any(r):
        return 0.0, 0.0
    # Sums of r and r^2 over every block of `block` consecutive candles; a resample is a set
    # of block starts, so its moments come from these sums without materialising it.
    c1 = np.concatenate(([0.0], np.cumsum(r)))
    c2 = np.concatenate(([0.0], np.cumsum(r * r)))
    s1 = c1[block:] - c1[:-block]
    s2 = c2[block:] - c2[:-block]
    rng = np.random.default_rng(seed)
    blocks = -(-n // block)
    starts = rng.integers(0, n - block + 1, size=(resamples, blocks))
    m = blocks * block
    total, squares = s1[starts].sum(axis=1), s2[starts].sum(axis=1)
    mean = total / m
    var = np.maximum(squares - total * mean, 0.0) / (m - 1)
    std = np.sqrt(var)
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpe = np.where(std > 0, mean / std, 0.0) * math.sqrt(periods_per_year)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(sharpe, [tail, 1.0 - tail])
    return float(low), float(high)


def finite_metrics(metrics: Mapping[str, float]) -> tuple[dict[str, float], list[str]]:
    """Split metrics into the finite ones and the names of those that are inf or NaN.

    MLflow stores neither infinity nor NaN portably, so non-finite values are left out of the
    run (and listed in a tag) rather than replaced by made-up sentinels.
    """
    kept: dict[str, float] = {}
    skipped: list[str] = []
    for key, value in metrics.items():
        v = float(value)
        if math.isfinite(v):
            kept[key] = v
        else:
            skipped.append(f"{key}={v}")
    return kept, skipped
