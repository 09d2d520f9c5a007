"""Performance metrics of a backtest, computed from the per-candle equity curve and the trades.

Conventions (the same as vectorbt's, so numbers can be compared):

* Returns are per candle, ``r_t = equity_t / equity_{t-1} - 1`` with ``equity_{-1}`` the
  starting cash; equity is marked to each candle's close.
* Annualisation uses crypto's calendar: ``periods_per_year = 365 days / candle period``
  (525,600 for 1m candles), with no risk-free rate.
* Sharpe: ``mean(r) / std(r, ddof=1) * sqrt(periods_per_year)``.
* Sortino: ``mean(r) / sqrt(mean(min(r, 0)^2)) * sqrt(periods_per_year)`` (downside deviation
  over all periods, target 0).
* With zero dispersion a ratio is 0 for a zero mean and +/-inf otherwise.
* CAGR: ``(final / start) ** (periods_per_year / n) - 1`` over the ``n`` candles.
* Max drawdown: the largest fall from a running peak, as a positive fraction; unlike vectorbt
  the starting cash counts as the first peak, so a loss on the first candle is a drawdown.
* Profit factor: gross profit / gross loss of closed trades (inf without losses, NaN without
  trades); win rate: share of closed trades with pnl > 0 (NaN without trades). Each closing
  fill is one trade, so a partial take-profit counts as its own trade.
* Exposure: share of candles that end with a position open. Turnover: traded value of all
  fills divided by the average equity (one full round trip at 100% is about 2).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from numba import njit

YEAR_MS = 365 * 86_400_000


@dataclass(frozen=True, slots=True)
class Metrics:
    """Summary numbers of one backtest (fractions, not percent)."""

    total_return: float
    cagr: float
    sharpe: float
    sortino: float
    max_drawdown: float
    profit_factor: float
    win_rate: float
    exposure: float
    turnover: float
    trade_count: int
    final_equity: float
    fees_paid: float
    periods_per_year: float

    def as_dict(self) -> dict[str, float]:
        """Plain mapping, e.g. for MLflow ``log_metrics``."""
        return {k: float(v) for k, v in asdict(self).items()}


def periods_per_year(period_ms: int) -> float:
    """Candles per 365-day year."""
    return YEAR_MS / period_ms


@njit(cache=True)
def _moments(equity: np.ndarray, start: float) -> tuple[float, float, float]:
    # Mean, sample std and downside deviation of the per-candle returns, without temporaries.
    n = equity.shape[0]
    total = 0.0
    prev = start
    for i in range(n):
        total += equity[i] / prev - 1.0
        prev = equity[i]
    mean = total / n
    dev = 0.0
    down = 0.0
    prev = start
    for i in range(n):
        r = equity[i] / prev - 1.0
        prev = equity[i]
        dev += (r - mean) ** 2
        if r < 0.0:
            down += r * r
    std = np.sqrt(dev / (n - 1)) if n > 1 else np.nan
    return mean, std, np.sqrt(down / n)


@njit(cache=True)
def _max_drawdown(equity: np.ndarray, start: float) -> float:
    peak = start
    worst = 0.0
    for i in range(equity.shape[0]):
        peak = max(peak, equity[i])
        worst = max(worst, 1.0 - equity[i] / peak)
    return worst


def _ratio(mean: float, dispersion: float, ann: float) -> float:
    if dispersion == 0.0 or math.isnan(dispersion):
        return 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
    return mean / dispersion * math.sqrt(ann)


def sharpe_ratio(equity: np.ndarray, start: float, ann: float) -> float:
    """Annualised Sharpe ratio of an equity curve (ddof=1, no risk-free rate)."""
    if equity.shape[0] < 2:
        return math.nan
    mean, std, _ = _moments(np.ascontiguousarray(equity, dtype=np.float64), float(start))
    return _ratio(mean, std, ann)


def sortino_ratio(equity: np.ndarray, start: float, ann: float) -> float:
    """Annualised Sortino ratio of an equity curve (downside deviation over all periods)."""
    if equity.shape[0] < 2:
        return math.nan
    mean, _, down = _moments(np.ascontiguousarray(equity, dtype=np.float64), float(start))
    return _ratio(mean, down, ann)


def max_drawdown(equity: np.ndarray, start: float) -> float:
    """Largest peak-to-trough fall as a positive fraction; the start is the first peak."""
    return float(_max_drawdown(np.ascontiguousarray(equity, dtype=np.float64), float(start)))


def profit_factor(pnl: np.ndarray) -> float:
    """Gross profit over gross loss of closed trades."""
    if pnl.shape[0] == 0:
        return math.nan
    gains = float(pnl[pnl > 0].sum())
    losses = float(-pnl[pnl < 0].sum())
    if losses == 0.0:
        return math.inf if gains > 0 else math.nan
    return gains / losses


def win_rate(pnl: np.ndarray) -> float:
    """Share of closed trades with a positive pnl."""
    return math.nan if pnl.shape[0] == 0 else float(np.mean(pnl > 0))


def compute_metrics(
    equity: np.ndarray,
    start: float,
    period_ms: int,
    trade_pnl: np.ndarray,
    candles_in_market: int,
    traded_value: float,
    fees_paid: float,
) -> Metrics:
    """All metrics from the equity curve (marked to close) and the closed trades' pnl."""
    ann = periods_per_year(period_ms)
    n = equity.shape[0]
    final = float(equity[-1]) if n else start
    cagr = math.nan
    if n and final > 0:
        # Short runs annualise to astronomic numbers; let them be inf rather than raise.
        with np.errstate(over="ignore"):
            cagr = float(np.power(final / start, ann / n)) - 1.0
    sharpe = sortino = math.nan
    if n > 1:
        mean, std, down = _moments(equity, float(start))
        sharpe, sortino = _ratio(mean, std, ann), _ratio(mean, down, ann)
    mean_equity = float(np.mean(equity)) if n else start
    return Metrics(
        total_return=final / start - 1.0,
        cagr=cagr,
        sharpe=sharpe,
        sortino=sortino,
        max_drawdown=max_drawdown(equity, start) if n else 0.0,
        profit_factor=profit_factor(trade_pnl),
        win_rate=win_rate(trade_pnl),
        exposure=candles_in_market / n if n else 0.0,
        turnover=traded_value / mean_equity if mean_equity > 0 else math.nan,
        trade_count=int(trade_pnl.shape[0]),
        final_equity=final,
        fees_paid=fees_paid,
        periods_per_year=ann,
    )
