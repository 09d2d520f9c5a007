"""The ``validate`` flow against a real local Prefect server: completes within the quarantine
budget, ends Failed above it, publishes its report as a markdown artifact and moves the
watermark, so the next run judges only newer candles."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.fixtures.prefect import PrefectServer
from tradeflow.market.store import MarketStore

MIN = 60_000
T0 = 1_704_067_200_000
N = 1440
NOW = T0 + N * MIN + 1_000


def candles(bad: int) -> pd.DataFrame:
    """A day of 1m candles of which the first ``bad`` have their high below the close."""
    rng = np.random.default_rng(21)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, N)))
    open_ = np.concatenate(([100.0], close[:-1]))
    high = np.maximum(open_, close) * 1.0005
    high[:bad] = close[:bad] * 0.99
    return pd.DataFrame({
        "open_time": T0 + np.arange(N, dtype=np.int64) * MIN, "open": open_, "high": high,
        "low": np.minimum(open_, close) * 0.9995, "close": close,
        "volume": rng.gamma(4.0, 2.0, N),
    })


@pytest.fixture(autouse=True)
def send_logs_while_the_server_is_up() -> Iterator[None]:
    """Flush the flow's API logs before the session's server stops; otherwise the log
    worker retries against a dead server for a minute at interpreter exit."""
    yield
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()


@pytest.fixture
def profile(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    store = MarketStore(data / "market.duckdb")
    store.upsert(candles(bad=3), exchange="binance", symbol="BTC/USDT", timeframe="1m")
    store.upsert(candles(bad=0), exchange="binance", symbol="ETH/USDT", timeframe="1m")
    path = tmp_path / "profile.yaml"
    path.write_text(f"data_dir: {data}\nstore: {{path: {data / 'market.duckdb'}}}\n"
                    "validation: {max_hard_failure_share: 0.002}\n")
    return path


def run(profile: Path, symbols: list[str]):  # noqa: ANN201 - a Prefect State
    from flows.validate import validate

    return validate(symbols=symbols, timeframes=["1m"], config=str(profile), now_ms=NOW,
                    return_state=True)


def test_flow_completes_within_the_share_and_publishes_the_report(
    prefect_server: PrefectServer, profile: Path
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
    )

    # 3 bad candles of 2880 = 0.10%: within 0.2%.
    state = run(profile, ["BTC/USDT", "ETH/USDT"])
    assert state.is_completed(), state
    summary = state.result()
    assert summary["passed"] and summary["hard_failed"] == 3 and summary["candles"] == 2 * N
    # The store quarantined the three as they were written; the run found no new entry.
    assert summary["quarantine_candles"] == 3 and summary["quarantined"] == 0
    assert Path(summary["docs_index"]).is_file()
    with get_client(sync_client=True) as client:
        # This run's artifact: other tests in the session publish under the same key.
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=["candle-validation"]),
            flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])))
    markdown = artifacts[0].data
    assert "**passed**" in markdown and "| high_ge_body | hard | quarantine | 3 | 0 |" in markdown
    assert "file://" in markdown and "index.html" in markdown
    again = run(profile, ["BTC/USDT", "ETH/USDT"]).result()
    assert again["candles"] == 0 and again["passed"]


def test_flow_fails_above_the_share(prefect_server: PrefectServer, profile: Path) -> None:
    # BTC alone: 3 of 1440 = 0.21% > 0.2%.
    state = run(profile, ["BTC/USDT"])
    assert state.is_failed(), state
    with pytest.raises(Exception, match="validation FAILED: judged 1440 candles .* 3 "
                                        r"quarantined \(0.208%, limit 0.200%\)"):
        state.result()
