"""The trader: closed candles in, decisions, orders and fills out, everything in the ledger.

Per timestamp (all symbols of the strategy together, as the backtester steps):

1. ``engine.on_open``: exits at the open, then paper fills of the orders decided at the
   previous close; each fill is booked against its order's client id.
2. the served model scores each symbol's window ending at the closed candle.
3. ``engine.on_close``: exits inside the candle, marks, decisions. Each decision is recorded
   with its order (status NEW, client id derived from the decision) in one transaction;
   live mode then sends it at once.
4. equity snapshot, then the engine's snapshot: the candle is done.

Every ledger write is idempotent (decisions by key, fills by trade id), so after a kill at any
moment the trader restarts from the last snapshot and re-processes the unfinished candle with
the same result; live orders are looked up by client id before anything is sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from tradeflow import timeframes
from tradeflow.backtest.live_engine import Candle, Decision, Fill, PortfolioEngine
from tradeflow.strategy import StrategySettings
from trader.brokers import LiveBroker
from trader.ledger import Ledger, NewDecision, NewOrder
from trader.metrics import TraderMetrics
from trader.model_source import ModelSource, ServedModel
from trader.run_summary import RunSummary
from trader.window import CandleWindow

log = logging.getLogger(__name__)


class Feed(Protocol):
    async def history(self, symbol: str, start: int, end: int) -> pd.DataFrame: ...
    async def last_closed(self) -> int: ...
    def candles(self, since: Mapping[str, int | None]) -> AsyncIterator[
        tuple[int, dict[str, Candle]]]: ...
    def status(self) -> list[Any]: ...
    async def close(self) -> None: ...


class Trader:
    """One strategy's trader over one feed, broker and ledger."""

    def __init__(self, strategy: StrategySettings, *, ledger: Ledger, feed: Feed,
                 models: ModelSource, mode: str = "paper", broker: LiveBroker | None = None,
                 metrics: TraderMetrics | None = None, status_path: Path | None = None,
                 quote: str | None = None, resume_halted: bool = False) -> None:
        if mode not in ("paper", "live"):
            raise ValueError(f"mode must be paper or live, not {mode!r}")
        if mode == "live" and broker is None:
            raise ValueError("live mode needs a broker")
        self.strategy = strategy
        self.name = strategy.name
        self.ledger = ledger
        self.feed = feed
        self.models = models
        self.mode = mode
        self.broker = broker
        self.metrics = metrics
        self.status_path = status_path
        self.quote = quote or strategy.symbols[0].split("/")[1]
        self.step = timeframes.duration_ms(strategy.timeframe)
        self.model: ServedModel | None = None
        self._next_model: ServedModel | None = None
        self.engine: PortfolioEngine | None = None
        self.windows: dict[str, CandleWindow] = {}
        self.resume_halted = resume_halted
        self.summary = RunSummary(self.name, mode)
        self.newest_seen: int | None = None  # newest candle the exchange has started
        if hasattr(feed, "on_message"):
            feed.on_message = self._seen
        # Called with (t, batch, time.perf_counter()) once a timestamp's decisions and orders
        # are committed to the ledger: where bench/trader.py ends the decision latency.
        self.on_persisted: Callable[[int, Mapping[str, Candle], float], None] | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    async def run(self, *, max_candles: int | None = None,
                  stop: asyncio.Event | None = None) -> RunSummary:
        """Trade until ``stop`` is set or ``max_candles`` timestamps were processed."""
        self.model = self.models.load()
        state = self.ledger.init_strategy(self.name, self.strategy.starting_balance)
        self.engine = PortfolioEngine(self.strategy, state=state.engine_state or None,
                                      cash=state.cash)
        if self.resume_halted and self.engine.risk.mode.value == "halted":
            # The operator's decision after a kill-switch halt: the current equity is the
            # new peak; the daily loss limit still applies.
            self.engine.resume()
            log.warning("%s: resumed after a kill-switch halt (operator request)", self.name)
        self.ledger.set_model_version(self.name, self.model.version)
        self._note_model(self.model)
        await self._reconcile()
        since = await self._warm_up()
        watcher = asyncio.create_task(self._watch_models(), name="trader:models")
        status = asyncio.create_task(self._status_loop(), name="trader:status")
        try:
            async for t, batch in self.feed.candles(since):
                self._swap_model()
                self.process(t, batch) if self.mode == "paper" else await self.process_live(
                    t, batch)
                if (max_candles is not None and self.summary.candles >= max_candles) or (
                        stop is not None and stop.is_set()):
                    break
        finally:
            for task in (watcher, status):
                task.cancel()
            await asyncio.gather(watcher, status, return_exceptions=True)
            await self.feed.close()
            self._finish()
        return self.summary

    async def _warm_up(self) -> dict[str, int | None]:
        """Seed model windows and the engine's recent closes; where to resume from."""
        assert self.engine is not None and self.model is not None
        last = await self.feed.last_closed()
        self.newest_seen = last
        resume = self.engine.time if self.engine.time is not None else last
        need = max(self.model.warmup + 1, self.engine.window) + 1
        start = resume - need * self.step
        for s in self.strategy.symbols:
            history = await self.feed.history(s, start, resume)
            self.windows[s] = CandleWindow(self.model.warmup + 1)
            self.windows[s].extend(history)
            self.engine.closes[s].clear()
            self.engine.warm(s, history["close"].to_numpy())
        self.model.prime(self.strategy.symbols)
        log.info("%s: warm-up of %d candles per symbol; resuming after %s", self.name, need,
                 timeframes.iso(resume))
        return dict.fromkeys(self.strategy.symbols, resume)

    async def _reconcile(self) -> None:
        """Live: settle orders recorded but not confirmed when the last run stopped.

        Paper needs nothing: an open paper order either fills at the next open as planned
        (the snapshot holds it) or belongs to a candle that was not finished, which is
        processed again from the snapshot and re-derives it.
        """
        assert self.engine is not None
        if self.mode == "paper":
            return
        assert self.broker is not None
        for order in self.ledger.pending_orders(self.name):
            decided = self.ledger.order_candle(order.client_order_id)
            if self.engine.time is not None and decided is not None and \
                    decided > self.engine.time:
                continue  # its candle was not finished: re-processing it settles the order
            execution = await self.broker.reconcile(order.symbol, order.client_order_id)
            if execution is None:
                self.ledger.mark_canceled(order.client_order_id,
                                          "never reached the exchange before a restart")
                continue
            self._book_execution(order.symbol, order.side, execution, int(time.time() * 1000))

    def _finish(self) -> None:
        if self.engine is not None:
            self.summary.equity = self.engine.equity()
            self.summary.pnl = self.summary.equity - self.strategy.starting_balance
            self.summary.risk_mode = self.engine.risk.mode.value
        self._write_status()
        if self.metrics is not None:
            self.metrics.close()

    # -- one timestamp (paper) ---------------------------------------------------------------
    def process(self, t: int, batch: Mapping[str, Candle]) -> list[Decision]:
        """Open, score, close, decide, snapshot for one timestamp (paper mode).

        The whole candle is one ledger transaction: after a kill it is either fully booked
        or not at all, and the engine restarts from the snapshot taken with it.
        """
        engine = self.engine
        assert engine is not None and self.model is not None
        arrived = time.perf_counter()
        with self.ledger.transaction():
            refs = {s: engine.books[s].pending_ref for s in engine.symbols}
            open_fills = engine.on_open(t, {s: c.open for s, c in batch.items()})
            # Booked in the engine's order: exits at the open come before the signal fills.
            self._book_exits(t, [f for f in open_fills if f.kind == "exit_open"], "exit_open")
            self._book_signal_fills(t, refs, open_fills)
            probs = self._score(batch)
            close_fills, decisions = engine.on_close(t, batch, probs, now_ms=t + self.step)
            self._book_exits(t, close_fills, "exit")
            for d in decisions:
                orders = self._record(d)
                if orders:
                    engine.books[d.symbol].pending_ref = orders[0].client_order_id
            self._end_candle(t, batch)
        self._persisted(t, batch, arrived)
        self._count_holds(decisions)
        return decisions

    # -- one timestamp (live) ----------------------------------------------------------------
    async def process_live(self, t: int, batch: Mapping[str, Candle]) -> list[Decision]:
        """As :meth:`process`, but orders go to the exchange and its fills are booked."""
        engine = self.engine
        assert engine is not None and self.broker is not None
        arrived = time.perf_counter()
        open_fills = engine.on_open(t, {s: c.open for s, c in batch.items()}, simulate=False)
        await self._execute_exits(t, open_fills, "exit_open")
        probs = self._score(batch)
        close_fills, decisions = engine.on_close(t, batch, probs, now_ms=t + self.step)
        await self._execute_exits(t, close_fills, "exit")
        stale = self.newest_seen is not None and t < self.newest_seen - 2 * self.step
        for d in decisions:
            if d.side is None:
                self._record(d)
                continue
            if stale:  # catching up after downtime: no market orders on old candles
                self._record(d, note="catch-up after downtime: not sent")
                continue
            amount = self.broker.tradable_amount(d.symbol, d.qty, d.price)
            if amount <= 0:
                self._record(d, note="below the exchange's minimum order size")
                continue
            order = self._record(d, amount=amount)[0]
            await self._settle(d.symbol, d.side, order, amount, t)
        self._sync_from_ledger()
        self._end_candle(t, batch)
        self._persisted(t, batch, arrived)
        return decisions

    async def _settle(self, symbol: str, side: str, order: Any, amount: float, t: int) -> None:
        """Send a NEW order (or find it, if a previous run sent it); leave settled ones be."""
        assert self.broker is not None
        if order.status == "NEW":
            execution = await self.broker.execute(symbol, side, amount, order.client_order_id)
        elif order.status in ("SUBMITTED", "PARTIALLY_FILLED"):
            execution = await self.broker.reconcile(symbol, order.client_order_id)
            if execution is None:
                return
        else:
            return  # filled, canceled or rejected by an earlier run: never send it again
        self._book_execution(symbol, side, execution, t)

    async def _execute_exits(self, t: int, fills: list[Fill], kind: str) -> None:
        assert self.broker is not None
        for symbol, group in _by_symbol(fills).items():
            orders = self.ledger.record_decision(
                self._exit_decision(t, symbol, group, kind),
                [NewOrder(side=f.side, amount=f.qty, intended_price=f.price) for f in group])
            for f, order in zip(group, orders, strict=True):
                amount = self.broker.tradable_amount(symbol, f.qty, f.price)
                if amount <= 0:
                    self.ledger.mark_canceled(order.client_order_id, "below exchange minimum")
                    continue
                await self._settle(symbol, f.side, order, amount, t)

    def _book_execution(self, symbol: str, side: str, execution: Any, t: int) -> None:
        cid = execution.client_order_id
        if execution.rejected:
            self.ledger.mark_rejected(cid, execution.rejected[:500])
            log.warning("order %s rejected: %s", cid, execution.rejected)
            return
        if execution.exchange_order_id:
            self.ledger.mark_submitted(cid, execution.exchange_order_id)
        if execution.filled > 0 and execution.average and self.ledger.apply_fill(
                cid, f"x-{execution.exchange_order_id}", execution.average, execution.filled,
                execution.fee, execution.fee_currency or self.quote, t):
            self.summary.fills += 1

    def _sync_from_ledger(self) -> None:
        assert self.engine is not None
        state = self.ledger.trader_state(self.name)
        qty = {p.symbol: p.qty for p in self.ledger.positions(self.name)}
        self.engine.sync(state.cash, {s: qty.get(s, 0.0) for s in self.engine.symbols})

    # -- shared steps ------------------------------------------------------------------------
    def _score(self, batch: Mapping[str, Candle]) -> dict[str, float]:
        assert self.model is not None
        windows = {}
        for s, c in batch.items():
            window = self.windows[s]
            window.append((c.open_time, c.open, c.high, c.low, c.close, c.volume))
            windows[s] = window.columns()
        return self.model.predict_all(windows)

    def _count_holds(self, decisions: list[Decision]) -> None:
        if self.metrics is not None:
            for d in decisions:
                if d.action == "hold":
                    self.metrics.decisions.labels(self.name, d.symbol, "hold").inc()

    def _record(self, d: Decision, *, amount: float | None = None,
                note: str | None = None) -> list[Any]:
        """Record a decision that changes the target (holds are counted, not stored)."""
        assert self.model is not None
        if d.action == "hold" and note is None:
            return []
        side = d.side if note is None else None
        qty = amount if amount is not None else d.qty
        orders = [NewOrder(side=side, amount=qty, intended_price=d.price)] \
            if side and qty > 0 else []
        recorded = self.ledger.record_decision(NewDecision(
            strategy=self.name, symbol=d.symbol, candle_open_time=d.time, kind="signal",
            action=d.action if note is None else "hold",
            price=d.price, reason=(d.reason if note is None else f"{d.reason}; {note}")[:500],
            model_version=self.model.version, probability=d.probability, target=d.target,
            risk_state=d.risk_mode), orders)
        self.summary.decisions += 1
        self.summary.orders += len(recorded)
        if self.metrics is not None:
            self.metrics.decisions.labels(self.name, d.symbol, d.action).inc()
            for _ in recorded:
                self.metrics.orders.labels(self.name, d.side or "none").inc()
        return recorded

    def _book_signal_fills(self, t: int, refs: Mapping[str, str | None],
                           fills: list[Fill]) -> None:
        filled = {f.symbol: f for f in fills if f.kind == "signal"}
        for symbol, cid in refs.items():
            if cid is None:
                continue
            fill = filled.get(symbol)
            if fill is not None and self.ledger.apply_fill(
                    cid, f"paper-{cid}", fill.price, fill.qty, fill.fee, self.quote, t):
                self.summary.fills += 1
            order = self.ledger.order(cid)
            if order is not None and order.status in ("NEW", "SUBMITTED", "PARTIALLY_FILLED"):
                # Cut to free cash, or nothing left to do after an exit at this open.
                self.ledger.mark_canceled(cid, "not (fully) fillable at the open")
            self.engine.books[symbol].pending_ref = None  # type: ignore[union-attr]

    def _book_exits(self, t: int, fills: list[Fill], kind: str) -> None:
        for symbol, group in _by_symbol(fills).items():
            orders = self.ledger.record_decision(
                self._exit_decision(t, symbol, group, kind),
                [NewOrder(side=f.side, amount=f.qty, intended_price=f.price) for f in group])
            for f, order in zip(group, orders, strict=True):
                if self.ledger.apply_fill(order.client_order_id, f"paper-{order.client_order_id}",
                                          f.price, f.qty, f.fee, self.quote, t):
                    self.summary.fills += 1
            self.summary.orders += len(orders)

    def _exit_decision(self, t: int, symbol: str, group: list[Fill], kind: str) -> NewDecision:
        assert self.engine is not None and self.model is not None
        reasons = ", ".join(f"{f.reason} {f.qty:.6g} @ {f.price:.6g}" for f in group)
        return NewDecision(strategy=self.name, symbol=symbol, candle_open_time=t, kind=kind,
                           action=f"exit_{group[0].reason}", price=group[0].price,
                           reason=reasons[:500], model_version=self.model.version,
                           risk_state=self.engine.risk.mode.value)

    def _persisted(self, t: int, batch: Mapping[str, Candle], arrived: float) -> None:
        """The candle's decisions and orders are committed: that ends its decision latency."""
        done = time.perf_counter()
        latency_ms = (done - arrived) * 1000.0
        self.summary.latencies_ms.append(latency_ms)
        if self.metrics is not None:
            self.metrics.latency.labels(self.name).observe(latency_ms / 1000.0)
        if self.on_persisted is not None:
            self.on_persisted(t, batch, done)

    def _end_candle(self, t: int, batch: Mapping[str, Candle]) -> None:
        engine = self.engine
        assert engine is not None
        equity = engine.equity()
        exposure = sum(abs(engine.exposure(s)) for s in engine.symbols)
        self.ledger.snapshot_equity(self.name, t + self.step, equity, engine.cash, exposure)
        self.ledger.save_engine_state(self.name, engine.to_dict())
        self.summary.candles += 1
        self.summary.first_candle = self.summary.first_candle or t
        self.summary.last_candle = t
        if self.metrics is not None:
            self.metrics.equity.labels(self.name).set(equity)
            self.metrics.pnl.labels(self.name).set(equity - self.strategy.starting_balance)
            self.metrics.drawdown.labels(self.name).set(engine.risk.drawdown(equity))
            for s, c in batch.items():
                self.metrics.price.labels(self.name, s).set(c.close)
                pos = engine.books[s].position
                self.metrics.position.labels(self.name, s).set(pos.side * pos.qty)

    def _seen(self, symbol: str, row: Any) -> None:
        if self.newest_seen is None or row.open_time > self.newest_seen:
            self.newest_seen = int(row.open_time)

    # -- models and status -------------------------------------------------------------------
    async def _watch_models(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            current = self._next_model or self.model
            if current is None:
                continue
            newer = await self.models.newer(current)
            if newer is not None:
                self._next_model = newer

    def _swap_model(self) -> None:
        """Between candles only: take a newly promoted champion."""
        if self._next_model is None:
            return
        old, self.model, self._next_model = self.model, self._next_model, None
        log.info("%s: champion changed %s -> %s", self.name, old.version if old else None,
                 self.model.version)
        for s, window in self.windows.items():
            if window.size < self.model.warmup + 1:  # a longer warm-up needs a wider window
                grown = CandleWindow(self.model.warmup + 1)
                grown.extend(window.frame())
                self.windows[s] = grown
        self.ledger.set_model_version(self.name, self.model.version)
        self._note_model(self.model)

    def _note_model(self, model: ServedModel) -> None:
        if model.version not in self.summary.model_versions:
            self.summary.model_versions.append(model.version)
        if self.metrics is not None:
            with contextlib.suppress(ValueError):  # "fixed" and the like are not numbers
                self.metrics.model_version.labels(self.name).set(float(model.version))

    async def _status_loop(self) -> None:
        while True:
            await asyncio.sleep(2.0)
            self._write_status()

    def status(self) -> dict[str, Any]:
        engine = self.engine
        streams = [asdict(s) for s in self.feed.status()]
        if self.metrics is not None:
            for s in streams:
                self.metrics.set_stream(s["symbol"], s["state"], s["last_message_age_s"])
        return {
            "strategy": self.name, "mode": self.mode, "pid": os.getpid(),
            "model_version": self.model.version if self.model else None,
            "updated_at": time.time(),
            "last_candle": engine.time if engine else None,
            "equity": engine.equity() if engine else None,
            "cash": engine.cash if engine else None,
            "risk_mode": engine.risk.mode.value if engine else None,
            "streams": streams,
        }

    def _write_status(self) -> None:
        if self.status_path is None:
            return
        self.status_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.status_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.status(), default=str))
        tmp.replace(self.status_path)  # readers never see half a file


def _by_symbol(fills: list[Fill]) -> dict[str, list[Fill]]:
    out: dict[str, list[Fill]] = {}
    for f in fills:
        out.setdefault(f.symbol, []).append(f)
    return out
