"""`tradeflow status` rendering."""

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
