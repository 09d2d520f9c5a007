"""One run's context for the strategy jobs: settings, strategy, window end, store, tracking.

Every flow and command that trains, promotes, backtests or checks a strategy opens one
:class:`Job` first, instead of repeating the prologue (load the strategy, resolve the end,
open the store, point MLflow at the profile). MLflow tracking is configured here, once per
run; the tasks and functions a job feeds rely on it and never configure it again.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from models.estimators import FAMILIES, ParamError, check_params
from models.families import resolve
from models.registry import configure_tracking
from models.training import resolve_end
from tradeflow.config import Settings
from tradeflow.config_files import ConfigError, display_path
from tradeflow.market.orderflow_store import OrderFlowStore, open_orderflow_store
from tradeflow.market.store import MarketStore, open_store
from tradeflow.strategy import StrategySettings, load_strategy


@dataclass(frozen=True)
class Job:
    """What one train, promote, backtest or look-ahead run works on."""

    settings: Settings
    strategy: StrategySettings
    strategy_file: str
    end_ms: int                # window end: a candle boundary (now, or the one asked for)
    store: MarketStore
    experiment_id: str | None  # the MLflow experiment, once tracking is configured

    @property
    def exchange(self) -> str:
        return self.settings.exchange.id

    def order_flow(self) -> OrderFlowStore | None:
        """The recorded order flow, for a strategy with order-flow features (else None)."""
        from models.features import FeaturePipeline

        if not FeaturePipeline.from_strategy(self.strategy).inputs:
            return None
        return open_orderflow_store(self.settings)


def check_features(strategy: StrategySettings, path: str | os.PathLike[str]) -> None:
    """Every declared feature exists with known parameters; one :class:`ConfigError` line
    naming the entry and what is allowed otherwise."""
    for i, spec in enumerate(strategy.features):
        try:
            resolve(spec, strategy.timeframe)
        except ValueError as exc:
            raise ConfigError(f"features[{i}]", spec.name, str(exc),
                              display_path(Path(path))) from None


def check_model(strategy: StrategySettings, path: str | os.PathLike[str]) -> None:
    """``model.params`` are arguments the family's estimator takes; one :class:`ConfigError`
    line naming the parameter and what is allowed otherwise."""
    model, source = strategy.model, display_path(Path(path))
    if model.kind not in FAMILIES:  # the baselines flat and momentum take no parameters
        for key, value in model.params.items():
            raise ConfigError(f"model.params.{key}", value,
                              f"{model.kind} takes no parameters", source)
        return
    try:
        check_params(model.kind, model.params)
    except ParamError as exc:
        raise ConfigError(f"model.params.{exc.key}", model.params[exc.key], str(exc),
                          source) from None


def open_job(settings: Settings, strategy: str | os.PathLike[str], *,
             end: str | int | None = None, now_ms: int | None = None,
             tracking: bool = True) -> Job:
    """Load the strategy, resolve ``end`` (default: now), open the store and, unless
    ``tracking`` is false (a baseline needs no registry), configure MLflow tracking."""
    loaded = load_strategy(strategy)
    check_features(loaded, strategy)  # before the store or MLflow leave a file behind
    check_model(loaded, strategy)
    now = int(time.time() * 1000) if now_ms is None else now_ms
    end_ms = resolve_end(end, loaded.timeframe, now)
    experiment = configure_tracking(settings) if tracking else None
    return Job(settings, loaded, str(strategy), end_ms, open_store(settings), experiment)
