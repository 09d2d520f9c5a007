"""The backfill flow as a Prefect flow run: per-series tasks, coverage artifact, failure state."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client

from flows.backfill import BackfillFailed, backfill
from tests.fixtures.prefect import PrefectServer
from tests.fixtures.simulator import SimFactory
from tradeflow.market.store import MarketStore, SeriesKey


def profile(tmp_path: Path, base_url: str, symbols: str) -> Path:
    path = tmp_path / "profile.yaml"
    path.write_text(
        f"data_dir: {tmp_path}\nsymbols: [{symbols}]\ntimeframes: [1m, 1h]\n"
        f"exchange:\n  base_url: {base_url}\n  retry_base_delay_s: 0.05\n"
    )
    return path


async def artifact_markdown(key: str) -> str:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    async with get_client() as client:
        found = await client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    return "\n".join(str(a.data) for a in found)


def test_backfill_flow_stores_series_and_publishes_coverage(
    prefect_server: PrefectServer, sim_factory: SimFactory, tmp_path: Path
) -> None:
    sim = sim_factory(history_days=1.0)
    config = profile(tmp_path, sim.base_url, "BTC/USDT, ETH/USDT")
    result = asyncio.run(backfill(days=0.5, config=str(config)))
    assert len(result) == 4 and all(r["missing"] == 0 for r in result)
    store = MarketStore(tmp_path / "market.duckdb")
    assert store.bounds(SeriesKey("binance", "ETH/USDT", "1m"))[2] >= 700
    markdown = asyncio.run(artifact_markdown("backfill-coverage"))
    assert "| BTC/USDT 1m | ok |" in markdown and "4 of 4 series complete" in markdown


def test_backfill_flow_fails_naming_the_failed_series(
    prefect_server: PrefectServer, sim_factory: SimFactory, tmp_path: Path
) -> None:
    sim = sim_factory(history_days=1.0)
    config = profile(tmp_path, sim.base_url, "BTC/USDT, NOPE/USDT")
    with pytest.raises(BackfillFailed, match="2 of 4 series failed: NOPE/USDT 1m"):
        asyncio.run(backfill(days=0.2, config=str(config)))
    store = MarketStore(tmp_path / "market.duckdb")
    assert store.bounds(SeriesKey("binance", "BTC/USDT", "1m")) is not None
