"""Benchmark: live order round trip and fill booking, on the simulator.

The simulator runs in its own process. Printed, for 0.001 BTC market buys:

(a) order round trip, send -> exchange ack -> ledger committed (the trader's path: ``LiveBroker``
    then the ledger's ``mark_submitted`` + ``apply_fill``, SQLite in a temp dir), p50/p99,
    against the baseline: a bare ccxt ``create_order`` on the same ccxt object in the same run;
(b) where the trader's time goes: the create call and the ledger commit (an order this run
    recorded itself goes out without a look-up by client id; only orders open when the trader
    started are looked up first, so a restart never doubles one);
(c) fills/s the ledger books from a burst of partial fills on one order (each fill its own
    transaction, order event included), against a bare SQLite INSERT+commit per row.

Run: ``.venv/bin/python bench/execution.py``
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

from simulator.launch import launch  # noqa: E402
from tradeflow.config import ExchangeSettings  # noqa: E402
from tradeflow.exchange.ccxt_client import ExchangeClient  # noqa: E402
from trader.brokers import LiveBroker  # noqa: E402
from trader.ledger import Ledger, NewDecision, NewOrder  # noqa: E402

ORDERS = 200
FILLS = 2_000
SYMBOL = "BTC/USDT"


def start_server() -> tuple[subprocess.Popen[str], str]:
    return launch("--days", "2", "--symbols", SYMBOL)


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


async def round_trips(base_url: str, ledger: Ledger) -> dict[str, list[float]]:
    settings = ExchangeSettings(base_url=base_url, api_key="sim-key", api_secret="sim-secret",
                                rate_limit=False)
    out: dict[str, list[float]] = {"bare": [], "trader": [], "ledger": []}
    async with ExchangeClient(settings) as client:
        markets = await client.load_markets()
        broker = LiveBroker(client, markets)
        ex = client.exchange
        ledger.init_strategy("bench", 1e9)
        for i in range(ORDERS):
            side = "buy"  # buys only: a sell of the fee-reduced holding would be short
            started = time.perf_counter()  # baseline: bare ccxt
            await ex.create_order(SYMBOL, "market", side, 0.001, None,
                                  {"clientOrderId": f"bare-{i}"})
            out["bare"].append(time.perf_counter() - started)
            (order,) = ledger.record_decision(NewDecision(
                strategy="bench", symbol=SYMBOL, candle_open_time=i * 60_000, kind="signal",
                action=side, price=1.0), [NewOrder(side=side, amount=0.001)])
            cid = order.client_order_id
            started = time.perf_counter()  # the trader: send -> ack -> ledger committed
            execution = await broker.execute(SYMBOL, side, 0.001, cid, may_exist=False)
            if execution.rejected:
                raise SystemExit(f"order rejected: {execution.rejected}")
            booked = time.perf_counter()
            with ledger.transaction():  # as LiveExecution._book_execution books it
                ledger.mark_submitted(cid, execution.exchange_order_id or "")
                ledger.apply_fill(cid, f"x-{execution.exchange_order_id}",
                                  execution.average or 1.0, execution.filled, execution.fee,
                                  execution.fee_currency, i)
            done = time.perf_counter()
            out["trader"].append(done - started)
            out["ledger"].append(done - booked)
    return out


def fill_burst(ledger: Ledger, path: Path) -> tuple[float, float]:
    (order,) = ledger.record_decision(NewDecision(
        strategy="bench", symbol=SYMBOL, candle_open_time=10**12, kind="signal",
        action="buy", price=1.0), [NewOrder(side="buy", amount=FILLS * 0.001)])
    started = time.perf_counter()
    for i in range(FILLS):
        ledger.apply_fill(order.client_order_id, f"burst-{i}", 100.0, 0.001, 0.0, "USDT", i)
    ledger_rate = FILLS / (time.perf_counter() - started)
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=wal")
    con.execute("PRAGMA synchronous=2")
    con.execute("CREATE TABLE f (id INTEGER PRIMARY KEY, t TEXT, p REAL, q REAL)")
    started = time.perf_counter()
    for i in range(FILLS):
        con.execute("INSERT INTO f (t, p, q) VALUES (?, ?, ?)", (f"b-{i}", 100.0, 0.001))
        con.commit()
    bare_rate = FILLS / (time.perf_counter() - started)
    con.close()
    return ledger_rate, bare_rate


def main(base_url: str) -> None:
    with tempfile.TemporaryDirectory() as tmp, Ledger(f"sqlite:///{tmp}/ledger.db") as ledger:
        t = asyncio.run(round_trips(base_url, ledger))
        ledger_rate, bare_rate = fill_burst(ledger, Path(tmp) / "bare.db")
    ms = {k: (statistics.median(v) * 1e3, pct(v, 0.99) * 1e3) for k, v in t.items()}
    ratio50 = ms["trader"][0] / ms["bare"][0]
    print(f"execution benchmark: {ORDERS} market orders of 0.001 {SYMBOL} on the simulator")
    print(f"  bare ccxt create_order         p50 {ms['bare'][0]:6.2f} ms  p99 {ms['bare'][1]:6.2f}"
          " ms  (baseline)")
    print(f"  trader send->ack->ledger       p50 {ms['trader'][0]:6.2f} ms  p99 "
          f"{ms['trader'][1]:6.2f} ms  ratio p50 {ratio50:.2f}x  p99 "
          f"{ms['trader'][1] / ms['bare'][1]:.2f}x")
    print(f"    of which ledger commit p50 {ms['ledger'][0]:6.2f} ms "
          f"({ms['ledger'][0] / ms['trader'][0]:.0%})")
    print(f"  partial-fill burst: ledger {ledger_rate:,.0f} fills/s vs bare SQLite insert+commit"
          f" {bare_rate:,.0f} rows/s ({ledger_rate / bare_rate:.2f}x)")
    print(f"goal <= 1.2x p50: {'meets' if ratio50 <= 1.2 else 'MISSES'}")


if __name__ == "__main__":
    server, url = start_server()
    try:
        main(url)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=10)
