"""A strategy's signal over stored candles: which model, which candles, which probabilities.

The plain functions behind ``tradeflow backtest`` and ``tradeflow check-lookahead`` (the
commands only parse arguments and print):

* :func:`parse_model_choice` and :func:`resolve_model` turn ``--model`` into a
  :class:`SignalModel`: the registry's champion of ``tradeflow-<strategy>`` (default), a
  registered version, or a naive baseline that needs no registered model, built from the
  strategy's own feature pipeline (so it is warm on exactly the candles the strategy's model
  would be) and :mod:`models.estimators`: ``momentum`` (p = sigmoid of the return over the label
  horizon divided by its scale) or ``flat`` (p = 0, never trades).
* :func:`load_strategy_candles` reads the strategy's symbols on its timeframe in a window, with
  quarantined candles left out, plus up to ``warmup`` candles before the window to warm the
  features up.
* :func:`run_strategy_backtest`: probabilities of the model on each symbol's whole loaded
  history, then the strategy's backtest over the window rows (one shared cash for several
  symbols).
* :func:`signal_compute` and :func:`check_symbol`: the look-ahead check of the features and the
  signal (probability and target position) on truncated histories, and of the decisions and
  equity on prefixes (:func:`tradeflow.backtest.lookahead.check_lookahead`,
  :func:`tradeflow.backtest.lookahead.check_backtest_lookahead`).

The momentum baseline learns one number per symbol, the scale of its input, and learns it from
the first ``warmup`` loaded candles of that symbol: their probabilities are NaN (the features
are not warm), so the scale never uses a candle the baseline trades on or after.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd

from models.estimators import (
    MOMENTUM_COLUMN,
    Estimator,
    FlatEstimator,
    MomentumEstimator,
    momentum_returns,
)
from models.features import FeaturePipeline
from models.order_flow_data import attach_recorded
from models.pyfunc import POOLED, CandleModel
from tradeflow import timeframes
from tradeflow.backtest import (
    BacktestLookahead,
    BacktestResult,
    LookaheadResult,
    backtest_strategy,
    backtest_strategy_portfolio,
    check_backtest_lookahead,
    check_lookahead,
)
from tradeflow.backtest.engine import strategy_targets
from tradeflow.config import Settings
from tradeflow.errors import UsageError, UserError
from tradeflow.market.backfill import Window
from tradeflow.market.store import MarketStore, SeriesKey
from tradeflow.strategy import StrategySettings

__all__ = [
    "BASELINES",
    "SIGNAL_COLUMNS",
    "ModelChoice",
    "SignalModel",
    "StrategyBacktest",
    "StrategyCandles",
    "SymbolCheck",
    "baseline_model",
    "check_strategy",
    "check_symbol",
    "load_strategy_candles",
    "parse_model_choice",
    "probabilities",
    "report_dir",
    "resolve_model",
    "run_strategy_backtest",
    "signal_compute",
]

BASELINES = ("momentum", "flat")
SIGNAL_COLUMNS = ("probability", "target")
CANDLE_FIELDS = ("open_time", "open", "high", "low", "close", "volume")
Compute = Callable[[pd.DataFrame], pd.DataFrame]


class Predictor(Protocol):
    """What the signal needs from a model (:class:`models.pyfunc.CandleModel` fits)."""

    @property
    def warmup(self) -> int: ...
    @property
    def timeframe(self) -> str: ...
    def features(self, candles: pd.DataFrame) -> pd.DataFrame: ...
    def probabilities(self, candles: pd.DataFrame, symbol: str | None = None) -> np.ndarray: ...


# -- which model -----------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelChoice:
    """What ``--model`` names: the champion, a registered version, or a baseline."""

    kind: Literal["champion", "version", "baseline"]
    value: str = ""


def parse_model_choice(text: str) -> ModelChoice:
    """``champion``, a version number, ``momentum`` or ``flat``; UsageError otherwise."""
    value = text.strip().lower()
    if value == "champion":
        return ModelChoice("champion")
    if value in BASELINES:
        return ModelChoice("baseline", value)
    if value.removeprefix("v").isdigit() and int(value.removeprefix("v")) > 0:
        return ModelChoice("version", str(int(value.removeprefix("v"))))
    raise UsageError(f"--model {text!r}: allowed: champion, a version number, "
                     f"{', '.join(BASELINES)}")


@dataclass(frozen=True)
class SignalModel:
    """A model ready to score candles, and how to name it in output and report paths."""

    model: Predictor
    label: str  # e.g. "tradeflow-x v3 (champion, xgboost)", "baseline momentum"
    slug: str  # e.g. "champion-v3", "v2", "momentum"
    baseline: str | None = None

    @property
    def warmup(self) -> int:
        return int(self.model.warmup)


def baseline_model(kind: str, strategy: StrategySettings,
                   candles: Mapping[str, pd.DataFrame] | None = None) -> SignalModel:
    """The ``momentum`` or ``flat`` baseline on the strategy's feature pipeline.

    Momentum gets one estimator per symbol of ``candles``, its scale fitted on that symbol's
    first ``warmup`` candles (never traded: see the module docstring); without ``candles`` it
    is returned unfitted, which is enough to know its warm-up.
    """
    pipeline = FeaturePipeline.from_strategy(strategy)
    if kind == "flat":
        return SignalModel(CandleModel(pipeline, {POOLED: FlatEstimator()}), "baseline flat",
                           "flat", "flat")
    if kind != "momentum":
        raise ValueError(f"unknown baseline {kind!r}; allowed: {', '.join(BASELINES)}")
    horizon = strategy.label.horizon
    unfitted = CandleModel(pipeline, {POOLED: MomentumEstimator()}, momentum_horizon=horizon)
    estimators: dict[str, Estimator] = {}
    for symbol, frame in (candles or {}).items():
        head = frame.iloc[: unfitted.warmup]
        returns = momentum_returns(head["close"].to_numpy(), horizon)
        column = pd.DataFrame({MOMENTUM_COLUMN: returns})
        # The scale is all it learns; the labels are not read (zeros pass its check).
        estimators[symbol] = MomentumEstimator().fit(column, np.zeros(len(head)))
    model = (CandleModel(pipeline, estimators, {"baseline": "momentum"}, momentum_horizon=horizon)
             if estimators else unfitted)
    return SignalModel(model, f"baseline momentum (return over {horizon} candles)", "momentum",
                       "momentum")


def resolve_model(choice: ModelChoice, strategy: StrategySettings,
                  settings: Settings) -> SignalModel:
    """The model ``choice`` names, loaded; one-line :class:`UserError` when it cannot be.

    Baselines come back unfitted (see :func:`baseline_model`); :func:`prepare` fits them once
    the candles are loaded.
    """
    if strategy.sources:  # a signal strategy: --model picks its ML source's model
        from models.signal_sources import signal_strategy

        plain = strategy.model_copy(update={"sources": ()})
        def ml_model() -> Any:
            if choice.kind == "baseline":
                raise UserError(f"--model {choice.value}: the ml source of {strategy.name} "
                                "takes a registered model (champion or a version)")
            return resolve_model(choice, plain, settings).model

        signals = signal_strategy(strategy, ml_model)
        return SignalModel(signals, f"signals: {signals.describe()}", "signals")
    if choice.kind == "baseline":
        return baseline_model(choice.value, strategy)
    from models import registry

    # MLflow tracking was configured once for this run by its job (models.job.open_job).
    name = strategy.model_name
    if choice.kind == "champion":
        info = registry.champion(name)
        if info is None:
            versions = registry.list_versions(name)
            if not versions:
                raise UserError(
                    f"no registered model {name} in {settings.mlflow_tracking_uri}: train and "
                    "promote one first (tradeflow train --strategy ..., then tradeflow promote "
                    "--strategy ...), or use --model momentum")
            raise UserError(
                f"{name} has no champion (registered versions: {_listing(versions)}): promote "
                "one first (tradeflow promote --strategy ...), pick one with --model VERSION, "
                "or use --model momentum")
        version, slug, role = info.version, f"champion-v{info.version}", "champion"
    else:
        versions = registry.list_versions(name)
        if choice.value not in {v.version for v in versions}:
            known = (f"registered versions: {_listing(versions)}" if versions
                     else "no version is registered; train one first (tradeflow train "
                     "--strategy ...) or use --model momentum")
            raise UserError(f"unknown version {choice.value} of {name}; {known}")
        version, slug, role = choice.value, f"v{choice.value}", "version"
    try:
        model: Any = registry.load_model(name, version).unwrap_python_model()
    except Exception as exc:  # MLflow raises its own exception types for flavours and files
        raise UserError(f"{name} v{version} cannot be loaded as a python model: "
                        f"{str(exc).splitlines()[0]}") from None
    missing = [a for a in ("probabilities", "features", "warmup", "timeframe")
               if not hasattr(model, a)]
    if missing:
        raise UserError(f"{name} v{version} is not a tradeflow candle model (it lacks "
                        f"{', '.join(missing)}); train it with tradeflow train")
    if model.timeframe != strategy.timeframe:
        raise UserError(f"{name} v{version} was trained on {model.timeframe} candles; the "
                        f"strategy {strategy.name} uses {strategy.timeframe}")
    kind = getattr(model, "metadata", {}).get("model_kind")
    detail = f"{role}, {kind}" if kind else role
    return SignalModel(model, f"{name} v{version} ({detail})", slug)


def _listing(versions: list[Any]) -> str:
    return ", ".join(sorted((v.version for v in versions), key=int))


# -- which candles ---------------------------------------------------------------------------
@dataclass(frozen=True)
class StrategyCandles:
    """Each symbol's candles: warm-up history first, then the window from row ``first``."""

    timeframe: str
    candles: dict[str, pd.DataFrame]
    first: dict[str, int]

    def window(self, symbol: str) -> pd.DataFrame:
        """The candles of ``symbol`` inside the window."""
        return self.candles[symbol].iloc[self.first[symbol]:].reset_index(drop=True)

    def counts(self) -> dict[str, int]:
        """Candles inside the window per symbol."""
        return {s: len(f) - self.first[s] for s, f in self.candles.items()}

    def span(self) -> tuple[int, int]:
        """First and last open time inside the window, over all symbols."""
        firsts = [int(f["open_time"].iloc[self.first[s]]) for s, f in self.candles.items()]
        lasts = [int(f["open_time"].iloc[-1]) for f in self.candles.values()]
        return min(firsts), max(lasts)

    def describe(self) -> str:
        """``1m candles 2024-01-01 00:00 .. 2024-02-29 23:59 UTC``."""
        lo, hi = self.span()
        return f"{self.timeframe} candles {timeframes.iso(lo)} .. {timeframes.iso(hi)} UTC"


def load_strategy_candles(store: MarketStore, exchange: str, strategy: StrategySettings,
                          window: Window | None, *, history: int,
                          backfill_hint: str = "") -> StrategyCandles:
    """The strategy's candles in ``window`` (None: everything stored), quarantine left out.

    Up to ``history`` candles before the window start are loaded too (by time: fewer when
    the store lacks some). :class:`UserError` naming the symbols without a candle in the
    window and the ``tradeflow backfill`` command that gets them (``backfill_hint``: its
    window flags, e.g. ``--timerange 20240101-20240301``).
    """
    from tradeflow.contracts.schemas import ContractError
    from tradeflow.market.quarantine import load_clean_candles

    tf = strategy.timeframe
    start = None if window is None else window.start
    end = None if window is None else window.end
    lo = None if start is None else start - history * timeframes.duration_ms(tf)
    candles: dict[str, pd.DataFrame] = {}
    first: dict[str, int] = {}
    missing: list[str] = []
    for symbol in strategy.symbols:
        key = SeriesKey(exchange, symbol, tf)
        try:
            frame = load_clean_candles(store, key, lo, end)
        except ContractError as exc:
            raise UserError(str(exc).splitlines()[0]) from None
        frame = frame.loc[:, list(CANDLE_FIELDS)].reset_index(drop=True)
        frame["open_time"] = frame["open_time"].astype(np.int64)
        row = 0 if start is None else int(np.searchsorted(frame["open_time"].to_numpy(), start))
        if row >= len(frame):
            missing.append(symbol)
            continue
        candles[symbol], first[symbol] = frame, row
    if missing:
        where = _window_text(start, end)
        raise UserError(
            f"no {tf} candles stored for {', '.join(missing)} {where} in {store.path}; get "
            f"them with `tradeflow backfill --symbols {' '.join(missing)} --timeframes {tf}"
            f"{' ' + backfill_hint if backfill_hint else ''}`")
    return StrategyCandles(tf, candles, first)


def _window_text(start: int | None, end: int | None) -> str:
    if start is None and end is None:
        return "at all"
    if end is None:
        return f"from {timeframes.iso(start or 0)} UTC on"
    if not start:
        return f"up to {timeframes.iso(end)} UTC"
    return f"from {timeframes.iso(start)} to {timeframes.iso(end)} UTC"


# -- probabilities and the backtest ----------------------------------------------------------
def probabilities(model: Predictor, data: StrategyCandles) -> dict[str, np.ndarray]:
    """p(up) per row of each symbol's whole loaded history (NaN while not warm)."""
    out: dict[str, np.ndarray] = {}
    for symbol, frame in data.candles.items():
        try:
            out[symbol] = np.asarray(model.probabilities(frame, symbol), dtype=np.float64)
        except ValueError as exc:  # a per-symbol model without this symbol, off-grid candles
            raise UserError(f"{symbol}: {str(exc).splitlines()[0]}") from None
    return out


@dataclass(frozen=True)
class StrategyBacktest:
    """One backtest of a strategy's model over a window of stored candles."""

    strategy: StrategySettings
    model: SignalModel
    data: StrategyCandles
    proba: dict[str, np.ndarray]
    result: BacktestResult

    def cold(self) -> dict[str, int]:
        """Candles inside the window without a probability (features not warm: no trade)."""
        return {s: int(np.isnan(p[self.data.first[s]:]).sum()) for s, p in self.proba.items()}

    def title(self) -> str:
        return f"{self.strategy.name}: {self.model.label}, {self.data.describe()}"


def run_strategy_backtest(store: MarketStore, settings: Settings, strategy: StrategySettings,
                          choice: ModelChoice, window: Window | None, *,
                          backfill_hint: str = "") -> StrategyBacktest:
    """Resolve the model, load the candles, score them and backtest the window."""
    model, data = prepare(store, settings, strategy, choice, window, backfill_hint=backfill_hint)
    proba = probabilities(model.model, data)
    frames = {s: data.window(s) for s in data.candles}
    probs = {s: p[data.first[s]:] for s, p in proba.items()}
    if len(frames) == 1:
        (symbol, frame), = frames.items()
        result = backtest_strategy(frame, probs[symbol], strategy, symbol=symbol)
    else:
        result = backtest_strategy_portfolio(frames, probs, strategy)
    return StrategyBacktest(strategy, model, data, proba, result)


def prepare(store: MarketStore, settings: Settings, strategy: StrategySettings,
            choice: ModelChoice, window: Window | None, *,
            backfill_hint: str = "") -> tuple[SignalModel, StrategyCandles]:
    """The model ``choice`` names (baselines fitted) and the candles it needs."""
    model = resolve_model(choice, strategy, settings)
    data = load_strategy_candles(store, settings.exchange.id, strategy, window,
                                 history=model.warmup, backfill_hint=backfill_hint)
    inputs = tuple(getattr(model.model, "inputs", ())) if strategy.sources \
        else FeaturePipeline.from_strategy(strategy).inputs
    if inputs:  # order-flow features: the recorded order flow per candle (NaN where none)
        from tradeflow.market.orderflow_store import open_orderflow_store

        with open_orderflow_store(settings) as flow:
            recorded = attach_recorded(flow, settings.exchange.id, strategy.timeframe,
                                       data.candles, inputs)
        data = replace(data, candles=recorded)
    if model.baseline == "momentum":
        fitted = baseline_model("momentum", strategy, data.candles)
        model = replace(fitted, label=model.label, slug=model.slug)
    return model, data


def report_dir(data_dir: Path, strategy: StrategySettings, model: SignalModel,
               now_ms: int) -> Path:
    """``<data_dir>/reports/<strategy>-<model>-<UTC timestamp>/`` (a new directory's path)."""
    stamp = datetime.fromtimestamp(now_ms / 1000, UTC).strftime("%Y%m%dT%H%M%SZ")
    base = Path(data_dir) / "reports" / f"{strategy.name}-{model.slug}-{stamp}"
    path, n = base, 1
    while path.exists():  # two runs within one second keep both reports
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


# -- look-ahead ------------------------------------------------------------------------------
def signal_compute(model: Predictor, strategy: StrategySettings, symbol: str) -> Compute:
    """Candles -> the model's feature columns plus ``probability`` and ``target`` per row."""

    def compute(candles: pd.DataFrame) -> pd.DataFrame:
        out = model.features(candles).reset_index(drop=True)
        proba = np.asarray(model.probabilities(candles, symbol), dtype=np.float64)
        out["probability"] = proba
        out["target"] = strategy_targets(candles, proba, strategy)
        return out

    return compute


@dataclass(frozen=True)
class SymbolCheck:
    """Look-ahead check of one symbol: columns at sample rows, decisions and equity on prefixes."""

    symbol: str
    open_time: np.ndarray
    columns: LookaheadResult
    decisions: BacktestLookahead

    @property
    def ok(self) -> bool:
        return self.columns.ok and self.decisions.ok

    def lines(self) -> list[str]:
        """What was checked, or every difference (column, time, both values)."""
        rows = self.columns.checked_rows
        head = (f"{self.symbol}: {len(rows)} sample points "
                f"{timeframes.iso(int(self.open_time[rows[0]]))} .. "
                f"{timeframes.iso(int(self.open_time[rows[-1]]))} UTC, "
                f"{len(self.columns.columns)} columns; "
                f"{len(self.decisions.prefixes)} prefixes backtested")
        if self.ok:
            return [head + ": identical"]
        out = [head + ": LOOK-AHEAD"]
        out += [f"  {d}" for d in self.columns.differences]
        if self.decisions.target_mismatches:
            rows_bad = self.decisions.target_mismatches
            out.append(f"  target decisions: {len(rows_bad)} change when later candles are "
                       f"removed, first at {timeframes.iso(int(self.open_time[rows_bad[0]]))}")
        if self.decisions.equity_mismatches:
            ends = [timeframes.iso(int(self.open_time[k - 1]))
                    for k in self.decisions.equity_mismatches[:3]]
            out.append(f"  equity: {len(self.decisions.equity_mismatches)} prefix backtests "
                       f"differ from the full one (prefixes ending {', '.join(ends)})")
        return out


def check_symbol(symbol: str, candles: pd.DataFrame, compute: Compute,
                 strategy: StrategySettings, *, samples: int, start: int) -> SymbolCheck:
    """Compare ``compute`` on truncated histories with the full run, and the backtest on
    prefixes; ``compute`` must return a ``target`` column (see :func:`signal_compute`).

    Sample rows are drawn from ``start`` on (the warm-up, or the window start if later).
    """
    if len(candles) < start + 2:
        raise UserError(f"{symbol}: {len(candles)} candles, too few to check: the model needs "
                        f"{start} to warm up plus 2; widen the window")
    columns = check_lookahead(candles, compute, samples=samples, start=start)

    def make_target(c: pd.DataFrame) -> np.ndarray:
        return compute(c)["target"].to_numpy(dtype=np.float64)

    decisions = check_backtest_lookahead(
        candles, make_target, prefixes=samples, costs=strategy.costs, exits=strategy.exits,
        allow_short=strategy.signal.allow_short, risk=strategy.risk)
    return SymbolCheck(symbol, candles["open_time"].to_numpy(dtype=np.int64), columns, decisions)


def check_strategy(model: SignalModel, data: StrategyCandles, strategy: StrategySettings, *,
                   samples: int) -> list[SymbolCheck]:
    """:func:`check_symbol` with :func:`signal_compute` for every symbol of ``data``."""
    return [
        check_symbol(s, frame, signal_compute(model.model, strategy, s), strategy,
                     samples=samples, start=max(model.warmup, data.first[s]))
        for s, frame in data.candles.items()
    ]
