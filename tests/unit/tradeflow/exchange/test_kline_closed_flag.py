"""Binance's closed flag on streamed klines, kept by the adapter's ccxt.pro subclass."""

from __future__ import annotations

from typing import Any

import ccxt.pro
import pytest

from tradeflow.exchange.ccxt_client import _exchange_class


def kline(t: int, close: str, closed: bool) -> dict[str, Any]:
    return {"e": "kline", "s": "BTCUSDT",
            "k": {"t": t, "s": "BTCUSDT", "i": "1m", "o": "1", "h": "2", "l": "0.5",
                  "c": close, "v": "3", "x": closed}}


@pytest.fixture()
def handled(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The close of every message that reached ccxt.pro's own handler (its cache)."""
    seen: list[str] = []
    monkeypatch.setattr(ccxt.pro.binance, "handle_ohlcv",
                        lambda self, client, message: seen.append(message["k"]["c"]))
    return seen


def test_a_partial_update_arriving_after_the_final_one_does_not_overwrite_it(
    handled: list[str]
) -> None:
    ex = _exchange_class("binance")()
    ex.handle_ohlcv(None, kline(60_000, "10.5", closed=False))
    ex.handle_ohlcv(None, kline(60_000, "11.0", closed=True))
    ex.handle_ohlcv(None, kline(60_000, "10.7", closed=False))  # reordered: sent before the final
    ex.handle_ohlcv(None, kline(120_000, "11.2", closed=False))  # the next candle still goes in
    assert handled == ["10.5", "11.0", "11.2"]
    assert ex.__dict__["_tradeflow_closed"][("BTCUSDT", "1m")] == [60_000]


def test_a_duplicated_final_update_is_marked_once(handled: list[str]) -> None:
    ex = _exchange_class("binance")()
    for _ in range(3):
        ex.handle_ohlcv(None, kline(60_000, "11.0", closed=True))
    assert handled == ["11.0"] * 3
    assert ex.__dict__["_tradeflow_closed"][("BTCUSDT", "1m")] == [60_000]
