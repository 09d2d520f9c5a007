"""Backtest several symbols together: one cash balance, shared exposure caps, the same fills.

The symbols' candles are put on a common grid, the union of their open times. A symbol without
a candle at a grid time does not trade, is not checked by the exit rules and is not decided on
at that time: its pending order waits for its next candle and it is marked at its last close.
Each symbol's target (and slippage estimate) is computed on its own candles, then placed on the
grid. At each open all reductions fill before any increase, so sales fund purchases; increases
are then served in symbol order while cash lasts. Exposure caps are applied at decision time
in symbol order: each capped target counts against the total for the symbols after it (the
same function the trader's risk check uses). Everything else is :mod:`tradeflow.backtest.engine`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from tradeflow.backtest.engine import simulate_grid, strategy_targets
from tradeflow.backtest.inputs import grid_targets, infer_period_ms, market_grid
from tradeflow.backtest.result import BacktestResult
from tradeflow.strategy import CostSettings, ExitSettings, RiskSettings, StrategySettings


def run_portfolio(
    candles: Mapping[str, pd.DataFrame],
    targets: Mapping[str, pd.Series | np.ndarray],
    *,
    costs: CostSettings | None = None,
    exits: ExitSettings | None = None,
    starting_cash: float = 10_000.0,
    allow_short: bool = False,
    risk: RiskSettings | None = None,
    timeframe: str | None = None,
    size_on_close: bool = False,
) -> BacktestResult:
    """Backtest several symbols with shared cash; each target aligned with its own candles.

    ``size_on_close``: see :func:`tradeflow.backtest.engine.run_backtest`.
    """
    costs = costs or CostSettings()
    grid = market_grid(candles, costs)
    return simulate_grid(
        grid, grid_targets(grid, candles, targets, allow_short), costs=costs,
        exits=exits or ExitSettings(), starting_cash=starting_cash, risk=risk,
        period_ms=infer_period_ms(grid.open_time, timeframe), size_on_close=size_on_close,
    )


def backtest_strategy_portfolio(
    candles: Mapping[str, pd.DataFrame],
    proba: Mapping[str, pd.Series | np.ndarray],
    strategy: StrategySettings,
) -> BacktestResult:
    """Backtest a strategy over several symbols with every setting it defines."""
    targets = {s: strategy_targets(candles[s], proba[s], strategy) for s in candles}
    return run_portfolio(
        candles, targets, costs=strategy.costs, exits=strategy.exits,
        starting_cash=strategy.starting_balance, allow_short=strategy.signal.allow_short,
        risk=strategy.risk, timeframe=strategy.timeframe, size_on_close=True,
    )
