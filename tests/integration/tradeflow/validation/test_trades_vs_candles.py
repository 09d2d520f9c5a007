"""The ``trades_vs_candles`` rule in a validation run on a real store: the simulator's klines
and trades agree; a planted bad candle and a lost trade are flagged and reported (report,
summary page, Data Docs); its policy acts; series without trades are not judged by it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.fixtures.simulator import START_MS, frozen_venue
from tests.fixtures.tape import exchange_klines, exchange_trades
from tradeflow.config import load_settings
from tradeflow.market.orderflow_store import OrderFlowStore
from tradeflow.market.store import MarketStore, SeriesKey
from tradeflow.validation import gx_suite
from tradeflow.validation.report import ValidationReport
from tradeflow.validation.run import run_validation

MIN = 60_000
T0 = START_MS - 3 * 60 * MIN
END = T0 + 2 * 60 * MIN - 1
NOW = END + 1 + 30_000
ETH_1M = SeriesKey("binance", "ETH/USDT", "1m")
ETH_5M = SeriesKey("binance", "ETH/USDT", "5m")
SOL_1M = SeriesKey("binance", "SOL/USDT", "1m")


def rule_result(report: ValidationReport, key: SeriesKey) -> tuple[int, int, str]:
    found = [r for r in report.rules if r.series == str(key) and r.rule == "trades_vs_candles"]
    assert len(found) == 1
    return found[0].checked, found[0].failed, found[0].policy


def test_trades_vs_candles_in_a_validation_run(tmp_path: Path) -> None:
    venue = frozen_venue()
    config = tmp_path / "profile.yaml"
    config.write_text(
        f"data_dir: {tmp_path / 'data'}\nsymbols: [ETH/USDT, SOL/USDT]\ntimeframes: [1m, 5m]\n"
        f"store: {{path: {tmp_path / 'data' / 'market.duckdb'}}}\n"
        "validation: {return_window: 20, volume_window: 20, freshness_candles: 100000}\n")
    settings = load_settings(config, env={})
    store = MarketStore(settings.store_path)
    for key in (ETH_1M, ETH_5M, SOL_1M):
        candles = exchange_klines(venue, key.symbol, key.timeframe, T0, END)
        if key == ETH_1M:
            candles.loc[17, "close"] += 0.01  # a bad print of the close
        store.upsert(candles, exchange="binance", symbol=key.symbol, timeframe=key.timeframe)
    store.close()
    trades = exchange_trades(venue, "ETH/USDT", T0, END)
    lost = int(np.flatnonzero(trades["ts"] >= T0 + 64 * MIN)[3])  # minute 64, 5m candle 12
    with OrderFlowStore(settings.store_path) as flow:
        flow.write_trades(trades.drop(index=lost), exchange="binance", symbol="ETH/USDT")
    context = gx_suite.open_context(settings.data_dir)
    report = run_validation(settings, now_ms=NOW, context=context)
    # every candle between the first and the last trade is judged; the last one is not
    assert rule_result(report, ETH_1M) == (119, 2, "warn")
    assert rule_result(report, ETH_5M) == (23, 1, "warn")
    assert rule_result(report, SOL_1M) == (0, 0, "warn")  # no trades: not judged
    assert report.summary_page is not None
    assert "trades_vs_candles" in report.summary_page.read_text()
    pages = {s.series: s.page for s in report.series}
    page = pages[str(ETH_1M)]
    assert page is not None and "trades_vs_candles [soft, warn]" in page.read_text()

    # the policy acts: quarantine lists exactly the two candles
    config.write_text(config.read_text().replace(
        "freshness_candles: 100000}", "freshness_candles: 100000, policies: "
        "{trades_vs_candles: quarantine}}"))
    settings = load_settings(config, env={})
    run_validation(settings, now_ms=NOW, context=context, all_candles=True)
    with MarketStore(settings.store_path) as store:
        listed = store.quarantined(ETH_1M)
    rows = listed[listed["rule"] == "trades_vs_candles"]
    assert sorted(rows["open_time"].tolist()) == [T0 + 17 * MIN, T0 + 64 * MIN]
