"""Reports: the PNG and HTML land in the given directory and show the run's numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tradeflow.backtest.engine import run_backtest
from tradeflow.backtest.portfolio import run_portfolio
from tradeflow.backtest.report import format_metrics, metrics_rows, write_report
from tradeflow.strategy import ExitSettings


def _candles(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.004, n)))
    opens = np.r_[100, close[:-1]]
    return pd.DataFrame({"open_time": np.arange(n, dtype=np.int64) * 60_000, "open": opens,
                         "high": np.maximum(opens, close) * 1.002,
                         "low": np.minimum(opens, close) * 0.998, "close": close})


def test_single_symbol_report(tmp_path: Path) -> None:
    candles = _candles(300, 0)
    target = np.tile([1.0, np.nan, np.nan, np.nan, 0.0, np.nan], 50)
    result = run_backtest(candles, target, exits=ExitSettings(stop_loss_pct=0.3))
    paths = write_report(result, tmp_path / "run-1", title="demo <run>")
    assert paths.png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = paths.html.read_text()
    assert "demo &lt;run&gt;" in page and "data:image/png;base64," in page
    assert "Sharpe (ann.)" in page and "stop_loss" in page
    assert page.count("<tr>") >= len(result.trades) + len(metrics_rows(result.metrics))
    assert format_metrics(result.metrics).splitlines()[1].startswith("Total return")


def test_portfolio_report(tmp_path: Path) -> None:
    candles = {"A/USDT": _candles(200, 1), "B/USDT": _candles(200, 2)}
    targets = {s: np.tile([0.5, np.nan, 0.0, np.nan], 50) for s in candles}
    paths = write_report(run_portfolio(candles, targets), tmp_path)
    assert paths.png.stat().st_size > 10_000
    assert "A/USDT, B/USDT" in paths.html.read_text()
