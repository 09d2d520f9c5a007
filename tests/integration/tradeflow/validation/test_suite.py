"""The validation run on a real DuckDB store and a real GX file context: every rule planted
once, counts per series and rule, policies (quarantine, exclusion, warning), gaps, the
watermark, Data Docs and the CLI."""

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
from tradeflow.market.quarantine import excluded
from tradeflow.market.store import MarketStore, SeriesKey
from tradeflow.validation import gx_suite
from tradeflow.validation.report import ValidationReport
from tradeflow.validation.run import check_series, plan_validation, run_validation

MIN = 60_000
T0 = 1_704_067_200_000
N = 2 * 1440
NOW = T0 + N * MIN + 10 * MIN + 1_000  # BTC's last candle is 10 closed candles behind
BTC = SeriesKey("binance", "BTC/USDT", "1m")
ETH = SeriesKey("binance", "ETH/USDT", "1m")
SOL = SeriesKey("binance", "SOL/USDT", "1m")  # never stored
MISSING = [*range(2700, 2705), 2800, 2801]    # two gaps: 5 candles (repairable), 2 (recorded)
STORED = N - len(MISSING)                     # BTC candles written through the store
PER_CANDLE_SOFT = ("extreme_return", "extreme_wick", "synthetic_fill", "timeframe_spacing",
                   "volume_spike")


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
    f.loc[2200:2209, "volume"] = 0.0                                     # soft: synthetic_fill
    f.loc[2250, ["open", "high", "low", "close"]] = f.loc[2249, "close"]  # a filler of one
    f.loc[2250, "volume"] = 0.0
    f.loc[2260, ["open", "high", "low", "close"]] = f.loc[2259, "close"]  # flat, but traded
    f.loc[2300, "high"] = f.loc[2300, ["open", "close"]].max() * 1.19   # soft: extreme_wick
    f.loc[2400, "volume"] = 5_000.0                                      # soft: volume_spike
    f.loc[2500:, ["open", "high", "low", "close"]] *= 1.06               # soft: extreme_return
    f.loc[2500, "open"] = f.loc[2499, "close"]
    f.loc[2500, "low"] = f.loc[2500, "open"] * 0.9995
    return f.drop(index=MISSING).reset_index(drop=True)                  # soft: gap


def jitter() -> pd.DataFrame:
    """A candle 3 ms off the grid, as a store of an earlier release could hold it (hard:
    on_grid; the store refuses such a candle today)."""
    row = walk(N, seed=11).iloc[[2600]].copy()
    row["open"] *= 1.06
    row[["high", "low", "close"]] = row[["open"]].to_numpy() * [[1.0005, 0.9995, 1.0]]
    row["open_time"] += 3
    return row


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
        "validation: {return_window: 120, volume_window: 120}\n"
    )
    settings = load_settings(config, env={})
    store = MarketStore(settings.store_path)
    store.upsert(planted(), exchange="binance", symbol="BTC/USDT", timeframe="1m")
    with store.connection(write=True) as con:
        con.register("legacy", jitter())
        con.execute("INSERT INTO candles (exchange, symbol, timeframe, open_time, open, high, "
                    "low, close, volume, ingested_at, source) SELECT 'binance', 'BTC/USDT', "
                    "'1m', open_time, open, high, low, close, volume, now(), 'legacy' "
                    "FROM legacy")
        con.unregister("legacy")
    recorded = T0 + 2800 * MIN
    store.record_unfillable(BTC, recorded, recorded + MIN, 2, "outage")
    store.upsert(walk(N + 10, seed=12), exchange="binance", symbol="ETH/USDT", timeframe="1m")
    context = gx_suite.open_context(settings.data_dir)  # one GX context for the module
    report = run_validation(settings, now_ms=NOW, context=context)
    yield World(settings, config, context, report)


def failed(report: ValidationReport, key: SeriesKey) -> dict[str, int]:
    return {r.rule: r.failed for r in report.rules if r.series == str(key) and r.failed}


def summary(report: ValidationReport, key: SeriesKey) -> Any:
    return next(s for s in report.series if s.series == str(key))


def test_every_planted_fault_is_found_by_its_rule(world: World) -> None:
    got = failed(world.report, BTC)
    assert {k: v for k, v in got.items() if RULES[k].severity == "hard"} == {
        "high_ge_body": 1, "volume_not_nan": 1, "on_grid": 1}
    assert got["synthetic_fill"] == 11  # a run of ten and a run of one
    assert got["extreme_wick"] == 1 and got["volume_spike"] == 1 and got["stale"] == 1
    assert got["extreme_return"] >= 1 and got["gap"] == 2
    assert "timeframe_spacing" not in got
    assert failed(world.report, ETH) == {}
    assert failed(world.report, SOL) == {"stale": 1}
    sol = summary(world.report, SOL)
    assert sol.candles == 0 and sol.note == "no candles stored"


def test_the_first_run_judges_every_stored_candle_and_every_rule(world: World) -> None:
    rules = {r.rule for r in world.report.rules if r.series == str(BTC)}
    assert rules == (set(HARD_RULES) | set(SOFT_RULES)) - {
        "column_present", "dtype", "open_time_not_null"}
    btc = summary(world.report, BTC)
    assert btc.candles == STORED + 1 and btc.span == (T0, T0 + (N - 1) * MIN)
    assert next(r for r in world.report.rules
                if r.series == str(BTC) and r.rule == "price_positive").checked == 4 * btc.candles
    assert summary(world.report, ETH).candles == N + 10
    assert world.report.judged == "candles not judged before"


def test_gaps_are_counted_listed_and_told_repairable_or_unfillable(world: World) -> None:
    gaps = summary(world.report, BTC).gaps
    assert (gaps.count, gaps.missing, gaps.longest) == (2, 7, 5)
    assert (gaps.repairable, gaps.unfillable) == (1, 1)
    assert gaps.listing == ((T0 + 2700 * MIN, T0 + 2704 * MIN, 5, "repairable"),
                            (T0 + 2800 * MIN, T0 + 2801 * MIN, 2, "unfillable"))
    assert summary(world.report, ETH).gaps.count == 0


def test_gx_and_numpy_agree_on_every_rule(world: World) -> None:
    plan = plan_validation(world.settings, now_ms=NOW, all_candles=True)
    with MarketStore(world.settings.store_path) as store:
        check = check_series(store, BTC, plan)
    got = failed(world.report, BTC)
    assert check.hard_counts == {k: v for k, v in got.items() if k in HARD_RULES}
    assert check.soft_counts == {k: v for k, v in got.items() if k in PER_CANDLE_SOFT}
    assert check.hard_failed == 3 and check.quarantined == 0  # already quarantined
    assert check.flat_traded == 1


def test_each_policy_acts_on_its_candles(world: World) -> None:
    report = world.report
    btc = summary(report, BTC)
    # Two hard failures were quarantined by the store as they were written, one by the run.
    assert report.quarantined == 1 and report.hard_failed == 3
    assert btc.quarantine_candles == 3 and btc.excluded == 12  # 11 fills and the wick
    assert report.quarantine_share == pytest.approx(3 / (STORED + 1 + N + 10))
    assert not report.exceeded
    with MarketStore(world.settings.store_path) as store:
        entries = store.quarantined(BTC)
        assert sorted(entries["rule"]) == ["high_ge_body", "on_grid", "volume_not_nan"]
        assert sorted(entries["source"]) == ["rest", "rest", "validate"]
        out = excluded(store, BTC)
        assert sorted(set(out["rule"])) == ["extreme_wick", "synthetic_fill"]
        fills = out.loc[out["rule"] == "synthetic_fill", "open_time"]
        assert fills.tolist() == [T0 + i * MIN for i in [*range(2200, 2210), 2250]]
        assert store.quarantined(ETH).empty and excluded(store, ETH).empty
        usable = store.read(BTC, usable_only=True)
        assert len(usable) == STORED + 1 - 3 - 12 and len(store.read(BTC)) == STORED + 1
        assert T0 + 2260 * MIN in set(usable["open_time"])  # the flat candle that traded


def test_a_second_run_judges_only_what_arrived_since(world: World) -> None:
    again = run_validation(world.settings, now_ms=NOW, context=world.context)
    assert again.candles == 0 and again.quarantined == 0
    assert summary(again, BTC).note == "nothing new to judge"
    with MarketStore(world.settings.store_path) as store:
        store.upsert(walk(5, seed=13, start=T0 + (N + 10) * MIN), exchange="binance",
                     symbol="ETH/USDT", timeframe="1m")
        # Older history imported afterwards is new to validation too.
        store.upsert(walk(3, seed=14, start=T0 - 3 * MIN), exchange="binance",
                     symbol="ETH/USDT", timeframe="1m")
    later = run_validation(world.settings, now_ms=NOW + 6 * MIN, context=world.context)
    eth = summary(later, ETH)
    assert eth.span == (T0 - 3 * MIN, T0 + (N + 14) * MIN)  # from the oldest to the newest
    assert eth.candles == N + 10 + 8 and summary(later, BTC).candles == 0
    everything = run_validation(world.settings, now_ms=NOW + 6 * MIN, context=world.context,
                                all_candles=True)
    assert summary(everything, BTC).candles == STORED + 1 and everything.quarantined == 0
    assert summary(everything, BTC).excluded == 12  # exclusions rewritten, not doubled
    ranged = run_validation(world.settings, now_ms=NOW, context=world.context,
                            timerange="20240101-20240102")
    assert summary(ranged, BTC).span == (T0, T0 + 1439 * MIN)
    # A window ending before the series does says nothing about the last candle's age.
    assert "stale" not in failed(ranged, BTC)


def test_a_changed_policy_takes_effect_on_the_next_judgement(world: World) -> None:
    settings = load_settings(world.config, env={}, overrides={
        "symbols": ["BTC/USDT"], "validation": {"policies": {"synthetic_fill": "warn",
                                                             "extreme_wick": "quarantine"}}})
    report = run_validation(settings, now_ms=NOW, context=world.context, all_candles=True)
    btc = summary(report, BTC)
    assert btc.excluded == 0 and btc.quarantine_candles == 4 and report.quarantined == 1
    with MarketStore(settings.store_path) as store:
        assert "extreme_wick" in set(store.quarantined(BTC)["rule"])
    back = run_validation(world.settings, now_ms=NOW, context=world.context, all_candles=True)
    assert summary(back, BTC).excluded == 12 and summary(back, BTC).quarantine_candles == 3
    assert back.released == 1  # the wick's quarantine entry, its policy no longer quarantine


def test_data_docs_index_links_series_pages_that_name_every_rule(world: World) -> None:
    index = world.report.docs_index
    assert index is not None and index.is_file()
    assert index.is_relative_to(world.settings.data_dir.resolve() / "gx")
    html = index.read_text()
    for key in (BTC, ETH):
        name = gx_suite.asset_name(str(key))
        assert name in html
        page = summary(world.report, key).page
        assert page is not None and page.is_file()
        assert page.relative_to(index.parent).as_posix() in html  # linked from the index
    text = summary(world.report, BTC).page.read_text()
    for rule in RULES:
        if rule not in ("column_present", "dtype", "open_time_not_null"):
            assert f"{rule} [{RULES[rule].severity}," in text, rule
    assert "gap_before" in text and "synthetic_fill" in text and "Failed" in text
    for page in index.parent.rglob("*.html"):
        assert "dataContextId" not in page.read_text(), page  # no usage beacon
    config = (world.settings.data_dir / "gx" / "great_expectations.yml").read_text()
    assert "analytics_enabled: false" in config


def test_summary_page_works_offline_and_lists_rules_policies_and_gaps(world: World) -> None:
    report = world.report.with_summary_page()  # other tests' runs rewrote it since
    page = report.summary_page
    assert page is not None and page.is_file() and page.parent == report.docs_index.parent
    text = page.read_text()
    assert "<script" not in text and "http" not in text.replace(report.docs_url, "")
    assert "Candle validation: <span class=\"passed\">passed</span>" in text
    for s in report.series:
        if s.page is not None:
            assert f'href="{s.page.relative_to(page.parent).as_posix()}"' in text
    assert ('<td>high_ge_body</td><td>hard</td><td>quarantine</td>'
            '<td><span class="bad">1</span></td>') in text
    assert ('<td>synthetic_fill</td><td>soft</td><td>exclude</td>'
            '<td><span class="bad">11</span></td>') in text
    assert "<td>BTC/USDT 1m</td><td>2024-01-02 21:00</td>" in text  # the longest gap
    assert "unfillable" in text and 'href="index.html"' in text
    assert report.docs_url == page.resolve().as_uri()
    assert f"Summary page: {page}" in report.text()


def test_report_renderings_agree(world: World) -> None:
    report = world.report
    matrix = report.matrix().set_index("rule")
    assert matrix.loc["high_ge_body", "BTC/USDT 1m"] == 1
    assert matrix.loc["stale", "SOL/USDT 1m"] == 1 and matrix.loc["on_grid", "SOL/USDT 1m"] == "-"
    md = report.markdown()
    assert md.startswith("**passed**") and report.docs_url in md
    assert re.search(r"\| synthetic_fill \| soft \| exclude \| 11 \| 0 \| - \|", md)
    assert re.search(r"\| gap \| soft \| warn \| 2 \| 0 \| - \|", md)
    text = report.text()
    assert "Data Docs: " in text and "longest gaps" in text
    assert "2 (7 candles; longest 5; 1 repairable, 1 unfillable)" in text
    as_dict = report.as_dict()
    assert as_dict["passed"] and as_dict["quarantined"] == 1 and as_dict["excluded"] == 12
    assert as_dict["gaps"][str(BTC)]["unfillable"] == 1


def test_cli_prints_the_summary_and_fails_above_the_share(
    world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from cli.main import main

    monkeypatch.setenv("TRADEFLOW_VALIDATION__MAX_HARD_FAILURE_SHARE", "0.0005")
    assert main(["--config", str(world.config), "validate", "--all",
                 "--symbols", "BTC/USDT"]) == 1
    out = capsys.readouterr().out
    assert "validation FAILED: judged 2874 candles (all stored candles)" in out
    assert "high_ge_body" in out
    assert f"Data Docs: {world.report.docs_index}" in out
    assert f"Summary page: {world.report.summary_page}" in out
    monkeypatch.setenv("TRADEFLOW_VALIDATION__MAX_HARD_FAILURE_SHARE", "0.01")
    assert main(["--config", str(world.config), "validate", "--timerange", "20240101-20240102",
                 "--symbols", "ETH/USDT"]) == 0
    out = capsys.readouterr().out
    assert "validation passed: judged 1440 candles (candles from 2024-01-01 00:00" in out
    with pytest.raises(SystemExit) as exit_:
        main(["--config", str(world.config), "validate", "--all", "--days", "3"])
    assert exit_.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
