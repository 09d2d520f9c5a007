"""Strategy profiles: ``config/strategies/NAME.yaml`` loaded into frozen, strict models.

A strategy names what a model sees (features), what it learns (label), how it is trained,
how its output becomes a target position (signal, sizing), how positions are closed (exits),
what trading costs (costs), what the trader may never exceed (risk) and when a new model may
replace the champion (promotion). The backtester, the training flow and the trader all read
the same object, so research and live cannot disagree on any of it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from tradeflow.config_files import ConfigError, Frozen, config_error, display_path, read_yaml
from tradeflow.execution_settings import ExecutionSettings
from tradeflow.symbols import Symbols

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class FeatureSpec(Frozen):
    """One feature family by name with its parameters, e.g. ``{name: rsi, period: 14}``."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _flatten(cls, data: Any) -> Any:
        # YAML writes features flat: {name: rsi, period: 14}; keep the params apart.
        if isinstance(data, dict) and "params" not in data:
            rest = {k: v for k, v in data.items() if k != "name"}
            return {"name": data.get("name"), "params": rest}
        return data


class LabelSettings(Frozen):
    """What the model learns to predict."""

    kind: Literal["forward_return", "triple_barrier"] = "forward_return"
    horizon: int = Field(15, ge=1, description="candles ahead (time limit for triple barrier)")
    threshold_bps: float = Field(
        25.0, ge=0, description="forward return must beat this (covers round-trip fees)"
    )
    take_profit_pct: float = Field(0.6, gt=0, description="triple barrier: upper barrier")
    stop_loss_pct: float = Field(0.6, gt=0, description="triple barrier: lower barrier")


class ModelSettings(Frozen):
    """The model family and its parameters (checked against the estimator when a job opens)."""

    kind: Literal["xgboost", "random_forest", "logistic", "flat", "momentum"] = "xgboost"
    params: dict[str, Any] = Field(
        default_factory=dict, description="arguments of the family's estimator over its defaults")


class TrainingSettings(Frozen):
    window_days: float = Field(30.0, gt=0, description="rolling training window")
    pooled: bool = Field(True, description="one model over all symbols (else one per symbol)")
    folds: int = Field(5, ge=2, description="walk-forward folds")
    embargo: int | None = Field(
        None, ge=0, description="candles dropped after each test fold (default: label horizon)"
    )
    baselines: tuple[Literal["logistic", "flat", "momentum"], ...] = ("logistic", "flat",
                                                                         "momentum")


class SignalSettings(Frozen):
    """How a predicted probability becomes a target position."""

    enter_above: float = Field(0.55, ge=0, le=1, description="go long when p(up) >= this")
    exit_below: float = Field(0.50, ge=0, le=1, description="go flat when p(up) < this")
    allow_short: bool = False

    @model_validator(mode="after")
    def _hysteresis(self) -> SignalSettings:
        if self.exit_below > self.enter_above:
            raise ValueError("exit_below must be <= enter_above")
        return self


class SizingSettings(Frozen):
    kind: Literal["fixed_fraction", "volatility_target"] = "fixed_fraction"
    fraction: float = Field(0.25, gt=0, le=1, description="equity fraction per position")
    target_volatility: float = Field(
        0.02, gt=0, description="volatility target: daily vol of a position's value"
    )
    volatility_window: int = Field(60, ge=2, description="candles for the volatility estimate")


class TakeProfitTier(Frozen):
    pct: float = Field(gt=0, description="gain from entry that triggers this tier, in percent")
    fraction: float = Field(gt=0, le=1, description="share of the original position closed")


class ExitSettings(Frozen):
    """Exit rules shared by the backtester and the trader. Percent values, e.g. 1.5 = 1.5%."""

    stop_loss_pct: float | None = Field(None, gt=0)
    take_profit: tuple[TakeProfitTier, ...] = ()
    trailing_stop_pct: float | None = Field(None, gt=0)
    max_holding_candles: int | None = Field(None, ge=1)

    @field_validator("take_profit")
    @classmethod
    def _tiers_ok(cls, tiers: tuple[TakeProfitTier, ...]) -> tuple[TakeProfitTier, ...]:
        if [t.pct for t in tiers] != sorted(t.pct for t in tiers):
            raise ValueError("take_profit tiers must be in increasing pct order")
        if sum(t.fraction for t in tiers) > 1 + 1e-9:
            raise ValueError("take_profit fractions must sum to at most 1")
        return tiers


class SlippageSettings(Frozen):
    kind: Literal["fixed", "volatility"] = "fixed"
    bps: float = Field(2.0, ge=0, description="fixed slippage, or the floor of the vol model")
    volatility_multiplier: float = Field(
        0.1, ge=0, description="volatility model: slippage = max(bps, k * recent std of returns)"
    )
    volatility_window: int = Field(30, ge=2)


class CostSettings(Frozen):
    taker_bps: float = Field(10.0, ge=0)
    maker_bps: float = Field(2.0, ge=0)
    slippage: SlippageSettings = SlippageSettings()


class RiskSettings(Frozen):
    """Hard limits. Fractions of equity unless named otherwise."""

    max_position_fraction: float = Field(0.5, gt=0, le=1, description="per symbol")
    max_total_exposure: float = Field(1.0, gt=0, le=1, description="all symbols together")
    max_orders_per_minute: int = Field(30, ge=1)
    daily_loss_limit_pct: float = Field(5.0, gt=0, description="halt new entries for the day")
    reduce_drawdown_pct: float = Field(10.0, gt=0, description="drawdown that starts REDUCING")
    max_drawdown_pct: float = Field(20.0, gt=0, description="drawdown that HALTs (kill switch)")

    @model_validator(mode="after")
    def _ordered(self) -> RiskSettings:
        if self.reduce_drawdown_pct > self.max_drawdown_pct:
            raise ValueError("reduce_drawdown_pct must be <= max_drawdown_pct")
        return self


class PromotionSettings(Frozen):
    metric: Literal["sharpe", "sortino", "total_return", "profit_factor", "auc"] = "sharpe"
    min_trades: int = Field(10, ge=0)
    max_drawdown_pct: float = Field(25.0, gt=0)
    min_improvement: float = Field(0.0, ge=0, description="challenger must beat by this much")
    evaluation_days: float = Field(3.0, gt=0, description="most recent out-of-sample window")


class SourceSpec(Frozen):
    """One signal source: ``{kind: rsi, period: 14, weight: 2}``; parameters sit flat beside
    ``kind``, ``name`` and ``weight`` in YAML. ``kind`` is a built-in name or a user class
    ``package.module:ClassName``."""

    kind: str
    name: str | None = Field(None, description="label in reasons and reports (default: kind)")
    weight: float = Field(1.0, gt=0, description="weighted aggregation only")
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _flatten(cls, data: Any) -> Any:
        if isinstance(data, dict) and "params" not in data:
            own = {"kind", "name", "weight"}
            return {**{k: v for k, v in data.items() if k in own},
                    "params": {k: v for k, v in data.items() if k not in own}}
        return data

    @property
    def label(self) -> str:
        return self.name or self.kind


class AggregationSettings(Frozen):
    """How the sources' signals become one decision per candle.

    * ``vote``: non-abstaining sources vote; BUY when more than half of them say BUY (or at
      least ``min_votes`` do, when given), SELL likewise; otherwise hold.
    * ``weighted``: score = sum(weight x confidence x direction) / sum(weight) over the
      non-abstaining sources; BUY when score >= ``threshold``, SELL when <= -``threshold``.
    * ``unanimous``: BUY (SELL) only when every source says BUY (SELL); an abstention blocks.
    """

    mode: Literal["vote", "weighted", "unanimous"] = "vote"
    min_votes: int | None = Field(None, ge=1, description="vote: k of n instead of majority")
    threshold: float = Field(0.5, gt=0, le=1, description="weighted: |score| needed")


class StrategySettings(Frozen):
    """One strategy: ``config/strategies/<name>.yaml``."""

    name: str
    symbols: Symbols
    timeframe: str = "1m"
    features: tuple[FeatureSpec, ...] = ()
    sources: tuple[SourceSpec, ...] = Field((), description="signal sources (tradeflow.signals)")
    aggregation: AggregationSettings = AggregationSettings()
    label: LabelSettings = LabelSettings()
    model: ModelSettings = ModelSettings()
    training: TrainingSettings = TrainingSettings()
    signal: SignalSettings = SignalSettings()
    sizing: SizingSettings = SizingSettings()
    exits: ExitSettings = ExitSettings()
    costs: CostSettings = CostSettings()
    risk: RiskSettings = RiskSettings()
    promotion: PromotionSettings = PromotionSettings()
    execution: ExecutionSettings = ExecutionSettings()  # live order types, exchange stop
    starting_balance: float = Field(10_000.0, gt=0, description="quote currency, paper/backtest")

    @field_validator("name")
    @classmethod
    def _name_ok(cls, value: str) -> str:
        if not _NAME_RE.match(value):
            raise ValueError("allowed: lower-case letters, digits, '_' and '-', up to 64")
        return value

    @field_validator("symbols")
    @classmethod
    def _symbols_ok(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("at least one symbol is needed")
        return value

    @field_validator("timeframe")
    @classmethod
    def _tf_ok(cls, value: str) -> str:
        from tradeflow import timeframes

        timeframes.parse(value)
        return value

    @model_validator(mode="after")
    def _signals_ok(self) -> StrategySettings:
        if not self.features and not self.sources:
            raise ValueError("give features (a model strategy) or sources (a signal strategy)")
        if self.sources and not (0 < self.signal.exit_below <= 0.5 < self.signal.enter_above):
            # decisions reach the hysteresis as BUY = 1, SELL = 0, hold = 0.5
            raise ValueError("with sources, signal needs 0 < exit_below <= 0.5 < enter_above")
        return self

    @property
    def model_name(self) -> str:
        """Registered MLflow model name."""
        return f"tradeflow-{self.name}"

    @property
    def embargo(self) -> int:
        """Candles of embargo after each test fold: at least the label horizon."""
        return max(self.training.embargo or 0, self.label.horizon)


def load_strategy(path: str | Path) -> StrategySettings:
    """Load and validate a strategy YAML; :class:`ConfigError` with one line on any problem."""
    path = Path(path)
    if not path.exists() and not path.suffix:
        candidate = Path("config/strategies") / f"{path}.yaml"
        path = candidate if candidate.exists() else path
    data = read_yaml(path, "strategy")
    data.setdefault("name", path.stem)
    hint = " (a strategy file looks like config/strategies/meanrev_xgb.yaml)"
    if "features" not in data and "sources" not in data:
        raise ConfigError("features", ConfigError.MISSING, "required key missing" + hint,
                          display_path(path))
    try:
        return StrategySettings.model_validate(data)
    except ValidationError as exc:
        raise config_error(exc, StrategySettings, display_path(path), hint=hint) from None
