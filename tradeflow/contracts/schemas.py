"""pandera contracts for candle and prediction frames, and checks that report instead of raising.

The candle contract depends on the timeframe (its grid: fixed steps since the epoch, weeks
opening on Monday, calendar months), so :func:`candle_schema` builds one per timeframe and
caches it. Row rules are written as whole-column numpy expressions: pandera's element-wise
and ``unique=`` built-ins hash or loop and cost 10-50x more on a million candles.

:func:`check_candles` and :func:`check_predictions` validate lazily and return every failing
cell as a tidy frame (``row, open_time, rule, column, value``) with counts per rule; they
never raise for data problems. :func:`assert_candles` and :func:`assert_predictions` raise
:class:`ContractError` instead, for borders that must refuse bad data.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from tradeflow import timeframes
from tradeflow.contracts.rules import (
    PLAUSIBLE_FROM_MS,
    PLAUSIBLE_TO_MS,
    PRICE_COLUMNS,
    REFUSED_AT_STORE,
    RULES,
    grid_offset,
)

CANDLE_COLUMNS = ("open_time", "open", "high", "low", "close", "volume")
PREDICTION_COLUMNS = ("open_time", "symbol", "probability", "model_version")
STRUCTURAL_ROW = -1  # ``row`` of a failure that concerns a whole column, not one row

# pandera reports a NaN in a nullable=False column as check "not_nullable"; our rule names.
_NULL_RULES = {
    "open_time": "open_time_not_null", "volume": "volume_not_nan",
    **{c: "price_not_nan" for c in PRICE_COLUMNS},
    "symbol": "symbol_not_null", "probability": "probability_not_nan",
    "model_version": "model_version_not_null",
}
# Frame-wide checks see every column; the tidy output names the column the rule is about.
_FRAME_RULE_COLUMN = {
    "high_ge_body": "high", "low_le_body": "low", "unique_symbol_open_time": "open_time",
}


@dataclass(frozen=True, slots=True)
class FrameCheck:
    """Outcome of a contract check: failing cells as a tidy frame plus counts per rule.

    ``failures`` has one line per failing (row, rule, column): ``row`` is the position in
    the checked frame (``-1`` for a whole-column problem such as a missing column or a wrong
    dtype), ``open_time`` and ``value`` are the raw values found there.
    """

    rows: int
    failures: pd.DataFrame
    counts: dict[str, int]

    @property
    def ok(self) -> bool:
        return not self.counts

    @property
    def failed_rows(self) -> np.ndarray:
        """Sorted positions of the rows that broke at least one rule."""
        rows = self.failures["row"].to_numpy(dtype=np.int64)
        return np.unique(rows[rows != STRUCTURAL_ROW])

    @property
    def structural(self) -> bool:
        """True when a column is missing or mistyped (the frame as a whole is unusable)."""
        return bool((self.failures["row"] == STRUCTURAL_ROW).any())

    def summary(self) -> str:
        """One line: ``3 of 1000 rows fail: high_ge_body 2, on_grid 1``."""
        if self.ok:
            return f"all {self.rows} rows pass"
        parts = ", ".join(f"{rule} {n}" for rule, n in sorted(self.counts.items()))
        return f"{len(self.failed_rows)} of {self.rows} rows fail: {parts}"


CandleCheck = FrameCheck
PredictionCheck = FrameCheck


class ContractError(ValueError):
    """A frame broke its contract at a border that refuses bad data; ``check`` says how."""

    def __init__(self, what: str, check: FrameCheck, message: str | None = None) -> None:
        super().__init__(message or f"{what}: {check.summary()}")
        self.check = check


class CandlesRefused(ContractError):
    """The market store refused a frame whole: one line naming the rule, the first failing
    cell and what is allowed."""


def refusal(check: FrameCheck, what: str) -> CandlesRefused | None:
    """The store's verdict: None when no ``refuse`` rule failed, else the error to raise."""
    refused = check.failures[check.failures["rule"].isin(REFUSED_AT_STORE)]
    if refused.empty:
        return None
    counts = refused.drop_duplicates(["row", "rule"])["rule"].value_counts(sort=False)
    first = refused.iloc[0]
    rule = str(first["rule"])
    where = ""
    if first["row"] != STRUCTURAL_ROW:
        at, column, value = first["open_time"], str(first["column"]), first["value"]
        if column == "open_time" or pd.isna(at):
            shown = "empty" if pd.isna(at) else f"{int(at)} ({np.datetime64(int(at), 'ms')})"
            where = f"; first: open_time {shown}"
        else:
            shown = "empty" if pd.isna(value) else f"{value:g}"
            where = f"; first: {column} {shown} in the candle at {timeframes.iso(int(at))}"
    parts = ", ".join(f"{r} {n}" for r, n in counts.items())
    return CandlesRefused(what, check, (
        f"{what}: refused {check.rows} candles, nothing written: {parts}{where}; "
        f"allowed: {RULES[rule].description}"))


# -- row rules: whole-column numpy; NaN passes here and is reported once as *_not_nan ---------
def _series(values: np.ndarray, like: pd.Series | pd.DataFrame) -> pd.Series:
    return pd.Series(values, index=like.index, copy=False)


def _positive_finite(values: pd.Series) -> pd.Series:
    x = values.to_numpy()
    return _series(~((x <= 0) | np.isinf(x)), values)


def _non_negative(values: pd.Series) -> pd.Series:
    return _series(~(values.to_numpy() < 0), values)


def _high_ge_body(frame: pd.DataFrame) -> pd.Series:
    body_top = np.maximum(frame["open"].to_numpy(), frame["close"].to_numpy())
    return _series(~(frame["high"].to_numpy() < body_top), frame)


def _low_le_body(frame: pd.DataFrame) -> pd.Series:
    body_bottom = np.minimum(frame["open"].to_numpy(), frame["close"].to_numpy())
    return _series(~(frame["low"].to_numpy() > body_bottom), frame)


def _on_grid(timeframe: str) -> Callable[[pd.Series], pd.Series]:
    def on_grid(times: pd.Series) -> pd.Series:
        return _series(grid_offset(times.to_numpy(), timeframe) == 0, times)

    return on_grid


def _unique_times(times: pd.Series) -> pd.Series:
    t = times.to_numpy()
    # Exchange pages and store reads are strictly increasing: unique without hashing.
    if t.size < 2 or bool((t[1:] > t[:-1]).all()):
        return _series(np.ones(t.size, dtype=bool), times)
    return ~times.duplicated(keep=False)


def _plausible_times(times: pd.Series) -> pd.Series:
    t = times.to_numpy()
    return _series((t >= PLAUSIBLE_FROM_MS) & (t < PLAUSIBLE_TO_MS), times)


def _increasing_times(times: pd.Series) -> pd.Series:
    t = times.to_numpy()
    ok = np.ones(t.size, dtype=bool)
    ok[1:] = t[1:] >= t[:-1]  # equal times are unique_open_time's to report, not this rule's
    return _series(ok, times)


def _probability_in_range(values: pd.Series) -> pd.Series:
    x = values.to_numpy()
    return _series(~((x < 0) | (x > 1)), values)


def _unique_symbol_time(frame: pd.DataFrame) -> pd.Series:
    return ~frame.duplicated(subset=["symbol", "open_time"], keep=False)


def _check(fn: Callable[..., pd.Series], name: str) -> pa.Check:
    # ignore_na=False: the functions above already let NaN pass, without pandera's isna pass.
    return pa.Check(fn, name=name, ignore_na=False)


@functools.lru_cache(maxsize=32)
def candle_schema(timeframe: str) -> pa.DataFrameSchema:
    """The candle contract for one timeframe; extra columns (quote_volume, trades) pass."""
    timeframes.parse(timeframe)  # a bad timeframe is a programming error: raise now

    def price() -> pa.Column:
        return pa.Column("float64", _check(_positive_finite, "price_positive"), nullable=False)

    return pa.DataFrameSchema(
        columns={
            "open_time": pa.Column("int64", [
                _check(_plausible_times, "plausible_time"),
                _check(_on_grid(timeframe), "on_grid"),
                _check(_unique_times, "unique_open_time"),
                _check(_increasing_times, "increasing_open_time"),
            ], nullable=False),
            **{c: price() for c in PRICE_COLUMNS},
            "volume": pa.Column("float64", _check(_non_negative, "volume_non_negative"),
                                nullable=False),
        },
        checks=[_check(_high_ge_body, "high_ge_body"), _check(_low_le_body, "low_le_body")],
        name=f"candles {timeframe}",
        strict=False,
        coerce=False,
    )


PREDICTIONS_SCHEMA = pa.DataFrameSchema(
    columns={
        "open_time": pa.Column("int64", nullable=False),
        "symbol": pa.Column(str, nullable=False),
        # Models often emit float32; widening is lossless, anything else is a type error.
        "probability": pa.Column("float64", _check(_probability_in_range,
                                                   "probability_in_range"),
                                 nullable=False, coerce=True),
        "model_version": pa.Column(str, nullable=False),
    },
    checks=[_check(_unique_symbol_time, "unique_symbol_open_time")],
    name="predictions",
    strict=False,
)


def check_candles(frame: pd.DataFrame, timeframe: str) -> CandleCheck:
    """Validate candles of one series against the hard rules; never raises for bad data."""
    return _run(candle_schema(timeframe), frame, ("open_time",))


def assert_candles(frame: pd.DataFrame, timeframe: str, what: str = "candles") -> pd.DataFrame:
    """Return ``frame`` unchanged when it meets the contract, else raise ContractError."""
    check = check_candles(frame, timeframe)
    if not check.ok:
        raise ContractError(what, check)
    return frame


def check_predictions(frame: pd.DataFrame) -> PredictionCheck:
    """Validate a predictions frame (open_time, symbol, probability, model_version)."""
    return _run(PREDICTIONS_SCHEMA, frame, ("symbol", "open_time"))


def assert_predictions(frame: pd.DataFrame) -> pd.DataFrame:
    """The validated predictions (probability widened to float64), or ContractError."""
    check = check_predictions(frame)
    if not check.ok:
        raise ContractError("predictions", check)
    return PREDICTIONS_SCHEMA.validate(frame)


def _run(schema: pa.DataFrameSchema, frame: pd.DataFrame, keys: tuple[str, ...]) -> FrameCheck:
    # Row labels become positions, so failures point at rows of the caller's frame.
    data = frame.reset_index(drop=True)
    try:
        schema.validate(data, lazy=True, inplace=True)
    except SchemaErrors as exc:
        return _tidy(exc.failure_cases, data, keys)
    return FrameCheck(len(data), _empty_failures(keys), {})


def _empty_failures(keys: tuple[str, ...]) -> pd.DataFrame:
    out: dict[str, pd.Series] = {"row": pd.Series([], dtype=np.int64)}
    for key in keys:
        out[key] = pd.Series([], dtype="Int64" if key == "open_time" else object)
    out["rule"] = pd.Series([], dtype=object)
    out["column"] = pd.Series([], dtype=object)
    out["value"] = pd.Series([], dtype=np.float64)
    return pd.DataFrame(out)


def _tidy(cases: pd.DataFrame, data: pd.DataFrame, keys: tuple[str, ...]) -> FrameCheck:
    check = cases["check"].astype(str).reset_index(drop=True)
    column = cases["column"].astype(object).reset_index(drop=True)
    index = pd.to_numeric(cases["index"], errors="coerce").reset_index(drop=True)
    missing = check == "column_in_dataframe"
    # A wrong dtype, a missing column, or a check that could not run on the column's values.
    structural = missing | check.str.startswith("dtype(") | index.isna()
    column = column.mask(missing, cases["failure_case"].reset_index(drop=True))
    rule = check.mask(structural, "dtype").mask(missing, "column_present")
    nulls = ~structural & (check == "not_nullable")
    rule = rule.mask(nulls, column.map(_NULL_RULES).fillna("not_null"))
    frame_column = rule.map(_FRAME_RULE_COLUMN)
    column = column.mask(frame_column.notna() & ~structural, frame_column)
    row = index.fillna(STRUCTURAL_ROW).mask(structural, STRUCTURAL_ROW).astype(np.int64)
    # A frame-wide check lists every column of a failing row; keep one line per rule and row.
    tidy = pd.DataFrame({"row": row, "rule": rule.astype(object), "column": column})
    tidy = tidy.drop_duplicates().sort_values(["row", "rule", "column"], kind="stable")
    rows = tidy["row"].to_numpy()
    has_row = rows != STRUCTURAL_ROW
    at = np.where(has_row, rows, 0)
    out: dict[str, object] = {"row": rows}
    for key in keys:
        out[key] = _key_values(data, key, at, has_row)
    out["rule"] = tidy["rule"].to_numpy()
    out["column"] = tidy["column"].to_numpy()
    out["value"] = _values(data, tidy["column"].to_numpy(), at, has_row)
    failures = pd.DataFrame(out)
    counts = {str(k): int(v) for k, v in failures["rule"].value_counts(sort=False).items()}
    return FrameCheck(len(data), failures, counts)


def _key_values(data: pd.DataFrame, key: str, at: np.ndarray,
                has_row: np.ndarray) -> pd.Series:
    if key not in data.columns or not len(data):
        values = pd.Series([None] * len(at), dtype=object)
    else:
        values = pd.Series(data[key].to_numpy()[at], dtype=object).where(has_row, None)
    if key != "open_time":
        return values
    return np.floor(pd.to_numeric(values, errors="coerce")).astype("Int64")


def _values(data: pd.DataFrame, columns: np.ndarray, at: np.ndarray,
            has_row: np.ndarray) -> np.ndarray:
    """The raw value of each failing cell as float (NaN where not numeric or not a cell)."""
    values = np.full(len(columns), np.nan)
    for col in pd.unique(columns[has_row]):
        if col not in data.columns:
            continue
        pick = has_row & (columns == col)
        raw = pd.to_numeric(pd.Series(data[col].to_numpy()[at[pick]]), errors="coerce")
        values[pick] = raw.to_numpy(dtype=np.float64, na_value=np.nan)
    return values
