"""Bad input, a bad data directory or store, a taken port: one line, a non-zero exit, no
traceback, and nothing left behind (issue 12, items 6 and 7)."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.simulator import SimFactory

ROOT = Path(__file__).resolve().parents[3]
DOWN = "http://127.0.0.1:9"  # nothing listens: none of these may get as far as asking
BAD_FEATURE = """
name: badfeat
symbols: [BTC/USDT]
timeframe: 1m
features: [{name: returns}, {name: retrns}]
"""


def tradeflow(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("TRADEFLOW_")}
    base.update(TRADEFLOW_DATA_DIR=str(data_dir), TRADEFLOW_EXCHANGE__BASE_URL=DOWN,
                TRADEFLOW_EXCHANGE__MAX_RETRIES="0", **env)
    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=base,
                          capture_output=True, text=True, timeout=120)


def one_line(proc: subprocess.CompletedProcess[str], code: int) -> str:
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


BACKFILL = ("backfill", "--symbols", "BTC/USDT", "--timeframes", "1m", "--no-progress")


@pytest.mark.parametrize(("days", "shown"), [("nan", "nan"), ("inf", "inf"), ("1e9", "1e+09"),
                                             ("-1", "-1")])
def test_backfill_days_that_are_no_window(tmp_path: Path, days: str, shown: str) -> None:
    line = one_line(tradeflow(tmp_path / "data", *BACKFILL, "--days", days), 2)
    assert line.startswith(f"tradeflow backfill: --days {shown}: must be a number of days")
    assert not (tmp_path / "data").exists()


def test_backfill_since_in_the_future(tmp_path: Path) -> None:
    line = one_line(tradeflow(tmp_path / "data", *BACKFILL, "--since", "2099-01-01"), 2)
    assert "--since 2099-01-01: starts in the future" in line and "nothing to backfill" in line
    assert not (tmp_path / "data").exists()


def test_a_data_dir_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("not a directory")
    line = one_line(tradeflow(tmp_path / "data", *BACKFILL, "--days", "1"), 1)
    assert line == (f"tradeflow backfill: cannot create the market store's directory "
                    f"{tmp_path / 'data'}: File exists")


def test_a_store_path_that_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "store").mkdir()
    proc = tradeflow(tmp_path, *BACKFILL, "--days", "1",
                     TRADEFLOW_STORE__PATH=str(tmp_path / "store"))
    line = one_line(proc, 1)
    assert line.startswith(f"tradeflow backfill: cannot open the market store "
                           f"{tmp_path / 'store'}: ") and "Is a directory" in line


def test_a_corrupt_store(tmp_path: Path) -> None:
    (tmp_path / "market.duckdb").write_bytes(os.urandom(64_000))
    line = one_line(tradeflow(tmp_path, *BACKFILL, "--days", "1"), 1)
    assert f"cannot open the market store {tmp_path / 'market.duckdb'}" in line
    assert "not a valid DuckDB database file" in line and "move it away" in line


def test_an_unknown_feature_is_named_before_anything_is_created(tmp_path: Path) -> None:
    strategy = tmp_path / "bad.yaml"
    strategy.write_text(BAD_FEATURE)
    line = one_line(tradeflow(tmp_path / "data", "train", "--strategy", str(strategy)), 2)
    assert line.startswith("config error (") and "features[1] = 'retrns': unknown feature" in line
    assert "allowed: atr, bollinger" in line
    assert not (tmp_path / "data").exists()  # no empty market.duckdb, no mlflow.db


@pytest.mark.parametrize(("model", "expected"), [
    ("{kind: forest}", "model.kind = 'forest': Input should be 'xgboost', 'random_forest', "
                       "'logistic', 'flat' or 'momentum'"),
    ("{kind: random_forest, params: {learning_rate: 0.1}}",
     "model.params.learning_rate = 0.1: random_forest: unknown parameter 'learning_rate'; "
     "allowed: bootstrap, ccp_alpha"),
    ("{kind: xgboost, params: {tree_method: exact}}",
     "model.params.tree_method = 'exact': xgboost: model.params may not set 'tree_method'"),
])
def test_a_bad_model_family_or_parameter_is_one_line(tmp_path: Path, model: str,
                                                     expected: str) -> None:
    strategy = tmp_path / "bad.yaml"
    strategy.write_text(BAD_FEATURE.replace("{name: retrns}", "{name: rsi}")
                        + f"model: {model}\n")
    line = one_line(tradeflow(tmp_path / "data", "train", "--strategy", str(strategy)), 2)
    assert line.startswith("config error (") and expected in line, line
    assert not (tmp_path / "data").exists()


def test_a_metrics_port_out_of_range_is_refused_before_the_model_loads(tmp_path: Path) -> None:
    strategy = tmp_path / "bad.yaml"  # the port is refused before the strategy is even read
    line = one_line(tradeflow(tmp_path / "data", "trade", "--strategy", str(strategy),
                              "--metrics-port", "70000"), 2)
    assert line == "tradeflow trade: --metrics-port 70000: must be 0 (off) or a TCP port 1-65535"


def test_status_on_an_empty_data_dir_creates_nothing(tmp_path: Path) -> None:
    proc = tradeflow(tmp_path / "data", "status")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert proc.stdout.startswith("no trader has run yet (paper sqlite:///")
    assert not (tmp_path / "data").exists()


def test_an_empty_symbols_variable_is_blamed_on_the_variable(tmp_path: Path) -> None:
    line = one_line(tradeflow(tmp_path, "backfill", "--days", "1", TRADEFLOW_SYMBOLS=""), 2)
    assert line == ("config error ($TRADEFLOW_SYMBOLS): symbols = '': the variable is empty; "
                    "unset it or give a value")


def test_the_simulator_on_a_taken_port(sim_factory: SimFactory, tmp_path: Path) -> None:
    sim = sim_factory(history_days=0.1)
    port = sim.base_url.rsplit(":", 1)[1]
    line = one_line(tradeflow(tmp_path, "sim", "--port", port, "--days", "0.1"), 2)
    assert line == (f"cannot serve on 127.0.0.1:{port}: address already in use (pick another "
                    "with --port; 0 = any free port)")


def _file_size_limit() -> None:
    """In the child: files may grow to 200 kB, then writes fail as on a full device."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))


def test_a_store_that_cannot_grow_is_one_line_naming_the_file(sim_factory: SimFactory,
                                                              tmp_path: Path) -> None:
    sim = sim_factory(history_days=3)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEFLOW_")}
    env.update(TRADEFLOW_DATA_DIR=str(tmp_path), TRADEFLOW_EXCHANGE__BASE_URL=sim.base_url)
    proc = subprocess.run([sys.executable, "-m", "cli.main", *BACKFILL, "--days", "3"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
                          preexec_fn=_file_size_limit)
    line = one_line(proc, 1)
    assert line.startswith(f"tradeflow backfill: market store {tmp_path / 'market.duckdb'}: "
                           "Could not write file "), line
    assert "File too large" in line
