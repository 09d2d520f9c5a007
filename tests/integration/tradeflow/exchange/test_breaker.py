"""The circuit breaker on a real client against the simulator: a venue answering 5xx is asked
N times, then not at all until the cool-down ends; one probe closes it again."""

from __future__ import annotations

import asyncio

import pytest

from tests.fixtures.simulator import SimFactory, run
from tradeflow.config import ExchangeSettings
from tradeflow.exchange.breaker import CircuitOpen, breaker_for, breaker_states
from tradeflow.exchange.ccxt_client import ExchangeClient


def test_a_failing_venue_opens_the_breaker_and_a_probe_closes_it(
        sim_factory: SimFactory) -> None:
    sim = sim_factory(speed=1e-9, faults={"error_5xx_every": 1})
    settings = ExchangeSettings(base_url=sim.base_url, breaker_failures=3,
                                breaker_cooldown_s=1.0, retry_base_delay_s=0.01, max_retries=6)
    faults = sim.venue.faults

    async def body() -> None:
        async with ExchangeClient(settings) as client:
            with pytest.raises(CircuitOpen, match="open after 3 failures in a row"):
                await client.fetch_ticker("BTC/USDT")
            assert faults.requests == 3  # retries stopped at the open breaker
            with pytest.raises(CircuitOpen):
                await client.fetch_ticker("BTC/USDT")
            assert faults.requests == 3
        sim.set_faults(error_5xx_every=0)
        await asyncio.sleep(1.0)
        async with ExchangeClient(settings) as client:  # the breaker is the exchange's
            ticker = await client.fetch_ticker("BTC/USDT")
            assert ticker.last > 0

    run(body())
    breaker = breaker_for(settings)
    assert breaker is not None
    snap = breaker.snapshot()
    assert (snap.state, snap.failures, snap.opened) == ("closed", 0, 1)
    assert snap in breaker_states()
    assert breaker_for(settings.model_copy(update={"breaker_failures": 0})) is None
