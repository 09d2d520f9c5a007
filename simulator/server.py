"""The simulator's HTTP/websocket server, in-process (async) or in a background thread.

async with SimulatorServer(SimulatorSettings(port=0)) as sim:
    sim.base_url   # http://127.0.0.1:<port>, REST under /api/v3
    sim.ws_url     # ws://127.0.0.1:<port>/ws

with start_in_thread(SimulatorSettings(port=0)) as handle:
    handle.set_faults(rate_limit_every=3)
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from types import TracebackType
from typing import Any

from aiohttp import web

from simulator.admin import admin_routes
from simulator.broker import Broker
from simulator.clock import wall_ms
from simulator.errors import ApiError
from simulator.faults import retry_after_header
from simulator.futures import WEIGHTS as FAPI_WEIGHTS
from simulator.futures import futures_routes
from simulator.okx_rest import OKX_VENUE_KEY, okx_layer, okx_public_routes
from simulator.okx_signed import okx_private_routes
from simulator.okx_ws import OkxHub
from simulator.rest import VENUE_KEY, WEIGHTS, public_routes
from simulator.rest_flow import flow_routes
from simulator.settings import FaultSettings, SimulatorSettings
from simulator.signed import BROKER_KEY, signed_routes
from simulator.venue import Venue
from simulator.ws import StreamHub

_BAD_GATEWAY = (
    b"<html><head><title>502 Bad Gateway</title></head><body>"
    b"<center><h1>502 Bad Gateway</h1></center></body></html>"
)
_UNAVAILABLE = b"Service Unavailable"


def _limited(status: int, retry_after: float, used: int, banned_until: int) -> web.Response:
    if status == 418:
        msg = (
            f"Way too much request weight used; IP banned until {banned_until}. "
            "Please use WebSocket Streams for live updates to avoid bans."
        )
    else:
        msg = (
            "Too much request weight used; current limit is 6000 request weight per 1 MINUTE. "
            "Please use WebSocket Streams for live updates to avoid polling the API."
        )
    return web.Response(
        status=status,
        body=ApiError(status, -1003, msg).body(),
        content_type="application/json",
        headers={"Retry-After": retry_after_header(retry_after)},
    )


@web.middleware
async def binance_layer(request: web.Request, handler: Any) -> web.StreamResponse:
    """Weights, faults, Binance error bodies and handler timing for ``/api``, ``/sapi`` and
    ``/fapi``."""
    if not request.path.startswith(("/api/v3/", "/sapi/", "/fapi/")):
        return await handler(request)
    venue = request.app[VENUE_KEY]
    key = (request.method, request.path)
    weight_of = WEIGHTS.get(key) or FAPI_WEIGHTS.get(key)
    plan = venue.faults.plan_rest(weight_of(request.query) if weight_of else 1, wall_ms())
    weights = {"x-mbx-used-weight": str(plan.used_weight)}
    weights["x-mbx-used-weight-1m"] = weights["x-mbx-used-weight"]
    if plan.verdict in ("rate_limited", "banned"):
        resp = _limited(plan.status, plan.retry_after_s, plan.used_weight, plan.banned_until_ms)
        resp.headers.update(weights)
        return resp
    if plan.verdict == "server_error":
        # gateway errors come as HTML/text, not as Binance JSON
        if plan.status == 502:
            return web.Response(status=502, body=_BAD_GATEWAY, content_type="text/html")
        return web.Response(status=503, body=_UNAVAILABLE, content_type="text/plain")
    if plan.stall_s:
        await asyncio.sleep(plan.stall_s)
    if plan.latency_s:
        await asyncio.sleep(plan.latency_s)
    started = time.perf_counter()
    try:
        resp = await handler(request)
    except ApiError as exc:
        resp = web.Response(status=exc.status, body=exc.body(), content_type="application/json")
    venue.stats["requests"] += 1
    venue.stats["handler_s"] += time.perf_counter() - started
    if plan.truncate and isinstance(resp, web.Response) and isinstance(resp.body, bytes):
        if venue.faults.settings.truncate_mode == "connection":
            return await _cut_connection(request, resp.status, resp.body, weights)
        resp = web.Response(
            status=resp.status,
            body=resp.body[: len(resp.body) // 2],
            content_type="application/json",
        )
    resp.headers.update(weights)
    return resp


async def _cut_connection(
    request: web.Request, status: int, body: bytes, headers: dict[str, str]
) -> web.StreamResponse:
    """Announce the whole body, send half of it, then drop the connection."""
    resp = web.StreamResponse(status=status, headers=headers)
    resp.content_type = "application/json"
    resp.content_length = len(body)
    await resp.prepare(request)
    await resp.write(body[: len(body) // 2])
    if request.transport is not None:
        request.transport.abort()
    return resp


class SimulatorServer:
    """The simulator as an aiohttp application on ``settings.host:settings.port`` (0 = free)."""

    def __init__(self, settings: SimulatorSettings | None = None):
        self.settings = settings or SimulatorSettings()
        self.venue = Venue(self.settings)
        self.broker = Broker(self.venue)
        self.hub = StreamHub(self.venue)
        self.okx_hub = OkxHub(self.venue)
        self.port: int | None = None
        self._runner: web.AppRunner | None = None
        self._hub_tasks: list[asyncio.Task[None]] = []

    def build_app(self) -> web.Application:
        """Routes of every venue in ``settings.venues``, all answering from one market."""
        venues = self.settings.venues
        app = web.Application(middlewares=[binance_layer, okx_layer])
        app[VENUE_KEY] = app[OKX_VENUE_KEY] = self.venue
        app[BROKER_KEY] = self.broker
        routes = admin_routes()
        if "okx" in venues:  # before Binance's /ws/{tail}, which would match /ws/v5/public
            routes += okx_public_routes() + okx_private_routes() + self.okx_hub.routes()
        if "binance" in venues:
            routes += public_routes() + flow_routes() + futures_routes() + signed_routes()
            routes += self.hub.routes()
        app.add_routes(routes)

        async def close_sockets(_: web.Application) -> None:
            await self.hub.close_all()
            await self.okx_hub.close_all()

        app.on_shutdown.append(close_sockets)
        return app

    @property
    def base_url(self) -> str:
        """``http://host:port``; REST lives under ``/api/v3``."""
        return f"http://{self.settings.host}:{self._bound_port()}"

    @property
    def ws_url(self) -> str:
        """``ws://host:port/ws``, the raw stream endpoint."""
        return f"ws://{self.settings.host}:{self._bound_port()}/ws"

    def _bound_port(self) -> int:
        if self.port is None:
            raise RuntimeError("the simulator is not running")
        return self.port

    async def start(self) -> None:
        """Bind and serve; ``self.port`` is the real port afterwards."""
        # stalled (timeout-fault) requests must not hold up shutdown
        self._runner = web.AppRunner(
            self.build_app(), access_log=None, handle_signals=False, shutdown_timeout=0.5
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        self.settings = self.settings.model_copy(update={"port": self.port})
        hubs = [self.hub] if "binance" in self.settings.venues else []
        hubs += [self.okx_hub] if "okx" in self.settings.venues else []
        self._hub_tasks = [asyncio.create_task(hub.run()) for hub in hubs]

    async def stop(self) -> None:
        """Stop streaming, close sockets and release the port."""
        for task in self._hub_tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._hub_tasks = []
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SimulatorServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


class SimulatorHandle:
    """A simulator serving from its own thread and event loop; stop() or use as a context."""

    def __init__(
        self, server: SimulatorServer, loop: asyncio.AbstractEventLoop, thread: threading.Thread
    ):
        self.server = server
        self._loop = loop
        self._thread = thread

    @property
    def settings(self) -> SimulatorSettings:
        """The settings in force, with the real port."""
        return self.server.settings

    @property
    def venue(self) -> Venue:
        """The market the server answers from (thread-safe to query)."""
        return self.server.venue

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def ws_url(self) -> str:
        return self.server.ws_url

    def now_ms(self) -> int:
        """The simulated time."""
        return self.server.venue.now_ms()

    def set_faults(self, **fields: Any) -> FaultSettings:
        """Change fault settings (any :class:`FaultSettings` fields); counters are reset."""
        return self._call(lambda: self._update_faults(fields))

    def _update_faults(self, fields: dict[str, Any]) -> FaultSettings:
        faults = self.server.venue.faults
        updated = faults.update(**fields)
        faults.reset()
        return updated

    def add_outage(self, start_ms: int, end_ms: int) -> FaultSettings:
        """Add a window in which no candles exist."""
        return self._call(lambda: self.server.venue.faults.add_outage(start_ms, end_ms))

    def advance(self, ms: int) -> int:
        """Jump the simulated clock ``ms`` forward; return the new simulated time."""
        return self.server.venue.clock.advance(ms)

    def _call(self, fn: Any) -> Any:
        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=10)

    def stop(self) -> None:
        """Stop the server and its thread (idempotent)."""
        if not self._thread.is_alive():
            return
        with contextlib.suppress(RuntimeError):
            asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def __enter__(self) -> SimulatorHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_in_thread(settings: SimulatorSettings | None = None) -> SimulatorHandle:
    """Start a simulator in a daemon thread and return once it accepts connections."""
    server = SimulatorServer(settings)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    failure: list[BaseException] = []

    def serve() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.start())
        except BaseException as exc:  # reported to the caller below
            failure.append(exc)
            ready.set()
            return
        ready.set()
        loop.run_forever()
        # requests stalled by the timeout fault may still be sleeping: end them quietly
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    thread = threading.Thread(target=serve, name="binance-simulator", daemon=True)
    thread.start()
    ready.wait(timeout=30)
    if failure:
        raise failure[0]
    if server.port is None:
        raise RuntimeError("the simulator did not start within 30 s")
    return SimulatorHandle(server, loop, thread)
