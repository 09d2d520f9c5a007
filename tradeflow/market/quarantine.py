"""Candles set aside: quarantined or excluded, listed beside the candles and never rewritten.

* **Quarantine** lists candles that broke a hard rule (found by the store's write path, a
  fetch or validation) or a soft rule whose policy is ``quarantine``, with their raw values.
  An entry is released (moved to ``candles_quarantine_released``) once validation finds its
  candle passing: for a hard rule, after the candle was replaced by other values (a re-import,
  a refetch); for a soft rule, as soon as it passes or its policy changed.
* **Exclusion** lists candles a soft rule with the ``exclude`` policy set aside (a synthetic
  forward-filled candle, by default): they are fine to keep, not to learn from. Validation
  rewrites the exclusions of every window it judges, so a changed policy takes effect there.

Training and backtests read through :func:`load_clean_candles`, which leaves both out and
refuses a window that still breaks the contract (candles stored before validation existed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tradeflow.contracts.rules import SOFT_RULES
from tradeflow.contracts.schemas import CandleCheck, assert_candles
from tradeflow.market.store import MarketStore, SeriesKey
from tradeflow.market.tables import QUARANTINE_VALUES, atomic, insert_quarantine, registered
from tradeflow.market.watermarks import unjudged_count

QUARANTINE_COLUMNS = ("open_time", "rule", *QUARANTINE_VALUES)
_KEY = "exchange = ? AND symbol = ? AND timeframe = ?"


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


def add_quarantine(store: MarketStore, key: SeriesKey, rows: pd.DataFrame, *,
                   source: str) -> int:
    """Record candles that broke a rule; returns how many entries are new.

    ``rows`` carries open_time, rule and the raw open, high, low, close, volume. An entry
    already recorded with the same key, rule and values is not added again, so validating
    the same data twice changes nothing. The candles table is never touched.
    """
    if rows.empty:
        return 0
    with store.connection(write=True) as con:
        return insert_quarantine(con, key, rows, source)


def quarantine_failures(store: MarketStore, key: SeriesKey, frame: pd.DataFrame,
                        check: CandleCheck, *, source: str) -> int:
    """Record the rows of ``frame`` that ``check`` failed; returns the new entries."""
    if check.ok:
        return 0
    return add_quarantine(store, key, quarantine_rows(frame, check), source=source)


def release_quarantine(store: MarketStore, key: SeriesKey, start: int, end: int | None,
                       still_failing: pd.DataFrame) -> int:
    """Release quarantine entries in [start, end] that validation found passing.

    ``still_failing`` holds the (open_time, rule) pairs that fail now. An entry of a hard
    rule is released when its candle is stored with values other than the quarantined ones
    and the pair is not failing; an entry of a soft rule as soon as the pair is not failing
    (under the quarantine policy). Entries move to ``candles_quarantine_released`` with the
    time of release; returns how many moved.
    """
    changed = " OR ".join(f"q.{c} IS DISTINCT FROM c.{c}" for c in QUARANTINE_VALUES)
    soft = ", ".join(f"'{r}'" for r in SOFT_RULES)
    window = "q.open_time >= ?" + ("" if end is None else " AND q.open_time <= ?")
    params: list[object] = [key.exchange, key.symbol, key.timeframe, start]
    if end is not None:
        params.append(end)
    failing = pd.DataFrame({
        "open_time": still_failing["open_time"].to_numpy(dtype=np.int64),
        "rule": still_failing["rule"].astype(str).to_numpy(dtype=object)})
    picked = (
        "SELECT q.* FROM candles_quarantine q JOIN candles c ON c.exchange = q.exchange "
        "AND c.symbol = q.symbol AND c.timeframe = q.timeframe AND c.open_time = "
        "q.open_time WHERE q.exchange = ? AND q.symbol = ? AND q.timeframe = ? AND "
        f"{window} AND ({changed} OR q.rule IN ({soft})) AND NOT EXISTS (SELECT 1 FROM "
        "failing f WHERE f.open_time = q.open_time AND f.rule = q.rule)")
    columns = ("exchange, symbol, timeframe, open_time, rule, "
               f"{', '.join(QUARANTINE_VALUES)}, source, found_at")
    with store.connection(write=True) as con:
        with registered(con, "failing", failing):
            released = con.execute(picked, params).df()
        if released.empty:
            return 0
        with registered(con, "released", released), atomic(con):
            con.execute(f"INSERT INTO candles_quarantine_released SELECT {columns}, now() "
                        "FROM released")
            con.execute(
                "DELETE FROM candles_quarantine q USING released r WHERE "
                "q.exchange = r.exchange AND q.symbol = r.symbol AND q.timeframe = "
                "r.timeframe AND q.open_time = r.open_time AND q.rule = r.rule AND "
                "q.source = r.source AND q.found_at = r.found_at")
    return len(released)


def replace_exclusions(store: MarketStore, key: SeriesKey, start: int, end: int,
                       rows: pd.DataFrame) -> int:
    """Make ``rows`` (open_time, rule) the exclusions of [start, end]; returns their count."""
    batch = pd.DataFrame({"open_time": rows["open_time"].to_numpy(dtype=np.int64),
                          "rule": rows["rule"].astype(str).to_numpy(dtype=object)})
    with store.connection(write=True) as con, registered(con, "xbatch", batch), atomic(con):
        con.execute(f"DELETE FROM candles_excluded WHERE {_KEY} AND open_time BETWEEN ? AND ?",
                    [key.exchange, key.symbol, key.timeframe, start, end])
        con.execute("INSERT INTO candles_excluded SELECT DISTINCT ?, ?, ?, open_time, rule, "
                    "now() FROM xbatch", [key.exchange, key.symbol, key.timeframe])
    return len(batch.drop_duplicates())


def excluded(store: MarketStore, key: SeriesKey) -> pd.DataFrame:
    """Exclusions of one series (open_time, rule, found_at), ascending."""
    return store.sql(f"SELECT open_time, rule, found_at FROM candles_excluded WHERE {_KEY} "
                     "ORDER BY open_time, rule", [key.exchange, key.symbol, key.timeframe])


@dataclass(frozen=True)
class SetAside:
    """Candles of a window validation left out, per list and rule, summed over series
    (``{"quarantine": {"high_ge_body": 2}, "exclude": {"synthetic_fill": 1039}}``), and the
    candles no validation run has judged yet (a policy cannot have acted on them)."""

    counts: dict[str, dict[str, int]] = field(
        default_factory=lambda: {"quarantine": {}, "exclude": {}})
    unjudged: int = 0

    def lines(self) -> list[str]:
        """``synthetic_fill 1,039 (exclude)``, one per rule, most first."""
        rows = [(n, rule, kind) for kind, rules in self.counts.items()
                for rule, n in rules.items()]
        return [f"{rule} {n:,} ({kind})" for n, rule, kind in sorted(rows, reverse=True)]

    def metrics(self) -> dict[str, float]:
        """``data.excluded.<rule>``, ``data.quarantined.<rule>``, their totals and
        ``data.unvalidated``."""
        names = {"exclude": "excluded", "quarantine": "quarantined"}
        out = {f"data.{names[kind]}.{rule}": float(n)
               for kind, rules in self.counts.items() for rule, n in rules.items()}
        for kind, name in names.items():
            out[f"data.{name}"] = float(sum(self.counts[kind].values()))
        out["data.unvalidated"] = float(self.unjudged)
        return out


def set_aside(store: MarketStore, keys: list[SeriesKey], start: int | None = None,
              end: int | None = None) -> SetAside:
    """What validation left out of ``start <= open_time <= end`` of the series (a candle
    counts once per rule)."""
    lo, hi = -(2**62) if start is None else start, 2**62 if end is None else end
    total: dict[str, dict[str, int]] = {"quarantine": {}, "exclude": {}}
    unjudged = 0
    for key in keys:
        params = [key.exchange, key.symbol, key.timeframe, lo, hi]
        frame = store.sql(
            "SELECT 'quarantine' AS list, rule, count(DISTINCT open_time) AS n FROM "
            f"candles_quarantine WHERE {_KEY} AND open_time BETWEEN ? AND ? GROUP BY rule "
            "UNION ALL SELECT 'exclude', rule, count(DISTINCT open_time) FROM "
            f"candles_excluded WHERE {_KEY} AND open_time BETWEEN ? AND ? GROUP BY rule",
            params * 2)
        for row in frame.itertuples(index=False):
            rules = total[str(row.list)]
            rules[str(row.rule)] = rules.get(str(row.rule), 0) + int(row.n)
        unjudged += unjudged_count(store, key, start, end)
    return SetAside(total, unjudged)


def load_clean_candles(store: MarketStore, key: SeriesKey, start: int | None = None,
                       end: int | None = None) -> pd.DataFrame:
    """Candles of one series for training and backtests: set-aside ones left out, contract
    asserted.

    Returns open_time, open, high, low, close, volume, quote_volume and trades with
    ``start <= open_time <= end``, ascending. Raises
    :class:`~tradeflow.contracts.schemas.ContractError` when a remaining candle breaks a
    hard rule (it was stored without being validated: run ``tradeflow validate``).
    """
    frame = store.read(key, start, end, usable_only=True)
    what = f"{key} (not yet validated; run `tradeflow validate` to quarantine these)"
    return assert_candles(frame, key.timeframe, what=what)
