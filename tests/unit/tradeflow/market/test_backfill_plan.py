"""Clients that share one exchange (a Dask backfill) split its request rate between them."""

from __future__ import annotations

import asyncio

import pytest

from tradeflow.config import ExchangeSettings, load_settings
from tradeflow.config_files import ConfigError
from tradeflow.exchange.ccxt_client import ExchangeClient
from tradeflow.market.backfill import Window
from tradeflow.market.backfill_plan import plan_jobs


def limiter(settings: ExchangeSettings) -> tuple[float, float]:
    """ccxt's rateLimit (ms between requests) and its token bucket's refill rate."""
    async def build() -> tuple[float, float]:
        async with ExchangeClient(settings) as client:
            ex = client._ex
            return float(ex.rateLimit), float(ex.tokenBucket["refillRate"])
    return asyncio.run(build())


def test_a_share_of_the_rate_spaces_requests_further_apart() -> None:
    full_ms, full_refill = limiter(ExchangeSettings())
    quarter_ms, quarter_refill = limiter(ExchangeSettings(rate_limit_share=0.25))
    assert full_ms == 50.0  # binance: 20 requests/s
    assert quarter_ms == pytest.approx(4 * full_ms)
    assert quarter_refill == pytest.approx(full_refill / 4) == pytest.approx(1 / quarter_ms)


def test_dask_jobs_get_one_over_concurrency_of_the_rate_each() -> None:
    settings = load_settings(env={}, overrides={
        "symbols": ["BTC/USDT", "ETH/USDT", "SOL/USDT"], "timeframes": ["1m", "5m"],
        "backfill": {"concurrency": 4}})
    jobs = plan_jobs(settings, Window(start=0), now_ms=1)
    assert len(jobs) == 6
    assert {j.exchange.rate_limit_share for j in jobs} == {0.25}
    assert all(j.exchange.api_key is None for j in jobs)
    few = load_settings(env={}, overrides={"symbols": ["BTC/USDT"], "timeframes": ["1m"],
                                           "backfill": {"concurrency": 4}})
    assert plan_jobs(few, Window(start=0), now_ms=1)[0].exchange.rate_limit_share == 1.0


def test_a_share_outside_0_to_1_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="rate_limit_share"):
        load_settings(env={"TRADEFLOW_EXCHANGE__RATE_LIMIT_SHARE": "1.5"})
