"""The look-ahead checker: does anything at candle ``t`` change when later candles are removed?

In the spirit of Freqtrade's lookahead-analysis, two views of one question:

* :func:`check_lookahead`: run ``compute`` (features, optionally followed by a model's
  signal) once on the whole history, then again on histories truncated so that each of
  several sample rows ``t`` is the LAST row, and compare row ``t`` of both runs. A causal
  computation cannot tell the difference; one that peeks ahead (``close.shift(-1)``, a
  centred window, a higher-timeframe candle used before it closed) gives a different value,
  or a NaN. With ``window`` set, each truncated history also starts ``window`` rows before
  ``t``, which checks what live serving does (a fixed window of recent candles) against
  training (the whole history): ``window`` must then be at least the warm-up plus one.
* :func:`check_backtest_lookahead`: a target pipeline (features -> model -> signal) is run
  on several prefixes of the candles and every decision of each prefix compared with the
  full run; each prefix is also backtested and its equity curve compared with the full
  backtest's first candles, which checks the fill, cost and exit model as well. A column
  normalised over the whole sample, a centred rolling window or a ``shift(-1)`` all show.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tradeflow import timeframes
from tradeflow.backtest.engine import run_backtest
from tradeflow.strategy import CostSettings, ExitSettings, RiskSettings

__all__ = ["BacktestLookahead", "LookaheadDifference", "LookaheadResult",
           "check_backtest_lookahead", "check_lookahead", "sample_points"]

Compute = Callable[[pd.DataFrame], pd.DataFrame | pd.Series]


@dataclass(frozen=True)
class LookaheadDifference:
    """The first sample row at which a column differs between truncated and full history."""

    column: str
    row: int
    open_time: int
    full: float
    truncated: float

    def __str__(self) -> str:
        return (
            f"{self.column}: at {timeframes.iso(self.open_time)} (row {self.row}) full history "
            f"gives {self.full!r}, history ending there gives {self.truncated!r}"
        )


@dataclass(frozen=True)
class LookaheadResult:
    """Outcome of :func:`check_lookahead`; ``ok`` is False when any column looked ahead."""

    checked_rows: tuple[int, ...]
    columns: tuple[str, ...]
    differences: tuple[LookaheadDifference, ...]

    @property
    def ok(self) -> bool:
        """True when no column differed at any sample row."""
        return not self.differences

    @property
    def biased_columns(self) -> tuple[str, ...]:
        """Columns that differed, in output order."""
        return tuple(d.column for d in self.differences)

    def report(self) -> str:
        """One line per biased column, or a single line saying all passed."""
        if self.ok:
            return (
                f"no look-ahead: {len(self.columns)} column(s) identical at "
                f"{len(self.checked_rows)} sample row(s)"
            )
        lines = [f"look-ahead in {len(self.differences)} of {len(self.columns)} column(s):"]
        return "\n".join(lines + [f"  {d}" for d in self.differences])


def sample_points(n_rows: int, samples: int, start: int = 0) -> np.ndarray:
    """``samples`` distinct rows spread evenly over ``start .. n_rows - 2``.

    The last row is left out: truncating there removes nothing.
    """
    last = n_rows - 2
    if last < start:
        raise ValueError(f"need at least {start + 2} rows to sample from; got {n_rows}")
    return np.unique(np.linspace(start, last, num=max(1, samples)).round().astype(np.int64))


def check_lookahead(
    candles: pd.DataFrame,
    compute: Compute,
    *,
    samples: int = 20,
    start: int = 0,
    window: int | None = None,
    rtol: float = 1e-9,
    atol: float = 1e-12,
) -> LookaheadResult:
    """Compare ``compute`` on the full history with runs on histories ending at sample rows.

    ``start`` is the first row eligible as a sample (e.g. the warm-up, so that values compared are
    defined); values match when both are NaN or ``|a - b| <= atol + rtol * |full|``. Each column
    that differs is reported once, at its first differing sample, with both values.
    """
    if window is not None and window < 1:
        raise ValueError(f"window must be >= 1; got {window}")
    full = _rows(compute(candles), len(candles))
    columns = tuple(str(c) for c in full.columns)
    open_time = candles["open_time"].to_numpy(dtype=np.int64)
    rows = sample_points(len(candles), samples, max(start, 0 if window is None else window - 1))
    first: dict[str, LookaheadDifference] = {}
    for t in rows:
        lo = 0 if window is None else int(t) - window + 1
        part = _rows(compute(candles.iloc[lo : int(t) + 1]), int(t) + 1 - lo)
        for col in columns:
            if col in first:
                continue
            a = float(full[col].iloc[t])
            b = float(part[col].iloc[-1]) if col in part.columns else np.nan
            if not _same_value(a, b, rtol, atol):
                first[col] = LookaheadDifference(col, int(t), int(open_time[t]), a, b)
    ordered = tuple(first[c] for c in columns if c in first)
    return LookaheadResult(tuple(int(t) for t in rows), columns, ordered)


def _rows(out: pd.DataFrame | pd.Series, expected: int) -> pd.DataFrame:
    frame = out.to_frame(name=out.name or "signal") if isinstance(out, pd.Series) else out
    if len(frame) != expected:
        # Rows are compared by position, so the output must keep one row per candle.
        raise ValueError(f"compute must return one row per candle: {expected} in, {len(frame)} out")
    return frame


def _same_value(a: float, b: float, rtol: float, atol: float) -> bool:
    if np.isnan(a) or np.isnan(b):
        return bool(np.isnan(a) and np.isnan(b))
    if np.isinf(a) or np.isinf(b):
        return a == b
    return abs(a - b) <= atol + rtol * abs(a)


# -- decisions and equity on prefixes ----------------------------------------------------------
TargetFn = Callable[[pd.DataFrame], np.ndarray]


@dataclass(frozen=True, slots=True)
class BacktestLookahead:
    """Where the cut-off future changed something; empty tuples mean no look-ahead was seen."""

    prefixes: tuple[int, ...]
    target_mismatches: tuple[int, ...]
    equity_mismatches: tuple[int, ...]

    @property
    def ok(self) -> bool:
        """True when no decision and no equity value depended on later candles."""
        return not self.target_mismatches and not self.equity_mismatches

    def describe(self) -> str:
        """One line for logs and the CLI."""
        if self.ok:
            return f"no look-ahead found ({len(self.prefixes)} prefixes checked)"
        first = self.target_mismatches[:5]
        return (f"LOOK-AHEAD: {len(self.target_mismatches)} decisions change when later candles "
                f"are removed (first at candles {list(first)}); "
                f"{len(self.equity_mismatches)} prefixes give a different equity curve")


def _same_arrays(a: np.ndarray, b: np.ndarray, rtol: float) -> np.ndarray:
    both_nan = np.isnan(a) & np.isnan(b)
    with np.errstate(invalid="ignore"):
        close = np.abs(a - b) <= rtol * np.maximum(np.abs(a), np.abs(b))
    return both_nan | close


def check_backtest_lookahead(
    candles: pd.DataFrame,
    make_target: TargetFn,
    *,
    prefixes: int = 8,
    rtol: float = 1e-12,
    costs: CostSettings | None = None,
    exits: ExitSettings | None = None,
    allow_short: bool = False,
    risk: RiskSettings | None = None,
) -> BacktestLookahead:
    """Compare ``make_target`` and the backtest on ``prefixes`` prefixes with the full run."""
    n = len(candles)
    full = np.asarray(make_target(candles), dtype=np.float64)
    run = run_backtest(candles, full, costs=costs, exits=exits, allow_short=allow_short,
                       risk=risk)
    lengths = sorted({int(k) for k in np.linspace(max(2, n // 10), n - 1, prefixes)})
    bad_targets: set[int] = set()
    bad_equity: list[int] = []
    for k in lengths:
        head = candles.iloc[:k]
        part = np.asarray(make_target(head), dtype=np.float64)
        bad_targets.update(np.flatnonzero(~_same_arrays(part, full[:k], rtol)).tolist())
        prefix_run = run_backtest(head, full[:k], costs=costs, exits=exits,
                                  allow_short=allow_short, risk=risk)
        if not np.array_equal(prefix_run.equity_curve, run.equity_curve[:k]):
            bad_equity.append(k)
    return BacktestLookahead(tuple(lengths), tuple(sorted(bad_targets)), tuple(bad_equity))
