"""REST faults as ccxt sees them, and the admin endpoints that steer the simulator."""

from __future__ import annotations

from typing import Any

import aiohttp
import ccxt
import pytest

from tests.fixtures import simulator as fixtures
from tests.fixtures.simulator import START_MS, run, with_exchange

MIN = 60_000


async def _outcome(ex: Any) -> Any:
    try:
        return await ex.fetch_ohlcv("BTC/USDT", "1m", limit=5)
    except ccxt.BaseError as exc:
        return type(exc)


@pytest.mark.parametrize(
    ("faults", "expected"),
    [
        ({"rate_limit_every": 1}, ccxt.DDoSProtection),
        ({"error_5xx_every": 1}, ccxt.ExchangeNotAvailable),
        ({"timeout_every": 1, "timeout_s": 2.0}, ccxt.RequestTimeout),
        ({"truncate_every": 1, "truncate_mode": "connection"}, ccxt.ExchangeError),
    ],
)
def test_rest_faults_raise_what_binance_faults_raise(
    sim_factory: fixtures.SimFactory, faults: dict, expected: type[Exception]
) -> None:
    sim = sim_factory()

    async def body(ex: Any) -> Any:
        await ex.load_markets()
        sim.set_faults(**faults)
        return await _outcome(ex)

    assert run(with_exchange(sim.base_url, body, timeout=500)) is expected


def test_truncated_json_body_is_not_an_exception_in_ccxt(sim_factory: fixtures.SimFactory) -> None:
    sim = sim_factory()

    async def body(ex: Any) -> tuple[Any, Any]:
        await ex.load_markets()
        sim.set_faults(truncate_every=1)
        return await ex.fetch_time(), await _outcome(ex)

    server_time, candles = run(with_exchange(sim.base_url, body))
    # ccxt hands back the unparsed text: no time, and rows made of characters, not candles
    assert server_time is None
    assert isinstance(candles, list) and all(row[1] is None for row in candles)


def test_ignored_retry_after_leads_to_an_ip_ban(sim_factory: fixtures.SimFactory) -> None:
    sim = sim_factory(faults={"rate_limit_every": 2, "ban_after_violations": 2, "retry_after_s": 5})

    async def body() -> list[tuple[int, str | None, int]]:
        out = []
        async with aiohttp.ClientSession() as session:
            for _ in range(5):
                async with session.get(sim.base_url + "/api/v3/time") as resp:
                    body = await resp.json()
                    out.append((resp.status, resp.headers.get("Retry-After"), body.get("code")))
        return out

    got = run(body())
    assert [s for s, _, _ in got] == [200, 429, 429, 418, 418]
    assert got[1][1] == "5" and got[1][2] == -1003 and got[3][2] == -1003


def test_latency_is_added_to_every_request(sim_factory: fixtures.SimFactory) -> None:
    sim = sim_factory(faults={"latency_ms": 300})

    async def body(ex: Any) -> float:
        started = ex.milliseconds()
        await ex.fetch_time()
        return ex.milliseconds() - started

    assert run(with_exchange(sim.base_url, body)) >= 300


def test_outage_via_admin_leaves_a_gap_ccxt_sees(sim_factory: fixtures.SimFactory) -> None:
    sim = sim_factory()
    start = START_MS - 300 * MIN

    async def body(ex: Any) -> tuple[dict, list]:
        async with aiohttp.ClientSession() as session:
            outage = {"start": start, "end": start + 30 * MIN}
            async with session.post(sim.base_url + "/admin/outage", json=outage) as resp:
                reply = await resp.json()
        return reply, await ex.fetch_ohlcv("BTC/USDT", "1m", start - 2 * MIN, 4)

    reply, rows = run(with_exchange(sim.base_url, body))
    assert reply == {"outages": [[start, start + 30 * MIN]]}
    assert [r[0] for r in rows] == [
        start - 2 * MIN,
        start - MIN,
        start + 30 * MIN,
        start + 31 * MIN,
    ]


def test_admin_endpoints(sim_factory: fixtures.SimFactory) -> None:
    sim = sim_factory(faults={"error_5xx_every": 9})

    async def body() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with aiohttp.ClientSession() as s:

            async def call(method: str, path: str, **kw: Any) -> Any:
                async with s.request(method, sim.base_url + path, **kw) as resp:
                    return resp.status, await resp.json()

            out["get"] = await call("GET", "/admin/faults")
            out["post"] = await call("POST", "/admin/faults", json={"rate_limit_every": 3})
            out["bad"] = await call("POST", "/admin/faults", json={"no_such_fault": 1})
            await call("GET", "/api/v3/ping")
            out["stats"] = await call("GET", "/admin/stats")
            out["reset"] = await call("POST", "/admin/reset")
            out["stats_after"] = await call("GET", "/admin/stats")
            out["delete"] = await call("DELETE", "/admin/faults")
            out["clock"] = await call("GET", "/admin/clock")
            out["jump"] = await call("POST", "/admin/clock", json={"advance_ms": 3_600_000})
        return out

    got = run(body())
    assert got["get"][1]["error_5xx_every"] == 9
    assert got["post"][1]["rate_limit_every"] == 3 and got["post"][1]["error_5xx_every"] == 9
    assert got["bad"][0] == 400
    assert got["stats"][1]["fault_requests"] == 1 and got["stats_after"][1]["fault_requests"] == 0
    assert got["delete"][1]["rate_limit_every"] == 0 and got["delete"][1]["error_5xx_every"] == 9
    clock = got["clock"][1]
    assert clock["speed"] == 1.0 and clock["start_ms"] == START_MS
    assert clock["history_start_ms"] == START_MS - 2 * 86_400_000
    assert got["jump"][1]["now_ms"] - clock["now_ms"] >= 3_600_000
