"""Backtest one symbol from candles and a target position series.

Semantics (the compiled loop is :mod:`tradeflow.backtest.kernel`, the exit rules
:mod:`tradeflow.trading.exits`):

* ``target[t]`` is decided at the close of candle ``t``: a signed fraction of equity, in
  ``[0, 1]`` long-only or ``[-1, 1]`` with ``allow_short``; NaN keeps the current position.
  An order is placed only when the target differs from the last target seen: a constant target
  does not rebalance as prices drift, and does not undo a partial take-profit.
* The order fills at the OPEN of candle ``t + 1`` as a market order: taker fee and adverse
  slippage. The last candle's decision is never filled.
* Quantity = ``target * equity(close t) / fill price``, cut to what free cash pays for, fees
  included; so target 1.0 from flat buys exactly what vectorbt's ``size=inf`` buys.
* Exits (stop-loss, take-profit tiers, trailing stop, max holding), their fill prices and fees,
  the stop-before-target rule and the re-entry lock are documented in
  :mod:`tradeflow.trading.exits`.
* Shorts (``allow_short``) tie up their proceeds plus the same amount of cash, so gross
  exposure never exceeds equity; there is no margin call or liquidation model, so a short
  losing more than the account is simply carried (with negative equity).
* With ``risk`` given, targets are capped at decision time by ``max_position_fraction`` and
  ``max_total_exposure`` (see :func:`tradeflow.trading.risk.cap_target`). The daily loss limit,
  the order rate limit and the drawdown kill switch are the trader's, not the backtester's.
* Metrics conventions are in :mod:`tradeflow.backtest.metrics`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from tradeflow.backtest import kernel
from tradeflow.backtest.inputs import MarketGrid, check_target, infer_period_ms, single_grid
from tradeflow.backtest.metrics import compute_metrics
from tradeflow.backtest.result import BacktestResult, with_open_positions
from tradeflow.strategy import CostSettings, ExitSettings, RiskSettings, StrategySettings
from tradeflow.trading.costs import fee_rate
from tradeflow.trading.exits import ExitParams
from tradeflow.trading.sizing import candles_per_day, sizing_fractions
from tradeflow.trading.targets import targets_from_probabilities


def simulate_grid(
    grid: MarketGrid,
    target: np.ndarray,
    *,
    costs: CostSettings,
    exits: ExitSettings,
    starting_cash: float,
    risk: RiskSettings | None,
    period_ms: int,
    size_on_close: bool = False,
) -> BacktestResult:
    """Run the compiled loop over a prepared grid and assemble the result."""
    if not starting_cash > 0:
        raise ValueError("starting_cash must be positive")
    compiled = ExitParams.from_settings(exits)
    max_position = 1.0 if risk is None else risk.max_position_fraction
    max_total = math.inf if risk is None else risk.max_total_exposure
    equity, cash, positions, fills, trades, state, book, mark, in_market = kernel.simulate(
        _frozen(grid.open), _frozen(grid.high), _frozen(grid.low), _frozen(grid.close),
        _frozen(grid.valid), _frozen(target), _frozen(grid.slip), fee_rate(costs.taker_bps),
        fee_rate(costs.maker_bps), compiled.params, compiled.tp_pct, compiled.tp_frac,
        max_position, max_total, float(starting_cash), bool(size_on_close),
    )
    traded = float(np.abs(fills[:, kernel.OF_QTY] * fills[:, kernel.OF_PRICE]).sum())
    metrics = compute_metrics(
        equity, float(starting_cash), period_ms, trades[:, kernel.TR_PNL], in_market, traded,
        float(fills[:, kernel.OF_FEE].sum()),
    )
    return BacktestResult(
        symbols=grid.symbols,
        open_time=grid.open_time,
        equity_curve=equity,
        cash_curve=cash,
        position_matrix=positions,
        close_matrix=grid.close.T,
        trade_records=with_open_positions(trades, state, book, mark, len(grid.open_time) - 1),
        fill_records=fills,
        metrics=metrics,
        starting_cash=float(starting_cash),
    )


def _frozen(arr: np.ndarray) -> np.ndarray:
    # One compiled signature for every caller: C-contiguous, read-only views (pandas 3 hands
    # out read-only arrays; a writable copy of each would cost more than the loop).
    view = np.ascontiguousarray(arr).view()
    view.flags.writeable = False
    return view


def run_backtest(
    candles: pd.DataFrame,
    target: pd.Series | np.ndarray,
    *,
    costs: CostSettings | None = None,
    exits: ExitSettings | None = None,
    starting_cash: float = 10_000.0,
    allow_short: bool = False,
    risk: RiskSettings | None = None,
    timeframe: str | None = None,
    symbol: str = "asset",
    size_on_close: bool = False,
) -> BacktestResult:
    """Backtest one symbol: ``target`` holds one decision per candle, aligned by position.

    ``size_on_close`` sizes orders from the deciding close (as the trader does) instead of
    the next open's fill price (vectorbt's convention, the default).
    """
    costs = costs or CostSettings()
    grid = single_grid(candles, costs, symbol)
    tgt = check_target(target, grid.close.shape[1], allow_short).reshape(1, -1)
    return simulate_grid(
        grid, tgt, costs=costs, exits=exits or ExitSettings(), starting_cash=starting_cash,
        risk=risk, period_ms=infer_period_ms(grid.open_time, timeframe),
        size_on_close=size_on_close,
    )


def strategy_targets(candles: pd.DataFrame, proba: pd.Series | np.ndarray,
                     strategy: StrategySettings) -> np.ndarray:
    """Targets for a strategy: its sizing fractions through its signal hysteresis."""
    close = candles["close"].to_numpy(dtype=np.float64)
    fractions = sizing_fractions(close, strategy.sizing, candles_per_day(strategy.timeframe))
    return targets_from_probabilities(np.asarray(proba, dtype=np.float64), strategy.signal,
                                      fractions)


def backtest_strategy(
    candles: pd.DataFrame,
    proba: pd.Series | np.ndarray,
    strategy: StrategySettings,
    *,
    symbol: str = "asset",
) -> BacktestResult:
    """Backtest predicted probabilities with every setting of a strategy (after fees).

    Orders are sized from the deciding close, exactly as the live trader sizes them.
    """
    return run_backtest(
        candles,
        strategy_targets(candles, proba, strategy),
        costs=strategy.costs,
        exits=strategy.exits,
        starting_cash=strategy.starting_balance,
        allow_short=strategy.signal.allow_short,
        risk=strategy.risk,
        timeframe=strategy.timeframe,
        symbol=symbol,
        size_on_close=True,
    )
