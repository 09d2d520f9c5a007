"""A validation run over stored candles: per-series checks, the GX suite, one report.

Steps, each a plain function the Prefect tasks wrap: :func:`plan_validation` (which series,
which window, what time it is), :func:`check_series` (pandera hard rules on the window,
quarantine of failing candles, derived columns for the suite), :func:`run_gx` (the Great
Expectations checkpoints and Data Docs) and :func:`build_report`. :func:`run_validation`
chains them for the CLI.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tradeflow import timeframes
from tradeflow.config import Settings, ValidationSettings
from tradeflow.contracts.rules import RULES
from tradeflow.contracts.schemas import CANDLE_COLUMNS, check_candles
from tradeflow.market.quarantine import quarantine_failures
from tradeflow.market.store import MarketStore, SeriesKey
from tradeflow.validation import gx_suite
from tradeflow.validation.report import (
    REPORT_RULES,
    RuleResult,
    SeriesSummary,
    ValidationReport,
)
from tradeflow.validation.stats import derive, warmup_candles

DAY_MS = 86_400_000
SOURCE = "validate"


@dataclass(frozen=True, slots=True)
class ValidationPlan:
    """What one run validates: series, window and the time it is judged at."""

    keys: tuple[SeriesKey, ...]
    window_days: float
    now_ms: int
    cfg: ValidationSettings
    data_dir: Path


@dataclass(frozen=True, slots=True)
class SeriesCheck:
    """The pandera verdict on one series' window and the frame the GX suite will judge."""

    key: SeriesKey
    candles: int
    hard_failed: int                   # candles breaking at least one hard rule
    hard_counts: dict[str, int] = field(default_factory=dict)
    quarantined: int = 0               # new quarantine entries
    frame: pd.DataFrame | None = None  # window + derived columns; None when no candles
    released: int = 0                  # quarantine entries released (candle corrected)


def plan_validation(settings: Settings, window_days: float | None = None,
                    now_ms: int | None = None) -> ValidationPlan:
    """Every configured (symbol, timeframe) over the last ``window_days`` (default: config)."""
    days = settings.validation.window_days if window_days is None else window_days
    if days <= 0:
        raise ValueError(f"window_days {days}: must be a positive number of days")
    keys = tuple(SeriesKey(settings.exchange.id, s, tf)
                 for s in settings.symbols for tf in settings.timeframes)
    now = int(time.time() * 1000) if now_ms is None else int(now_ms)
    return ValidationPlan(keys, float(days), now, settings.validation, settings.data_dir)


def check_series(store: MarketStore, key: SeriesKey, plan: ValidationPlan) -> SeriesCheck:
    """Hard rules on one series' window, failing candles quarantined, derived columns added."""
    bounds = store.bounds(key)
    if bounds is None:
        return SeriesCheck(key, 0, 0)
    tf = key.timeframe
    window_start = timeframes.floor(plan.now_ms - int(plan.window_days * DAY_MS), tf)
    # A series that stopped before the window is judged on its last candle: stale shows.
    start = min(window_start, bounds[1])
    warm_from = start - warmup_candles(plan.cfg) * timeframes.duration_ms(tf)
    history = store.read(key, warm_from, None, columns=CANDLE_COLUMNS)
    window = history[history["open_time"].to_numpy() >= start]
    check = check_candles(window, tf)
    quarantined = quarantine_failures(store, key, window, check, source=SOURCE)
    # Entries whose candle has since been replaced by values that pass are released.
    failing = window["open_time"].to_numpy(dtype=np.int64)[check.failed_rows]
    released = store.release_quarantine(key, start, None, failing)
    frame = derive(history, tf, plan.cfg, window_start=start,
                   last_closed=timeframes.last_closed_open(plan.now_ms, tf))
    return SeriesCheck(key, len(window), len(check.failed_rows), dict(check.counts),
                       quarantined, frame, released)


def run_gx(checks: list[SeriesCheck], plan: ValidationPlan,
           context: Any | None = None) -> gx_suite.SuiteResult:
    """The GX suite over every series that has candles, and Data Docs for the run."""
    context = context if context is not None else gx_suite.open_context(plan.data_dir)
    batches = {str(c.key): c.frame for c in checks if c.frame is not None}
    return gx_suite.run_suite(context, batches, plan.cfg,
                              run_name=f"validate-{plan.window_days:g}d")


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
        note = ""
        if check.frame is None:
            note = "no candles stored"
            checked["stale"], failed["stale"] = 1, 1
        for rule in REPORT_RULES:
            if rule in checked:
                rules.append(RuleResult(name, rule, RULES[rule].severity, checked[rule],
                                        failed[rule]))
        series.append(SeriesSummary(
            series=name, label=f"{check.key.symbol} {check.key.timeframe}",
            candles=check.candles, hard_failed=check.hard_failed,
            quarantined=check.quarantined, released=check.released, note=note,
            page=suite.pages.get(name),
        ))
    return ValidationReport(
        now_ms=plan.now_ms, window_days=plan.window_days,
        max_hard_failure_share=plan.cfg.max_hard_failure_share,
        docs_index=suite.docs_index, series=tuple(series), rules=tuple(rules),
    ).with_summary_page()


def run_validation(settings: Settings, window_days: float | None = None,
                   now_ms: int | None = None, *, store: MarketStore | None = None,
                   context: Any | None = None) -> ValidationReport:
    """Validate every configured series end to end (the CLI's path; no Prefect needed)."""
    plan = plan_validation(settings, window_days, now_ms)
    own = store is None
    store = store or MarketStore(settings.store_path, lock_retries=settings.store.lock_retries)
    try:
        checks = [check_series(store, key, plan) for key in plan.keys]
    finally:
        if own:
            store.close()
    return build_report(checks, run_gx(checks, plan, context), plan)
