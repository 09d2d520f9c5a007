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


def test_open_orders_are_shown_with_their_state(tmp_path) -> None:  # noqa: ANN001
    from cli.commands.status import _open_orders
    from trader.ledger import Ledger, NewDecision, NewOrder

    with Ledger(f"sqlite:///{tmp_path / 'l.db'}") as ledger:
        ledger.init_strategy("s", 1000.0)
        done, part, new = ledger.record_decision(NewDecision(
            strategy="s", symbol="BTC/USDT", candle_open_time=0, kind="signal", action="buy",
            price=100.0), [NewOrder(side="buy", amount=1.0),
                           NewOrder(side="buy", amount=2.0, type="limit", limit_price=99.5),
                           NewOrder(side="sell", amount=0.5)])
        ledger.apply_fill(done.client_order_id, "t0", 100.0, 1.0, 0.0, "USDT", 0)
        ledger.mark_submitted(part.client_order_id, "x2")
        ledger.apply_fill(part.client_order_id, "t1", 99.5, 0.5, 0.0, "USDT", 0)
        orders = _open_orders(ledger, "s")
    text = _render("s", "live", {}, {}, timeframes, orders=orders)
    lines = [line for line in text.splitlines() if line.startswith("  order")]
    assert lines == [
        f"  order  BTC/USDT   buy limit 2 @ 99.5  filled 0.5  PARTIALLY_FILLED  "
        f"{part.client_order_id}",
        f"  order  BTC/USDT   sell market 0.5  filled 0  NEW  {new.client_order_id}"]
