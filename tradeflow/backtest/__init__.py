"""Backtests: next-open fills with fees and slippage, shared exits, metrics and reports.

Entry points: :func:`tradeflow.backtest.engine.run_backtest` (one symbol),
:func:`tradeflow.backtest.portfolio.run_portfolio` (shared cash), the ``*_strategy`` helpers
that apply a whole :class:`~tradeflow.strategy.StrategySettings`,
:func:`tradeflow.backtest.lookahead.lookahead_check` for causality, and
:mod:`tradeflow.backtest.report` for the PNG/HTML report and the metrics table.
"""

from tradeflow.backtest.engine import backtest_strategy, run_backtest
from tradeflow.backtest.lookahead import LookaheadReport, lookahead_check
from tradeflow.backtest.metrics import Metrics
from tradeflow.backtest.portfolio import backtest_strategy_portfolio, run_portfolio
from tradeflow.backtest.result import BacktestResult

__all__ = [
    "BacktestResult",
    "LookaheadReport",
    "Metrics",
    "backtest_strategy",
    "backtest_strategy_portfolio",
    "lookahead_check",
    "run_backtest",
    "run_portfolio",
]
