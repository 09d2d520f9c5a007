"""Quarantine: candles that broke a hard rule are listed, never fixed, and kept out of training.

Borders (a fetched page, an imported file, the validate flow) store candles as received and
record the failing ones with :func:`quarantine_failures`. Training reads through
:func:`load_clean_candles`, which leaves quarantined candles out and refuses a window that
still breaks the contract (candles stored before validation existed, say).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tradeflow.contracts.schemas import CandleCheck, assert_candles
from tradeflow.market.store import QUARANTINE_VALUES, MarketStore, SeriesKey

QUARANTINE_COLUMNS = ("open_time", "rule", *QUARANTINE_VALUES)


def quarantine_rows(frame: pd.DataFrame, check: CandleCheck) -> pd.DataFrame:
    """One line per failing (row, rule) with the row's raw values, ready for the store.

    Rows without an open time cannot be keyed and are left out; whole-column problems
    (missing column, wrong dtype) concern no row in particular and are left out too.
    """
    failures = check.failures
    keep = (failures["row"] >= 0) & failures["open_time"].notna()
    picked = failures.loc[keep, ["row", "open_time", "rule"]].drop_duplicates(["row", "rule"])
    rows = picked["row"].to_numpy(dtype=np.int64)
    out: dict[str, np.ndarray] = {
        "open_time": picked["open_time"].to_numpy(dtype=np.int64),
        "rule": picked["rule"].to_numpy(dtype=object),
    }
    for col in QUARANTINE_VALUES:
        if col in frame.columns:
            values = pd.to_numeric(frame[col], errors="coerce")
            out[col] = values.to_numpy(dtype=np.float64, na_value=np.nan)[rows]
        else:
            out[col] = np.full(len(rows), np.nan)
    return pd.DataFrame(out, columns=list(QUARANTINE_COLUMNS))


def quarantine_failures(store: MarketStore, key: SeriesKey, frame: pd.DataFrame,
                        check: CandleCheck, *, source: str) -> int:
    """Record the rows of ``frame`` that ``check`` failed; returns the new entries."""
    if check.ok:
        return 0
    return store.quarantine(key, quarantine_rows(frame, check), source=source)


def load_clean_candles(store: MarketStore, key: SeriesKey, start: int | None = None,
                       end: int | None = None) -> pd.DataFrame:
    """Candles of one series for training: quarantined ones left out, contract asserted.

    Returns open_time, open, high, low, close, volume, quote_volume and trades with
    ``start <= open_time <= end``, ascending. Raises
    :class:`~tradeflow.contracts.schemas.ContractError` when a remaining candle breaks a
    hard rule (it was stored without being validated: run ``tradeflow validate``).
    """
    frame = store.read(key, start, end, exclude_quarantined=True)
    what = f"{key} (not yet validated; run `tradeflow validate` to quarantine these)"
    return assert_candles(frame, key.timeframe, what=what)

