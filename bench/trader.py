"""Benchmark: the trader's decision latency on live streams, and its replay speed.

For each strategy (default: ``meanrev_xgb``, the one the trader deployment serves,
``momentum_xgb``, 27 features including a session VWAP that needs a day of warm-up, and
``rsi_meanrev``, technical signal sources only), the champion is a real XGBoost
``CandleModel`` (100 trees) trained in seconds on the simulator's own market
(``simulator.venue.Venue``, signal strength 1.0) and served with ``FixedModel``; a sources
strategy serves its ``SignalStrategy`` (nothing trained; its evaluation is the "predict"
part of the breakdown, there is no separate feature step).
The strategies' stateful risk limits (daily loss, order rate, drawdown kill switch) are
relaxed: they are the trader's alone, so with them the backtester could not be compared fill
for fill.

* latency: a paper trader streams closed candles from a simulator running in a thread of this
  process (fast clock). Decision latency per candle runs from the simulator queueing the final
  kline (``x: true``) for its websocket subscribers (``StreamHub.closed_sent``) to the commit
  of that timestamp's decisions and orders to the SQLite ledger (``Trader.on_persisted``);
  both are ``time.perf_counter()`` in this process. Printed as p50/p99/max over at least
  ``--candles`` candles (goal p99 <= 10 ms), split into transport (websocket, ccxt, feed,
  waiting for the timestamp's other symbols, a backlog if the trader falls behind) and the
  trader's own work per timestamp (features, model predict, ledger commit, the rest).
  Steady state starts at the first timestamp whose candles all came over the websocket;
  before it, ccxt.pro is still subscribing the symbols' streams (one every 250 ms, its
  binance throttle) and the later symbols' candles come over REST. Those start-up candles
  are counted and shown apart, not in the percentiles.
* replay: the same trader over recorded candles (``ReplayFeed``, ``--replay-days`` of the same
  market) in candles/s, beside the backtester (``backtest_strategy_portfolio``) on the same
  candles, with and without batch-scoring the model first (the baseline of the ratio); and
  whether the replay's fills equal the backtester's.

The machine's load average is printed: on a shared CPU every figure moves with it.

Usage: ``.venv/bin/python bench/trader.py --help`` lists the options.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Run as a script, bench/ comes first on sys.path, and bench/ holds scripts named like the
# project's packages (bench/simulator.py would shadow the simulator package).
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from models.pyfunc import CandleModel  # noqa: E402
from simulator.settings import SimulatorSettings  # noqa: E402
from tradeflow.backtest.live_engine import Candle  # noqa: E402
from tradeflow.strategy import StrategySettings  # noqa: E402
from trader.ledger import Ledger  # noqa: E402
from trader.runner import Trader  # noqa: E402


def _sibling(name: str) -> Any:
    """bench/<name>.py as a module (bench/ is off sys.path, see above)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", _HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


_timing = _sibling("trader_timing")  # the instrumented model, ledger and trader
Parts, TimedLedger, TimedModel = _timing.Parts, _timing.TimedLedger, _timing.TimedModel
TimedSignals, TimedTrader = _timing.TimedSignals, _timing.TimedTrader

GOAL_P99_MS = 10.0
SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT", "XRP/USDT", "ADA/USDT")
ROOT = _HERE.parent
START_MS = 1_767_225_600_000  # 2026-01-01 00:00 UTC: the simulator's "now" at start
MIN, DAY = 60_000, 86_400_000
COLUMNS = ["open_time", "open", "high", "low", "close", "volume"]


# -- market and model ------------------------------------------------------------------------
def sim_settings(symbols: tuple[str, ...], history_days: float, **extra: Any) -> SimulatorSettings:
    """The simulated venue; equal settings give equal candles (server or in-process Venue)."""
    return SimulatorSettings(symbols=symbols, history_days=history_days, signal_strength=1.0,
                             start_time_ms=START_MS, **extra)


def market(symbols: tuple[str, ...], history_days: float, after_days: float
           ) -> dict[str, pd.DataFrame]:
    """Closed 1m candles from ``history_days`` before the simulator's start to ``after_days``
    after it: the very candles the server of ``sim_settings(symbols, history_days)`` serves."""
    from simulator.clock import SimClock
    from simulator.venue import Venue

    server = Venue(sim_settings(symbols, history_days), SimClock(START_MS, 1.0, wall=lambda: 0))
    now = START_MS + int(after_days * DAY) // MIN * MIN
    # The series is anchored on the history start: the same start gives the same candles
    # whatever the clock's position (half a minute more: the venue floors days to minutes).
    days = (now - server.history_start_ms + MIN // 2) / DAY
    settings = sim_settings(symbols, days).model_copy(update={"start_time_ms": now})
    venue = Venue(settings, SimClock(now, 1.0, wall=lambda: 0))
    if venue.anchor_ms != server.anchor_ms or venue.history_start_ms != server.history_start_ms:
        raise RuntimeError("the extended market does not start where the server's does")
    out = {}
    for s in symbols:
        klines = venue.klines(s, "1m", venue.history_start_ms, limit=10**8)
        frame = pd.DataFrame(klines.ohlcv(), columns=COLUMNS)[klines.closed]
        frame["open_time"] = frame["open_time"].astype(np.int64)
        out[s] = frame.reset_index(drop=True)
    return out


def bench_strategy(name: str, symbols: tuple[str, ...], trees: int) -> StrategySettings:
    from tradeflow.strategy import load_strategy

    base = load_strategy(ROOT / "config" / "strategies" / f"{name}.yaml")
    return base.model_copy(update={
        "name": "bench_trader", "symbols": symbols,
        "model": base.model.model_copy(update={"params": {**base.model.params,
                                                          "n_estimators": trees}}),
        "risk": base.risk.model_copy(update={
            "max_orders_per_minute": 1000, "daily_loss_limit_pct": 50.0,
            "reduce_drawdown_pct": 60.0, "max_drawdown_pct": 70.0}),
    })


def train(strategy: StrategySettings, candles: Mapping[str, pd.DataFrame]) -> CandleModel:
    """The strategy's pooled XGBoost fitted on every labelled sample (no CV: a bench model)."""
    from models.features import FeaturePipeline
    from models.training import build_samples, fit_final

    pipeline = FeaturePipeline.from_strategy(strategy)
    first = min(int(f["open_time"].iloc[pipeline.warmup]) for f in candles.values())
    samples = build_samples(candles, strategy, pipeline, first)
    estimators = fit_final(samples, strategy, pipeline.columns)
    return CandleModel(pipeline, estimators, {"strategy": strategy.name})


def serve(model: CandleModel) -> CandleModel:
    """Warm the model's serving path once (xgboost's set-up is not part of a decision)."""
    window = pd.DataFrame({c: np.ones(model.warmup + 1) for c in COLUMNS})
    window["open_time"] = START_MS + np.arange(model.warmup + 1, dtype=np.int64) * MIN
    model.predict_last(window, next(iter(model.estimators)))
    return model


# -- the live run ----------------------------------------------------------------------------
@dataclass
class LiveResult:
    latency_ms: np.ndarray          # per candle, steady state: sent -> persisted
    transport_ms: np.ndarray        # per candle, steady state: sent -> processing starts
    startup_ms: np.ndarray          # per candle before steady state: sent -> persisted
    startup_timestamps: int
    parts_ms: np.ndarray            # per timestamp: total, features, predict, commit, rest
    timestamps: int
    excluded: int                   # candles that came over REST (no websocket send time)
    decisions: int
    orders: int
    wall_s: float


Persisted = dict[int, tuple[float, list[str]]]  # open time -> (committed at, its symbols)


async def _trade_live(base_url: str, strategy: StrategySettings, model: CandleModel,
                      ledger_path: Path, timestamps: int
                      ) -> tuple[Any, Any, Persisted]:  # (TimedTrader, Parts, ...)
    from tradeflow.config import ExchangeSettings
    from tradeflow.exchange.ccxt_client import ExchangeClient
    from trader.feed import CandleFeed
    from trader.model_source import FixedModel

    parts = Parts()
    persisted: Persisted = {}
    served = TimedModel(model, parts) if isinstance(model, CandleModel) \
        else TimedSignals(model, parts)
    ledger = TimedLedger(f"sqlite:///{ledger_path}")
    ledger.parts = parts
    async with ExchangeClient(ExchangeSettings(base_url=base_url)) as client:
        await client.load_markets()
        feed = CandleFeed(client, strategy.symbols, strategy.timeframe)
        trader = TimedTrader(strategy, ledger=ledger, feed=feed,
                             models=FixedModel(served, "bench"))
        trader.parts, trader.started = parts, {}

        def on_persisted(t: int, batch: Mapping[str, Candle], at: float) -> None:
            persisted[t] = (at, list(batch))
            total = at - trader.started[t]
            parts.rows.append((t, total, parts.features, parts.predict, parts.commit,
                               total - parts.features - parts.predict - parts.commit))

        trader.on_persisted = on_persisted
        await trader.run(max_candles=timestamps)
    ledger.close()
    return trader, parts, persisted


def live_run(strategy: StrategySettings, model: CandleModel, history_days: float,
             candles: int, speed: float, ws_update_ms: int, db: Path) -> LiveResult:
    from simulator.server import start_in_thread

    symbols = strategy.symbols
    # The candles that closed while the trader warmed up come over REST, not streamed: extra.
    timestamps = math.ceil(candles / len(symbols) * 1.05) + 20
    handle = start_in_thread(sim_settings(symbols, history_days, port=0, speed=speed,
                                          ws_update_ms=ws_update_ms))
    try:
        started = time.perf_counter()
        trader, parts, persisted = asyncio.run(
            _trade_live(handle.base_url, strategy, model, db, timestamps))
        wall = time.perf_counter() - started
    finally:
        handle.stop()  # stopped before closed_sent is read: no writer thread left
    sent = handle.server.hub.closed_sent
    latency, transport, startup, excluded, startup_timestamps = [], [], [], 0, 0
    steady = False
    for t in sorted(persisted):
        at, batch = persisted[t]
        streamed = {s: sent.get((s, strategy.timeframe, t)) for s in batch}
        streamed = {s: w for s, w in streamed.items()  # caught up over REST: not streamed
                    if w is not None and w <= trader.started[t]}
        # Start-up lasts until a timestamp arrives with every symbol's candle streamed:
        # ccxt.pro subscribes one stream at a time (binance ws cost 5 x rateLimit 50 ms =
        # 250 ms apart), so the first timestamps wait for the later symbols' REST catch-up.
        steady = steady or len(streamed) == len(symbols)
        startup_timestamps += not steady
        excluded += len(batch) - len(streamed)
        for when in streamed.values():
            if steady:
                latency.append((at - when) * 1e3)
                transport.append((trader.started[t] - when) * 1e3)
            else:
                startup.append((at - when) * 1e3)
    rows = np.array([r[1:] for r in parts.rows]) * 1e3
    return LiveResult(np.array(latency), np.array(transport), np.array(startup),
                      startup_timestamps, rows, trader.summary.candles, excluded,
                      trader.summary.decisions, trader.summary.orders, wall)


# -- replay and backtester -------------------------------------------------------------------
FillKey = tuple[int, str, str, float, float]


def _key(ts: float, symbol: str, side: str, qty: float, price: float) -> FillKey:
    return int(ts), symbol, side, round(qty, 9), round(price, 9)


@dataclass
class Baseline:
    candles: int
    score_s: float
    backtest_s: float
    fills: list[FillKey]


def backtester(strategy: StrategySettings, model: CandleModel,
               candles: Mapping[str, pd.DataFrame]) -> Baseline:
    """Batch-score the candles from ``START_MS`` on, then backtest them (best of 3)."""
    from tradeflow.backtest import backtest_strategy_portfolio

    start = time.perf_counter()
    proba, frames = {}, {}
    for s, frame in candles.items():
        first = int(np.searchsorted(frame["open_time"].to_numpy(), START_MS))
        proba[s] = model.probabilities(frame, s)[first:]
        frames[s] = frame.iloc[first:].reset_index(drop=True)
    score_s = time.perf_counter() - start
    backtest_strategy_portfolio(frames, proba, strategy)  # numba compile / cache load: untimed
    backtest_s = math.inf
    for _ in range(3):
        start = time.perf_counter()
        result = backtest_strategy_portfolio(frames, proba, strategy)
        backtest_s = min(backtest_s, time.perf_counter() - start)
    fills = sorted(_key(r.time, r.symbol, r.side, r.qty, r.price)
                   for r in result.fills.itertuples(index=False))
    return Baseline(sum(len(f) for f in frames.values()), score_s, backtest_s, fills)


@dataclass
class ReplayResult:
    seconds: float
    fills: list[FillKey]
    process_ms: np.ndarray  # per timestamp, the runner's own figure (before the commit)


def replay_run(strategy: StrategySettings, model: CandleModel,
               candles: Mapping[str, pd.DataFrame], db: Path) -> ReplayResult:
    from trader.model_source import FixedModel
    from trader.replay import ReplayFeed

    ledger = Ledger(f"sqlite:///{db}")
    trader = Trader(strategy, ledger=ledger, feed=ReplayFeed(candles, START_MS),
                    models=FixedModel(model, "bench"))
    start = time.perf_counter()
    summary = asyncio.run(trader.run())
    seconds = time.perf_counter() - start
    fills = sorted(_key(f.ts, f.symbol, f.side, f.amount, f.price)
                   for f in ledger.fills(strategy.name))
    ledger.close()
    return ReplayResult(seconds, fills, np.array(summary.latencies_ms))


# -- report ----------------------------------------------------------------------------------
def _pct(values: np.ndarray) -> str:
    p50, p99 = np.percentile(values, [50, 99])
    return f"p50 {p50:8.2f} | p99 {p99:8.2f} | max {values.max():8.2f} ms"


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return (f"load average {one:.1f} / {five:.1f} / {fifteen:.1f} (1/5/15 min), "
            f"{os.cpu_count()} CPUs")


def report_live(label: str, r: LiveResult, symbols: int, speed: float, wanted: int) -> None:
    print(f"\n== decision latency, {label}: closed kline sent -> decision, orders committed ==")
    print(f"  {len(r.latency_ms)} candles ({r.timestamps} timestamps x {symbols} symbols, "
          f"{r.excluded} caught up over REST left out, steady state), speed {speed:g}x, "
          f"{r.wall_s:.1f} s wall; {r.decisions} decisions, {r.orders} orders")
    if len(r.latency_ms) < wanted:
        print(f"  (fewer than the {wanted} candles asked for: more came over REST than expected)")
    if len(r.startup_ms):
        print(f"  start-up: the first {r.startup_timestamps} timestamps, until every symbol's "
              f"stream had delivered a candle: {len(r.startup_ms)} streamed candles, max "
              f"{r.startup_ms.max():.0f} ms (ccxt.pro subscribes streams 250 ms apart; the "
              f"other symbols' candles come over REST meanwhile); left out of the figures below")
    print(f"  total      {_pct(r.latency_ms)}")
    print(f"  transport  {_pct(r.transport_ms)}  (websocket, ccxt, feed, other symbols, "
          f"backlog)")
    print(f"  per timestamp, the trader's own work ({symbols} symbols scored):")
    for i, name in enumerate(("trader", "features", "predict", "commit", "rest")):
        print(f"    {name:<9}{_pct(r.parts_ms[:, i])}")
    print("    (commit: SQLite synchronous=FULL; rest: windows, engine, ledger writes, metrics)")
    p99 = float(np.percentile(r.latency_ms, 99))
    verdict = "OK" if p99 <= GOAL_P99_MS else "ABOVE GOAL"
    print(f"  p99 {p99:.2f} ms (goal <= {GOAL_P99_MS:g} ms): {verdict}")


def report_replay(base: Baseline, replays: Mapping[str, ReplayResult], symbols: int) -> None:
    rate = base.candles / (base.score_s + base.backtest_s)
    print(f"\n== replay: {base.candles:,} candles ({symbols} symbols), trader vs backtester ==")
    print(f"  backtester incl. batch model scoring (baseline) {rate:12,.0f} candles/s "
          f"({base.score_s + base.backtest_s:.2f} s)")
    print(f"  backtester alone (probabilities given)          "
          f"{base.candles / base.backtest_s:12,.0f} candles/s ({base.backtest_s:.3f} s)")
    for label, r in replays.items():
        ours = base.candles / r.seconds
        same = "identical" if r.fills == base.fills else "DIFFERENT"
        print(f"  trader replay, {label:<33}{ours:12,.0f} candles/s ({r.seconds:.1f} s): "
              f"ratio trader / baseline {ours / rate:.4f}; fills {len(r.fills)} vs "
              f"{len(base.fills)}, {same}")
        print(f"    per timestamp before the commit (runner's summary.latencies_ms): "
              f"{_pct(r.process_ms)}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=3, help=f"the first N of {SYMBOLS}")
    parser.add_argument("--candles", type=int, default=1000, help="candles, all symbols")
    parser.add_argument("--speed", type=float, default=600.0, help="simulated s per wall s")
    parser.add_argument("--ws-update-ms", type=int, default=100)
    parser.add_argument("--train-days", type=float, default=3.0)
    parser.add_argument("--replay-days", type=float, default=0.5)
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--strategies", default="meanrev_xgb,momentum_xgb,rsi_meanrev",
                        help="strategies in config/strategies/ to serve, comma separated")
    args = parser.parse_args(argv)
    symbols = SYMBOLS[: args.symbols]
    figures: dict[str, Any] = {"symbols": len(symbols)}
    print(f"trader benchmark: {len(symbols)} symbols, xgboost {args.trees} trees; "
          f"python {sys.version.split()[0]}; at start: {_load()}")
    for name in args.strategies.split(","):
        figures[name] = bench_one(name.strip(), symbols, args)
    print(f"\nat end: {_load()}")
    print(json.dumps(figures))


def bench_one(name: str, symbols: tuple[str, ...], args: argparse.Namespace) -> dict[str, Any]:
    """Train a champion for one strategy (or build its signal sources), then measure its live
    latency and replay speed."""
    from models.features import FeaturePipeline
    from models.signal_sources import needs_model, signal_strategy

    strategy = bench_strategy(name, symbols, args.trees)
    if strategy.sources and needs_model(strategy):
        raise SystemExit(f"{name}: a sources strategy with an ml source is not benchmarked here")
    start = time.perf_counter()
    model: Any
    if strategy.sources:  # technical sources: nothing to train
        model = signal_strategy(strategy)
        history_days = math.ceil((model.warmup + 1) / 1440 * 4 + 1) / 4
        candles = market(symbols, history_days, args.replay_days)
        what = f"sources ({model.describe()})"
    else:
        warm_days = (FeaturePipeline.from_strategy(strategy).warmup + 1) / 1440
        history_days = math.ceil((args.train_days + warm_days) * 4) / 4
        candles = market(symbols, history_days, args.replay_days)
        model = serve(train(strategy, {s: f[f["open_time"] < START_MS]
                                       for s, f in candles.items()}))
        what = f"{len(model.pipeline.columns)} features"
    train_s = time.perf_counter() - start
    print(f"\n### {name}: {what} (warm-up {model.warmup} candles); market + training on "
          f"{history_days:g} days of 1m: {train_s:.1f} s")
    replay = {s: f[f["open_time"] >= START_MS - (model.warmup + 2) * MIN]
              for s, f in candles.items()}
    with tempfile.TemporaryDirectory() as tmp:
        live = live_run(strategy, model, history_days, args.candles, args.speed,
                        args.ws_update_ms, Path(tmp) / "live.db")
        report_live(name, live, len(symbols), args.speed, args.candles)
        base = backtester(strategy, model, replay)
        replays = {name: replay_run(strategy, model, replay, Path(tmp) / "replay.db")}
    report_replay(base, replays, len(symbols))
    p50, p99 = np.percentile(live.latency_ms, [50, 99])
    baseline_rate = base.candles / (base.score_s + base.backtest_s)
    ours = base.candles / replays[name].seconds
    return {"candles": len(live.latency_ms), "p50_ms": round(float(p50), 2),
            "p99_ms": round(float(p99), 2), "replay_candles_s": round(ours),
            "backtester_candles_s": round(baseline_rate),
            "ratio": round(ours / baseline_rate, 5),
            "fills_identical": replays[name].fills == base.fills}


if __name__ == "__main__":
    main()
