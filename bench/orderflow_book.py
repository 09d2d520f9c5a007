"""Benchmark section of bench/orderflow.py (also runs alone): the order book.

``book``: order-book diff application rate of tradeflow's local book
(tradeflow.exchange.book.LocalBook) against ccxt.pro's own OrderBook class, fed the same
Binance ``@depth@100ms`` messages: the simulator's book (1,000 levels a side) diffed every
100 ms of simulated time, as its diff-depth stream sends them. Three ways, each timed on both
books in the same run (best of ``--repeat``), printed as diffs/s and the ratio ours/ccxt
(goal >= 1.0x):

* message: a whole ``depthUpdate`` applied as ccxt.pro applies it
  (``binance.handle_order_book_message``: parse each level, ``store`` it) against
  ``LocalBook.apply_diff`` (update-id check, then the levels in one pass);
* message + top 20: the same, then ``limit()`` and the best 20 bids and asks read after every
  message, as a consumer of ``watch_order_book`` does;
* levels: the book class alone, fed the levels already parsed to floats, ``store`` per level.

    .venv/bin/python bench/orderflow_book.py [--section book] [--messages 20000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ccxt.pro as ccxt_pro  # noqa: E402
from ccxt.async_support.base.ws.order_book import OrderBook  # noqa: E402

from simulator import orderflow  # noqa: E402
from simulator.clock import SimClock  # noqa: E402
from simulator.market import MINUTE_MS  # noqa: E402
from simulator.settings import SimulatorSettings  # noqa: E402
from simulator.venue import Venue  # noqa: E402
from tradeflow.exchange.book import LocalBook  # noqa: E402

START_MS = 1_767_225_600_000  # 2026-01-01 00:00 UTC
SYMBOL = "BTC/USDT"
LEVELS = 1000


def book_messages(count: int) -> tuple[dict, list[dict]]:
    """The REST snapshot and ``count`` diff messages after it, 100 ms of simulated time apart
    (steps without a change send nothing, as Binance)."""
    settings = SimulatorSettings(start_time_ms=START_MS, history_days=2.0, book_levels=LEVELS)
    venue = Venue(settings, SimClock(START_MS, settings.speed, wall=lambda: 0))
    book, spec = venue.books[SYMBOL], venue.specs[SYMBOL]
    t = START_MS - 47 * 60 * MINUTE_MS
    bids, asks, uid = venue.book(SYMBOL, LEVELS, t)
    snapshot = orderflow.depth_rest(spec, bids, asks, uid)
    messages: list[dict] = []
    while len(messages) < count:
        diff = book.diff(t, t + 100)
        t += 100
        if diff is not None:
            messages.append(orderflow.depth_event(spec, *diff, t))
    return snapshot, messages


def best_of(repeat: int, run: Callable[[], Any]) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def section_book(messages_count: int = 20_000, repeat: int = 3) -> dict[str, float]:
    """Diffs/s of ours and ccxt.pro's book on the same messages; returns the ratios."""
    snapshot, messages = book_messages(messages_count)
    levels = sum(len(m["b"]) + len(m["a"]) for m in messages)
    print(f"book: {len(messages)} @depth@100ms diffs of {SYMBOL} ({levels / len(messages):.1f} "
          f"levels each), snapshot {LEVELS} levels a side")
    parsed = {"bids": [[float(p), float(a)] for p, a in snapshot["bids"]],
              "asks": [[float(p), float(a)] for p, a in snapshot["asks"]],
              "nonce": snapshot["lastUpdateId"]}
    exchange = ccxt_pro.binance()
    apply_ccxt = exchange.handle_order_book_message
    floats = [([(float(p), float(a)) for p, a in m["b"]], [(float(p), float(a)) for p, a in m["a"]])
              for m in messages]

    def theirs_messages(read: bool) -> OrderBook:
        book = OrderBook(parsed, LEVELS)
        for m in messages:
            apply_ccxt(None, m, book)
            if read:
                book.limit()
                book["bids"][:20]
                book["asks"][:20]
        return book

    def ours_messages(read: bool) -> LocalBook:
        book = LocalBook(parsed, LEVELS)
        for m in messages:
            book.apply_diff(m)
            if read:
                book.limit()
                book["bids"][:20]
                book["asks"][:20]
        return book

    def theirs_levels() -> OrderBook:
        book = OrderBook(parsed, LEVELS)
        bids, asks = book["bids"], book["asks"]
        for b, a in floats:
            for p, q in a:
                asks.store(p, q)
            for p, q in b:
                bids.store(p, q)
        return book

    def ours_levels() -> LocalBook:
        book = LocalBook(parsed, LEVELS)
        bids, asks = book.bids, book.asks
        for b, a in floats:
            for p, q in a:
                asks.store(p, q)
            for p, q in b:
                bids.store(p, q)
        return book

    # the same books at the end, or the rates compare nothing
    for theirs, ours in ((theirs_messages(True), ours_messages(True)),
                         (theirs_levels().limit(), ours_levels().limit())):
        assert list(ours["bids"]) == list(theirs["bids"]), "books differ"
        assert list(ours["asks"]) == list(theirs["asks"]), "books differ"
    ratios: dict[str, float] = {}
    for name, theirs_run, ours_run in (
            ("message", lambda: theirs_messages(False), lambda: ours_messages(False)),
            ("message + top 20", lambda: theirs_messages(True), lambda: ours_messages(True)),
            ("levels", theirs_levels, ours_levels)):
        t_theirs, t_ours = best_of(repeat, theirs_run), best_of(repeat, ours_run)
        ratios[name] = t_theirs / t_ours
        print(f"  {name:<17} ccxt.pro OrderBook {len(messages) / t_theirs:>11,.0f} diffs/s   "
              f"LocalBook {len(messages) / t_ours:>11,.0f} diffs/s   ratio {ratios[name]:.2f}x "
              f"(goal >= 1.0x)")
    return ratios


SECTIONS: dict[str, Callable[[argparse.Namespace], object]] = {
    "book": lambda a: section_book(a.messages, a.repeat),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--section", choices=sorted(SECTIONS), action="append",
                        help="run only these sections (default: all)")
    parser.add_argument("--messages", type=int, default=20_000, help="book: diff messages")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    args = parser.parse_args()
    for name in args.section or list(SECTIONS):
        SECTIONS[name](args)


if __name__ == "__main__":
    main()
