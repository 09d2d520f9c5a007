"""The trade contract, the candle contract's cousin: a frame of one series' trades.

A series is one (exchange, symbol); its frame has ``id`` (int64, the exchange's trade id),
``ts`` (int64, UTC milliseconds, as candles' ``open_time``), ``price`` and ``amount``
(float64, positive and finite) and ``side`` (the taker's: ``buy`` or ``sell``). Ids increase
strictly and times never go back along them: an exchange numbers its trades in the order
they happen.

Rules are whole-column numpy expressions, as the candle contract's are, so checking a
million trades costs milliseconds. :func:`check_trades` reports (a :class:`FrameCheck`, never
raises for bad data); :func:`assert_trades` raises :class:`TradesRefused` with one line naming
the rule, the first failing trade and what is allowed: the market store refuses such a batch
whole.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pandera.pandas as pa

from tradeflow.contracts.rules import PLAUSIBLE_FROM_MS, PLAUSIBLE_TO_MS
from tradeflow.contracts.schemas import STRUCTURAL_ROW, ContractError, FrameCheck, _run

TRADE_COLUMNS = ("id", "ts", "price", "amount", "side")
SIDES = ("buy", "sell")

# What each rule allows, for one-line refusals.
TRADE_RULES = {
    "column_present": "every column of " + ", ".join(TRADE_COLUMNS) + " is present",
    "dtype": "id and ts are int64; price and amount float64; side a string",
    "not_null": "id, ts, price, amount and side are present",
    "id_increasing": "trade ids increase strictly (no repeat, ascending)",
    "id_positive": "trade ids are >= 0",
    "plausible_time": "ts lies between 2009-01-03 and 2100-01-01 UTC (in milliseconds)",
    "time_non_decreasing": "ts is on or after the previous trade's ts",
    "price_positive": "price is positive and finite",
    "amount_positive": "amount is positive and finite",
    "side_known": "side is 'buy' or 'sell' (the taker's side)",
}


class TradesRefused(ContractError):
    """A batch of trades broke the contract; nothing of it was written."""


def _series(values: np.ndarray, like: pd.Series) -> pd.Series:
    return pd.Series(values, index=like.index, copy=False)


def _increasing(ids: pd.Series) -> pd.Series:
    x = ids.to_numpy()
    ok = np.ones(x.size, dtype=bool)
    ok[1:] = x[1:] > x[:-1]
    return _series(ok, ids)


def _non_negative(ids: pd.Series) -> pd.Series:
    return _series(ids.to_numpy() >= 0, ids)


def _plausible(times: pd.Series) -> pd.Series:
    t = times.to_numpy()
    return _series((t >= PLAUSIBLE_FROM_MS) & (t < PLAUSIBLE_TO_MS), times)


def _non_decreasing(times: pd.Series) -> pd.Series:
    t = times.to_numpy()
    ok = np.ones(t.size, dtype=bool)
    ok[1:] = t[1:] >= t[:-1]
    return _series(ok, times)


def _positive_finite(values: pd.Series) -> pd.Series:
    x = values.to_numpy()
    return _series(~((x <= 0) | np.isinf(x)), values)  # NaN is not_null's to report


def _side_known(sides: pd.Series) -> pd.Series:
    return sides.isin(SIDES)


def _check(fn: object, name: str) -> pa.Check:
    return pa.Check(fn, name=name, ignore_na=False)


@functools.cache
def trade_schema() -> pa.DataFrameSchema:
    """The trade contract as a pandera schema; extra columns (exchange, symbol) pass."""
    return pa.DataFrameSchema(
        columns={
            "id": pa.Column("int64", [_check(_non_negative, "id_positive"),
                                      _check(_increasing, "id_increasing")], nullable=False),
            "ts": pa.Column("int64", [_check(_plausible, "plausible_time"),
                                      _check(_non_decreasing, "time_non_decreasing")],
                            nullable=False),
            "price": pa.Column("float64", _check(_positive_finite, "price_positive"),
                               nullable=False),
            "amount": pa.Column("float64", _check(_positive_finite, "amount_positive"),
                                nullable=False),
            "side": pa.Column(str, _check(_side_known, "side_known"), nullable=False),
        },
        name="trades",
        strict=False,
        coerce=False,
    )


def check_trades(frame: pd.DataFrame) -> FrameCheck:
    """Validate one series' trades; never raises for bad data (failures keyed by ``id``)."""
    return _run(trade_schema(), frame, ("id",))


def assert_trades(frame: pd.DataFrame, what: str = "trades") -> pd.DataFrame:
    """``frame`` unchanged when it meets the contract, else :class:`TradesRefused`."""
    check = check_trades(frame)
    if check.ok:
        return frame
    raise TradesRefused(what, check, refusal_line(check, what))


def refusal_line(check: FrameCheck, what: str) -> str:
    """``<what>: refused N trades, nothing written: rule n, ...; first: ...; allowed: ...``."""
    failures = check.failures
    counts = failures.drop_duplicates(["row", "rule"])["rule"].value_counts(sort=False)
    first = failures.iloc[0]
    rule = str(first["rule"])
    rule = "not_null" if rule.endswith("_not_nan") or rule == "not_nullable" else rule
    where = ""
    if first["row"] != STRUCTURAL_ROW:
        column = str(first["column"])
        shown = "" if column == "side" else f" {_shown(first['value'], column)}"
        where = f"; first: {column}{shown} of trade id {first['id']}"
    parts = ", ".join(f"{r} {n}" for r, n in counts.items())
    allowed = TRADE_RULES.get(rule, rule)
    return (f"{what}: refused {check.rows} trades, nothing written: {parts}{where}; "
            f"allowed: {allowed}")


def _shown(value: object, column: str) -> str:
    if pd.isna(value):  # type: ignore[call-overload]
        return "empty"
    number = float(value)  # type: ignore[arg-type]
    if column == "ts" and number == int(number):
        return f"{int(number)} ({np.datetime64(int(number), 'ms')})"
    return str(int(number)) if column == "id" else f"{number:g}"
