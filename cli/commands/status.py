"""Show each strategy's trader: positions, PnL, model version, stream state and last price age.

Reads both books' ledgers, paper and live (positions, cash, fills), and the running trader's
status file under data/trader/; each strategy's line says which book it is. With --strategy,
only that one. Reading creates nothing: a book no trader has written is skipped. The order-flow
recorder's streams (state, messages/s, last id, resyncs, reconnects) come from
data/recorder/status.json when it has run. A trader or recorder that has stopped (or whose
pid is gone) is shown as stopped, with when, and its streams as disconnected; an exchange
circuit breaker that has opened is shown with its state.
"""

from __future__ import annotations

import argparse

BOOKS = ("paper", "live")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--strategy", help="strategy name (default: every one in the ledger)")


def run(args: argparse.Namespace) -> int:
    import time

    from cli.profile import settings_from
    from cli.stack import services_status
    from tradeflow import timeframes
    from tradeflow.status_lines import settle
    from trader.app import ledger_for, read_status

    settings = settings_from(args)
    services = services_status(settings)
    if services:
        print("services:")
        for name, alive, url, log in services:
            print(f"  {name:<15} {'running' if alive else 'STOPPED':<8} {url or '':<28} {log}")
    from tradeflow.recorder.status import read_status as read_recorder
    from tradeflow.recorder.status import render

    recorder = read_recorder(settings)
    if recorder:
        recorder = settle(recorder, time.time())  # a stopped recorder is shown as stopped
        print("\n".join([*render(recorder), f"  recorder {recorder['liveness']}"]))
    shown = False
    for book in BOOKS:
        ledger = ledger_for(settings, book, create=False)  # reading creates nothing
        if ledger is None:
            continue
        try:
            names = ledger.strategies()
            if args.strategy:
                names = [n for n in names if n == args.strategy]
            for name in names:
                status = read_status(settings, name) or {}
                status = settle(status, time.time()) if status else status
                if status.get("mode", book) != book:
                    status = {}  # the running trader is the other book's
                prices = {s["symbol"]: s["last_price"] for s in status.get("streams", [])
                          if s.get("last_price")}
                summary = ledger.summary(name, prices)
                print(_render(name, book, summary, status, timeframes,
                              orders=_open_orders(ledger, name)))
                shown = True
        finally:
            ledger.close()
    if not shown:
        what = f"{args.strategy} is in no ledger" if args.strategy else "no trader has run yet"
        print(f"{what} (paper {settings.ledger_url_for('paper')}, "
              f"live {settings.ledger_url_for('live')})")
    return 0


def _age(seconds: float | None) -> str:
    return "never" if seconds is None else f"{seconds}s"


def _open_orders(ledger: object, name: str) -> list[dict]:
    """The strategy's open orders, each with the last state its order events recorded."""
    events = {e.client_order_id: e.state
              for e in ledger.order_events(name)}  # type: ignore[attr-defined]
    return [{"symbol": o.symbol, "side": o.side, "type": o.type, "amount": o.amount,
             "price": o.limit_price, "filled": o.filled, "id": o.client_order_id,
             "state": events.get(o.client_order_id, o.status.value)}
            for o in ledger.pending_orders(name)]  # type: ignore[attr-defined]


def _render(name: str, book: str, summary: dict, status: dict,
            timeframes: object, *, orders: list[dict] | None = None) -> str:  # noqa: ANN001
    from tradeflow.status_lines import breaker_lines

    lines = [f"strategy {name}  book {book}  model "
             f"v{status.get('model_version') or summary.get('model_version') or '-'}  "
             f"risk {status.get('risk_mode', '-')}"]
    equity = summary.get("equity")
    start = summary.get("starting_balance")
    if equity is not None and start:
        lines.append(f"  equity {equity:,.2f}  cash {summary.get('cash', 0):,.2f}  "
                     f"PnL {equity - start:+,.2f} ({(equity / start - 1) * 100:+.2f}%)  "
                     f"realised {summary.get('realized_pnl', 0):+,.2f}  "
                     f"fills {summary.get('fills', 0)}")
    for p in summary.get("positions", []):
        if abs(p.get("qty", 0)) > 0:
            lines.append(f"  {p['symbol']:<10} qty {p['qty']:.6g} avg {p.get('avg_price', 0):.6g}"
                         f" unrealised {p.get('unrealized_pnl', 0):+,.2f}")
    for o in orders or []:
        price = f" @ {o['price']:.6g}" if o.get("price") else ""
        lines.append(f"  order  {o['symbol']:<10} {o['side']} {o['type']} {o['amount']:.6g}"
                     f"{price}  filled {o['filled']:.6g}  {o['state']}  {o['id']}")
    if status:
        age = status.get("age_s")
        last = status.get("last_candle")
        when = timeframes.iso(int(last)) if last else "-"  # type: ignore[attr-defined]
        restarts = status.get("restarts")
        restarted = f"  restarted {restarts}x after a crash" if restarts else ""
        lines.append(f"  last candle {when}  status written {age}s ago  pid {status.get('pid')}"
                     f"{restarted}")
        if status.get("liveness"):
            lines.append(f"  trader {status['liveness']}")
        lines.extend(breaker_lines(status.get("breakers")))
        for s in status.get("streams", []):
            lines.append(f"  stream {s['symbol']:<10} {s['state']:<12} last message "
                         f"{_ago(s.get('last_message_age_s'))}  reconnects {s['reconnects']}")
        for symbol, flow in (status.get("order_flow") or {}).items():
            lines.append(f"  flow   {symbol:<10} last price {flow.get('last_price') or '-'}  "
                         f"price age {_age(flow.get('price_age_s'))}  "
                         f"book age {_age(flow.get('book_age_s'))}")
    else:
        lines.append("  no running trader status found")
    return "\n".join(lines)


def _ago(seconds: float | None) -> str:
    """``12.5s ago``, or ``never`` for a stream that has had no message yet."""
    return "never" if seconds is None else f"{seconds}s ago"
