"""The recorder against the simulator: stored trade ids without hole or repeat through dropped,
duplicated and reordered messages and book gaps, every stored trade and book snapshot equal
to what the venue had; status and metrics per stream."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tests.fixtures.simulator import SimFactory, run
from tradeflow.config import ExchangeSettings, RecorderSettings
from tradeflow.exchange.ccxt_client import ExchangeClient
from tradeflow.market.orderflow_store import OrderFlowStore
from tradeflow.recorder.recorder import Recorder, RecordSummary

SETTINGS = RecorderSettings(flush_s=0.3, status_s=0.5, batch_s=0.05, book_interval_s=5.0,
                            close_timeframe="1m", metrics_port=0)


def venue_trades(sim: Any, symbol: str, first: int, last: int) -> pd.DataFrame:
    """The venue's aggregated trades with ids first..last, in the store's units."""
    spec, parts, cursor = sim.venue.specs[symbol], [], first
    while cursor <= last:
        page = sim.venue.agg_trades(symbol, from_id=cursor, limit=1000)
        keep = page.ids <= last
        parts.append(pd.DataFrame({
            "id": page.ids[keep], "ts": page.times[keep],
            "price": page.prices[keep] / 10**spec.price_decimals,
            "amount": page.qty[keep] / 10**spec.qty_decimals,
            "side": np.where(page.buyer_maker[keep], "sell", "buy")}))
        cursor = int(page.ids[-1]) + 1
    return pd.concat(parts, ignore_index=True)


def assert_every_trade_once(store: OrderFlowStore, sim: Any, symbol: str) -> pd.DataFrame:
    stored = store.trades("binance", symbol)
    ids = stored["id"].to_numpy()
    assert len(ids) > 100
    assert (np.diff(ids) == 1).all(), f"holes or repeats: {store.trade_holes('binance', symbol)}"
    assert store.duplicate_trades() == 0
    expected = venue_trades(sim, symbol, int(ids[0]), int(ids[-1]))
    pd.testing.assert_frame_equal(stored, expected, check_dtype=False)
    return stored


def assert_snapshots_are_the_venue_book(store: OrderFlowStore, sim: Any, symbol: str) -> int:
    snaps = store.book_snapshots("binance", symbol)
    spec = sim.venue.specs[symbol]
    p, q = 10**spec.price_decimals, 10**spec.qty_decimals
    for row in snaps.itertuples():
        bids, asks, update_id = sim.venue.book(symbol, SETTINGS.book_depth, int(row.ts))
        assert row.update_id == update_id
        assert row.bid_price.tolist() == [a / p for a, _ in bids]
        assert row.bid_amount.tolist() == [b / q for _, b in bids]
        assert row.ask_price.tolist() == [a / p for a, _ in asks]
        assert row.ask_amount.tolist() == [b / q for _, b in asks]
    return len(snaps)


def test_faults_on_the_streams_leave_no_hole_and_no_repeat(sim_factory: SimFactory,
                                                           tmp_path: Path) -> None:
    sim = sim_factory(speed=60.0, ws_update_ms=100)
    symbols = ("BTC/USDT", "SOL/USDT")
    store = OrderFlowStore(tmp_path / "market.duckdb")

    async def body() -> tuple[RecordSummary, dict]:
        async with ExchangeClient(ExchangeSettings(base_url=sim.base_url)) as client:
            recorder = Recorder(client, store, SETTINGS, symbols,
                                status_path=tmp_path / "recorder" / "status.json")

            async def faults() -> None:
                await asyncio.sleep(2.0)
                sim.set_faults(ws_drop_every=60, ws_duplicate_every=7, ws_reorder_every=11,
                               ws_depth_gap_every=25)
                await asyncio.sleep(6.0)
                sim.set_faults(ws_drop_every=0, ws_duplicate_every=0, ws_reorder_every=0,
                               ws_depth_gap_every=0)

            toggler = asyncio.create_task(faults())
            summary = await recorder.run(seconds=11.0)
            await toggler
            return summary, recorder.status.snapshot()

    summary, status = run(body())
    try:
        for symbol in symbols:
            assert_every_trade_once(store, sim, symbol)
            assert assert_snapshots_are_the_venue_book(store, sim, symbol) > 2
        counts = store.counts("binance")
    finally:
        store.close()
    assert summary.holes_filled > 0  # drops left holes that REST filled
    assert summary.reconnects > 0 and summary.resyncs > 0  # drops and book gaps
    assert status["reconnects"] == summary.reconnects
    assert counts["trades"] == summary.stored["trades"] and counts["tickers"] > 0
    by_stream = {(s["symbol"], s["stream"]): s for s in status["streams"]}
    trades = by_stream[("BTC/USDT", "trades")]
    assert trades["state"] == "stopped" and trades["messages"] > 0
    assert trades["last_id"] == int(store_last_id(tmp_path, "BTC/USDT"))
    assert by_stream[("SOL/USDT", "book")]["resyncs"] >= 1
    written = json.loads((tmp_path / "recorder" / "status.json").read_text())
    assert written["stored"] == summary.stored and written["exchange"] == "binance"


def store_last_id(tmp_path: Path, symbol: str) -> int:
    with OrderFlowStore(tmp_path / "market.duckdb") as store:
        bounds = store.trade_bounds("binance", symbol)
    assert bounds is not None
    return bounds.last_id
