"""Look-ahead check: do decisions or results change when the future is cut off?

A target pipeline (features -> model -> signal) is causal when the target it produces for
candle ``t`` from the candles up to ``t`` equals the one it produces from the whole history.
:func:`lookahead_check` re-runs the pipeline on several prefixes of the candles and compares
every decision of each prefix with the full run, then backtests each prefix and compares its
equity curve with the full backtest's first candles (which checks the fill, cost and exit
model as well). A column normalised over the whole sample, a centred rolling window or a
``shift(-1)`` all show up as mismatches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tradeflow.backtest.engine import run_backtest
from tradeflow.strategy import CostSettings, ExitSettings, RiskSettings

TargetFn = Callable[[pd.DataFrame], np.ndarray]


@dataclass(frozen=True, slots=True)
class LookaheadReport:
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


def _same(a: np.ndarray, b: np.ndarray, rtol: float) -> np.ndarray:
    both_nan = np.isnan(a) & np.isnan(b)
    with np.errstate(invalid="ignore"):
        close = np.abs(a - b) <= rtol * np.maximum(np.abs(a), np.abs(b))
    return both_nan | close


def lookahead_check(
    candles: pd.DataFrame,
    make_target: TargetFn,
    *,
    prefixes: int = 8,
    rtol: float = 1e-12,
    costs: CostSettings | None = None,
    exits: ExitSettings | None = None,
    allow_short: bool = False,
    risk: RiskSettings | None = None,
) -> LookaheadReport:
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
        bad_targets.update(np.flatnonzero(~_same(part, full[:k], rtol)).tolist())
        prefix_run = run_backtest(head, full[:k], costs=costs, exits=exits,
                                  allow_short=allow_short, risk=risk)
        if not np.array_equal(prefix_run.equity_curve, run.equity_curve[:k]):
            bad_equity.append(k)
    return LookaheadReport(tuple(lengths), tuple(sorted(bad_targets)), tuple(bad_equity))
