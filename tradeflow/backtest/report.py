"""Backtest reports: a PNG chart, an HTML page and a plain-text metrics table.

The caller picks the directory (e.g. ``data/reports/<name>-<timestamp>/``); nothing here reads
a clock. Charts are drawn with matplotlib's object API on an Agg canvas, so no global backend
is switched. Long series are thinned to at most ``MAX_POINTS`` points per line for drawing.
"""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from tradeflow.backtest.metrics import Metrics
from tradeflow.backtest.result import BacktestResult

MAX_POINTS = 5_000
MAX_TRADE_ROWS = 2_000
_PERCENT = {"total_return", "cagr", "max_drawdown", "win_rate", "exposure"}
_LABELS = {
    "total_return": "Total return",
    "cagr": "CAGR",
    "sharpe": "Sharpe (ann.)",
    "sortino": "Sortino (ann.)",
    "max_drawdown": "Max drawdown",
    "profit_factor": "Profit factor",
    "win_rate": "Win rate",
    "exposure": "Exposure (time in market)",
    "turnover": "Turnover (x avg equity)",
    "trade_count": "Closed trades",
    "final_equity": "Final equity",
    "fees_paid": "Fees paid",
    "periods_per_year": "Candles per year",
}


@dataclass(frozen=True, slots=True)
class ReportPaths:
    """Files written by :func:`write_report`."""

    png: Path
    html: Path


def _fmt(name: str, value: float) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    if name in _PERCENT:
        return f"{value * 100:.2f}%"
    if name == "trade_count":
        return str(int(value))
    if name in {"final_equity", "fees_paid"}:
        return f"{value:,.2f}"
    if name == "periods_per_year":
        return f"{value:,.0f}"
    return f"{value:.3f}"


def metrics_rows(metrics: Metrics) -> list[tuple[str, str]]:
    """(label, formatted value) pairs in a fixed order."""
    return [(_LABELS[k], _fmt(k, v)) for k, v in metrics.as_dict().items()]


def format_metrics(metrics: Metrics) -> str:
    """The metrics as a plain-text two-column table (what the CLI prints)."""
    rows = metrics_rows(metrics)
    width = max(len(label) for label, _ in rows)
    vwidth = max(len(value) for _, value in rows)
    line = "-" * (width + vwidth + 3)
    body = [f"{label:<{width}} | {value:>{vwidth}}" for label, value in rows]
    return "\n".join([line, *body, line])


def format_trades(trades: pd.DataFrame, limit: int = 10) -> str:
    """``trades: N`` and the last ``limit`` of them, one line each (what the CLI prints)."""
    from tradeflow import timeframes

    head = f"trades: {len(trades)}" + (f" (last {limit})" if len(trades) > limit else "")
    lines = [head]
    for r in trades.tail(limit).itertuples(index=False):
        lines.append(f"  {r.symbol:<10} {r.side:<5} {timeframes.iso(int(r.entry_time))} -> "
                     f"{timeframes.iso(int(r.exit_time))}  {r.entry_price:.6g} -> "
                     f"{r.exit_price:.6g}  pnl {r.pnl:+,.2f} ({r.exit_reason})")
    return "\n".join(lines)


def _thin(n: int) -> np.ndarray:
    if n <= MAX_POINTS:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, MAX_POINTS).astype(np.int64))


def render_chart(result: BacktestResult, path: Path, title: str = "Backtest") -> Path:
    """Equity, drawdown and price with entries/exits marked, as a PNG."""
    times = pd.to_datetime(result.equity["open_time"].to_numpy(), unit="ms", utc=True)
    equity = result.equity["equity"].to_numpy()
    peak = np.maximum.accumulate(np.maximum(equity, result.starting_cash))
    drawdown = equity / peak - 1.0
    idx = _thin(len(times))
    fig = Figure(figsize=(12, 9), dpi=100)
    FigureCanvasAgg(fig)
    ax_eq, ax_dd, ax_px = fig.subplots(3, 1, sharex=True, height_ratios=[2, 1, 2])
    ax_eq.plot(times[idx], equity[idx], color="tab:blue", lw=1)
    ax_eq.set_ylabel("equity")
    ax_eq.set_title(title)
    ax_dd.fill_between(times[idx], drawdown[idx] * 100, 0, color="tab:red", alpha=0.4)
    ax_dd.set_ylabel("drawdown %")
    multi = len(result.symbols) > 1
    fills = result.fills
    for sym in result.symbols:
        price = result.prices[sym].to_numpy()
        base = price[~np.isnan(price)][0] if multi and np.any(~np.isnan(price)) else 1.0
        ax_px.plot(times[idx], price[idx] / base, lw=0.8, label=sym)
        f = fills[fills["symbol"] == sym]
        when = pd.to_datetime(f["time"].to_numpy(), unit="ms", utc=True)
        buys = f["side"].to_numpy() == "buy"
        px = f["price"].to_numpy() / base
        ax_px.scatter(when[buys], px[buys], marker="^", color="tab:green", s=18, zorder=3)
        ax_px.scatter(when[~buys], px[~buys], marker="v", color="tab:red", s=18, zorder=3)
    ax_px.set_ylabel("price (normalised)" if multi else "price")
    if multi:
        ax_px.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    return path


def _table(rows: list[tuple[str, str]]) -> str:
    cells = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows
    )
    return f"<table class='metrics'>{cells}</table>"


def write_report(result: BacktestResult, directory: str | Path, *,
                 title: str = "Backtest") -> ReportPaths:
    """Write ``equity.png`` and ``report.html`` (chart, metrics, trades) under ``directory``."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    png = render_chart(result, out / "equity.png", title)
    encoded = base64.b64encode(png.read_bytes()).decode("ascii")
    trades = result.trades
    shown = trades.head(MAX_TRADE_ROWS).copy()
    for col in ("entry_time", "exit_time"):
        shown[col] = pd.to_datetime(shown[col], unit="ms", utc=True).dt.strftime("%Y-%m-%d %H:%M")
    note = (f"<p>Showing the first {MAX_TRADE_ROWS} of {len(trades)} trades.</p>"
            if len(trades) > MAX_TRADE_ROWS else "")
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; margin-bottom: 1.5em; }}
th, td {{ border: 1px solid #ccc; padding: 3px 8px; text-align: right; }}
th {{ background: #f4f4f4; text-align: left; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>Symbols: {html.escape(", ".join(result.symbols))}; starting cash {result.starting_cash:,.2f}</p>
<img src="data:image/png;base64,{encoded}" alt="equity, drawdown and trades">
<h2>Metrics</h2>
{_table(metrics_rows(result.metrics))}
<h2>Trades</h2>
{note}
{shown.to_html(index=False, float_format=lambda v: f"{v:.6g}", border=0)}
</body></html>
"""
    page_path = out / "report.html"
    page_path.write_text(page, encoding="utf-8")
    return ReportPaths(png=png, html=page_path)
