"""Champion/challenger promotion: score both on the same recent window, promote only a winner.

The challenger is the newest registered version of ``tradeflow-<strategy>``; the champion is
the version holding the ``champion`` alias. Both are loaded from the registry as pyfunc models
and fed the same raw candles: the evaluation window ``[end - promotion.evaluation_days, end)``
plus enough earlier candles to warm their features up. Their probabilities in the window are
backtested with the strategy's signal, sizing, exits, fees and slippage (one shared-cash
portfolio), and ``promotion.metric`` is read off (``auc`` from the labels in the window).

Decision (:func:`decide`, pure):

* ``rejected``: the challenger's signature does not take the strategy's raw candles, or its
  training window reaches into the evaluation window (its score would be in-sample), or it
  fails a threshold: ``min_trades``, ``max_drawdown_pct``, or a score no better than not
  trading at all (Sharpe, Sortino or total return <= 0, profit factor <= 1, AUC <= 0.5);
* ``promoted``: it passes and there is no champion, or it beats the champion's score by at
  least ``min_improvement`` (and by more than nothing);
* ``kept_champion``: it passes but does not beat the champion (or it already is the champion).

A champion trained on data overlapping the window is still scored, and the reason says its
score is in-sample (optimistic), which only makes it harder to beat. The decision, both scores
and the window go into the challenger's tags (``promotion.*``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from models import registry
from models.features import FeaturePipeline
from models.labels import make_labels
from models.order_flow_data import OrderFlowReader, attach_recorded
from models.pyfunc import INPUT_COLUMNS, ORDER_FLOW_INPUTS, signature_problems
from models.scoring import auc_and_log_loss
from models.training import DAY_MS, load_candles
from tradeflow import timeframes
from tradeflow.backtest import backtest_strategy, backtest_strategy_portfolio
from tradeflow.errors import UserError
from tradeflow.market.store import MarketStore
from tradeflow.strategy import PromotionSettings, StrategySettings

__all__ = [
    "Candidates",
    "Decision",
    "Evaluated",
    "EvaluationWindow",
    "NoModelError",
    "Score",
    "SignatureMismatch",
    "apply_decision",
    "check_signature",
    "decide",
    "decide_evaluated",
    "evaluate_candidates",
    "find_candidates",
    "evaluation_window",
    "load_evaluation_candles",
    "load_version",
    "run_promotion",
    "score_model",
    "score_probabilities",
]

Outcome = Literal["promoted", "kept_champion", "rejected"]
# What standing aside scores on each metric: a model must beat it to be promoted at all.
NOT_TRADING: dict[str, float] = {"sharpe": 0.0, "sortino": 0.0, "total_return": 0.0,
                                 "profit_factor": 1.0, "auc": 0.5}


class NoModelError(UserError):
    """There is no registered version to promote."""


class SignatureMismatch(UserError):
    """A model's input signature is not the strategy's raw candle frame."""


@dataclass(frozen=True)
class EvaluationWindow:
    """Scored candles ``start_ms <= open_time < end_ms`` (UTC ms)."""

    start_ms: int
    end_ms: int

    def __str__(self) -> str:
        return f"{timeframes.iso(self.start_ms)} .. {timeframes.iso(self.end_ms)}"


def evaluation_window(strategy: StrategySettings, end_ms: int) -> EvaluationWindow:
    """The most recent ``promotion.evaluation_days`` before ``end_ms`` (candle boundaries)."""
    tf = strategy.timeframe
    end = timeframes.floor(end_ms, tf)
    start = timeframes.floor(end - int(strategy.promotion.evaluation_days * DAY_MS), tf)
    return EvaluationWindow(start, end)


def load_evaluation_candles(store: MarketStore, exchange: str, strategy: StrategySettings,
                            window: EvaluationWindow, warmup: int,
                            order_flow: OrderFlowReader | None = None
                            ) -> dict[str, pd.DataFrame]:
    """Validated candles of the window plus ``warmup`` candles before it, per symbol; with
    every order-flow input when the strategy has order-flow features and ``order_flow``."""
    history = max(warmup, 0) * timeframes.duration_ms(strategy.timeframe)
    candles = load_candles(store, exchange, strategy, window.start_ms - history, window.end_ms)
    if order_flow is None or not FeaturePipeline.from_strategy(strategy).inputs:
        return candles
    return attach_recorded(order_flow, exchange, strategy.timeframe, candles, ORDER_FLOW_INPUTS)


@dataclass(frozen=True)
class Score:
    """How one version did on the evaluation window."""

    version: str
    metric: str
    value: float
    metrics: dict[str, float]

    @property
    def trades(self) -> int:
        return int(self.metrics.get("trade_count", 0))

    @property
    def max_drawdown_pct(self) -> float:
        return 100.0 * float(self.metrics.get("max_drawdown", math.nan))

    def failures(self, rules: PromotionSettings) -> list[str]:
        """Thresholds this score misses (empty when it passes)."""
        out = []
        floor = NOT_TRADING[self.metric]
        if not math.isfinite(self.value):
            out.append(f"{self.metric} is {self.value}")
        elif self.value <= floor:
            out.append(f"{self.metric} {self.value:.4g} <= {floor:g} (no better than not trading)")
        if self.trades < rules.min_trades:
            out.append(f"{self.trades} trades < min_trades {rules.min_trades}")
        dd = self.max_drawdown_pct
        if not dd <= rules.max_drawdown_pct:
            out.append(f"max drawdown {dd:.2f}% > {rules.max_drawdown_pct:g}%")
        return out

    def summary(self) -> str:
        return (f"v{self.version}: {self.metric} {self.value:.4g}, {self.trades} trades, "
                f"max drawdown {self.max_drawdown_pct:.2f}%")


def score_probabilities(version: str, candles: Mapping[str, pd.DataFrame],
                        proba: Mapping[str, np.ndarray], strategy: StrategySettings,
                        window: EvaluationWindow) -> Score:
    """Backtest probabilities (aligned with ``candles``) over the window rows only."""
    frames: dict[str, pd.DataFrame] = {}
    probs: dict[str, np.ndarray] = {}
    labels, scored = [], []
    for symbol, frame in candles.items():
        t = frame["open_time"].to_numpy(dtype=np.int64)
        inside = (t >= window.start_ms) & (t < window.end_ms)
        if not inside.any():
            continue
        frames[symbol] = frame.loc[inside].reset_index(drop=True)
        probs[symbol] = np.asarray(proba[symbol], dtype=np.float64)[inside]
        labels.append(make_labels(frame, strategy.label)["label"].to_numpy()[inside])
        scored.append(probs[symbol])
    if not frames:
        raise UserError(f"no candles in the evaluation window {window}")
    if len(frames) == 1:
        (symbol, frame), = frames.items()
        result = backtest_strategy(frame, probs[symbol], strategy, symbol=symbol)
    else:
        result = backtest_strategy_portfolio(frames, probs, strategy)
    auc, loss = auc_and_log_loss(np.concatenate(labels), np.concatenate(scored))
    metrics = {**result.metrics.as_dict(), "auc": auc, "log_loss": loss}
    metric = strategy.promotion.metric
    return Score(version, metric, float(metrics[metric]), metrics)


def candle_input(candles: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """One frame of the model input contract from per-symbol candles."""
    parts = [frame.assign(symbol=symbol) for symbol, frame in candles.items()]
    out = pd.concat(parts, ignore_index=True)
    out["open_time"] = out["open_time"].astype(np.int64)
    flow = [c for c in ORDER_FLOW_INPUTS if c in out.columns]
    return out.loc[:, [*INPUT_COLUMNS, *flow]]


def score_model(model: Any, version: str, candles: Mapping[str, pd.DataFrame],
                strategy: StrategySettings, window: EvaluationWindow) -> Score:
    """Score a loaded pyfunc model: its ``predict`` on the raw candles, then the backtest."""
    frame = candle_input(candles)
    out = model.predict(frame)
    proba = np.asarray(out["probability"], dtype=np.float64)
    per_symbol: dict[str, np.ndarray] = {}
    start = 0
    for symbol, part in candles.items():
        per_symbol[symbol] = proba[start:start + len(part)]
        start += len(part)
    return score_probabilities(version, candles, per_symbol, strategy, window)


def check_signature(name: str, version: str) -> None:
    """Raise :class:`SignatureMismatch` unless the version takes the raw candle frame."""
    problems = signature_problems(registry.model_signature(name, version))
    if problems:
        raise SignatureMismatch(
            f"{name} v{version} does not take the strategy's candles: {'; '.join(problems)} "
            f"(expected {', '.join(INPUT_COLUMNS)})"
        )


def _overlap(info: registry.VersionInfo, window: EvaluationWindow) -> int | None:
    """The version's train end when its training reaches into the window, else None."""
    raw = info.tags.get("train_end_ms")
    if raw is None or not raw.isdigit():
        return None
    end = int(raw)
    return end if end > window.start_ms else None


@dataclass(frozen=True)
class Decision:
    """The outcome of one promotion, with everything needed to explain it."""

    model_name: str
    decision: Outcome
    reason: str
    challenger: registry.VersionInfo
    champion: registry.VersionInfo | None
    challenger_score: Score | None
    champion_score: Score | None
    window: EvaluationWindow
    metric: str
    notes: tuple[str, ...] = field(default=())

    @property
    def promoted(self) -> bool:
        return self.decision == "promoted"

    @property
    def recorded(self) -> bool:
        """False when the challenger already is the champion: its own decision tags stay."""
        return self.champion is None or self.champion.version != self.challenger.version

    def tags(self) -> dict[str, str]:
        """``promotion.*`` tags written on the challenger version."""
        def fmt(score: Score | None) -> str:
            return "n/a" if score is None else f"{score.value:.6g}"

        return {
            "promotion.decision": self.decision,
            "promotion.reason": self.reason,
            "promotion.metric": self.metric,
            "promotion.challenger_score": fmt(self.challenger_score),
            "promotion.champion_score": fmt(self.champion_score),
            "promotion.champion_version": self.champion.version if self.champion else "none",
            "promotion.window": str(self.window),
            "promotion.window_ms": f"{self.window.start_ms}-{self.window.end_ms}",
        }

    def text(self) -> str:
        """What the CLI prints."""
        champ = f"v{self.champion.version}" if self.champion else "none"
        lines = [f"{self.model_name}: {self.decision.upper()} "
                 f"(challenger v{self.challenger.version}, champion {champ})",
                 f"window:     {self.window} ({self.metric}, after fees)"]
        for label, score in (("challenger", self.challenger_score),
                             ("champion", self.champion_score)):
            lines.append(f"{label + ':':<11} {score.summary() if score else 'n/a'}")
        lines.append(f"reason:     {self.reason}")
        return "\n".join(lines)

    def markdown(self) -> str:
        """The Prefect artifact: decision, reason and both scores."""
        rows = ["| | version | " + self.metric + " | trades | max drawdown | total return | auc |",
                "|---|---|---|---|---|---|---|"]
        for label, info, score in (("challenger", self.challenger, self.challenger_score),
                                   ("champion", self.champion, self.champion_score)):
            if info is None:
                rows.append(f"| {label} | none | | | | | |")
                continue
            if score is None:
                rows.append(f"| {label} | v{info.version} | n/a | | | | |")
                continue
            m = score.metrics
            rows.append(f"| {label} | v{info.version} | {score.value:.4g} | {score.trades} | "
                        f"{score.max_drawdown_pct:.2f}% | {100 * m['total_return']:.2f}% | "
                        f"{m['auc']:.3f} |")
        return (f"## {self.model_name}: **{self.decision}**\n\n{self.reason}\n\n"
                f"Evaluation window {self.window} (UTC), after fees and slippage.\n\n"
                + "\n".join(rows) + "\n")


def decide(model_name: str, rules: PromotionSettings, window: EvaluationWindow,
           challenger: registry.VersionInfo, challenger_score: Score,
           champion: registry.VersionInfo | None, champion_score: Score | None,
           champion_error: str | None = None) -> Decision:
    """Apply the promotion rules (module docstring) to two scores; no I/O."""
    notes: list[str] = []

    def done(outcome: Outcome, reason: str) -> Decision:
        full = "; ".join([reason, *notes])
        return Decision(model_name, outcome, full, challenger, champion, challenger_score,
                        champion_score, window, rules.metric, tuple(notes))

    same = champion is not None and champion.version == challenger.version
    if champion is not None and not same:
        end = _overlap(champion, window)
        if end is not None:
            notes.append(f"note: champion v{champion.version} was trained on data up to "
                         f"{timeframes.iso(end)}, overlapping the evaluation window {window}, "
                         "so its score is in-sample (optimistic)")
    end = _overlap(challenger, window)
    if same:
        if end is not None:
            notes.append(f"note: v{challenger.version} was trained on data up to "
                         f"{timeframes.iso(end)}, overlapping the evaluation window {window}, "
                         "so this score is in-sample (optimistic)")
        return done("kept_champion",
                    f"v{challenger.version} already holds the champion alias")
    if end is not None:
        return done("rejected", f"challenger v{challenger.version} was trained on data up to "
                                f"{timeframes.iso(end)}, inside the evaluation window {window}; "
                                "its score would be in-sample")
    failures = challenger_score.failures(rules)
    if failures:
        return done("rejected", f"challenger v{challenger.version} fails the thresholds: "
                                + ", ".join(failures))
    metric = rules.metric
    if champion is None:
        return done("promoted", f"first model: v{challenger.version} passes the thresholds "
                                f"({metric} {challenger_score.value:.4g}, "
                                f"{challenger_score.trades} trades)")
    if champion_score is None or not math.isfinite(champion_score.value):
        why = champion_error or "its score is not finite"
        return done("promoted", f"champion v{champion.version} could not be scored ({why}); "
                                f"challenger v{challenger.version} passes the thresholds")
    gain = challenger_score.value - champion_score.value
    if gain > 0 and gain >= rules.min_improvement:
        return done("promoted", f"challenger {metric} {challenger_score.value:.4g} beats champion "
                                f"v{champion.version} {champion_score.value:.4g} by {gain:.4g} "
                                f"(min_improvement {rules.min_improvement:g})")
    return done("kept_champion",
                f"challenger {metric} {challenger_score.value:.4g} does not beat champion "
                f"v{champion.version} {champion_score.value:.4g} by more than "
                f"max(0, min_improvement {rules.min_improvement:g})")


def apply_decision(decision: Decision) -> None:
    """Write the decision into the challenger's tags; move the alias when promoted.

    Nothing is written when the challenger already is the champion: the tags keep the
    decision that made it champion.
    """
    name = decision.model_name
    if not decision.recorded:
        return
    registry.tag_version(name, decision.challenger.version, decision.tags())
    if decision.promoted:
        if decision.champion is not None:
            registry.tag_version(name, decision.champion.version,
                                 {"promotion.superseded_by": decision.challenger.version})
        registry.set_champion(name, decision.challenger.version)


# -- the steps the flow and the CLI wire ---------------------------------------------------
@dataclass(frozen=True)
class Candidates:
    """The newest version (challenger) and the champion (None before the first promotion)."""

    model_name: str
    challenger: registry.VersionInfo
    champion: registry.VersionInfo | None


def find_candidates(model_name: str) -> Candidates:
    """Challenger and champion from the registry; :class:`NoModelError` when there is none."""
    versions = registry.list_versions(model_name)
    if not versions:
        raise NoModelError(f"no registered version of {model_name}; train one first "
                           "(`tradeflow train --strategy ...`)")
    champ = next((v for v in versions if v.is_champion), None)
    return Candidates(model_name, versions[0], champ)


def load_version(model_name: str, info: registry.VersionInfo) -> tuple[Any, int]:
    """A version's pyfunc and its warm-up (0 when the model does not say), signature checked."""
    check_signature(model_name, info.version)
    model = registry.load_model(model_name, info.version)
    try:
        warmup = int(getattr(model.unwrap_python_model(), "warmup", 0))
    except Exception:  # not a python-function model: its flavour has no python model
        warmup = 0
    return model, warmup


def reject_mismatch(model_name: str, info: registry.VersionInfo, window: EvaluationWindow,
                    metric: str, error: SignatureMismatch) -> Decision:
    """Record a signature rejection on the version (the caller then raises ``error``)."""
    decision = Decision(model_name, "rejected", str(error), info, None, None, None, window,
                        metric)
    registry.tag_version(model_name, info.version, decision.tags())
    return decision


@dataclass(frozen=True)
class Evaluated:
    """Scores of the candidates on one window (``champion_error`` when it could not be scored)."""

    candidates: Candidates
    window: EvaluationWindow
    challenger_score: Score
    champion_score: Score | None
    champion_error: str | None = None


def evaluate_candidates(store: MarketStore, exchange: str, strategy: StrategySettings,
                        found: Candidates, end_ms: int,
                        order_flow: OrderFlowReader | None = None) -> Evaluated:
    """Load both versions and score them on the same candles of the evaluation window.

    A challenger whose signature does not fit is tagged ``rejected`` and
    :class:`SignatureMismatch` is raised; a champion that does not fit is reported in
    ``champion_error`` (the challenger may then replace it).
    """
    window = evaluation_window(strategy, end_ms)
    try:
        challenger, warm_c = load_version(found.model_name, found.challenger)
    except SignatureMismatch as exc:
        reject_mismatch(found.model_name, found.challenger, window, strategy.promotion.metric,
                        exc)
        raise
    champion_model, warm_k, error = None, 0, None
    same = found.champion is not None and found.champion.version == found.challenger.version
    if found.champion is not None and not same:
        try:
            champion_model, warm_k = load_version(found.model_name, found.champion)
        except SignatureMismatch as exc:
            error = str(exc)
    candles = load_evaluation_candles(store, exchange, strategy, window, max(warm_c, warm_k),
                                      order_flow)
    c_score = score_model(challenger, found.challenger.version, candles, strategy, window)
    k_score = c_score if same else None
    if champion_model is not None and found.champion is not None:
        k_score = score_model(champion_model, found.champion.version, candles, strategy, window)
    return Evaluated(found, window, c_score, k_score, error)


def decide_evaluated(evaluated: Evaluated, rules: PromotionSettings) -> Decision:
    """:func:`decide` on the result of :func:`evaluate_candidates`."""
    found = evaluated.candidates
    return decide(found.model_name, rules, evaluated.window, found.challenger,
                  evaluated.challenger_score, found.champion, evaluated.champion_score,
                  evaluated.champion_error)


def run_promotion(store: MarketStore, exchange: str, strategy: StrategySettings,
                  end_ms: int, order_flow: OrderFlowReader | None = None) -> Decision:
    """Find, evaluate, decide and apply in one call (what ``tradeflow promote`` runs)."""
    found = find_candidates(strategy.model_name)
    decision = decide_evaluated(
        evaluate_candidates(store, exchange, strategy, found, end_ms, order_flow),
        strategy.promotion)
    apply_decision(decision)
    return decision
