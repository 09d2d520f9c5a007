"""The validation run on a real DuckDB store and a real GX file context: every rule planted
once, counts per series and rule, quarantine, Data Docs and the CLI."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tradeflow.config import Settings, load_settings
from tradeflow.contracts.rules import HARD_RULES, RULES, SOFT_RULES
from tradeflow.market.store import MarketStore, SeriesKey
from tradeflow.validation import gx_suite
from tradeflow.validation.report import ValidationReport
from tradeflow.validation.run import check_series, plan_validation, run_validation

MIN = 60_000
DAY = 86_400_000
T0 = 1_704_067_200_000
N = 2 * 1440
NOW = T0 + N * MIN + 10 * MIN + 1_000  # BTC's last candle is 10 closed candles behind
WINDOW_START = (NOW - DAY) // MIN * MIN   # window_days: 1
BTC = SeriesKey("binance", "BTC/USDT", "1m")
ETH = SeriesKey("binance", "ETH/USDT", "1m")
SOL = SeriesKey("binance", "SOL/USDT", "1m")  # never stored


def walk(n: int, seed: int, start: int = T0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
    open_ = np.concatenate(([100.0], close[:-1]))
    return pd.DataFrame({
        "open_time": start + np.arange(n, dtype=np.int64) * MIN,
        "open": open_, "high": np.maximum(open_, close) * 1.0005,
        "low": np.minimum(open_, close) * 0.9995, "close": close,
        "volume": rng.gamma(4.0, 2.0, n),
    })


def planted() -> pd.DataFrame:
    """Two days of BTC with one of each fault seen in real exchange data."""
    f = walk(N, seed=11)
    f.loc[2000, "high"] = f.loc[2000, "close"] * 0.99                    # hard: high_ge_body
    f.loc[2100, "volume"] = np.nan                                       # hard: volume_not_nan
    f.loc[2200:2209, ["open", "high", "low", "close"]] = f.loc[2199, "close"]  # filler run
    f.loc[2200:2209, "volume"] = 0.0                                     # soft: zero_volume_run
    f.loc[2300, "high"] = f.loc[2300, ["open", "close"]].max() * 1.19   # soft: extreme_wick
    f.loc[2400, "volume"] = 5_000.0                                      # soft: volume_spike
    f.loc[2500:, ["open", "high", "low", "close"]] *= 1.06               # soft: extreme_return
    f.loc[2500, "open"] = f.loc[2499, "close"]
    f.loc[2500, "low"] = f.loc[2500, "open"] * 0.9995
    jitter = f.iloc[[2600]].copy()                                       # hard: on_grid
    jitter["open_time"] += 3
    return pd.concat([f, jitter], ignore_index=True).sort_values("open_time")


@dataclass
class World:
    settings: Settings
    config: Path
    context: Any
    report: ValidationReport


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("validation")
    config = root / "profile.yaml"
    config.write_text(
        f"data_dir: {root / 'data'}\nsymbols: [BTC/USDT, ETH/USDT, SOL/USDT]\n"
        f"timeframes: [1m]\nstore: {{path: {root / 'data' / 'market.duckdb'}}}\n"
        "validation: {window_days: 1, return_window: 120, volume_window: 120}\n"
    )
    settings = load_settings(config, env={})
    store = MarketStore(settings.store_path)
    store.upsert(planted(), exchange="binance", symbol="BTC/USDT", timeframe="1m")
    store.upsert(walk(N + 10, seed=12), exchange="binance", symbol="ETH/USDT", timeframe="1m")
    context = gx_suite.open_context(settings.data_dir)  # one GX context for the module
    report = run_validation(settings, now_ms=NOW, context=context)
    yield World(settings, config, context, report)


def failed(report: ValidationReport, key: SeriesKey) -> dict[str, int]:
    return {r.rule: r.failed for r in report.rules if r.series == str(key) and r.failed}


def test_every_planted_fault_is_found_by_its_rule(world: World) -> None:
    got = failed(world.report, BTC)
    assert {k: v for k, v in got.items() if RULES[k].severity == "hard"} == {
        "high_ge_body": 1, "volume_not_nan": 1, "on_grid": 1}
    assert got["zero_volume_run"] == 10
    assert got["extreme_wick"] == 1 and got["volume_spike"] == 1 and got["stale"] == 1
    assert got["extreme_return"] >= 1
    assert failed(world.report, ETH) == {}
    assert failed(world.report, SOL) == {"stale": 1}
    sol = next(s for s in world.report.series if s.series == str(SOL))
    assert sol.candles == 0 and sol.note == "no candles stored"


def test_every_rule_is_reported_for_every_stored_series(world: World) -> None:
    rules = {r.rule for r in world.report.rules if r.series == str(BTC)}
    assert rules == (set(HARD_RULES) | set(SOFT_RULES)) - {
        "column_present", "dtype", "open_time_not_null"}
    btc = next(s for s in world.report.series if s.series == str(BTC))
    assert btc.candles == int((planted()["open_time"] >= WINDOW_START).sum()) == 1431
    assert next(r for r in world.report.rules
                if r.series == str(BTC) and r.rule == "price_positive").checked == 4 * 1431


def test_gx_and_pandera_agree_on_hard_rules(world: World) -> None:
    plan = plan_validation(world.settings, now_ms=NOW)
    with MarketStore(world.settings.store_path) as store:
        check = check_series(store, BTC, plan)
    assert check.hard_counts == {k: v for k, v in failed(world.report, BTC).items()
                                 if k in HARD_RULES}
    assert check.hard_failed == 3 and check.quarantined == 0  # already quarantined


def test_hard_failures_are_quarantined_once_and_soft_ones_never(world: World) -> None:
    report = world.report
    assert report.quarantined == 3 and report.hard_failed == 3
    eth = int((walk(N + 10, seed=12)["open_time"] >= WINDOW_START).sum())
    assert report.hard_failure_share == pytest.approx(3 / (1431 + eth))
    assert not report.exceeded
    with MarketStore(world.settings.store_path) as store:
        entries = store.quarantined(BTC)
        assert sorted(entries["rule"]) == ["high_ge_body", "on_grid", "volume_not_nan"]
        assert set(entries["source"]) == {"validate"}
        assert store.quarantined(ETH).empty
        clean = store.read(BTC, exclude_quarantined=True)
        assert len(clean) == N + 1 - 3 and len(store.read(BTC)) == N + 1
    again = run_validation(world.settings, now_ms=NOW, context=world.context)
    assert again.quarantined == 0 and again.hard_failed == 3
    with MarketStore(world.settings.store_path) as store:
        assert len(store.quarantined(BTC)) == 3


def test_data_docs_index_links_series_pages_that_name_every_rule(world: World) -> None:
    index = world.report.docs_index
    assert index is not None and index.is_file()
    assert index.is_relative_to(world.settings.data_dir.resolve() / "gx")
    html = index.read_text()
    for key in (BTC, ETH):
        name = gx_suite.asset_name(str(key))
        assert name in html
        page = next(s.page for s in world.report.series if s.series == str(key))
        assert page is not None and page.is_file()
        assert page.relative_to(index.parent).as_posix() in html  # linked from the index
        text = page.read_text()
        for rule in RULES:
            if rule not in ("column_present", "dtype", "open_time_not_null"):
                assert f"{rule} [{RULES[rule].severity}]" in text, rule
    btc_page = next(s.page for s in world.report.series if s.series == str(BTC))
    assert "Failed" in btc_page.read_text()
    for page in index.parent.rglob("*.html"):
        assert "dataContextId" not in page.read_text(), page  # no usage beacon
    config = (world.settings.data_dir / "gx" / "great_expectations.yml").read_text()
    assert "analytics_enabled: false" in config


def test_summary_page_works_offline_and_links_every_series_page(world: World) -> None:
    report = world.report.with_summary_page()  # other tests' runs rewrote it since
    page = report.summary_page
    assert page is not None and page.is_file() and page.parent == report.docs_index.parent
    text = page.read_text()
    assert "<script" not in text and "http" not in text.replace(report.docs_url, "")
    assert "Candle validation: <span class=\"passed\">passed</span>" in text
    for s in report.series:
        if s.page is not None:
            assert f'href="{s.page.relative_to(page.parent).as_posix()}"' in text
    assert '<td>high_ge_body</td><td>hard</td><td><span class="bad">1</span></td>' in text
    assert 'href="index.html"' in text
    assert report.docs_url == page.resolve().as_uri()
    assert f"Summary page: {page}" in report.text()


def test_report_renderings_agree(world: World) -> None:
    report = world.report
    matrix = report.matrix().set_index("rule")
    assert matrix.loc["high_ge_body", "BTC/USDT 1m"] == 1
    assert matrix.loc["stale", "SOL/USDT 1m"] == 1 and matrix.loc["on_grid", "SOL/USDT 1m"] == "-"
    md = report.markdown()
    assert md.startswith("**passed**") and report.docs_url in md
    assert re.search(r"\| zero_volume_run \| soft \| 10 \| 0 \| - \|", md)
    assert "Data Docs: " in report.text()
    summary = report.as_dict()
    assert summary["passed"] and summary["quarantined"] == 3


def test_cli_prints_the_summary_and_fails_above_the_share(
    world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from cli.main import main

    # The CLI judges at the wall clock: a window of years reaches back to the planted data.
    monkeypatch.setenv("TRADEFLOW_VALIDATION__MAX_HARD_FAILURE_SHARE", "0.0005")
    assert main(["--config", str(world.config), "validate", "--days", "5000",
                 "--symbols", "BTC/USDT"]) == 1
    out = capsys.readouterr().out
    assert "validation FAILED" in out and "high_ge_body" in out
    assert f"Data Docs: {world.report.docs_index}" in out
    assert f"Summary page: {world.report.summary_page}" in out
    monkeypatch.setenv("TRADEFLOW_VALIDATION__MAX_HARD_FAILURE_SHARE", "0.01")
    assert main(["--config", str(world.config), "validate", "--symbols", "ETH/USDT"]) == 0
    assert "validation passed" in capsys.readouterr().out
