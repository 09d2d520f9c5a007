"""`tradeflow backtest` on a store of simulated candles: baselines, a registered champion, errors.

The store holds three days of the simulator's 1m market for the example strategy's symbols,
with one BTC/USDT candle quarantined; MLflow tracks to a temp sqlite file. Each command runs
in a subprocess, as a user would run it; they run at the same time, since each start-up
(imports of pandas, numba, MLflow) costs seconds.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from models import registry
from models.estimators import LogisticEstimator
from models.features import FeaturePipeline
from models.labels import make_labels
from models.pyfunc import POOLED, CandleModel
from models.research import ModelChoice, parse_model_choice, resolve_model
from tests.integration.models.test_training_support import EXCHANGE, market_candles
from tradeflow.backtest import backtest_strategy_portfolio
from tradeflow.backtest.report import format_metrics
from tradeflow.config import Settings, load_settings
from tradeflow.errors import UsageError, UserError
from tradeflow.market.quarantine import add_quarantine
from tradeflow.market.store import MarketStore, SeriesKey
from tradeflow.strategy import StrategySettings, load_strategy

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "config" / "strategies" / "momentum_xgb.yaml"
DAYS = 3.0
QUARANTINED = 1_767_096_000_000  # 2025-12-30 12:00 UTC, inside the backtest window


@dataclass(frozen=True)
class Market:
    root: Path
    profile: Path
    settings: Settings
    strategy: StrategySettings
    candles: dict[str, pd.DataFrame]  # what the store holds, quarantined candle included


def build_market(root: Path) -> Market:
    """Store, profile and MLflow tracking under ``root``; one BTC/USDT candle quarantined."""
    strategy = load_strategy(EXAMPLE)
    candles = market_candles(1.0, strategy.symbols, DAYS)
    store = MarketStore(root / "market.duckdb")
    for symbol, frame in candles.items():
        store.upsert(frame, exchange=EXCHANGE, symbol=symbol, timeframe="1m")
    bad = candles["BTC/USDT"].query("open_time == @QUARANTINED").assign(rule="high_low")
    assert len(bad) == 1
    add_quarantine(store, SeriesKey(EXCHANGE, "BTC/USDT", "1m"), bad, source="test")
    profile = root / "profile.yaml"
    profile.write_text(yaml.safe_dump({
        "data_dir": str(root / "data"),
        "store": {"path": str(root / "market.duckdb")},
        "mlflow": {"tracking_uri": f"sqlite:///{root / 'mlflow.db'}",
                   "artifact_root": (root / "artifacts").resolve().as_uri()},
    }))
    return Market(root, profile, load_settings(profile, env={}), strategy, candles)


def run_cli(market: Market, *args: str) -> subprocess.CompletedProcess[str]:
    """``tradeflow --config <profile> ARGS`` in a subprocess from the repository root."""
    return run_cli_all(market, {"one": list(args)})["one"]


def run_cli_all(market: Market, commands: dict[str, list[str]]
                ) -> dict[str, subprocess.CompletedProcess[str]]:
    """Several independent commands at the same time (each start-up costs seconds)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADEFLOW_", "MLFLOW_"))}
    procs = {
        name: (args, subprocess.Popen(
            [sys.executable, "-m", "cli.main", "--config", str(market.profile), *args],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        for name, args in commands.items()
    }
    done = {}
    for name, (args, proc) in procs.items():
        out, err = proc.communicate(timeout=120)
        done[name] = subprocess.CompletedProcess(args, proc.returncode, out, err)
    return done


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Market]:
    market = build_market(tmp_path_factory.mktemp("backtest"))
    registry.configure_tracking(market.settings)
    yield market


def clean(market: Market) -> dict[str, pd.DataFrame]:
    """The stored candles without the quarantined one."""
    out = dict(market.candles)
    btc = out["BTC/USDT"]
    out["BTC/USDT"] = btc[btc["open_time"] != QUARANTINED].reset_index(drop=True)
    return out


def register_logistic(market: Market) -> CandleModel:
    """Fit a logistic CandleModel on the first two days; register it as champion v1 of the
    example strategy's model, and as v1 without a champion of the ``nochamp`` strategy's."""
    import mlflow

    strategy = market.strategy
    pipeline = FeaturePipeline.from_strategy(strategy)
    xs, ys = [], []
    for frame in clean(market).values():
        head = frame.iloc[: 2 * 1440]
        feats = pipeline.compute(head)
        label = make_labels(head, strategy.label)["label"].to_numpy()
        keep = np.isfinite(feats.to_numpy()).all(axis=1) & np.isfinite(label)
        xs.append(feats[keep])
        ys.append(label[keep])
    estimator = LogisticEstimator(pipeline.columns).fit(pd.concat(xs), np.concatenate(ys))
    model = CandleModel(pipeline, {POOLED: estimator}, {"model_kind": "logistic"})
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(name="model", python_model=model,
                                       pip_requirements=["mlflow"])
    for name in (strategy.model_name, "tradeflow-nochamp"):
        registry.register_version(name, info.model_uri, {"strategy": strategy.name})
    registry.set_champion(strategy.model_name, "1")
    return model


@pytest.fixture(scope="module")
def registered(market: Market) -> CandleModel:
    return register_logistic(market)


def printed_paths(stdout: str) -> list[Path]:
    return [Path(p) for p in re.findall(r"^(?:report|chart):\s+(\S+)$", stdout, re.M)]


@pytest.fixture(scope="module")
def runs(market: Market, registered: CandleModel) -> dict[str, subprocess.CompletedProcess[str]]:
    """Every backtest command of this module, run at the same time."""
    nochamp = market.root / "nochamp.yaml"
    nochamp.write_text(yaml.safe_dump({**yaml.safe_load(EXAMPLE.read_text()), "name": "nochamp"}))
    example = ["backtest", "--strategy", str(EXAMPLE)]
    return run_cli_all(market, {
        "momentum": [*example, "--model", "momentum", "--timerange", "20251230-20260101"],
        "no_candles": [*example, "--model", "flat", "--timerange", "20240101-20240301"],
        "no_champion": ["backtest", "--strategy", str(nochamp)],
        "champion": example,
    })


def test_momentum_baseline_backtest_prints_metrics_and_writes_report(
        market: Market, runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    proc = runs["momentum"]
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    print(out)
    assert "1m candles 2025-12-30 00:00 .. 2025-12-31 23:59 UTC" in out
    # Quarantined candles are left out; the day before the window warms the features up.
    assert ("symbols: BTC/USDT (2,879 candles), ETH/USDT (2,880 candles), "
            "SOL/USDT (2,880 candles)") in out
    assert "warm-up" not in out
    assert "model: baseline momentum (return over 10 candles)" in out
    trades = re.search(r"^Closed trades\s+\|\s+(\d+)$", out, re.M)
    assert trades and int(trades.group(1)) > 10
    paths = printed_paths(out)
    assert [p.name for p in paths] == ["report.html", "equity.png"]
    folder = paths[0].parent
    assert folder.parent == market.root / "data" / "reports"
    assert re.fullmatch(r"momentum_xgb-momentum-\d{8}T\d{6}Z", folder.name)
    assert paths[1].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = paths[0].read_text()
    assert "<h2>Trades</h2>" in page and "BTC/USDT" in page


def test_no_candles_in_the_range_is_one_line_with_the_backfill_command(
        runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    line = one_line_error(runs["no_candles"])
    assert "no 1m candles stored for BTC/USDT, ETH/USDT, SOL/USDT" in line
    assert ("tradeflow backfill --symbols BTC/USDT ETH/USDT SOL/USDT --timeframes 1m "
            "--timerange 20240101-20240301") in line


def test_a_registered_model_without_champion_is_one_line(
        runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    line = one_line_error(runs["no_champion"])
    assert "tradeflow-nochamp has no champion (registered versions: 1)" in line
    assert "--model momentum" in line


def test_the_champion_backtest_matches_its_probabilities_backtested_here(
        market: Market, registered: CandleModel,
        runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    proc = runs["champion"]
    assert proc.returncode == 0, proc.stderr
    print(proc.stdout)
    assert "model: tradeflow-momentum_xgb v1 (champion, logistic)" in proc.stdout
    assert "1m candles 2025-12-29 00:00 .. 2025-12-31 23:59 UTC" in proc.stdout
    assert "warm-up (no probability, no trade): BTC/USDT 1,439 candles" in proc.stdout
    # The same numbers as the model's probabilities over the clean candles, backtested here.
    candles = clean(market)
    proba = {s: registered.probabilities(f, s) for s, f in candles.items()}
    expected = backtest_strategy_portfolio(candles, proba, market.strategy)
    assert expected.metrics.trade_count > 0
    assert format_metrics(expected.metrics) in proc.stdout
    assert printed_paths(proc.stdout)[0].parent.name.startswith("momentum_xgb-champion-v1-")


def test_unknown_version_missing_model_and_other_timeframe_are_refused(
        market: Market, registered: CandleModel) -> None:
    strategy, settings = market.strategy, market.settings
    assert parse_model_choice("V7") == ModelChoice("version", "7")
    with pytest.raises(UsageError, match="allowed: champion, a version number, momentum, flat"):
        parse_model_choice("latest")
    with pytest.raises(UserError, match=r"^unknown version 7 of tradeflow-momentum_xgb; "
                                        r"registered versions: 1$"):
        resolve_model(ModelChoice("version", "7"), strategy, settings)
    other = strategy.model_copy(update={"name": "nothing_here"})
    with pytest.raises(UserError, match=r"no registered model tradeflow-nothing_here .*: train "
                                        r"and promote one first .* or use --model momentum$"):
        resolve_model(ModelChoice("champion"), other, settings)
    slower = strategy.model_copy(update={"timeframe": "5m"})
    with pytest.raises(UserError, match=r"v1 was trained on 1m candles; the strategy "
                                        r"momentum_xgb uses 5m$"):
        resolve_model(ModelChoice("version", "1"), slower, settings)


def test_a_technical_strategy_backtests_with_no_model_registered(tmp_path: Path) -> None:
    market = build_market(tmp_path)  # a fresh store; nothing trained or registered
    rsi = REPO / "config" / "strategies" / "rsi_meanrev.yaml"
    proc = run_cli(market, "backtest", "--strategy", str(rsi))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "signals: unanimous of rsi, trend_15m" in out, out
    trades = re.search(r"^Closed trades\s+\|\s+(\d+)$", out, re.M)
    assert trades and int(trades.group(1)) > 0, out
    assert re.search(r"^trades: \d+", out, re.M), out
    assert not (tmp_path / "mlflow.db").exists()  # the registry was never opened
