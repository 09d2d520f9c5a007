"""The model the trader serves: the registry's champion, polled and hot-swapped between candles.

``models:/tradeflow-<strategy>@champion`` is loaded at start. A background poll notices when
the alias moves; the new version is loaded off the event loop and swapped in before the next
candle is processed, never in the middle of one. Every decision records the version.

A strategy with ``sources`` serves its :class:`~tradeflow.signals.ensemble.SignalStrategy`
instead (:class:`StrategySource`): the object the backtester runs, read at the newest row of
the window, which also says why (each source's signal). It needs the registry only for an
``ml`` source, whose model is the champion and is hot-swapped the same way.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import numpy as np
import pandas as pd

from tradeflow import timeframes
from tradeflow.config import Settings
from tradeflow.errors import UserError
from tradeflow.signals.base import Signal
from tradeflow.strategy import StrategySettings

log = logging.getLogger(__name__)


class WindowModel(Protocol):
    """What the trader needs from a model (models.pyfunc.CandleModel fits)."""

    @property
    def warmup(self) -> int: ...
    @property
    def timeframe(self) -> str: ...
    def predict_last(self, candles: Any, symbol: str | None = None) -> float: ...


class ExplainingModel(WindowModel, Protocol):
    """A model that also says why (a :class:`~tradeflow.signals.ensemble.SignalStrategy`)."""

    def decide_last(self, candles: Any, symbol: str | None = None
                    ) -> tuple[float, Sequence[Signal]]: ...


Why = dict[str, tuple[Signal, ...]]  # symbol -> its sources' signals at the candle


@dataclass(frozen=True, slots=True)
class ServedModel:
    """A loaded model and the registry version it came from."""

    version: str
    model: WindowModel

    @property
    def warmup(self) -> int:
        return int(self.model.warmup)

    @property
    def inputs(self) -> tuple[str, ...]:
        """Per-candle order-flow columns the model reads besides the candles (often none)."""
        pipeline = getattr(self.model, "pipeline", None)
        return tuple(getattr(pipeline if pipeline is not None else self.model, "inputs", ()))

    def predict(self, window: Mapping[str, np.ndarray], symbol: str) -> float:
        """p(up) at the window's last candle; NaN while the window is shorter than warm-up.

        ``window`` maps the candle columns to arrays; models that only take frames get one.
        """
        if len(window["open_time"]) <= self.warmup:
            return math.nan
        if not getattr(self.model, "accepts_columns", False):
            return float(self.model.predict_last(pd.DataFrame(window, copy=False), symbol))
        return float(self.model.predict_last(window, symbol))

    def predict_all(self, windows: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, float]:
        """:meth:`predict` for every symbol of a candle close (one model call if it can)."""
        many = getattr(self.model, "predict_many", None)
        if many is None or not getattr(self.model, "accepts_columns", False):
            return {s: self.predict(w, s) for s, w in windows.items()}
        return {s: float(p) for s, p in many(windows).items()}

    def decide_all(self, windows: Mapping[str, Mapping[str, np.ndarray]]
                   ) -> tuple[dict[str, float], Why]:
        """:meth:`predict_all`, and each symbol's signals when the model explains itself
        (none while the window is shorter than warm-up, nor for a plain model)."""
        if not hasattr(self.model, "decide_last"):
            return self.predict_all(windows), {}
        model = cast(ExplainingModel, self.model)
        columns = getattr(model, "accepts_columns", False)
        probs: dict[str, float] = {}
        why: Why = {}
        for s, w in windows.items():
            if len(w["open_time"]) <= self.warmup:
                probs[s] = math.nan
                continue
            p, signals = model.decide_last(w if columns else pd.DataFrame(w, copy=False), s)
            probs[s], why[s] = float(p), tuple(signals)
        return probs, why

    def prime(self, symbols: Sequence[str]) -> dict[str, float]:
        """Score a synthetic warm window once, so the first live candle is not the first call.

        A model's first prediction pays one-off costs (numba's compiled feature kernels loaded
        from cache, the booster's first call): about 0.3 s for a 27-feature strategy, which
        would otherwise land on the first closed candle and delay the ones queued behind it.
        """
        window = synthetic_window(self.warmup + 2, str(self.model.timeframe))
        window |= {c: np.full(self.warmup + 2, np.nan) for c in self.inputs}
        return self.predict_all(dict.fromkeys(symbols, window))


def synthetic_window(rows: int, timeframe: str) -> dict[str, np.ndarray]:
    """``rows`` candles of a seeded random walk on the ``timeframe`` grid (model input columns)."""
    opens = [timeframes.floor(1_700_000_000_000, timeframe)]
    for _ in range(rows - 1):
        opens.append(timeframes.previous_open(opens[-1], timeframe))
    rng = np.random.default_rng(0)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 1e-3, rows)))
    open_ = np.concatenate(([close[0]], close[:-1]))
    return {"open_time": np.asarray(opens[::-1], dtype=np.int64), "open": open_,
            "high": np.maximum(open_, close) * 1.0005, "low": np.minimum(open_, close) * 0.9995,
            "close": close, "volume": rng.uniform(1.0, 2.0, rows)}


class ModelSource(Protocol):
    def load(self) -> ServedModel: ...
    async def newer(self, current: ServedModel) -> ServedModel | None: ...


class FixedModel:
    """One model for the whole run (replays, tests, benchmarks)."""

    def __init__(self, model: WindowModel, version: str = "fixed") -> None:
        self.served = ServedModel(version, model)

    def load(self) -> ServedModel:
        return self.served

    async def newer(self, current: ServedModel) -> ServedModel | None:
        return None


class ChampionSource:
    """The champion of ``tradeflow-<strategy>`` in the configured MLflow registry."""

    def __init__(self, settings: Settings, strategy: StrategySettings, *,
                 poll_s: float | None = None) -> None:
        from models.registry import configure_tracking

        configure_tracking(settings)
        self.name = strategy.model_name
        self.strategy = strategy
        self.poll_s = settings.trader.model_poll_s if poll_s is None else poll_s
        self._last_poll = -math.inf
        self._loaded: ServedModel | None = None

    def load(self) -> ServedModel:
        """Load the current champion (once; then the cached one); a clear error when none."""
        if self._loaded is not None:
            return self._loaded
        from models.registry import champion

        info = champion(self.name)
        if info is None:
            raise UserError(
                f"no champion for {self.name} in the model registry: train and promote one "
                f"first (tradeflow train --strategy ..., then tradeflow promote)")
        self._loaded = self._load(info.version)
        return self._loaded

    def _load(self, version: str) -> ServedModel:
        from models.registry import load_model

        loaded = load_model(self.name, version)
        model: Any = loaded.unwrap_python_model()
        if model.timeframe != self.strategy.timeframe:
            raise UserError(f"{self.name} v{version} was trained on {model.timeframe} candles, "
                            f"the strategy trades {self.strategy.timeframe}")
        log.info("serving %s version %s (warm-up %d candles)", self.name, version, model.warmup)
        return ServedModel(version, model)

    async def newer(self, current: ServedModel) -> ServedModel | None:
        """A newly promoted champion, loaded, or None (polls at most every ``poll_s``)."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        if now - self._last_poll < self.poll_s:
            return None
        self._last_poll = now
        from models.registry import champion

        try:
            info = await asyncio.to_thread(champion, self.name)
            if info is None or info.version == current.version:
                return None
            served = await asyncio.to_thread(self._load, info.version)
            await asyncio.to_thread(served.prime, self.strategy.symbols)
            return served
        except UserError as exc:
            log.error("not swapping models: %s", exc)
        except Exception as exc:  # the registry being briefly unreachable must not stop trading
            log.warning("registry poll failed (%s); keeping version %s", exc, current.version)
        return None


class HotSwap:
    """The served model, and a newer champion waiting for the gap between two candles.

    :meth:`watch` polls the source in the background; :meth:`swap` is called between candles
    only, so a candle is never scored by two models.
    """

    def __init__(self, source: ModelSource, *, poll_s: float = 1.0) -> None:
        self.source = source
        self.poll_s = poll_s
        self.current: ServedModel | None = None
        self._next: ServedModel | None = None

    def load(self) -> ServedModel:
        self.current = self.source.load()
        return self.current

    async def watch(self) -> None:
        """Look for a newer model every ``poll_s`` until cancelled."""
        while True:
            await asyncio.sleep(self.poll_s)
            current = self._next or self.current
            if current is None:
                continue
            newer = await self.source.newer(current)
            if newer is not None:
                self._next = newer

    def swap(self) -> tuple[ServedModel | None, ServedModel] | None:
        """Take the waiting model, if any: (the one it replaces, the new one)."""
        if self._next is None:
            return None
        old, self.current, self._next = self.current, self._next, None
        return old, self.current


class StrategySource:
    """A ``sources`` strategy's :class:`SignalStrategy` as the served model.

    Technical and order-book sources only: built once (version ``signals``), no registry is
    opened. With an ``ml`` source, ``champion`` serves its model: the strategy is built around
    the champion (the version is the champion's) and rebuilt around a newly promoted one.
    """

    VERSION = "signals"

    def __init__(self, strategy: StrategySettings, champion: ModelSource | None = None) -> None:
        self.strategy = strategy
        self.champion = champion
        self._inner: ServedModel | None = None
        self._loaded: ServedModel | None = None

    def load(self) -> ServedModel:
        if self._loaded is None:
            if self.champion is None:
                self._loaded = ServedModel(self.VERSION, self._build(None))
            else:
                self._loaded = self._around(self.champion.load())
        return self._loaded

    async def newer(self, current: ServedModel) -> ServedModel | None:
        if self.champion is None or self._inner is None:
            return None
        inner = await self.champion.newer(self._inner)
        return None if inner is None else self._around(inner)

    def _around(self, inner: ServedModel) -> ServedModel:
        self._inner = inner
        return ServedModel(inner.version, self._build(inner.model))

    def _build(self, model: Any) -> WindowModel:
        from models.signal_sources import signal_strategy

        # A bad source raises ConfigError: one line naming it, before anything is opened.
        return signal_strategy(self.strategy, None if model is None else (lambda: model))


def model_source(settings: Settings, strategy: StrategySettings) -> ModelSource:
    """What the trader of ``strategy`` serves: the champion, or its signal sources (with the
    champion behind an ``ml`` source)."""
    if not strategy.sources:
        return ChampionSource(settings, strategy)
    from models.signal_sources import needs_model

    return StrategySource(strategy, ChampionSource(settings, strategy)
                          if needs_model(strategy) else None)
