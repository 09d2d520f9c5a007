"""Where the trader's decisions become fills: on paper, or on the exchange.

:class:`Execution` is the one interface the trader's per-candle protocol talks to; it is
called at the open (after the engine's open phase) and at the close (after the engine's
decisions) of every timestamp.

* :class:`PaperExecution` books the engine's simulated fills: exits, and the orders decided at
  the previous close filling at this open, exactly as the backtester fills them. A whole
  candle is one ledger transaction: after a kill it is either fully booked or not at all.
* :class:`LiveExecution` sends market orders through the broker with the decision's client
  order id (the exchange's, or :class:`trader.paper_fills.BookPaperBroker` filling paper
  orders against the live book), books the broker's fills, and after a restart settles the
  orders a previous run recorded but never saw confirmed (reconciliation). No transaction
  spans a candle: the broker is awaited in between, and every write is idempotent on its own.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any, Protocol

from tradeflow.backtest.live_engine import Decision, Fill, PortfolioEngine
from trader.bookings import LedgerBook, by_symbol
from trader.brokers import Broker

log = logging.getLogger(__name__)


class Execution(Protocol):
    """How one trader's orders are filled and booked."""

    simulates_fills: bool  # the engine fills pending orders at the open (paper) or not (live)

    def candle(self) -> contextlib.AbstractContextManager[None]:
        """The scope of one timestamp's writes."""
        ...

    async def reconcile(self, engine: PortfolioEngine) -> None:
        """Before the first candle: settle what a previous run left unconfirmed."""
        ...

    async def opened(self, t: int, engine: PortfolioEngine, refs: Mapping[str, str | None],
                     fills: list[Fill]) -> None:
        """The open of ``t``: the engine's open-phase fills; ``refs`` the pending orders."""
        ...

    async def closed(self, t: int, engine: PortfolioEngine, fills: list[Fill],
                     decisions: list[Decision], *, catching_up: bool) -> None:
        """The close of ``t``: intrabar exit fills and the decisions for the next open."""
        ...


class PaperExecution:
    """Fills simulated by the engine at the next open, booked in one transaction per candle."""

    simulates_fills = True

    def __init__(self, book: LedgerBook) -> None:
        self.book = book

    def candle(self) -> contextlib.AbstractContextManager[None]:
        return self.book.ledger.transaction()

    async def reconcile(self, engine: PortfolioEngine) -> None:
        # Nothing to settle: an open paper order either fills at the next open as planned (the
        # snapshot holds it) or belongs to a candle that was not finished, which is processed
        # again from the snapshot and re-derives it.
        return None

    async def opened(self, t: int, engine: PortfolioEngine, refs: Mapping[str, str | None],
                     fills: list[Fill]) -> None:
        # Booked in the engine's order: exits at the open come before the signal fills.
        self._book_exits(t, engine, [f for f in fills if f.kind == "exit_open"], "exit_open")
        filled = {f.symbol: f for f in fills if f.kind == "signal"}
        for symbol, cid in refs.items():
            if cid is None:
                continue
            fill = filled.get(symbol)
            if fill is not None:
                self.book.apply_fill(cid, f"paper-{cid}", fill.price, fill.qty, fill.fee,
                                     self.book.quote, t)
            order = self.book.ledger.order(cid)
            if order is not None and order.status in ("NEW", "SUBMITTED", "PARTIALLY_FILLED"):
                # Cut to free cash, or nothing left to do after an exit at this open.
                self.book.ledger.mark_canceled(cid, "not (fully) fillable at the open")
            engine.books[symbol].pending_ref = None

    async def closed(self, t: int, engine: PortfolioEngine, fills: list[Fill],
                     decisions: list[Decision], *, catching_up: bool) -> None:
        self._book_exits(t, engine, fills, "exit")
        for d in decisions:
            orders = self.book.record(d)
            if orders:
                engine.books[d.symbol].pending_ref = orders[0].client_order_id

    def _book_exits(self, t: int, engine: PortfolioEngine, fills: list[Fill], kind: str) -> None:
        for symbol, group in by_symbol(fills).items():
            orders = self.book.record_exit(t, symbol, group, kind, engine.risk.mode.value)
            for f, order in zip(group, orders, strict=True):
                cid = order.client_order_id
                self.book.apply_fill(cid, f"paper-{cid}", f.price, f.qty, f.fee,
                                     self.book.quote, t)
            self.book.summary.orders += len(orders)


class LiveExecution:
    """Market orders on the exchange, idempotent by client order id; the exchange's fills."""

    simulates_fills = False

    def __init__(self, book: LedgerBook, broker: Broker) -> None:
        self.book = book
        self.broker = broker
        # Client ids of the orders open when this run reconciled (None: not reconciled): only
        # those can have been sent by an earlier run; a NEW order recorded later was not.
        self._earlier: set[str] | None = None

    @contextlib.contextmanager
    def candle(self) -> Iterator[None]:
        yield  # no transaction may span a candle that awaits the exchange

    async def reconcile(self, engine: PortfolioEngine) -> None:
        ledger = self.book.ledger
        pending = ledger.pending_orders(self.book.name)
        self._earlier = {o.client_order_id for o in pending}
        for order in pending:
            decided = ledger.order_candle(order.client_order_id)
            if engine.time is not None and decided is not None and decided > engine.time:
                continue  # its candle was not finished: re-processing it settles the order
            execution = await self.broker.reconcile(order.symbol, order.client_order_id)
            if execution is None:
                ledger.mark_canceled(order.client_order_id,
                                     "never reached the exchange before a restart")
                continue
            self._book_execution(order.symbol, execution, int(time.time() * 1000))

    async def opened(self, t: int, engine: PortfolioEngine, refs: Mapping[str, str | None],
                     fills: list[Fill]) -> None:
        await self._execute_exits(t, engine, fills, "exit_open")

    async def closed(self, t: int, engine: PortfolioEngine, fills: list[Fill],
                     decisions: list[Decision], *, catching_up: bool) -> None:
        await self._execute_exits(t, engine, fills, "exit")
        for d in decisions:
            if d.side is None:
                self.book.record(d)
                continue
            if catching_up:  # catching up after downtime: no market orders on old candles
                self.book.record(d, note="catch-up after downtime: not sent")
                continue
            amount = self.broker.tradable_amount(d.symbol, d.qty, d.price)
            if amount <= 0:
                self.book.record(d, note="below the exchange's minimum order size")
                continue
            order = self.book.record(d, amount=amount)[0]
            await self._settle(d.symbol, d.side, order, amount, t)
        self._sync(engine)

    async def _settle(self, symbol: str, side: str, order: Any, amount: float, t: int) -> None:
        """Send a NEW order (or find it, if a previous run sent it); leave settled ones be."""
        if order.status == "NEW":
            cid = order.client_order_id
            execution = await self.broker.execute(
                symbol, side, amount, cid,
                may_exist=self._earlier is None or cid in self._earlier)
        elif order.status in ("SUBMITTED", "PARTIALLY_FILLED"):
            execution = await self.broker.reconcile(symbol, order.client_order_id)
            if execution is None:
                return
        else:
            return  # filled, canceled or rejected by an earlier run: never send it again
        self._book_execution(symbol, execution, t)

    async def _execute_exits(self, t: int, engine: PortfolioEngine, fills: list[Fill],
                             kind: str) -> None:
        for symbol, group in by_symbol(fills).items():
            # The orders carry the amounts the exchange can take (its step), so a fill of
            # the whole order leaves it FILLED, not partially filled by the rounding.
            group = [replace(f, qty=self.broker.tradable_amount(symbol, f.qty, f.price) or f.qty)
                     for f in group]
            orders = self.book.record_exit(t, symbol, group, kind, engine.risk.mode.value)
            for f, order in zip(group, orders, strict=True):
                amount = self.broker.tradable_amount(symbol, f.qty, f.price)
                if amount <= 0:
                    self.book.ledger.mark_canceled(order.client_order_id,
                                                   "below exchange minimum")
                    continue
                await self._settle(symbol, f.side, order, amount, t)

    def _book_execution(self, symbol: str, execution: Any, t: int) -> None:
        ledger, cid = self.book.ledger, execution.client_order_id
        if execution.rejected:
            ledger.mark_rejected(cid, execution.rejected[:500])
            log.warning("order %s rejected: %s", cid, execution.rejected)
            return
        with ledger.transaction():  # ack and fill in one commit: one fsync, not two
            if execution.exchange_order_id:
                ledger.mark_submitted(cid, execution.exchange_order_id)
            if execution.filled > 0 and execution.average:
                self.book.apply_fill(cid, f"x-{execution.exchange_order_id}", execution.average,
                                     execution.filled, execution.fee,
                                     execution.fee_currency or self.book.quote, t,
                                     execution.basis)

    def _sync(self, engine: PortfolioEngine) -> None:
        """Take cash and holdings from the ledger, which books the exchange's fills."""
        ledger, name = self.book.ledger, self.book.name
        state = ledger.trader_state(name)
        held = {p.symbol: p for p in ledger.positions(name)}
        # Dust under the exchange's minimum order (left by its amount step) cannot be sold:
        # the engine sees it as flat, so no exit rule keeps trying to sell it.
        qty = {s: held[s].qty if s in held and self.broker.tradable_amount(
            s, held[s].qty, held[s].avg_price or 0.0) > 0 else 0.0 for s in engine.symbols}
        engine.sync(state.cash, qty, {s: p.avg_price for s, p in held.items() if p.avg_price})
