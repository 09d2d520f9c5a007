"""The Great Expectations suite over stored candles, run as one Checkpoint per series.

A FILE data context lives in ``<data_dir>/gx`` (no cloud, analytics off, progress bars off).
Each series' window of candles, with the columns of :mod:`tradeflow.validation.stats`, is one
batch of a pandas dataframe asset; one suite (``candles``) holds the hard rules and the
statistical soft rules as plain column expectations, each tagged with its rule and severity
in ``meta``. After the checkpoints, Data Docs are built once for the run's results under
``<data_dir>/gx/uncommitted/data_docs/local_site/``.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

import pandas as pd

from tradeflow.config import ValidationSettings
from tradeflow.contracts.rules import (
    PLAUSIBLE_FROM_MS,
    PLAUSIBLE_TO_MS,
    PRICE_COLUMNS,
    RULES,
)

log = logging.getLogger(__name__)

SUITE = "candles"
DATASOURCE = "market"
BATCH = "window"
SITE = "local_site"
# The index page loads every listed result; bound it so it stays fast after many runs.
INDEX_RESULTS_LIMIT = 300
RESULT_FORMAT = {
    "result_format": "SUMMARY",
    "unexpected_index_column_names": ["open_time"],
    "partial_unexpected_count": 20,
}
_SITE_CONFIG = {
    "class_name": "SiteBuilder",
    "show_how_to_buttons": False,
    "store_backend": {
        "class_name": "TupleFilesystemStoreBackend",
        "base_directory": f"uncommitted/data_docs/{SITE}/",
    },
    "site_index_builder": {
        "class_name": "DefaultSiteIndexBuilder",
        "validation_results_limit": INDEX_RESULTS_LIMIT,
    },
}
# Rendered pages fetch GX's logo with the data context id appended: a usage beacon.
_BEACON_RE = re.compile(r"(logo-long\.png)\?[^\"'\s>]*")


@dataclass(frozen=True, slots=True)
class ExpectationOutcome:
    """One expectation's verdict on one series."""

    rule: str
    severity: str
    expectation: str
    column: str
    checked: int
    failed: int


@dataclass(frozen=True, slots=True)
class SuiteResult:
    """Outcomes per series name, the Data Docs index and each series' result page."""

    docs_index: Path
    outcomes: dict[str, list[ExpectationOutcome]]
    pages: dict[str, Path | None]


def open_context(data_dir: str | Path) -> Any:
    """The FILE data context in ``<data_dir>/gx``, created on first use."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    root = Path(data_dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    context = gx.get_context(mode="file", project_root_dir=str(root))
    variables = context.variables
    changed = False
    if variables.analytics_enabled is not False:
        variables.analytics_enabled = False
        changed = True
    bars = variables.progress_bars
    globally = bars.get("globally") if isinstance(bars, dict) else getattr(bars, "globally", None)
    if globally is not False:
        variables.progress_bars = ProgressBarsConfig(globally=False)
        changed = True
    if context.list_data_docs_sites().get(SITE) != _SITE_CONFIG:
        variables.data_docs_sites = {SITE: _SITE_CONFIG}
        changed = True
    if changed:
        variables.save()
    return context


def asset_name(series: str) -> str:
    """A file-safe GX asset name for ``exchange:BASE/QUOTE:tf``."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", series.replace("/", "-")).strip("_")


def build_expectations(cfg: ValidationSettings) -> list[Any]:
    """The suite's expectations: hard rules on raw columns, soft rules on derived ones."""
    import great_expectations.expectations as gxe

    def tag(rule: str, text: str) -> dict[str, Any]:
        severity = RULES[rule].severity
        policy = "quarantine" if severity == "hard" else cfg.policy(rule)
        return {"meta": {"rule": rule, "severity": severity, "policy": policy},
                "description": f"{rule} [{severity}, {policy}]: {text}"}

    out: list[Any] = [gxe.ExpectColumnValuesToBeBetween(
        column="open_time", min_value=PLAUSIBLE_FROM_MS, max_value=PLAUSIBLE_TO_MS - 1,
        **tag("plausible_time", "open_time is between 2009-01-03 and 2100-01-01 UTC (ms)"))]
    for col in PRICE_COLUMNS:
        out.append(gxe.ExpectColumnValuesToNotBeNull(
            column=col, **tag("price_not_nan", f"{col} is present")))
        # The upper bound is the largest float: an infinite price fails like a zero one.
        out.append(gxe.ExpectColumnValuesToBeBetween(
            column=col, min_value=0, strict_min=True, max_value=sys.float_info.max,
            **tag("price_positive", f"{col} is positive and finite")))
    out += [
        gxe.ExpectColumnValuesToNotBeNull(
            column="volume", **tag("volume_not_nan", "volume is present")),
        gxe.ExpectColumnValuesToBeBetween(
            column="volume", min_value=0, **tag("volume_non_negative", "volume >= 0")),
        gxe.ExpectColumnValuesToBeBetween(
            column="upper_wick", min_value=0,
            **tag("high_ge_body", "upper_wick = high - max(open, close) is >= 0")),
        gxe.ExpectColumnValuesToBeBetween(
            column="lower_wick", min_value=0,
            **tag("low_le_body", "lower_wick = min(open, close) - low is >= 0")),
        gxe.ExpectColumnValuesToBeInSet(
            column="grid_offset_ms", value_set=[0],
            **tag("on_grid", "grid_offset_ms (open_time minus its grid point) is 0")),
        gxe.ExpectColumnValuesToBeUnique(
            column="open_time", **tag("unique_open_time", "open_time values are unique")),
        gxe.ExpectColumnValuesToBeIncreasing(
            column="open_time", **tag("increasing_open_time", "open_time never decreases")),
        gxe.ExpectColumnValuesToBeBetween(
            column="return_z", min_value=-cfg.return_sigma_k, max_value=cfg.return_sigma_k,
            **tag("extreme_return", f"return_z (log return over its {cfg.return_window}-candle "
                  f"rolling std) is within +-{cfg.return_sigma_k:g}")),
        gxe.ExpectColumnValuesToBeBetween(
            column="wick_z", max_value=cfg.return_sigma_k,
            **tag("extreme_wick", "wick_z (log excursion of high above or low below the "
                  f"body, over the rolling return std) is at most {cfg.return_sigma_k:g}")),
        gxe.ExpectColumnValuesToBeInSet(
            column="synthetic_fill", value_set=[0],
            **tag("synthetic_fill", "synthetic_fill (zero volume and open = high = low = "
                  "close = the previous close: a forward-filled candle) is 0")),
        gxe.ExpectColumnValuesToBeInSet(
            column="timeframe_mismatch", value_set=[0],
            **tag("timeframe_spacing", "timeframe_mismatch (the series' dominant spacing "
                  "between candles is not its timeframe) is 0")),
        gxe.ExpectColumnValuesToBeInSet(
            column="trades_mismatch", value_set=[0],
            **tag("trades_vs_candles", "trades_mismatch (the candle differs from the "
                  "aggregate of the stored trades; empty where no trades cover it) is 0")),
        gxe.ExpectColumnValuesToBeBetween(
            column="gap_before", max_value=0,
            **tag("gap", "gap_before (grid candles missing just before this one) is 0")),
        gxe.ExpectColumnValuesToBeBetween(
            column="volume_z", max_value=cfg.volume_z_max,
            **tag("volume_spike", f"volume_z (against the {cfg.volume_window}-candle rolling "
                  f"mean and std) is at most {cfg.volume_z_max:g}")),
        gxe.ExpectColumnValuesToBeBetween(
            column="age_candles", max_value=cfg.freshness_candles,
            **tag("stale", "age_candles (closed candles after the last stored one) is at "
                  f"most {cfg.freshness_candles}")),
    ]
    return out


def run_suite(context: Any, batches: Mapping[str, pd.DataFrame], cfg: ValidationSettings, *,
              run_name: str, run_time: datetime | None = None) -> SuiteResult:
    """Run the suite over each series' frame (one Checkpoint each), then build Data Docs."""
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
    )

    run_id = RunIdentifier(run_name=run_name, run_time=run_time or datetime.now(UTC))
    suite = context.suites.add_or_update(
        gx.ExpectationSuite(name=SUITE, expectations=build_expectations(cfg),
                            meta={"notes": "tradeflow candle rules: tradeflow.validation"})
    )
    source = context.data_sources.add_or_update_pandas(DATASOURCE)
    outcomes: dict[str, list[ExpectationOutcome]] = {}
    result_ids: dict[str, Any] = {}
    for series, frame in batches.items():
        name = asset_name(series)
        try:
            asset = source.get_asset(name)
        except LookupError:
            asset = source.add_dataframe_asset(name)
        try:
            batch = asset.get_batch_definition(BATCH)
        except KeyError:
            batch = asset.add_batch_definition_whole_dataframe(BATCH)
        definition = context.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=f"{SUITE}_{name}", data=batch, suite=suite)
        )
        checkpoint = context.checkpoints.add_or_update(gx.Checkpoint(
            name=f"{SUITE}_{name}", validation_definitions=[definition],
            result_format=RESULT_FORMAT,
        ))
        result = checkpoint.run(batch_parameters={"dataframe": frame}, run_id=run_id)
        for result_id, suite_result in result.run_results.items():
            result_ids[series] = result_id
            outcomes[series] = [_outcome(r) for r in suite_result.results]
    ids = [*result_ids.values(), ExpectationSuiteIdentifier(name=SUITE)]
    context.build_data_docs(site_names=[SITE], resource_identifiers=ids)
    site = Path(context.root_directory) / "uncommitted" / "data_docs" / SITE
    pages = {series: _page(context, rid) for series, rid in result_ids.items()}
    built = [site / "index.html", site / "expectations" / f"{SUITE}.html", *pages.values()]
    _scrub_beacons([p for p in built if p is not None])
    return SuiteResult(site / "index.html", outcomes, pages)


def _outcome(result: Any) -> ExpectationOutcome:
    config = result.expectation_config
    meta = config.meta or {}
    stats = result.result or {}
    element_count = int(stats.get("element_count") or 0)
    # Nulls are skipped by value expectations (warm-up NaNs, age on all but the last row).
    skipped = int(stats.get("missing_count") or 0)
    failed = int(stats.get("unexpected_count") or 0)
    if result.exception_info and result.exception_info.get("raised_exception"):
        failed = max(failed, 1)
        log.warning("GX expectation %s raised: %s", config.type,
                    result.exception_info.get("exception_message"))
    return ExpectationOutcome(
        rule=str(meta.get("rule", config.type)), severity=str(meta.get("severity", "soft")),
        expectation=str(config.type), column=str(config.kwargs.get("column", "")),
        checked=element_count - skipped, failed=failed,
    )


def _page(context: Any, result_id: Any) -> Path | None:
    urls = context.get_docs_sites_urls(resource_identifier=result_id, site_name=SITE)
    if not urls or not urls[0].get("site_url"):
        return None
    return Path(url2pathname(urlparse(urls[0]["site_url"]).path))


def _scrub_beacons(pages: list[Path]) -> None:
    """Drop the data context id GX appends to a remote logo URL in the pages just built."""
    for page in pages:
        if not page.is_file():
            continue
        text = page.read_text()
        clean = _BEACON_RE.sub(r"\1", text)
        if clean != text:
            page.write_text(clean)
