"""`tradeflow status` rendering: the book, "never", live price and book age."""

from __future__ import annotations

from cli.commands.status import _render
from tradeflow import timeframes


def test_a_stream_without_messages_yet_says_never_and_the_book_is_named() -> None:
    streams = [{"symbol": "BTC/USDT", "state": "connecting", "last_message_age_s": None,
                "reconnects": 0},
               {"symbol": "ETH/USDT", "state": "connected", "last_message_age_s": 1.5,
                "reconnects": 2}]
    text = _render("s", "live", {}, {"streams": streams, "age_s": 1.0, "pid": 7}, timeframes)
    assert text.splitlines()[0].startswith("strategy s  book live  model v-")
    assert "last message never  reconnects 0" in text
    assert "last message 1.5s ago  reconnects 2" in text
    assert "None" not in text


def test_status_lines_show_price_and_book_age() -> None:
    status = {"mode": "paper", "model_version": "3", "age_s": 1.0, "last_candle": 0,
              "pid": 7, "streams": [],
              "order_flow": {"BTC/USDT": {"last_price": 101.5, "price_age_s": 0.3,
                                          "book_age_s": 0.8},
                             "ETH/USDT": {"last_price": None, "price_age_s": None,
                                          "book_age_s": None}}}
    text = _render("s", "paper", {}, status, timeframes)
    assert "flow   BTC/USDT   last price 101.5  price age 0.3s  book age 0.8s" in text
    assert "flow   ETH/USDT   last price -  price age never  book age never" in text
    assert "flow" not in _render("s", "paper", {}, {**status, "order_flow": None}, timeframes)
