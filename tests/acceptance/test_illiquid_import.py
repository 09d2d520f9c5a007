"""An illiquid perpetual from the simulator, end to end as a user runs it: Binance Vision
daily dumps written from the simulated market (quiet hours, zero-volume forward-filled
minutes) are imported under ``futures/um`` as ``SOL/USDT:USDT``; ``tradeflow validate --all``
flags every synthetic candle and excludes it; ``tradeflow train`` leaves them all out and says
so, and its MLflow run records the policy and the count."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from models.features import FeaturePipeline
from models.training import load_training_data, train_window
from tests.fixtures.simulator import START_MS, frozen_venue
from tests.integration.models.test_training_support import write_strategy
from tradeflow.market.quarantine import excluded
from tradeflow.market.store import MarketStore, SeriesKey
from tradeflow.strategy import load_strategy

REPO = Path(__file__).resolve().parents[2]
DAYS = 12
MIN, DAY = 60_000, 86_400_000
PERP = SeriesKey("binance", "SOL/USDT:USDT", "1m")
MARKETS = {"SOL/USDT": {"liquidity": 0.02, "quiet_hours": [0, 1, 2, 3]}}


def simulated_dumps(root: Path) -> pd.DataFrame:
    """Daily Binance Vision zips of the simulator's illiquid SOL/USDT, as the futures/um
    folder of data.binance.vision lays them out; returns the candles written."""
    venue = frozen_venue(history_days=DAYS, symbols=("SOL/USDT",), markets=MARKETS)
    k = venue.klines("SOL/USDT", "1m", venue.history_start_ms, limit=10**7)
    p, q = k.price_decimals, k.qty_decimals
    rows = []
    for i in np.flatnonzero(k.closed):
        t = int(k.open_time[i])
        rows.append((t, ",".join([
            str(t), *(f"{getattr(k, c)[i] / 10**p:.{p}f}" for c in ("open", "high", "low",
                                                                    "close")),
            f"{k.volume[i] / 10**q:.{q}f}", str(t + MIN - 1), f"{k.quote[i] / 1e8:.8f}",
            str(int(k.trades[i])), f"{k.taker_base[i] / 10**q:.{q}f}",
            f"{k.taker_quote[i] / 1e8:.8f}", "0"])))
    folder = root / "data" / "futures" / "um" / "daily" / "klines" / "SOLUSDT" / "1m"
    folder.mkdir(parents=True)
    by_day: dict[int, list[str]] = {}
    for t, line in rows:
        by_day.setdefault(t // DAY, []).append(line)
    header = ("open_time,open,high,low,close,volume,close_time,quote_volume,count,"
              "taker_buy_volume,taker_buy_quote_volume,ignore")
    for day, lines in by_day.items():
        name = f"SOLUSDT-1m-{pd.Timestamp(day * DAY, unit='ms'):%Y-%m-%d}"
        with zipfile.ZipFile(folder / f"{name}.zip", "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(f"{name}.csv", "\n".join([header, *lines]) + "\n")
    closed = k.closed
    return pd.DataFrame({"open_time": k.open_time[closed],
                         **{c: getattr(k, c)[closed] / 10**p
                            for c in ("open", "high", "low", "close")},
                         "volume": k.volume[closed] / 10**q})


def cli(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADEFLOW_", "MLFLOW_"))}
    return subprocess.run([sys.executable, "-m", "cli.main", "--config", str(profile), *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_validate_flags_every_synthetic_candle_and_train_reports_them_excluded(
        tmp_path: Path) -> None:
    candles = simulated_dumps(tmp_path)
    volume = candles["volume"].to_numpy()
    fills = candles["open_time"].to_numpy()[volume == 0]  # every forward-filled minute
    assert 0.1 < fills.size / len(candles) < 0.4
    store_path = tmp_path / "market.duckdb"
    profile = tmp_path / "profile.yaml"
    profile.write_text(yaml.safe_dump({
        "data_dir": str(tmp_path / "state"), "symbols": [PERP.symbol], "timeframes": ["1m"],
        "store": {"path": str(store_path)},
        "mlflow": {"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}",
                   "artifact_root": (tmp_path / "artifacts").resolve().as_uri()}}))

    imported = cli(profile, "import", str(tmp_path / "data"))
    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert f"{DAYS} of {DAYS} files imported" in imported.stdout
    assert "SOL/USDT:USDT 1m" in imported.stdout

    validated = cli(profile, "validate", "--all")
    assert validated.returncode == 0, validated.stdout + validated.stderr
    matrix = re.search(r"synthetic_fill\s+soft\s+exclude\s+(\d+)", validated.stdout)
    assert matrix and int(matrix.group(1)) == fills.size, validated.stdout
    with MarketStore(store_path, read_only=True) as store:
        out = excluded(store, PERP)
        flagged = out.loc[out["rule"] == "synthetic_fill", "open_time"].to_numpy()
        np.testing.assert_array_equal(flagged, fills)  # every one of them, nothing else

    strategy_file = write_strategy(tmp_path, "illiquid", symbols=[PERP.symbol])
    trained = cli(profile, "train", "--strategy", str(strategy_file), "--end", str(START_MS))
    assert trained.returncode == 0, trained.stdout + trained.stderr
    strategy = load_strategy(strategy_file)
    window = train_window(strategy, START_MS, None, FeaturePipeline.from_strategy(strategy).warmup)
    in_window = int(((fills >= window.load_from_ms) & (fills < window.end_ms)).sum())
    assert f"synthetic_fill {in_window:,} (exclude)" in trained.stdout, trained.stdout
    assert "never validated" not in trained.stdout
    with MarketStore(store_path, read_only=True) as store:
        data = load_training_data(store, PERP.exchange, strategy, START_MS)
    assert not np.isin(data.candles[PERP.symbol]["open_time"], fills).any()
    assert data.set_aside.counts["exclude"]["synthetic_fill"] == in_window

    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run_id = re.search(r"MLflow run: (\w+)", trained.stdout).group(1)
    run = mlflow.MlflowClient().get_run(run_id)
    assert run.data.params["settings.validation.policies.synthetic_fill"] == "exclude"
    assert run.data.metrics["data.excluded.synthetic_fill"] == in_window
    assert run.data.metrics["data.unvalidated"] == 0
