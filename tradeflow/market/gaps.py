"""Gap detection over the market store, computed in SQL.

The expected grid of a timeframe is every ``step`` since the epoch for 1s..1d (weeks open on
Mondays, which the stored candles themselves carry), and calendar months for ``1M``. A gap is
a run of grid candles missing between two stored ones; with explicit ``start``/``end`` the
missing head and tail of the window are reported too.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tradeflow import timeframes
from tradeflow.market.store import MarketStore, SeriesKey

GAP_COLUMNS = ["start_time", "end_time", "missing"]

_FIXED_SQL = """
WITH s AS (
    SELECT open_time, lead(open_time) OVER (ORDER BY open_time) AS nxt
    FROM candles
    WHERE exchange = $ex AND symbol = $sym AND timeframe = $tf
      AND open_time BETWEEN $lo AND $hi
)
SELECT open_time + $step AS start_time, nxt - $step AS end_time,
       (nxt - open_time) // $step - 1 AS missing
FROM s WHERE nxt - open_time > $step
ORDER BY start_time
"""

# Months: add calendar intervals on naive UTC timestamps (make_timestamp takes microseconds).
_MONTH_SQL = """
WITH s AS (
    SELECT open_time, lead(open_time) OVER (ORDER BY open_time) AS nxt
    FROM candles
    WHERE exchange = $ex AND symbol = $sym AND timeframe = $tf
      AND open_time BETWEEN $lo AND $hi
), m AS (
    SELECT open_time, nxt,
           epoch_ms(make_timestamp(open_time * 1000) + to_months($n)) AS expected
    FROM s WHERE nxt IS NOT NULL
)
SELECT expected AS start_time,
       epoch_ms(make_timestamp(nxt * 1000) - to_months($n)) AS end_time,
       datediff('month', make_timestamp(open_time * 1000), make_timestamp(nxt * 1000)) // $n - 1
           AS missing
FROM m WHERE nxt > expected
ORDER BY start_time
"""


def find_gaps(store: MarketStore, key: SeriesKey, start: int | None = None,
              end: int | None = None) -> pd.DataFrame:
    """Missing candle ranges of a series as a frame (start_time, end_time, missing).

    Interior gaps between stored candles always; with ``start``/``end`` (grid open times)
    also the missing head before the first and tail after the last stored candle.
    """
    lo = -(2**62) if start is None else start
    hi = 2**62 if end is None else end
    n, unit = timeframes.parse(key.timeframe)
    params: dict[str, object] = {"ex": key.exchange, "sym": key.symbol, "tf": key.timeframe,
                                 "lo": lo, "hi": hi}
    if unit == timeframes.MONTH:
        sql, params["n"] = _MONTH_SQL, n
    else:
        sql, params["step"] = _FIXED_SQL, timeframes.duration_ms(key.timeframe)
    with store.connection() as con:
        gaps = con.execute(sql, params).df()
        first_last = con.execute(
            "SELECT min(open_time), max(open_time) FROM candles WHERE exchange = $ex AND "
            "symbol = $sym AND timeframe = $tf AND open_time BETWEEN $lo AND $hi",
            {k: params[k] for k in ("ex", "sym", "tf", "lo", "hi")},
        ).fetchone()
    rows = [gaps[GAP_COLUMNS].astype("int64")]
    first, last = first_last if first_last else (None, None)
    edges = []
    if start is not None and end is not None and first is None:
        edges.append(_edge(start, end, key.timeframe))
    else:
        if start is not None and first is not None and first > start:
            edges.append(_edge(start, timeframes.previous_open(int(first), key.timeframe),
                               key.timeframe))
        if end is not None and last is not None and last < end:
            edges.append(_edge(timeframes.next_open(int(last), key.timeframe), end,
                               key.timeframe))
    edges = [e for e in edges if e[2] > 0]
    if edges:
        rows.append(pd.DataFrame(edges, columns=GAP_COLUMNS).astype("int64"))
    out = pd.concat(rows, ignore_index=True) if len(rows) > 1 else rows[0]
    return out.sort_values("start_time", ignore_index=True)


def missing_before(times: np.ndarray, timeframe: str) -> np.ndarray:
    """For ascending open times on the grid, how many grid candles are missing just before
    each one (NaN for the first): the pure twin of :func:`find_gaps`, for stored windows."""
    times = np.asarray(times, dtype=np.int64)
    out = np.full(times.size, np.nan)
    if times.size < 2:
        return out
    n, unit = timeframes.parse(timeframe)
    if unit == timeframes.MONTH:
        months = times.astype("datetime64[ms]").astype("datetime64[M]").astype(np.int64)
        out[1:] = np.diff(months) // n - 1
    else:
        out[1:] = np.diff(times) // timeframes.duration_ms(timeframe) - 1
    # Candles off the grid or out of order are other rules' findings, not gaps.
    return np.maximum(out, 0, where=~np.isnan(out), out=out)


def gap_runs(times: np.ndarray, timeframe: str) -> pd.DataFrame:
    """Interior gaps of ascending open times, as :func:`find_gaps` reports them from SQL."""
    times = np.asarray(times, dtype=np.int64)
    missing = missing_before(times, timeframe)
    at = np.flatnonzero(missing > 0)
    if timeframes.is_calendar(timeframe):
        starts = np.array([timeframes.next_open(int(times[i - 1]), timeframe) for i in at],
                          dtype=np.int64)
        ends = np.array([timeframes.previous_open(int(times[i]), timeframe) for i in at],
                        dtype=np.int64)
    else:
        step = timeframes.duration_ms(timeframe)
        starts, ends = times[at - 1] + step, times[at] - step
    return pd.DataFrame({"start_time": starts, "end_time": ends,
                         "missing": missing[at].astype(np.int64)}, columns=GAP_COLUMNS)


def _edge(start: int, end: int, timeframe: str) -> tuple[int, int, int]:
    grid_start = timeframes.floor(start, timeframe)
    if grid_start < start:
        grid_start = timeframes.next_open(grid_start, timeframe)
    return grid_start, end, timeframes.count_between(grid_start, end, timeframe)


def subtract_ranges(gaps: pd.DataFrame, known: list[tuple[int, int]]) -> pd.DataFrame:
    """Drop gaps that lie inside a known (unfillable) range."""
    if gaps.empty or not known:
        return gaps
    keep = [
        not any(a <= s and e <= b for a, b in known)
        for s, e in zip(gaps["start_time"], gaps["end_time"], strict=True)
    ]
    return gaps[keep].reset_index(drop=True)


def stored_end(store: MarketStore, exchange: str, symbols: tuple[str, ...] | list[str],
               timeframe: str) -> int | None:
    """End of the history every symbol has: the close of the earliest last candle.

    Training and promotion windows end here, so they agree with what was backfilled even
    when the exchange's clock runs ahead of the wall clock (the accelerated simulator).
    """
    lasts = []
    for symbol in symbols:
        bounds = store.bounds(SeriesKey(exchange, symbol, timeframe))
        if bounds is None:
            return None
        lasts.append(bounds[1])
    return timeframes.next_open(min(lasts), timeframe)
