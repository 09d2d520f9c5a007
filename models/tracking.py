"""Log one training to MLflow: config, params, metrics, plots, data hash and the pyfunc model.

One run per training, in the experiment the run's job configured (:func:`models.job.open_job`).
What a run holds:

* ``config/resolved.yaml``: the whole resolved strategy, the relevant settings (secrets left
  out) and the request (end, window); the same, flattened, as params (``strategy.label.horizon``
  ...; lists as JSON);
* the validation policies (``settings.validation.policies.<rule>``) and, as metrics, how many
  candles of the loaded window each rule set aside (``data.excluded.<rule>``,
  ``data.quarantined.<rule>``) and how many no validation run had judged
  (``data.unvalidated``);
* metrics, in one ``log_batch``: ``oos.*`` for the model, ``baseline.<kind>.*`` for each
  baseline, per fold ``fold.auc`` / ``fold.sharpe`` / ... with ``step`` = fold number (and
  ``baseline.<kind>.fold.*``). Infinite or NaN values (e.g. a profit factor without losing
  trades) are not logged; tag ``metrics.skipped`` lists them as ``key=value`` (``key@fold=value``
  for per-fold ones);
* ``plots/feature_importance.png`` and ``plots/oos_equity.png``, ``cv/folds.csv``;
* tag and param ``data_hash`` (sha256 of the candles used), tags of the train window;
* the model as a pyfunc (``model``) with an inferred signature, an input example of real
  candles and explicit pip requirements.
"""

from __future__ import annotations

import json
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pandas as pd
import yaml
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

from models.job import Job
from models.pyfunc import pip_requirements
from models.registry import VersionInfo, register_version
from models.scoring import finite_metrics
from models.training import (
    MAIN,
    TrainingData,
    TrainingResult,
    fit_and_evaluate,
    load_training_data,
)
from tradeflow.config import Settings

__all__ = ["LoggedRun", "example_input", "flatten", "log_training", "register_training",
           "resolved_config", "run_training", "train_and_log", "version_tags"]

MODEL_NAME = "model"
MAX_PARAM_CHARS = 6000
MAX_POINTS = 3000  # per line of a chart


@dataclass(frozen=True)
class LoggedRun:
    """Where a training was logged, and how long each part of the logging took."""

    run_id: str
    model_uri: str
    experiment_id: str
    seconds: float
    parts: dict[str, float]


def redact_url(url: str | None) -> str | None:
    """A URL without the ``user:password@`` part, if it has one."""
    if not url:
        return url
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"***@{host}"))


def resolved_config(result: TrainingResult, settings: Settings,
                    request: Mapping[str, Any]) -> dict[str, Any]:
    """Strategy, the settings a training depends on (no secrets) and the request."""
    exchange = settings.exchange.model_dump(mode="json", exclude={"api_key", "api_secret"})
    exchange["base_url"] = redact_url(exchange.get("base_url"))
    mlflow_section = {
        "tracking_uri": redact_url(settings.mlflow_tracking_uri),
        "artifact_root": redact_url(settings.mlflow_artifact_root),
        "experiment": settings.mlflow.experiment,
    }
    return {
        "strategy": result.strategy.model_dump(mode="json"),
        "settings": {
            "exchange": exchange, "store": settings.store.model_dump(mode="json"),
            # What validation set aside decides what the model learned from.
            "validation": {"policies": settings.validation.policies.model_dump()},
            "store_path": settings.store_path, "mlflow": mlflow_section,
            "data_dir": str(settings.data_dir),
        },
        "request": dict(request),
        "window": result.window.tags(),
        "features": {"columns": list(result.pipeline.columns), "warmup": result.model.warmup,
                     "resolved": result.pipeline.specs()},
    }


def flatten(tree: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """``(dotted.key, value)`` pairs; lists become JSON strings."""
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from flatten(value, f"{name}.")
        else:
            text = value if isinstance(value, str) else json.dumps(value, default=str)
            yield name, text[:MAX_PARAM_CHARS]


def all_metrics(result: TrainingResult) -> list[tuple[str, float, int]]:
    """Every metric of a training as ``(key, value, step)``, non-finite ones included."""
    out: list[tuple[str, float, int]] = []
    for ev in result.evaluations.values():
        prefix = "oos." if ev.name == MAIN else f"baseline.{ev.kind}."
        out += [(prefix + k, v, 0) for k, v in ev.metrics().items()]
        fold_prefix = "fold." if ev.name == MAIN else f"baseline.{ev.kind}.fold."
        for i, fold in enumerate(ev.folds, start=1):
            out += [(fold_prefix + k, v, i) for k, v in fold.items()]
    out += [("data.samples", float(result.samples), 0),
            ("data.labelled", float(result.labelled), 0),
            ("data.candles", float(sum(len(f) for f in result.candles.values())), 0)]
    out += [(k, v, 0) for k, v in result.set_aside.metrics().items()]
    out += [(k, v, 0) for k, v in result.order_flow.items()]
    return out


def example_input(result: TrainingResult, extra_rows: int = 3) -> pd.DataFrame:
    """Real candles of the first symbol, just long enough to give ``extra_rows`` probabilities."""
    symbol, frame = next(iter(result.candles.items()))
    rows = frame.iloc[-(result.model.warmup + extra_rows):].reset_index(drop=True)
    out = rows.assign(symbol=symbol)
    out["open_time"] = out["open_time"].astype(np.int64)
    return out.loc[:, list(result.model.input_columns)]


def _save(fig: Figure, path: Path) -> None:
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=110, bbox_inches="tight")


def importance_plot(result: TrainingResult, path: Path, top: int = 30) -> None:
    """Horizontal bars of the final model's feature importance (mean over symbol models)."""
    totals: dict[str, float] = {}
    for est in result.model.estimators.values():
        for col, value in est.feature_importance().items():
            totals[col] = totals.get(col, 0.0) + value / len(result.model.estimators)
    items = sorted(totals.items(), key=lambda kv: kv[1])[-top:]
    fig = Figure(figsize=(7, 0.3 * len(items) + 1.2))
    ax = fig.add_subplot()
    ax.barh([k for k, _ in items], [v for _, v in items], color="#3b6ea5")
    kind = result.strategy.model.kind
    ax.set_xlabel({"xgboost": "total gain", "random_forest": "mean decrease in impurity",
                   "logistic": "|standardised coefficient|"}.get(kind, "importance"))
    ax.set_title(f"{result.strategy.name}: feature importance ({kind}, final model)")
    _save(fig, path)


def equity_plot(result: TrainingResult, path: Path) -> None:
    """Out-of-sample equity after costs of the model and each baseline."""
    fig = Figure(figsize=(10, 4.5))
    ax = fig.add_subplot()
    for ev in result.evaluations.values():
        times = ev.backtest.open_time
        # At most MAX_POINTS per line, as days since the epoch (matplotlib's date unit):
        # converting 10^5 timestamps one by one costs more than the rest of the run's logging.
        idx = np.unique(np.linspace(0, times.size - 1, min(times.size, MAX_POINTS)).astype(int))
        days = times[idx] / 86_400_000.0
        name = ev.name if ev.name == MAIN else ev.kind
        label = f"{name} (Sharpe {ev.backtest.metrics.sharpe:.1f})"
        ax.plot(days, ev.backtest.equity_curve[idx] / ev.backtest.starting_cash,
                lw=1.6 if ev.name == MAIN else 0.9, label=label)
    ax.xaxis.set_major_locator(AutoDateLocator())
    ax.xaxis.set_major_formatter(ConciseDateFormatter(ax.xaxis.get_major_locator()))
    ax.axhline(1.0, color="grey", lw=0.6)
    ax.set_ylabel("equity / start")
    ax.set_xlabel("UTC")
    ax.set_title(f"{result.strategy.name}: walk-forward out-of-sample equity, after fees")
    ax.legend(loc="best", fontsize=8)
    _save(fig, path)


def folds_frame(result: TrainingResult) -> pd.DataFrame:
    rows = [{"model": ev.name if ev.name == MAIN else ev.kind, "fold": i, **fold}
            for ev in result.evaluations.values() for i, fold in enumerate(ev.folds, start=1)]
    return pd.DataFrame(rows)


def log_training(result: TrainingResult, settings: Settings,
                 request: Mapping[str, Any] | None = None) -> LoggedRun:
    """One MLflow run for ``result``; sets ``result.run_id`` and ``result.model_uri``.

    The run goes to the active experiment: tracking is configured once per run, by the job
    (:func:`models.job.open_job`) or :func:`models.registry.configure_tracking`.
    """
    import mlflow
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.models import infer_signature

    started = time.perf_counter()
    config = resolved_config(result, settings, request or {})
    metrics, skipped = _split(all_metrics(result))
    tags = {"strategy": result.strategy.name, "model_kind": result.strategy.model.kind,
            "data_hash": result.data_hash, **result.window.tags(),
            "metrics.skipped": (", ".join(skipped) or "none")[:MAX_PARAM_CHARS]}
    params = dict(flatten({k: v for k, v in config.items() if k != "features"}))
    params["data_hash"] = result.data_hash
    params["features.columns"] = json.dumps(config["features"]["columns"])
    params["features.warmup"] = str(result.model.warmup)
    if result.pipeline.inputs:
        params["data.orderflow.inputs"] = ",".join(result.pipeline.inputs)
    name = f"{result.strategy.name}-{result.window.tags()['train_end'].replace(' ', 'T')}"
    client = mlflow.MlflowClient()
    example = example_input(result)
    parts: dict[str, float] = {}
    mark = time.perf_counter()
    with mlflow.start_run(run_name=name) as run:
        # The model goes first: MLflow 3 links every metric already in the run to a new
        # logged model with one query per metric, which would cost more than all the rest.
        with warnings.catch_warnings():
            # MLflow hints that integer columns cannot hold missing values: open_time never does.
            warnings.filterwarnings("ignore", message=".*integer column", category=UserWarning)
            signature = infer_signature(example, result.model.predict_frame(example))
            info = mlflow.pyfunc.log_model(
                name=MODEL_NAME, python_model=result.model, signature=signature,
                input_example=example, pip_requirements=pip_requirements(),
                metadata={"strategy": result.strategy.name, "warmup": result.model.warmup,
                          "timeframe": result.pipeline.timeframe},
            )
        parts["model_s"], mark = time.perf_counter() - mark, time.perf_counter()
        now = int(time.time() * 1000)
        client.log_batch(
            run.info.run_id,
            metrics=[Metric(k, v, now, step) for k, v, step in metrics],
            params=[Param(k, v) for k, v in params.items()],
            tags=[RunTag(k, str(v)) for k, v in tags.items()],
        )
        parts["batch_s"], mark = time.perf_counter() - mark, time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            for sub in ("config", "plots", "cv"):
                (root / sub).mkdir()
            (root / "config" / "resolved.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
            importance_plot(result, root / "plots" / "feature_importance.png")
            equity_plot(result, root / "plots" / "oos_equity.png")
            folds_frame(result).to_csv(root / "cv" / "folds.csv", index=False)
            mlflow.log_artifacts(str(root))
        parts["artifacts_s"] = time.perf_counter() - mark
    result.run_id, result.model_uri = run.info.run_id, info.model_uri
    return LoggedRun(run.info.run_id, info.model_uri, run.info.experiment_id,
                     time.perf_counter() - started, parts)


def _split(metrics: list[tuple[str, float, int]]
           ) -> tuple[list[tuple[str, float, int]], list[str]]:
    kept: list[tuple[str, float, int]] = []
    skipped: list[str] = []
    for key, value, step in metrics:
        ok, bad = finite_metrics({f"{key}@{step}" if step else key: value})
        kept += [(key, v, step) for v in ok.values()]
        skipped += bad
    return kept, skipped


VERSION_METRICS = ("auc", "log_loss", "sharpe", "sharpe_ci_low", "total_return", "max_drawdown",
                   "trade_count")


def version_tags(result: TrainingResult) -> dict[str, str]:
    """Tags of the registered version: provenance and the model's out-of-sample scores."""
    if result.run_id is None:
        raise ValueError("log the training (log_training) before registering it")
    metrics = result.main.metrics()
    tags = {"strategy": result.strategy.name, "model_kind": result.strategy.model.kind,
            "data_hash": result.data_hash, "run_id": result.run_id, **result.window.tags()}
    for key in VERSION_METRICS:
        value = float(metrics[key])
        tags[f"oos.{key}"] = f"{value:.6g}"
    return tags


def register_training(result: TrainingResult) -> VersionInfo:
    """Register the logged model as a new version of ``tradeflow-<strategy>``."""
    if result.model_uri is None:
        raise ValueError("log the training (log_training) before registering it")
    info = register_version(result.strategy.model_name, result.model_uri, version_tags(result))
    result.version = info.version
    return info


def train_and_log(data: TrainingData, settings: Settings,
                  request: Mapping[str, Any] | None = None) -> TrainingResult:
    """Cross-validate, fit and log one training (one MLflow run); the result has its run id."""
    started = time.perf_counter()
    result = fit_and_evaluate(data)
    fitted = time.perf_counter()
    logged = log_training(result, settings, request)
    result.timings.update(fit_s=fitted - started, log_s=logged.seconds)
    return result


def run_training(job: Job, window_days: float | None = None) -> TrainingResult:
    """Load, train, log and register (what ``tradeflow train`` runs, without Prefect)."""
    data = load_training_data(job.store, job.exchange, job.strategy, job.end_ms, window_days,
                              job.order_flow())
    request = {"end_ms": job.end_ms, "window_days": window_days}
    result = train_and_log(data, job.settings, request)
    register_training(result)
    return result
