"""A USDⓈ-M perpetual as a user backfills it from the simulator, through ccxt's linear
markets: ``tradeflow backfill --symbols BTC/USDT:USDT`` stores exactly the simulator's candles
under the perpetual's symbol, ``validate --all`` passes on them and ``train`` fits a model on
them; a spot-only profile refuses the symbol in one line naming what to add."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.fixtures.simulator import START_MS, SimFactory
from tests.integration.models.test_training_support import write_strategy
from tradeflow.market.store import MarketStore, SeriesKey

REPO = Path(__file__).resolve().parents[3]
MIN = 60_000
PERP = SeriesKey("binance", "BTC/USDT:USDT", "1m")


def write_profile(root: Path, base_url: str, market_types: list[str]) -> Path:
    """A profile of the perpetual; the command line names it too, as a user would."""
    profile = root / f"profile-{'-'.join(market_types)}.yaml"
    profile.write_text(yaml.safe_dump({
        "data_dir": str(root / "state"), "symbols": [PERP.symbol], "timeframes": ["1m"],
        "exchange": {"base_url": base_url, "market_types": market_types},
        "store": {"path": str(root / "market.duckdb")},
        "mlflow": {"tracking_uri": f"sqlite:///{root / 'mlflow.db'}",
                   "artifact_root": (root / "artifacts").resolve().as_uri()}}))
    return profile


def cli(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADEFLOW_", "MLFLOW_"))}
    return subprocess.run([sys.executable, "-m", "cli.main", "--config", str(profile), *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_a_perpetual_backfills_validates_and_trains(sim_factory: SimFactory,
                                                    tmp_path: Path) -> None:
    sim = sim_factory(history_days=1.5, signal_strength=1.0, speed=1e-9)  # a clock at rest
    spot_only = write_profile(tmp_path, sim.base_url, ["spot"])
    refused = cli(spot_only, "backfill", "--symbols", PERP.symbol, "--timeframes", "1m",
                  "--days", "1", "--no-progress")
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.strip().splitlines() == [
        "config error: exchange.market_types = ['spot']: BTC/USDT:USDT is a USDT-margined "
        "(linear) perpetual or future; add linear to exchange.market_types "
        "(e.g. [spot, linear])"]
    assert sim.venue.stats["requests"] == 0  # refused before the exchange was asked

    profile = write_profile(tmp_path, sim.base_url, ["spot", "linear"])
    done = cli(profile, "backfill", "--symbols", PERP.symbol, "--timeframes", "1m",
               "--days", "1", "--no-progress")
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"BTC/USDT:USDT 1m\s+ok .* 1440\s+0\s+0\s+0", done.stdout), done.stdout
    # exactly the simulator's closed candles of the last day, under the perpetual's symbol
    expected = sim.venue.klines("BTC/USDT", "1m", START_MS - 1440 * MIN, START_MS - 1,
                                limit=1440)
    with MarketStore(tmp_path / "market.duckdb", read_only=True) as store:
        stored = store.read(PERP)
        assert store.bounds(SeriesKey("binance", "BTC/USDT", "1m")) is None
    assert stored["open_time"].tolist() == expected.open_time.tolist()
    ohlcv = expected.ohlcv()
    np.testing.assert_array_equal(stored[["open", "high", "low", "close", "volume"]].to_numpy(),
                                  ohlcv[:, 1:])
    np.testing.assert_array_equal(stored["trades"].to_numpy(), expected.trades)

    validated = cli(profile, "validate", "--all")
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert "validation passed: judged 1440 candles" in validated.stdout, validated.stdout

    strategy = write_strategy(
        tmp_path, "perpetual", symbols=[PERP.symbol],
        model={"kind": "logistic"},
        training={"window_days": 0.9, "folds": 2, "pooled": True},
        promotion={"metric": "sharpe", "min_trades": 1, "max_drawdown_pct": 25,
                   "evaluation_days": 0.1})
    trained = cli(profile, "train", "--strategy", str(strategy), "--end", str(START_MS))
    assert trained.returncode == 0, trained.stdout + trained.stderr
    assert "never validated" not in trained.stdout
    samples = re.search(r"([\d,]+) labelled samples", trained.stdout)
    assert samples and int(samples.group(1).replace(",", "")) > 500, trained.stdout
    assert "registered: tradeflow-perpetual version 1" in trained.stdout

    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run_id = re.search(r"MLflow run: (\w+)", trained.stdout).group(1)
    params = mlflow.MlflowClient().get_run(run_id).data.params
    assert any(PERP.symbol in value for value in params.values())  # trained on the perpetual
