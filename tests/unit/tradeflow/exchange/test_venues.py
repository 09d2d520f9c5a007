"""Venue rules of the adapter: market types per venue and how a page of candles is bounded."""

from __future__ import annotations

from tradeflow.exchange.venues import fetch_market_types, ohlcv_page, rebase_urls

MIN = 60_000


def test_venue_rules() -> None:
    assert fetch_market_types("okx", ("spot", "linear")) == ["spot", "swap", "future"]
    assert fetch_market_types("binance", ("spot", "linear")) == ["spot", "linear"]
    assert ohlcv_page("binance", "1m", 0, 10, 10**9, 1000) == (10, {"until": 10**9})
    assert ohlcv_page("okx", "1m", 0, 10, 10**9, 300) == (10, {"until": 10 * MIN})
    assert ohlcv_page("okx", "1m", 0, 10, 5 * MIN, 300) == (10, {"until": 5 * MIN + 1})
    # a page asked bigger than the venue's is the venue's: 300 from since, not the 300 newest
    # before since + 1000 minutes
    assert ohlcv_page("okx", "1m", 0, 1000, 10**9, 300) == (300, {"until": 300 * MIN})
    assert ohlcv_page("okx", "1m", None, None, None, 300) == (None, {})


def test_okx_urls_rebase_onto_the_simulator() -> None:
    urls = {"rest": "https://{hostname}", "ws": "wss://ws.okx.com:443/ws/v5"}
    assert rebase_urls(urls, "http://127.0.0.1:8765") == {
        "rest": "http://127.0.0.1:8765", "ws": "ws://127.0.0.1:8765/ws/v5"}
