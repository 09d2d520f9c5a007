"""`tradeflow status` shows the live price and book age of a trader with order flow."""

from __future__ import annotations

from cli.commands.status import _render
from tradeflow import timeframes


def test_status_lines_show_price_and_book_age() -> None:
    status = {"mode": "paper", "model_version": "3", "age_s": 1.0, "last_candle": 0,
              "pid": 7, "streams": [],
              "order_flow": {"BTC/USDT": {"last_price": 101.5, "price_age_s": 0.3,
                                          "book_age_s": 0.8},
                             "ETH/USDT": {"last_price": None, "price_age_s": None,
                                          "book_age_s": None}}}
    text = _render("s", {}, status, timeframes)
    assert "flow   BTC/USDT   last price 101.5  price age 0.3s  book age 0.8s" in text
    assert "flow   ETH/USDT   last price -  price age never  book age never" in text
    assert "flow" not in _render("s", {}, {**status, "order_flow": None}, timeframes)
