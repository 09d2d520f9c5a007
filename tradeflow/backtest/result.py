"""The backtest result: raw arrays from the compiled loop, frames built on first access."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from tradeflow.backtest import kernel as k
from tradeflow.backtest.metrics import Metrics
from tradeflow.trading.exits import ENTRY_PRICE, QTY, REASON_NAMES, SIDE, ExitReason, Reason

TRADE_COLUMNS = ("symbol", "side", "entry_time", "exit_time", "qty", "entry_price",
                 "exit_price", "fees", "pnl", "return", "exit_reason", "tier")
FILL_COLUMNS = ("time", "symbol", "side", "qty", "price", "fee", "reason", "tier")


@dataclass(frozen=True)
class BacktestResult:
    """Everything a backtest produced. Times are candle open times in UTC milliseconds.

    The frames are built from the arrays on first access (a 1M-candle run would otherwise
    spend more time building frames than simulating):

    * ``equity``: ``open_time, cash, equity`` per candle, marked to the close.
    * ``positions`` / ``prices``: ``open_time`` plus one column per symbol: signed quantity held
      at the close, and the close (NaN where the symbol had no candle).
    * ``trades``: one row per closing fill (columns ``TRADE_COLUMNS``); ``exit_time`` is the
      candle whose open or range produced the fill. A position still open at the end is one
      more row with ``exit_reason == "open"``, valued at the last close, without an exit fee;
      trade metrics do not count it.
    * ``fills``: every fill in execution order, entries included (columns ``FILL_COLUMNS``).
    """

    symbols: tuple[str, ...]
    open_time: np.ndarray
    equity_curve: np.ndarray
    cash_curve: np.ndarray
    position_matrix: np.ndarray
    close_matrix: np.ndarray
    trade_records: np.ndarray
    fill_records: np.ndarray
    metrics: Metrics
    starting_cash: float

    @cached_property
    def equity(self) -> pd.DataFrame:
        """Per candle: open_time, cash, equity (marked to the close)."""
        return pd.DataFrame(
            {"open_time": self.open_time, "cash": self.cash_curve, "equity": self.equity_curve}
        )

    @cached_property
    def positions(self) -> pd.DataFrame:
        """Signed quantity held at each close, one column per symbol."""
        return _per_symbol(self.open_time, self.position_matrix, self.symbols)

    @cached_property
    def prices(self) -> pd.DataFrame:
        """Close per candle, one column per symbol (NaN where a symbol had no candle)."""
        return _per_symbol(self.open_time, self.close_matrix, self.symbols)

    @cached_property
    def trades(self) -> pd.DataFrame:
        """One row per closing fill, plus still-open positions."""
        return _trades_frame(self.trade_records, self.open_time, self.symbols)

    @cached_property
    def fills(self) -> pd.DataFrame:
        """Every fill in order."""
        return _fills_frame(self.fill_records, self.open_time, self.symbols)

    @property
    def closed_trades(self) -> pd.DataFrame:
        """Trades without the still-open position rows."""
        return self.trades[self.trades["exit_reason"] != ExitReason.OPEN.value]


def with_open_positions(records: np.ndarray, state: np.ndarray, book: np.ndarray,
                        mark: np.ndarray, last_t: int) -> np.ndarray:
    """Trade records plus one row per position still open, valued at its last close."""
    rows = []
    for s in range(state.shape[0]):
        side = state[s, SIDE]
        if side == 0.0:
            continue
        qty, entry, fees = state[s, QTY], state[s, ENTRY_PRICE], book[s, k.B_FEES]
        row = np.empty(k.TR_COLS)
        row[[k.TR_SYM, k.TR_ENTRY_T, k.TR_EXIT_T, k.TR_SIDE, k.TR_QTY]] = (
            s, book[s, k.B_ENTRY_T], last_t, side, qty)
        row[[k.TR_ENTRY_PRICE, k.TR_EXIT_PRICE, k.TR_FEES]] = entry, mark[s], fees
        row[k.TR_PNL] = side * (mark[s] - entry) * qty - fees
        row[[k.TR_REASON, k.TR_TIER]] = int(Reason.OPEN), -1
        rows.append(row)
    return np.vstack([records, np.array(rows)]) if rows else records


def _names(codes: np.ndarray) -> np.ndarray:
    return np.asarray(REASON_NAMES, dtype=object)[codes.astype(np.int64)]


def _trades_frame(rows: np.ndarray, open_time: np.ndarray,
                  symbols: tuple[str, ...]) -> pd.DataFrame:
    notional = rows[:, k.TR_ENTRY_PRICE] * rows[:, k.TR_QTY]
    with np.errstate(divide="ignore", invalid="ignore"):
        ret = rows[:, k.TR_PNL] / notional
    return pd.DataFrame({
        "symbol": np.asarray(symbols, dtype=object)[rows[:, k.TR_SYM].astype(np.int64)],
        "side": np.where(rows[:, k.TR_SIDE] > 0, "long", "short"),
        "entry_time": open_time[rows[:, k.TR_ENTRY_T].astype(np.int64)],
        "exit_time": open_time[rows[:, k.TR_EXIT_T].astype(np.int64)],
        "qty": rows[:, k.TR_QTY],
        "entry_price": rows[:, k.TR_ENTRY_PRICE],
        "exit_price": rows[:, k.TR_EXIT_PRICE],
        "fees": rows[:, k.TR_FEES],
        "pnl": rows[:, k.TR_PNL],
        "return": ret,
        "exit_reason": _names(rows[:, k.TR_REASON]),
        "tier": rows[:, k.TR_TIER].astype(np.int64),
    })


def _fills_frame(records: np.ndarray, open_time: np.ndarray,
                 symbols: tuple[str, ...]) -> pd.DataFrame:
    qty = records[:, k.OF_QTY]
    return pd.DataFrame({
        "time": open_time[records[:, k.OF_T].astype(np.int64)],
        "symbol": np.asarray(symbols, dtype=object)[records[:, k.OF_SYM].astype(np.int64)],
        "side": np.where(qty > 0, "buy", "sell"),
        "qty": np.abs(qty),
        "price": records[:, k.OF_PRICE],
        "fee": records[:, k.OF_FEE],
        "reason": _names(records[:, k.OF_REASON]),
        "tier": records[:, k.OF_TIER].astype(np.int64),
    })


def _per_symbol(open_time: np.ndarray, values: np.ndarray,
                symbols: tuple[str, ...]) -> pd.DataFrame:
    data: dict[str, np.ndarray] = {"open_time": open_time}
    for i, sym in enumerate(symbols):
        data[sym] = values[:, i]
    return pd.DataFrame(data)
