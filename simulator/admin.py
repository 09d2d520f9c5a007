"""Admin endpoints (not part of Binance's API) that tests and benchmarks use to steer the venue.

* ``GET /admin/faults`` current :class:`FaultSettings`; ``POST`` a JSON object with any of its
  fields to change them (unknown fields: 400); ``DELETE`` restores the start-up faults.
* ``POST /admin/reset`` zeroes the fault counters (request count, weights, 429/418 state).
* ``POST /admin/outage`` ``{"start": ms, "end": ms}`` adds a window with no candles.
* ``GET /admin/clock`` ``{"now_ms", "speed", "start_ms", "history_start_ms"}``; ``POST`` with
  ``{"advance_ms": n}`` and/or ``{"speed": x}`` jumps the clock forward or changes its rate.
* ``GET /admin/stats`` server-side counters: requests, handler seconds, klines served, ws sent.
"""

from __future__ import annotations

import orjson
from aiohttp import web
from pydantic import ValidationError

from simulator.rest import VENUE_KEY, json_body


def _error(status: int, message: str) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps({"error": message}), content_type="application/json"
    )


async def _json(request: web.Request) -> dict | web.Response:
    try:
        body = await request.json(loads=orjson.loads)
    except ValueError:
        return _error(400, "body must be a JSON object")
    return body if isinstance(body, dict) else _error(400, "body must be a JSON object")


async def get_faults(request: web.Request) -> web.Response:
    return json_body(request.app[VENUE_KEY].faults.settings.model_dump(mode="json"))


async def post_faults(request: web.Request) -> web.Response:
    body = await _json(request)
    if isinstance(body, web.Response):
        return body
    try:
        faults = request.app[VENUE_KEY].faults.update(**body)
    except ValidationError as exc:
        return _error(400, str(exc))
    return json_body(faults.model_dump(mode="json"))


async def delete_faults(request: web.Request) -> web.Response:
    return json_body(request.app[VENUE_KEY].faults.restore().model_dump(mode="json"))


async def reset(request: web.Request) -> web.Response:
    request.app[VENUE_KEY].faults.reset()
    return json_body({})


async def outage(request: web.Request) -> web.Response:
    body = await _json(request)
    if isinstance(body, web.Response):
        return body
    try:
        faults = request.app[VENUE_KEY].faults.add_outage(int(body["start"]), int(body["end"]))
    except (KeyError, TypeError, ValueError, ValidationError) as exc:
        return _error(400, f"need integer 'start' < 'end' in ms: {exc}")
    return json_body({"outages": faults.model_dump(mode="json")["outages"]})


def _clock_state(request: web.Request) -> dict:
    venue = request.app[VENUE_KEY]
    return {
        "now_ms": venue.now_ms(),
        "speed": venue.clock.speed,
        "start_ms": venue.clock.start_ms,
        "history_start_ms": venue.history_start_ms,
    }


async def get_clock(request: web.Request) -> web.Response:
    return json_body(_clock_state(request))


async def post_clock(request: web.Request) -> web.Response:
    body = await _json(request)
    if isinstance(body, web.Response):
        return body
    clock = request.app[VENUE_KEY].clock
    try:
        if "speed" in body:
            clock.set_speed(float(body["speed"]))
        if "advance_ms" in body:
            clock.advance(int(body["advance_ms"]))
    except (TypeError, ValueError) as exc:
        return _error(400, str(exc))
    return json_body(_clock_state(request))


async def stats(request: web.Request) -> web.Response:
    venue = request.app[VENUE_KEY]
    return json_body({**venue.stats, "fault_requests": venue.faults.requests})


def admin_routes() -> list[web.RouteDef]:
    """Routes of the admin endpoints."""
    return [
        web.get("/admin/faults", get_faults),
        web.post("/admin/faults", post_faults),
        web.delete("/admin/faults", delete_faults),
        web.post("/admin/reset", reset),
        web.post("/admin/outage", outage),
        web.get("/admin/clock", get_clock),
        web.post("/admin/clock", post_clock),
        web.get("/admin/stats", stats),
    ]
