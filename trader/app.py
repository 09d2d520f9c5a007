"""Build and run a trader from settings: the entry point of ``tradeflow trade`` and the flow."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time
from pathlib import Path
from typing import Any

from tradeflow.config import Settings
from tradeflow.errors import UsageError, UserError
from tradeflow.strategy import StrategySettings, load_strategy
from tradeflow.symbols import parse_symbol
from trader.exclusive import strategy_lock
from trader.run_summary import RunSummary
from trader.runner import Trader

log = logging.getLogger(__name__)
LIVE_CONFIRM = "TRADEFLOW_LIVE_CONFIRM"


def check_live(mode: str, settings: Settings, env: dict[str, str] | None = None) -> None:
    """Live trading needs ``--mode live``, TRADEFLOW_LIVE_CONFIRM=yes (any case) and API keys."""
    env = dict(os.environ if env is None else env)
    if mode != "live":
        return
    if env.get(LIVE_CONFIRM, "").strip().lower() != "yes":
        given = f" (it is {env[LIVE_CONFIRM]!r})" if LIVE_CONFIRM in env else ""
        raise UserError(f"live trading places real orders; refusing without {LIVE_CONFIRM}=yes "
                        f"in the environment{given} (use --mode paper to trade on paper)")
    if settings.exchange.api_key is None or settings.exchange.api_secret is None:
        raise UserError("live trading needs TRADEFLOW_EXCHANGE__API_KEY and "
                        "TRADEFLOW_EXCHANGE__API_SECRET in the environment")


async def check_live_keys(settings: Settings) -> None:
    """A signed call (the balance) before live trading starts: keys the exchange rejects
    stop the start in one line instead of surfacing at the first order."""
    from tradeflow.exchange import AuthenticationFailed, ExchangeError
    from tradeflow.exchange.ccxt_client import ExchangeClient

    async with ExchangeClient(settings.exchange) as client:
        try:
            await client.fetch_balance()
        except AuthenticationFailed as exc:
            raise UsageError(f"the exchange rejected the API key "
                             f"(TRADEFLOW_EXCHANGE__API_KEY / __API_SECRET): {exc}") from None
        except ExchangeError as exc:
            raise UserError(f"cannot check the API key with the exchange ({exc.kind}): "
                            f"{exc}") from None


def check_metrics_port(port: int | None) -> None:
    """A Prometheus port the OS can bind (0 = off), checked before anything loads."""
    if port is not None and not 0 <= port <= 65535:
        raise UsageError(f"--metrics-port {port}: must be 0 (off) or a TCP port 1-65535")


def status_path(settings: Settings, strategy: str) -> Path:
    return settings.data_dir / "trader" / f"{strategy}.json"


def ledger_for(settings: Settings, mode: str = "paper", *, create: bool = True) -> Any:
    """The ledger of ``mode``'s book (paper and live are separate databases); None when
    ``create`` is false and its SQLite file does not exist (nothing is created to read)."""
    from trader.ledger import Ledger

    url = settings.ledger_url_for(mode)
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if not create and not path.is_file():
            return None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot create the ledger's directory {path.parent}: "
                            f"{exc.strerror or exc}") from None
    return Ledger(url)


async def run_trader(settings: Settings, strategy: StrategySettings | str, *, mode: str = "paper",
                     max_candles: int | None = None, stop: asyncio.Event | None = None,
                     metrics_port: int | None = None, resume_halted: bool = False,
                     restarts: int = 0) -> RunSummary:
    """Trade ``strategy`` until ``stop`` is set, ``max_candles`` were processed or SIGTERM.

    One trader per strategy and ledger (:mod:`trader.exclusive`): a second one is refused.
    ``restarts``: how many times this strategy's trader was restarted after a crash lately
    (shown in status and metrics).
    """
    from tradeflow.exchange.ccxt_client import ExchangeClient
    from trader.brokers import LiveBroker
    from trader.feed import CandleFeed
    from trader.model_source import model_source
    from trader.prometheus import TraderMetrics

    check_live(mode, settings)
    port = settings.trader.metrics_port if metrics_port is None else metrics_port
    check_metrics_port(port)
    if isinstance(strategy, str):
        strategy = load_strategy(strategy)
    if mode == "live":
        await check_live_keys(settings)
    models = model_source(settings, strategy)
    served = models.load()  # no champion, a bad source: say so before anything else is opened
    held = contextlib.ExitStack()
    held.enter_context(strategy_lock(settings.ledger_url_for(mode), strategy.name))
    try:
        ledger = ledger_for(settings, mode)
    except BaseException:
        held.close()
        raise
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    metrics = TraderMetrics(strategy.name)
    metrics.restarts.labels(strategy.name).set(restarts)
    if metrics.serve(port or 0):
        log.info("metrics on http://127.0.0.1:%d/metrics", port)
    try:
        async with ExchangeClient(settings.exchange) as client:
            markets = await client.load_markets()
            missing = [s for s in strategy.symbols if s not in markets]
            if missing:
                raise UserError(f"{client.id} does not list {', '.join(missing)}")
            feed = CandleFeed(client, strategy.symbols, strategy.timeframe,
                              use_websocket=settings.trader.use_websocket,
                              stale_after_s=settings.trader.stale_after_s,
                              reconnect_max_s=settings.trader.reconnect_max_s,
                              rest_poll_s=settings.trader.rest_poll_s)
            flow, broker = order_flow_for(settings, strategy, mode, served.inputs)
            if mode == "live":
                broker = LiveBroker(client, markets)
            trader = Trader(strategy, ledger=ledger, feed=feed, models=models, mode=mode,
                            broker=broker, metrics=metrics,
                            status_path=status_path(settings, strategy.name),
                            resume_halted=resume_halted, order_flow=flow)
            trader.restarts = restarts
            streams = None
            if flow is not None:
                from tradeflow.exchange.orderflow import OrderFlowClient

                poll = None if settings.trader.use_websocket else client
                streams = asyncio.create_task(flow.run(OrderFlowClient(
                    client, aggregated=settings.recorder.aggregated_trades), poll=poll),
                                              name="trader:order-flow")
            run = asyncio.create_task(trader.run(max_candles=max_candles))
            stopper = asyncio.create_task(stop.wait())
            try:
                done, _ = await asyncio.wait({run, stopper},
                                             return_when=asyncio.FIRST_COMPLETED)
                if run not in done:  # stop requested: cancel between awaits, keep the booked
                    run.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await run
                    return trader.summary
                stopper.cancel()
                return run.result()
            finally:
                if streams is not None:
                    streams.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await streams
    finally:
        ledger.close()
        metrics.close()
        held.close()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)


def order_flow_for(settings: Settings, strategy: StrategySettings, mode: str,
                   inputs: tuple[str, ...]) -> tuple[Any, Any]:
    """The live order flow (when the model or the strategy's features read it, or paper fills
    use the book) and, for ``trader.paper_fills: book`` on paper, the broker filling against
    it."""
    from models.features import FeaturePipeline
    from trader.order_flow import LiveOrderFlow
    from trader.paper_fills import BookPaperBroker

    book_fills = mode == "paper" and settings.trader.paper_fills == "book"
    if not inputs and strategy.features:  # a sources strategy's inputs are its served ones
        inputs = FeaturePipeline.from_strategy(strategy).inputs
    if not inputs and not book_fills:
        return None, None
    flow = LiveOrderFlow(strategy.symbols, strategy.timeframe,
                         max_book_age_s=settings.trader.max_book_age_s,
                         book_poll_s=settings.trader.book_poll_s)
    if not book_fills:
        return flow, None
    quote = parse_symbol(strategy.symbols[0]).quote
    return flow, BookPaperBroker(flow, taker_bps=strategy.costs.taker_bps,
                                 slippage_bps=strategy.costs.slippage.bps, quote=quote)


def read_status(settings: Settings, strategy: str) -> dict[str, Any] | None:
    """The running trader's status file (stream state, model, equity), if any."""
    path = status_path(settings, strategy)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    data["age_s"] = round(time.time() - float(data.get("updated_at", 0)), 1)
    return data
