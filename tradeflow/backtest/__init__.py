"""Backtests: next-open fills with fees and slippage, shared exits, metrics and reports.

Entry points: :func:`tradeflow.backtest.engine.run_backtest` (one symbol),
:func:`tradeflow.backtest.portfolio.run_portfolio` (shared cash), the ``*_strategy`` helpers
that apply a whole :class:`~tradeflow.strategy.StrategySettings`,
:mod:`tradeflow.backtest.lookahead` for causality, :mod:`tradeflow.backtest.live_engine`
(the same loop one candle at a time, for the trader), and
:mod:`tradeflow.backtest.report` for the PNG/HTML report and the metrics table.
"""

from tradeflow.backtest.engine import backtest_strategy, run_backtest
from tradeflow.backtest.lookahead import (
    BacktestLookahead,
    LookaheadResult,
    check_backtest_lookahead,
    check_lookahead,
)
from tradeflow.backtest.metrics import Metrics
from tradeflow.backtest.portfolio import backtest_strategy_portfolio, run_portfolio
from tradeflow.backtest.result import BacktestResult

__all__ = [
    "BacktestResult",
    "BacktestLookahead",
    "LookaheadResult",
    "Metrics",
    "backtest_strategy",
    "backtest_strategy_portfolio",
    "check_backtest_lookahead",
    "check_lookahead",
    "run_backtest",
    "run_portfolio",
]
