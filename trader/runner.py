"""The trader: closed candles in, decisions, orders and fills out, everything in the ledger.

Per timestamp (all symbols of the strategy together, as the backtester steps), the per-candle
protocol of :class:`Trader`:

1. ``engine.on_open``: exits at the open, then (paper) fills of the orders decided at the
   previous close; the execution books them against their orders' client ids.
2. the served model scores each symbol's window ending at the closed candle.
3. ``engine.on_close``: exits inside the candle, marks, decisions. Each decision is recorded
   with its order (status NEW, client id derived from the decision); live execution then
   sends it at once.
4. equity snapshot, then the engine's snapshot: the candle is done.

Order flow (:class:`trader.order_flow.LiveOrderFlow`, when given) adds each candle's
order-flow inputs to the window for a model with order-flow features, and prices paper fills
against the live book (``broker`` = :class:`trader.paper_fills.BookPaperBroker` in paper mode).
Paper or live is the :mod:`trader.execution` behind one interface; metrics and the status
file are :mod:`trader.observers`; the model and its hot swap are
:class:`trader.model_source.HotSwap`.

Every ledger write is idempotent (decisions by key, fills by trade id), so after a kill at any
moment the trader restarts from the last snapshot and re-processes the unfinished candle with
the same result; live orders are looked up by client id before anything is sent again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from tradeflow import timeframes
from tradeflow.backtest.live_engine import Candle, Decision, PortfolioEngine
from tradeflow.exchange.breaker import breaker_states
from tradeflow.strategy import StrategySettings
from tradeflow.symbols import parse_symbol
from trader.bookings import LedgerBook
from trader.brokers import Broker
from trader.execution import Execution, LiveExecution, PaperExecution
from trader.ledger import Ledger
from trader.model_source import HotSwap, ModelSource, ServedModel, Why
from trader.observers import MetricsObserver, Observer, StatusFile
from trader.order_flow import LiveOrderFlow
from trader.prometheus import TraderMetrics
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
    """One strategy's trader over one feed, execution and ledger."""

    def __init__(self, strategy: StrategySettings, *, ledger: Ledger, feed: Feed,
                 models: ModelSource, mode: str = "paper", broker: Broker | None = None,
                 metrics: TraderMetrics | None = None, status_path: Path | None = None,
                 quote: str | None = None, resume_halted: bool = False,
                 order_flow: LiveOrderFlow | None = None) -> None:
        if mode not in ("paper", "live"):
            raise ValueError(f"mode must be paper or live, not {mode!r}")
        if mode == "live" and broker is None:
            raise ValueError("live mode needs a broker")
        self.strategy = strategy
        self.name = strategy.name
        self.ledger = ledger
        self.feed = feed
        self.mode = mode
        self.step = timeframes.duration_ms(strategy.timeframe)
        self.models = HotSwap(models)
        self.engine: PortfolioEngine | None = None
        self.windows: dict[str, CandleWindow] = {}
        self.why: Why = {}  # the last scored candle's signals per symbol (signal strategies)
        self.resume_halted = resume_halted
        self.restarts = 0  # automatic restarts after a crash (set by whoever restarted it)
        self.summary = RunSummary(self.name, mode)
        self.observers: list[Observer] = []
        if metrics is not None:
            self.observers.append(MetricsObserver(metrics, self.name,
                                                  strategy.starting_balance))
        if status_path is not None:
            self.observers.append(StatusFile(status_path))
        book = LedgerBook(strategy, ledger, self.summary, self.observers,
                          quote or parse_symbol(strategy.symbols[0]).quote, self._model_version,
                          lambda symbol: self.why.get(symbol))
        self.order_flow = order_flow
        # Paper with a broker: fills against the live book, booked like live ones.
        self.execution: Execution = PaperExecution(book) if broker is None \
            else LiveExecution(book, broker)
        self.newest_seen: int | None = None  # newest candle the exchange has started
        self.stopped_at: float | None = None  # set at the end: status shows it stopped
        if hasattr(feed, "on_message"):
            feed.on_message = self._seen
        # Called with (t, batch, time.perf_counter()) once a timestamp's decisions and orders
        # are committed to the ledger: where bench/trader.py ends the decision latency.
        self.on_persisted: Callable[[int, Mapping[str, Candle], float], None] | None = None

    @property
    def model(self) -> ServedModel | None:
        return self.models.current

    # -- lifecycle ---------------------------------------------------------------------------
    async def run(self, *, max_candles: int | None = None,
                  stop: asyncio.Event | None = None) -> RunSummary:
        """Trade until ``stop`` is set or ``max_candles`` timestamps were processed."""
        model = self.models.load()
        state = self.ledger.init_strategy(self.name, self.strategy.starting_balance)
        self.engine = PortfolioEngine(self.strategy, state=state.engine_state or None,
                                      cash=state.cash)
        if self.resume_halted and self.engine.risk.mode.value == "halted":
            # The operator's decision after a kill-switch halt: the current equity is the
            # new peak; the daily loss limit still applies.
            self.engine.resume()
            log.warning("%s: resumed after a kill-switch halt (operator request)", self.name)
        self.ledger.set_model_version(self.name, model.version)
        self._note_model(model)
        await self.execution.reconcile(self.engine)
        since = await self._warm_up()
        watcher = asyncio.create_task(self.models.watch(), name="trader:models")
        status = asyncio.create_task(self._status_loop(), name="trader:status")
        try:
            async for t, batch in self.feed.candles(since):
                self._swap_model()
                await self.process(t, batch)
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
            self.windows[s] = CandleWindow(self.model.warmup + 1, self.model.inputs)
            self.windows[s].extend(history)
            self.engine.closes[s].clear()
            self.engine.warm(s, history["close"].to_numpy())
        self.model.prime(self.strategy.symbols)
        log.info("%s: warm-up of %d candles per symbol; resuming after %s", self.name, need,
                 timeframes.iso(resume))
        return dict.fromkeys(self.strategy.symbols, resume)

    def _finish(self) -> None:
        if self.engine is not None:
            self.summary.equity = self.engine.equity()
            self.summary.pnl = self.summary.equity - self.strategy.starting_balance
            self.summary.risk_mode = self.engine.risk.mode.value
        self.stopped_at = time.time()
        self._publish_status()
        for o in self.observers:
            o.close()

    # -- one timestamp -----------------------------------------------------------------------
    async def process(self, t: int, batch: Mapping[str, Candle]) -> list[Decision]:
        """Open, score, close, decide, book and snapshot one timestamp.

        Paper books the whole candle in one ledger transaction, so after a kill it is either
        fully booked or not at all and the engine restarts from the snapshot taken with it.
        """
        engine = self.engine
        assert engine is not None and self.model is not None
        arrived = time.perf_counter()
        execution = self.execution
        with execution.candle():
            refs = {s: engine.books[s].pending_ref for s in engine.symbols}
            fills = engine.on_open(t, {s: c.open for s, c in batch.items()},
                                   simulate=execution.simulates_fills)
            await execution.opened(t, engine, refs, fills)
            if self.order_flow is not None:
                await self.order_flow.settle(t + self.step)
            probs = self._score(batch)
            fills, decisions = engine.on_close(t, batch, probs, now_ms=t + self.step)
            # Catching up after downtime: no market orders on old candles.
            behind = self.newest_seen is not None and t < self.newest_seen - 2 * self.step
            await execution.closed(t, engine, fills, decisions, catching_up=behind)
            self._end_candle(t)
        self._persisted(t, batch, arrived, decisions)
        return decisions

    def _score(self, batch: Mapping[str, Candle]) -> dict[str, float]:
        assert self.model is not None
        windows, flow = {}, self.order_flow
        for s, c in batch.items():
            window = self.windows[s]
            extra = flow.inputs(s, c.open_time, window.extra) if flow is not None else \
                (float("nan"),) * len(window.extra)
            window.append((c.open_time, c.open, c.high, c.low, c.close, c.volume, *extra))
            if flow is not None:
                flow.candle_closed(s, c.close)
            windows[s] = window.columns()
        probs, self.why = self.model.decide_all(windows)
        return probs

    def _end_candle(self, t: int) -> None:
        engine = self.engine
        assert engine is not None
        equity = engine.equity()
        exposure = sum(abs(engine.exposure(s)) for s in engine.symbols)
        self.ledger.snapshot_equity(self.name, t + self.step, equity, engine.cash, exposure)
        self.ledger.save_engine_state(self.name, engine.to_dict())
        self.summary.candles += 1
        self.summary.first_candle = self.summary.first_candle or t
        self.summary.last_candle = t

    def _persisted(self, t: int, batch: Mapping[str, Candle], arrived: float,
                   decisions: list[Decision]) -> None:
        """The candle's decisions and orders are committed: that ends its decision latency.
        Holds are not in the ledger; observers hear of them last."""
        assert self.engine is not None
        done = time.perf_counter()
        latency_ms = (done - arrived) * 1000.0
        self.summary.latencies_ms.append(latency_ms)
        for o in self.observers:
            o.candle_done(t, batch, self.engine, latency_ms)
        if self.on_persisted is not None:
            self.on_persisted(t, batch, done)
        holds = [d for d in decisions if d.action == "hold"]
        for o in self.observers:
            for d in holds:
                o.held(d)

    def _seen(self, symbol: str, row: Any) -> None:
        if self.newest_seen is None or row.open_time > self.newest_seen:
            self.newest_seen = int(row.open_time)

    # -- models and status -------------------------------------------------------------------
    def _model_version(self) -> str:
        assert self.model is not None
        return self.model.version

    def _swap_model(self) -> None:
        """Between candles only: take a newly promoted champion."""
        swapped = self.models.swap()
        if swapped is None:
            return
        old, new = swapped
        log.info("%s: champion changed %s -> %s", self.name, old.version if old else None,
                 new.version)
        for s, window in self.windows.items():
            if window.size < new.warmup + 1 or window.extra != new.inputs:
                grown = CandleWindow(max(window.size, new.warmup + 1), new.inputs)
                grown.extend(window.frame())
                self.windows[s] = grown
        if new.inputs and self.order_flow is None:
            log.warning("%s: v%s reads order flow this trader does not stream (it started "
                        "without): its probabilities stay NaN until a restart", self.name,
                        new.version)
        self.ledger.set_model_version(self.name, new.version)
        self._note_model(new)

    def _note_model(self, model: ServedModel) -> None:
        if model.version not in self.summary.model_versions:
            self.summary.model_versions.append(model.version)
        for o in self.observers:
            o.model_served(model.version)

    async def _status_loop(self) -> None:
        while True:
            await asyncio.sleep(2.0)
            self._publish_status()

    def _publish_status(self) -> None:
        if self.observers:
            snapshot = self.status()
            for o in self.observers:
                o.status(snapshot)

    def status(self) -> dict[str, Any]:
        engine = self.engine
        return {
            "strategy": self.name, "mode": self.mode, "pid": os.getpid(),
            "restarts": self.restarts, "fills": self.summary.fills,
            "model_version": self.model.version if self.model else None,
            "updated_at": time.time(),
            "last_candle": engine.time if engine else None,
            "equity": engine.equity() if engine else None,
            "cash": engine.cash if engine else None,
            "risk_mode": engine.risk.mode.value if engine else None,
            "streams": [asdict(s) for s in self.feed.status()],
            "order_flow": self.order_flow.status() if self.order_flow else None,
            "stopped_at": self.stopped_at,
            "breakers": [asdict(b) for b in breaker_states()],
        }
