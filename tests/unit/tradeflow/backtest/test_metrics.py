"""Metrics on tiny equity curves computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tradeflow.backtest.metrics import (
    YEAR_MS,
    compute_metrics,
    max_drawdown,
    profit_factor,
    sharpe_ratio,
    sortino_ratio,
    win_rate,
)
from tradeflow.backtest.report import format_metrics


def test_metrics_of_a_three_candle_curve() -> None:
    equity = np.array([110.0, 99.0, 121.0])
    pnl = np.array([10.0, -5.0, 20.0, -5.0, 0.0])
    # Four candles per year, so annualising multiplies by sqrt(4) = 2.
    m = compute_metrics(equity, 100.0, YEAR_MS // 4, pnl, candles_in_market=2,
                        traded_value=220.0, fees_paid=1.5)
    r = [0.1, -0.1, 22 / 99]
    mean = sum(r) / 3
    std = math.sqrt(sum((x - mean) ** 2 for x in r) / 2)
    assert m.periods_per_year == 4
    assert m.total_return == pytest.approx(0.21)
    assert m.cagr == pytest.approx(1.21 ** (4 / 3) - 1)
    assert m.sharpe == pytest.approx(mean / std * 2)
    assert m.sortino == pytest.approx(mean / math.sqrt(0.01 / 3) * 2)
    assert m.max_drawdown == pytest.approx(0.1)
    assert m.profit_factor == pytest.approx(3.0)
    assert m.win_rate == pytest.approx(0.4)
    assert m.exposure == pytest.approx(2 / 3)
    assert m.turnover == pytest.approx(2.0)
    assert (m.trade_count, m.final_equity, m.fees_paid) == (5, 121.0, 1.5)
    table = format_metrics(m)
    assert "Sharpe (ann.)" in table and "21.00%" in table and "Closed trades" in table


def test_edge_cases() -> None:
    # The starting cash is the first peak: losing on the first candle is a drawdown.
    assert max_drawdown(np.array([90.0, 100.0]), 100.0) == pytest.approx(0.1)
    flat = np.full(5, 100.0)
    assert sharpe_ratio(flat, 100.0, 365) == 0.0
    assert sortino_ratio(np.array([101.0, 102.0]), 100.0, 365) == math.inf
    assert math.isnan(sharpe_ratio(np.array([101.0]), 100.0, 365))
    assert math.isnan(profit_factor(np.empty(0))) and math.isnan(win_rate(np.empty(0)))
    assert profit_factor(np.array([1.0, 2.0])) == math.inf
    m = compute_metrics(flat, 100.0, 60_000, np.empty(0), 0, 0.0, 0.0)
    assert (m.total_return, m.sharpe, m.max_drawdown, m.trade_count) == (0.0, 0.0, 0.0, 0)
    assert "n/a" in format_metrics(m)
