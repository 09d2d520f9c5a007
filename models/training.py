"""Rolling-window training: candles -> features and labels -> walk-forward CV -> final model.

Plain functions, no MLflow and no Prefect (:mod:`models.tracking` logs, ``tasks/`` and
``flows/`` wire). Time is passed in.

Windows, for a request ending at ``end`` (a candle boundary):

* holdout: ``[end - promotion.evaluation_days, end)`` is never trained on; promotion scores
  every model on it, so challenger and champion meet on data neither has seen;
* training: ``[holdout_start - training.window_days, holdout_start)``; candles before it are
  loaded only to warm the features up. Labels need candles after ``t``, and no candle of the
  holdout is loaded, so a label that would reach into the holdout is NaN and not trained on.

Cross-validation (:mod:`models.walkforward`) scores the strategy's model and each baseline on
the same folds: AUC and log loss on labelled test samples, and the backtester's metrics of the
out-of-sample probabilities over every candle of the test blocks, with the strategy's signal,
sizing, exits, fees and slippage (one shared-cash portfolio over all symbols). The same
probabilities are also backtested without costs ("gross"), which tells leakage (an edge before
costs on a random walk) from costs eating a real one. The final model is then fitted on the
whole training window.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from models.estimators import MOMENTUM_COLUMN, Estimator, make_estimator, momentum_returns
from models.features import FeaturePipeline
from models.labels import make_labels
from models.order_flow_data import OrderFlowReader, attach_recorded, coverage_metrics
from models.pyfunc import POOLED, CandleModel
from models.scoring import auc_and_log_loss, sharpe_confidence, sharpe_tstat
from models.walkforward import walk_forward_folds
from tradeflow import timeframes
from tradeflow.backtest import BacktestResult, backtest_strategy, backtest_strategy_portfolio
from tradeflow.errors import UsageError, UserError
from tradeflow.market.quarantine import SetAside, load_clean_candles, set_aside
from tradeflow.market.store import MarketStore, SeriesKey
from tradeflow.strategy import CostSettings, StrategySettings

__all__ = [
    "CANDLE_FIELDS",
    "Evaluation",
    "SampleSet",
    "TrainWindow",
    "TrainingData",
    "TrainingDataError",
    "TrainingResult",
    "build_samples",
    "cross_validate",
    "data_hash",
    "fit_and_evaluate",
    "fit_final",
    "load_candles",
    "load_training_data",
    "oos_backtest",
    "resolve_end",
    "train_window",
]

DAY_MS = 86_400_000
CANDLE_FIELDS = ("open_time", "open", "high", "low", "close", "volume")
MAIN = "model"
ZERO_COSTS = CostSettings.model_validate(
    {"taker_bps": 0.0, "maker_bps": 0.0, "slippage": {"kind": "fixed", "bps": 0.0}})


class TrainingDataError(UserError):
    """The store lacks the candles a training or evaluation window needs."""


# -- windows and data ------------------------------------------------------------------------
def resolve_end(end: str | int | None, timeframe: str, now_ms: int) -> int:
    """The window end as a candle boundary: ``end`` (ISO date/time, unix ms) or ``now_ms``.

    Rounded down to the timeframe, so every candle before it is closed. An explicit ``end``
    is trusted even past the wall clock: an accelerated exchange (the simulator) stores
    candles whose times are ahead of it, and the daily retrain passes the stored end.
    """
    if end is None or end == "":
        value = now_ms
    elif isinstance(end, int) or str(end).strip().isdigit():
        value = int(end)
        if value < 10**11:  # unix seconds
            value *= 1000
    else:
        try:
            dt = datetime.fromisoformat(str(end).strip())
        except ValueError:
            raise UsageError(
                f"end {end!r}: not a date; allowed: ISO date/time or unix ms") from None
        dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
        value = int(dt.timestamp() * 1000)
    return timeframes.floor(value, timeframe)


@dataclass(frozen=True)
class TrainWindow:
    """Training ``[start_ms, end_ms)``; holdout ``[end_ms, holdout_end_ms)``; all UTC ms."""

    start_ms: int
    end_ms: int
    holdout_end_ms: int
    load_from_ms: int

    def tags(self) -> dict[str, str]:
        return {
            "train_start": timeframes.iso(self.start_ms), "train_end": timeframes.iso(self.end_ms),
            "train_start_ms": str(self.start_ms), "train_end_ms": str(self.end_ms),
            "holdout_start_ms": str(self.end_ms), "holdout_end_ms": str(self.holdout_end_ms),
        }


def train_window(strategy: StrategySettings, end_ms: int, window_days: float | None = None,
                 warmup: int = 0) -> TrainWindow:
    """The training window of a request ending at ``end_ms`` (see the module docstring)."""
    days = strategy.training.window_days if window_days is None else window_days
    if days <= 0:
        raise UsageError(f"window_days {days}: must be a positive number of days")
    tf = strategy.timeframe
    end = timeframes.floor(end_ms, tf)
    train_end = timeframes.floor(end - int(strategy.promotion.evaluation_days * DAY_MS), tf)
    start = timeframes.floor(train_end - int(days * DAY_MS), tf)
    history = max(warmup, strategy.label.horizon) * timeframes.duration_ms(tf)
    return TrainWindow(start, train_end, end, start - history)


def load_candles(store: MarketStore, exchange: str, strategy: StrategySettings, start_ms: int,
                 end_ms: int) -> dict[str, pd.DataFrame]:
    """Validated candles of every strategy symbol with ``start_ms <= open_time < end_ms``.

    Candles validation set aside (quarantined or excluded by a policy) are left out
    (:func:`tradeflow.market.quarantine.load_clean_candles`).
    """
    from tradeflow.contracts.schemas import ContractError

    out: dict[str, pd.DataFrame] = {}
    for symbol in strategy.symbols:
        key = SeriesKey(exchange, symbol, strategy.timeframe)
        try:
            frame = load_clean_candles(store, key, start_ms, end_ms - 1)
        except ContractError as exc:
            raise TrainingDataError(str(exc)) from None
        if frame.empty:
            raise TrainingDataError(
                f"no candles for {key} from {timeframes.iso(start_ms)} to "
                f"{timeframes.iso(end_ms)}; run `tradeflow backfill` first"
            )
        frame = frame.loc[:, list(CANDLE_FIELDS)].reset_index(drop=True)
        frame["open_time"] = frame["open_time"].astype(np.int64)
        out[symbol] = frame
    return out


def data_hash(candles: Mapping[str, pd.DataFrame]) -> str:
    """sha256 over each symbol's name and its open_time, OHLCV (and order-flow) arrays."""
    digest = hashlib.sha256()
    for symbol, frame in candles.items():
        digest.update(symbol.encode())
        digest.update(np.ascontiguousarray(frame["open_time"].to_numpy(np.int64)).tobytes())
        extra = [c for c in frame.columns if c not in CANDLE_FIELDS]
        block = frame.loc[:, [*CANDLE_FIELDS[1:], *extra]].to_numpy(dtype=np.float64)
        digest.update(np.ascontiguousarray(block).tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class TrainingData:
    """Candles for one training request (warm-up rows included) and their hash."""

    strategy: StrategySettings
    window: TrainWindow
    candles: dict[str, pd.DataFrame]
    data_hash: str
    set_aside: SetAside = field(default_factory=SetAside)
    order_flow: dict[str, float] = field(default_factory=dict)  # data.orderflow.* coverage


def load_training_data(store: MarketStore, exchange: str, strategy: StrategySettings,
                       end_ms: int, window_days: float | None = None,
                       order_flow: OrderFlowReader | None = None) -> TrainingData:
    """Candles of the training window plus warm-up, never a candle of the holdout.

    A strategy with order-flow features also gets the recorded order flow per candle from
    ``order_flow`` (NaN where none was recorded) and its coverage.
    """
    pipeline = FeaturePipeline.from_strategy(strategy)
    window = train_window(strategy, end_ms, window_days, pipeline.warmup)
    candles = load_candles(store, exchange, strategy, window.load_from_ms, window.end_ms)
    keys = [SeriesKey(exchange, s, strategy.timeframe) for s in strategy.symbols]
    aside = set_aside(store, keys, window.load_from_ms, window.end_ms - 1)
    coverage: dict[str, float] = {}
    if pipeline.inputs:
        if order_flow is None:
            raise TrainingDataError(f"strategy {strategy.name!r} has order-flow features but "
                                    "no order-flow store was given")
        candles = attach_recorded(order_flow, exchange, strategy.timeframe, candles,
                                  pipeline.inputs)
        coverage = coverage_metrics(candles, window.start_ms)
    return TrainingData(strategy, window, candles, data_hash(candles), aside, coverage)


# -- samples ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class SampleSet:
    """Rows of the training window with warm features, pooled and ordered by (time, symbol).

    ``label`` is NaN where the horizon runs past the window (those rows are tested, never
    trained on); ``row`` is the position in ``candles[symbol]``; ``label_end`` is the open time
    of the last candle the label reads (later than ``t + horizon`` candles across a gap).
    """

    features: pd.DataFrame
    label: np.ndarray
    times: np.ndarray
    symbols: np.ndarray
    rows: np.ndarray
    label_end: np.ndarray

    def __len__(self) -> int:
        return int(self.times.size)


def build_samples(candles: Mapping[str, pd.DataFrame], strategy: StrategySettings,
                  pipeline: FeaturePipeline, start_ms: int) -> SampleSet:
    """Features (plus the momentum helper column) and labels of rows at or after ``start_ms``."""
    horizon = strategy.label.horizon
    period = timeframes.duration_ms(strategy.timeframe)
    parts, labels, times, symbols, rows, ends = [], [], [], [], [], []
    for symbol, frame in candles.items():
        feats = pipeline.compute(frame)
        feats[MOMENTUM_COLUMN] = momentum_returns(frame["close"].to_numpy(), horizon)
        t = frame["open_time"].to_numpy(dtype=np.int64)
        keep = (t >= start_ms) & np.isfinite(feats.to_numpy()).all(axis=1)
        keep[: pipeline.warmup] = False
        idx = np.flatnonzero(keep)
        parts.append(feats.iloc[idx].reset_index(drop=True))
        labels.append(make_labels(frame, strategy.label)["label"].to_numpy()[idx])
        times.append(t[idx])
        symbols.append(np.full(idx.size, symbol, dtype=object))
        rows.append(idx)
        ahead = np.minimum(idx + horizon, t.size - 1)
        # Past the last candle the label is NaN (never trained on); count whole periods there.
        ends.append(np.where(idx + horizon < t.size, t[ahead], t[idx] + horizon * period))
    t_all = np.concatenate(times)
    sym_all = np.concatenate(symbols)
    rank = {s: i for i, s in enumerate(candles)}
    order = np.lexsort((np.array([rank[s] for s in sym_all], dtype=np.int64), t_all))
    features = pd.concat(parts, ignore_index=True).iloc[order].reset_index(drop=True)
    return SampleSet(features, np.concatenate(labels)[order], t_all[order], sym_all[order],
                     np.concatenate(rows)[order], np.concatenate(ends)[order])


def _groups(samples: SampleSet, strategy: StrategySettings) -> dict[str, np.ndarray]:
    if strategy.training.pooled:
        return {POOLED: np.arange(len(samples))}
    return {s: np.flatnonzero(samples.symbols == s) for s in strategy.symbols}


# -- evaluation ------------------------------------------------------------------------------
@dataclass
class Evaluation:
    """Out-of-sample results of one model kind over the walk-forward folds."""

    name: str
    kind: str
    proba: np.ndarray
    fold: np.ndarray
    auc: float
    log_loss: float
    backtest: BacktestResult
    gross: BacktestResult
    sharpe_ci: tuple[float, float]
    gross_sharpe_ci: tuple[float, float]
    folds: list[dict[str, float]] = field(default_factory=list)

    def metrics(self) -> dict[str, float]:
        """Overall out-of-sample numbers (may hold inf/NaN: see scoring.finite_metrics)."""
        bt = self.backtest
        out = {"auc": self.auc, "log_loss": self.log_loss, **bt.metrics.as_dict()}
        out["sharpe_tstat"] = sharpe_tstat(bt.equity_curve, bt.starting_cash)
        out["sharpe_ci_low"], out["sharpe_ci_high"] = self.sharpe_ci
        out["gross_sharpe"] = self.gross.metrics.sharpe
        out["gross_total_return"] = self.gross.metrics.total_return
        out["gross_sharpe_ci_low"], out["gross_sharpe_ci_high"] = self.gross_sharpe_ci
        return out


def oos_backtest(candles: Mapping[str, pd.DataFrame], samples: SampleSet, proba: np.ndarray,
                 strategy: StrategySettings, mask: np.ndarray | None = None) -> BacktestResult:
    """Backtest the probabilities of the selected samples over each symbol's candle span.

    Per symbol the span runs from its first to its last selected sample; candles in it
    without a probability keep the current position (NaN). Several symbols share one cash.
    """
    use = np.isfinite(proba) if mask is None else mask & np.isfinite(proba)
    frames: dict[str, pd.DataFrame] = {}
    probs: dict[str, np.ndarray] = {}
    for symbol, frame in candles.items():
        sel = use & (samples.symbols == symbol)
        if not sel.any():
            continue
        rows = samples.rows[sel]
        lo, hi = int(rows.min()), int(rows.max()) + 1
        p = np.full(hi - lo, np.nan)
        p[rows - lo] = proba[sel]
        frames[symbol] = frame.iloc[lo:hi].reset_index(drop=True)
        probs[symbol] = p
    if not frames:
        raise ValueError("no out-of-sample probabilities to backtest")
    if len(frames) == 1:
        (symbol, frame), = frames.items()
        return backtest_strategy(frame, probs[symbol], strategy, symbol=symbol)
    return backtest_strategy_portfolio(frames, probs, strategy)


def cross_validate(samples: SampleSet, candles: Mapping[str, pd.DataFrame],
                   strategy: StrategySettings, kind: str, name: str,
                   params: Mapping[str, Any] | None = None) -> Evaluation:
    """Walk-forward out-of-sample probabilities and scores of one model kind."""
    feature_cols = [c for c in samples.features.columns if c != MOMENTUM_COLUMN]
    period = timeframes.duration_ms(strategy.timeframe)
    labelled = np.isfinite(samples.label)
    proba = np.full(len(samples), np.nan)
    fold_of = np.zeros(len(samples), dtype=np.int64)
    for group, members in _groups(samples, strategy).items():
        try:
            folds = walk_forward_folds(
                samples.times[members], folds=strategy.training.folds,
                horizon=strategy.label.horizon, embargo=strategy.embargo, period_ms=period,
                trainable=labelled[members], label_end=samples.label_end[members],
            )
        except ValueError as exc:
            where = "pooled samples" if group == POOLED else group
            raise TrainingDataError(f"{where}: {exc}") from None
        for fold in folds:
            train, test = members[fold.train], members[fold.test]
            est = make_estimator(kind, feature_cols, params)
            est.fit(samples.features.iloc[train], samples.label[train])
            proba[test] = est.predict_proba(samples.features.iloc[test])
            fold_of[test] = fold.index
    tested = fold_of > 0
    auc, loss = auc_and_log_loss(samples.label[tested], proba[tested])
    backtest = oos_backtest(candles, samples, proba, strategy)
    gross = oos_backtest(candles, samples, proba, strategy.model_copy(update={"costs": ZERO_COSTS}))
    ppy = backtest.metrics.periods_per_year
    block = max(60, 4 * strategy.label.horizon)
    evaluation = Evaluation(
        name, kind, proba, fold_of, auc, loss, backtest, gross,
        sharpe_confidence(backtest.equity_curve, backtest.starting_cash, ppy, block=block),
        sharpe_confidence(gross.equity_curve, gross.starting_cash, ppy, block=block),
    )
    for k in range(1, strategy.training.folds + 1):
        in_fold = fold_of == k
        f_auc, f_loss = auc_and_log_loss(samples.label[in_fold], proba[in_fold])
        m = oos_backtest(candles, samples, proba, strategy, in_fold).metrics
        evaluation.folds.append({
            "auc": f_auc, "log_loss": f_loss, "sharpe": m.sharpe, "total_return": m.total_return,
            "max_drawdown": m.max_drawdown, "trade_count": float(m.trade_count),
            "samples": float(in_fold.sum()),
        })
    return evaluation


def fit_final(samples: SampleSet, strategy: StrategySettings,
              feature_columns: tuple[str, ...]) -> dict[str, Estimator]:
    """The strategy's model fitted on every labelled sample (one per symbol if not pooled)."""
    labelled = np.isfinite(samples.label)
    out: dict[str, Estimator] = {}
    for key, members in _groups(samples, strategy).items():
        train = members[labelled[members]]
        if train.size == 0:
            raise TrainingDataError(f"no labelled sample to train on for {key}")
        est = make_estimator(strategy.model.kind, feature_columns, strategy.model.params)
        out[key] = est.fit(samples.features.iloc[train], samples.label[train])
    return out


# -- the whole computation -------------------------------------------------------------------
@dataclass
class TrainingResult:
    """Everything one training produced, before and after it is logged to MLflow."""

    strategy: StrategySettings
    window: TrainWindow
    data_hash: str
    pipeline: FeaturePipeline
    model: CandleModel
    evaluations: dict[str, Evaluation]
    samples: int
    labelled: int
    candles: dict[str, pd.DataFrame]
    set_aside: SetAside = field(default_factory=SetAside)
    order_flow: dict[str, float] = field(default_factory=dict)
    run_id: str | None = None
    model_uri: str | None = None
    version: str | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def main(self) -> Evaluation:
        return self.evaluations[MAIN]

    def summary(self) -> pd.DataFrame:
        """Model vs baselines, out of sample and after costs: the table the CLI prints."""
        rows = []
        for ev in self.evaluations.values():
            m = ev.backtest.metrics
            rows.append({
                "model": ev.name if ev.name == MAIN else f"baseline:{ev.kind}",
                "kind": ev.kind, "auc": ev.auc, "log_loss": ev.log_loss, "sharpe": m.sharpe,
                "sharpe_ci": f"[{ev.sharpe_ci[0]:.1f}, {ev.sharpe_ci[1]:.1f}]",
                "total_return": m.total_return, "max_drawdown": m.max_drawdown,
                "trades": m.trade_count,
            })
        return pd.DataFrame(rows)

    def table(self) -> str:
        """:meth:`summary` as aligned text (percent for returns and drawdowns)."""
        frame = self.summary()
        for col in ("total_return", "max_drawdown"):
            frame[col] = frame[col].map(lambda v: f"{100 * v:.2f}%")
        for col in ("auc", "log_loss"):
            frame[col] = frame[col].map(lambda v: f"{v:.4f}")
        frame["sharpe"] = frame["sharpe"].map(lambda v: f"{v:.2f}")
        return frame.to_string(index=False)

    def markdown(self) -> str:
        """The Prefect artifact of a training: window, run, version and the summary table."""
        frame = self.summary()
        head = "| " + " | ".join(frame.columns) + " |"
        rule = "|" + "---|" * len(frame.columns)
        body = ["| " + " | ".join(_cell(v) for v in row) + " |"
                for row in frame.itertuples(index=False)]
        tags = self.window.tags()
        return (
            f"## {self.strategy.model_name} v{self.version or '?'}\n\n"
            f"Trained on {tags['train_start']} .. {tags['train_end']} UTC "
            f"({self.labelled:,} labelled samples, data hash `{self.data_hash[:12]}`); "
            f"MLflow run `{self.run_id}`.\n\n"
            f"Left out by validation: {'; '.join(self.set_aside.lines()) or 'none'}.\n\n"
            "Walk-forward out of sample, after fees and slippage:\n\n"
            + "\n".join([head, rule, *body]) + "\n"
        )


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def fit_and_evaluate(data: TrainingData) -> TrainingResult:
    """Cross-validate the strategy's model and baselines, then fit the final model."""
    strategy = data.strategy
    pipeline = FeaturePipeline.from_strategy(strategy)
    samples = build_samples(data.candles, strategy, pipeline, data.window.start_ms)
    labelled = int(np.isfinite(samples.label).sum())
    if labelled == 0:
        raise TrainingDataError("the training window has no labelled sample")
    kinds: list[tuple[str, str, Mapping[str, Any] | None]] = [
        (MAIN, strategy.model.kind, strategy.model.params)]
    kinds += [(kind, kind, None) for kind in dict.fromkeys(strategy.training.baselines)
              if kind != strategy.model.kind]
    evaluations = {name: cross_validate(samples, data.candles, strategy, kind, name, params)
                   for name, kind, params in kinds}
    estimators = fit_final(samples, strategy, pipeline.columns)
    metadata = {
        "strategy": strategy.name, "model_kind": strategy.model.kind,
        "label": strategy.label.model_dump(mode="json"), "data_hash": data.data_hash,
        **data.window.tags(),
    }
    reads_momentum = any(MOMENTUM_COLUMN in e.columns for e in estimators.values())
    model = CandleModel(pipeline, estimators, metadata,
                        momentum_horizon=strategy.label.horizon if reads_momentum else None)
    return TrainingResult(strategy, data.window, data.data_hash, pipeline, model, evaluations,
                          len(samples), labelled, data.candles, data.set_aside,
                          order_flow=data.order_flow)
