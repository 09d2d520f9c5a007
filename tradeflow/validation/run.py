"""A validation run over stored candles: per-series checks, the GX suite, one report.

What a run judges (:func:`plan_validation`): by default every candle not judged before (a
watermark per series, :mod:`tradeflow.market.watermarks`), or all stored candles, or a
``--timerange`` (YYYYMMDD-YYYYMMDD), or the last ``--days``. Steps, each a plain function the
Prefect tasks wrap: :func:`check_series` (hard rules with pandera, soft rules on derived
columns, each rule's policy applied: quarantine, exclusion, warning; gaps found and told
apart from recorded unfillable ones), :func:`run_gx` (the Great Expectations checkpoints and
Data Docs), :func:`build_report`, and :func:`mark_judged_series` (watermarks moved once the
report exists). :func:`run_validation` chains them for the CLI.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from tradeflow import timeframes
from tradeflow.config import Settings, ValidationSettings
from tradeflow.contracts.rules import RULES, SOFT_RULES
from tradeflow.contracts.schemas import CANDLE_COLUMNS, check_candles
from tradeflow.errors import UsageError
from tradeflow.market.backfill import parse_window
from tradeflow.market.gaps import gap_runs
from tradeflow.market.quarantine import (
    add_quarantine,
    quarantine_failures,
    release_quarantine,
    replace_exclusions,
)
from tradeflow.market.store import MarketStore, SeriesKey, open_store
from tradeflow.market.tables import QUARANTINE_VALUES
from tradeflow.market.trade_candles import stored_verdicts
from tradeflow.market.watermarks import mark_judged, newest_ingest, unjudged
from tradeflow.validation import gx_suite
from tradeflow.validation.report import (
    REPORT_RULES,
    GapSummary,
    RuleResult,
    SeriesSummary,
    ValidationReport,
)
from tradeflow.validation.stats import derive, soft_failures, warmup_candles

DAY_MS = 86_400_000
SOURCE = "validate"
Scope = Literal["new", "all", "range"]


@dataclass(frozen=True, slots=True)
class ValidationPlan:
    """What one run judges: series, which of their candles, and the time it is judged at."""

    keys: tuple[SeriesKey, ...]
    scope: Scope
    start_ms: int | None  # range: first open time judged (None: the first stored)
    end_ms: int | None    # range: last open time judged (None: the last stored)
    now_ms: int
    cfg: ValidationSettings
    data_dir: Path
    label: str            # what was judged, in words

    @property
    def window_days(self) -> float | None:
        """Days of the window when judged by ``--days`` (reports)."""
        if self.scope != "range" or self.start_ms is None or self.end_ms is not None:
            return None
        return (self.now_ms - self.start_ms) / DAY_MS


@dataclass(frozen=True, slots=True)
class SeriesCheck:
    """The verdicts on one series' judged candles and the frame the GX suite will judge."""

    key: SeriesKey
    candles: int                       # candles judged
    hard_failed: int                   # candles breaking at least one hard rule
    hard_counts: dict[str, int] = field(default_factory=dict)
    quarantined: int = 0               # new quarantine entries
    frame: pd.DataFrame | None = None  # judged candles + derived columns; None when none
    released: int = 0                  # quarantine entries released (candle passes now)
    span: tuple[int, int] | None = None   # first and last open time judged
    note: str = ""
    soft_counts: dict[str, int] = field(default_factory=dict)  # candles failing soft rules
    quarantine_candles: int = 0        # judged candles in quarantine (any rule) after the run
    excluded: int = 0                  # judged candles excluded by a policy
    gaps: GapSummary | None = None
    flat_traded: int = 0               # flat candles that traded: genuine, not synthetic
    through: datetime | None = None    # the watermark once this check is reported


def plan_validation(settings: Settings, window_days: float | None = None,
                    now_ms: int | None = None, *, all_candles: bool = False,
                    timerange: str | None = None) -> ValidationPlan:
    """Every configured (symbol, timeframe): candles not judged before by default, all of
    them, a freqtrade ``timerange`` (``20200101-20201231``, open ends allowed), or the last
    ``window_days`` days; at most one of the three."""
    given = [flag for flag, on in (("--all", all_candles), ("--timerange", timerange),
                                   ("--days", window_days is not None)) if on]
    if len(given) > 1:
        raise UsageError(f"give one of --all, --timerange, --days, not {' and '.join(given)}")
    keys = tuple(SeriesKey(settings.exchange.id, s, tf)
                 for s in settings.symbols for tf in settings.timeframes)
    now = int(time.time() * 1000) if now_ms is None else int(now_ms)

    def plan(scope: Scope, start: int | None, end: int | None, label: str) -> ValidationPlan:
        return ValidationPlan(keys, scope, start, end, now, settings.validation,
                              settings.data_dir, label)

    if all_candles:
        return plan("all", None, None, "all stored candles")
    if timerange is not None:
        window = parse_window(timerange=timerange, now_ms=now)
        last = "" if window.end is None else timeframes.iso(window.end)
        return plan("range", window.start, window.end,
                    f"candles from {timeframes.iso(window.start)} to {last or 'the last'}")
    if window_days is not None:
        if not window_days > 0 or window_days == float("inf"):
            raise UsageError(f"--days {window_days}: must be a positive number of days")
        start = now - int(window_days * DAY_MS)
        return plan("range", start, None, f"the last {window_days:g} days")
    return plan("new", None, None, "candles not judged before")


def check_series(store: MarketStore, key: SeriesKey, plan: ValidationPlan) -> SeriesCheck:
    """Every rule on one series' judged candles, each rule's policy applied."""
    bounds = store.bounds(key)
    if bounds is None:
        return SeriesCheck(key, 0, 0, note="no candles stored")
    span, through = _span(store, key, plan, bounds)
    if span is None:
        note = "nothing new to judge" if plan.scope == "new" else "no candles in the window"
        return SeriesCheck(key, 0, 0, note=note, through=through)
    start, end = span
    tf = key.timeframe
    warm_from = start - warmup_candles(plan.cfg) * timeframes.duration_ms(tf)
    history = store.read(key, warm_from, end, columns=CANDLE_COLUMNS)
    window = history[history["open_time"].to_numpy() >= start].reset_index(drop=True)
    check = check_candles(window, tf)
    quarantined = quarantine_failures(store, key, window, check, source=SOURCE)
    reaches_end = end >= bounds[1]
    frame = derive(history, tf, plan.cfg, window_start=start,
                   last_closed=timeframes.last_closed_open(plan.now_ms, tf) if reaches_end
                   else None)
    verdicts = stored_verdicts(store, key, start, end)
    at = np.searchsorted(verdicts["open_time"].to_numpy(), frame["open_time"].to_numpy())
    frame["trades_mismatch"] = verdicts["trades_mismatch"].to_numpy()[
        np.minimum(at, max(len(verdicts) - 1, 0))] if len(verdicts) else np.nan
    soft = soft_failures(frame, plan.cfg)
    policy = soft["rule"].map(plan.cfg.policy)
    to_quarantine = soft[policy == "quarantine"]
    if not to_quarantine.empty:
        quarantined += add_quarantine(store, key, _raw_values(window, to_quarantine),
                                      source=SOURCE)
    replace_exclusions(store, key, start, end, soft[policy == "exclude"])
    failing = pd.concat([_hard_pairs(window, check), to_quarantine], ignore_index=True)
    released = release_quarantine(store, key, start, end, failing)
    set_aside = _set_aside(store, key, start, end)
    return SeriesCheck(
        key, len(window), len(check.failed_rows), dict(check.counts), quarantined, frame,
        released, (start, end), soft_counts=_counts(soft),
        quarantine_candles=set_aside["quarantine"], excluded=set_aside["exclude"],
        gaps=_gaps(store, key, history, start), through=through,
        flat_traded=int(frame["flat_traded"].sum()),
    )


def run_gx(checks: list[SeriesCheck], plan: ValidationPlan,
           context: Any | None = None) -> gx_suite.SuiteResult:
    """The GX suite over every series that has candles, and Data Docs for the run."""
    context = context if context is not None else gx_suite.open_context(plan.data_dir)
    batches = {str(c.key): c.frame for c in checks if c.frame is not None}
    return gx_suite.run_suite(context, batches, plan.cfg, run_name=f"validate-{plan.scope}")


def build_report(checks: list[SeriesCheck], suite: gx_suite.SuiteResult,
                 plan: ValidationPlan) -> ValidationReport:
    """Merge pandera's candle counts and the suite's rule counts into one report."""
    series: list[SeriesSummary] = []
    rules: list[RuleResult] = []
    for check in checks:
        name = str(check.key)
        checked: dict[str, int] = defaultdict(int)
        failed: dict[str, int] = defaultdict(int)
        for outcome in suite.outcomes.get(name, []):
            checked[outcome.rule] += outcome.checked
            failed[outcome.rule] += outcome.failed
        if check.note == "no candles stored":
            checked["stale"], failed["stale"] = 1, 1
        for rule in REPORT_RULES:
            if rule in checked:
                policy = "quarantine" if rule not in SOFT_RULES else plan.cfg.policy(rule)
                rules.append(RuleResult(name, rule, RULES[rule].severity, checked[rule],
                                        failed[rule], policy))
        series.append(SeriesSummary(
            series=name, label=f"{check.key.symbol} {check.key.timeframe}",
            candles=check.candles, hard_failed=check.hard_failed,
            quarantined=check.quarantined, released=check.released, note=check.note,
            page=suite.pages.get(name), span=check.span,
            quarantine_candles=check.quarantine_candles, excluded=check.excluded,
            gaps=check.gaps, flat_traded=check.flat_traded,
        ))
    return ValidationReport(
        now_ms=plan.now_ms, judged=plan.label,
        max_hard_failure_share=plan.cfg.max_hard_failure_share,
        docs_index=suite.docs_index, series=tuple(series), rules=tuple(rules),
    ).with_summary_page()


def mark_judged_series(store: MarketStore, checks: list[SeriesCheck]) -> int:
    """Move each judged series' watermark; returns how many moved."""
    moved = 0
    for check in checks:
        if check.through is not None:
            mark_judged(store, check.key, check.through)
            moved += 1
    return moved


def run_validation(settings: Settings, window_days: float | None = None,
                   now_ms: int | None = None, *, store: MarketStore | None = None,
                   context: Any | None = None, all_candles: bool = False,
                   timerange: str | None = None) -> ValidationReport:
    """Validate every configured series end to end (the CLI's path; no Prefect needed)."""
    plan = plan_validation(settings, window_days, now_ms, all_candles=all_candles,
                           timerange=timerange)
    own = store is None
    store = store or open_store(settings)
    try:
        checks = [check_series(store, key, plan) for key in plan.keys]
        report = build_report(checks, run_gx(checks, plan, context), plan)
        mark_judged_series(store, checks)
    finally:
        if own:
            store.close()
    return report


# -- helpers ----------------------------------------------------------------------------------
def _span(store: MarketStore, key: SeriesKey, plan: ValidationPlan,
          bounds: tuple[int, int, int]) -> tuple[tuple[int, int] | None, datetime | None]:
    """The open times judged and the watermark once they are (None: not moved)."""
    if plan.scope == "new":
        todo = unjudged(store, key)
        return (None, None) if todo is None else ((todo.first, todo.last), todo.through)
    if plan.scope == "all":
        return (bounds[0], bounds[1]), newest_ingest(store, key)
    tf = key.timeframe
    start = bounds[0] if plan.start_ms is None else max(_ceil(plan.start_ms, tf), bounds[0])
    end = bounds[1] if plan.end_ms is None else min(timeframes.floor(plan.end_ms, tf),
                                                    bounds[1])
    if plan.start_ms is not None and plan.end_ms is None and start > bounds[1]:
        # A series that stopped before the window is judged on its last candle: stale shows.
        start = bounds[1]
    return ((start, end) if start <= end else None), None


def _ceil(ms: int, timeframe: str) -> int:
    """The first grid open time at or after ``ms``."""
    floor = timeframes.floor(ms, timeframe)
    return floor if floor == ms else timeframes.next_open(floor, timeframe)


def _raw_values(window: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """``pairs`` (open_time, rule) with the candles' raw values, for the quarantine."""
    rows = np.searchsorted(window["open_time"].to_numpy(), pairs["open_time"].to_numpy())
    return pd.DataFrame({"open_time": pairs["open_time"].to_numpy(dtype=np.int64),
                         "rule": pairs["rule"].to_numpy(dtype=object),
                         **{c: window[c].to_numpy()[rows] for c in QUARANTINE_VALUES}})


def _hard_pairs(window: pd.DataFrame, check: Any) -> pd.DataFrame:
    failures = check.failures
    keep = failures[failures["row"] >= 0]
    return pd.DataFrame({"open_time": keep["open_time"].to_numpy(dtype=np.int64),
                         "rule": keep["rule"].to_numpy(dtype=object)})


def _counts(pairs: pd.DataFrame) -> dict[str, int]:
    return {str(k): int(v) for k, v in pairs["rule"].value_counts(sort=False).items()}


def _set_aside(store: MarketStore, key: SeriesKey, start: int, end: int) -> dict[str, int]:
    """Judged candles in quarantine and excluded after the run (each candle counted once)."""
    row = store.sql(
        "SELECT (SELECT count(DISTINCT open_time) FROM candles_quarantine WHERE exchange = ? "
        "AND symbol = ? AND timeframe = ? AND open_time BETWEEN ? AND ?), (SELECT "
        "count(DISTINCT open_time) FROM candles_excluded WHERE exchange = ? AND symbol = ? "
        "AND timeframe = ? AND open_time BETWEEN ? AND ?)",
        [key.exchange, key.symbol, key.timeframe, start, end] * 2).iloc[0]
    return {"quarantine": int(row.iloc[0]), "exclude": int(row.iloc[1])}


def _gaps(store: MarketStore, key: SeriesKey, history: pd.DataFrame,
          start: int) -> GapSummary:
    """Gaps ending in the judged span (the one before its first candle included), each told
    repairable or recorded unfillable (the exchange has no candles there)."""
    gaps = gap_runs(history["open_time"].to_numpy(), key.timeframe)
    gaps = gaps[gaps["end_time"].to_numpy() >= timeframes.previous_open(start, key.timeframe)]
    known = [(g.start_time, g.end_time) for g in store.unfillable(key)]
    return GapSummary.of(gaps.reset_index(drop=True), known)
