"""Binance market streams over websocket: ``/ws``, ``/ws/<stream>``, ``/stream?streams=a/b``.

The streams and what they push are in :mod:`simulator.streams` (symbol in lower case). Control
messages ``SUBSCRIBE``, ``UNSUBSCRIBE``, ``LIST_SUBSCRIPTIONS``, ``SET_PROPERTY`` and
``GET_PROPERTY`` are answered as Binance does (``{"result": null, "id": n}``). A hub ticks every
50 ms of wall time and asks every subscribed stream for its due events.

``StreamHub.closed_sent`` maps ``(symbol, interval, open_time)`` of each final kline pushed to
``time.perf_counter()`` when the hub queued it for its subscribers (the newest
:data:`SENT_KEEP`): where ``bench/trader.py`` starts the trader's decision latency, reading it
from a simulator thread in the same process so both ends use one clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict

import orjson
from aiohttp import WSCloseCode, WSMsgType, web

from simulator import streams
from simulator.faults import WsFaults
from simulator.streams import Stream
from simulator.venue import Venue

_TICK_S = 0.05
_QUEUE_MAX = 20_000
SENT_KEEP = 20_000  # closed-kline send times kept (~3 MB): a day of 1m candles of 14 symbols
_log = logging.getLogger(__name__)


class Connection:
    """One websocket client: its streams, outgoing queue and fault counters."""

    def __init__(self, ws: web.WebSocketResponse, combined: bool, faults: WsFaults):
        self.ws = ws
        self.combined = combined
        self.faults = faults
        self.streams: list[str] = []
        self.closing = False
        self.queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue(_QUEUE_MAX)

    def push(self, stream: str, payload: str, depth: bool = False) -> None:
        text = f'{{"stream":"{stream}","data":{payload}}}' if self.combined else payload
        self._put(("depth" if depth else "data", text))

    def reply(self, body: dict) -> None:
        self._put(("reply", orjson.dumps(body).decode()))

    def _put(self, item: tuple[str, str]) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            # Binance disconnects consumers that cannot keep up
            asyncio.ensure_future(self.ws.close(code=WSCloseCode.POLICY_VIOLATION))

    async def writer(self) -> None:
        """Send queued frames, applying the websocket faults to data messages."""
        while True:
            kind, text = await self.queue.get()
            if kind == "reply":
                await self.ws.send_str(text)
                continue
            frames, close = self.faults.process(text, depth=kind == "depth")
            for frame in frames:
                await self.ws.send_str(frame)
            if close:
                self.closing = True
                await self.ws.close(code=WSCloseCode.GOING_AWAY, message=b"simulated drop")
                return


class StreamHub:
    """Subscriptions of all connections and the loop that feeds them."""

    def __init__(self, venue: Venue):
        self.venue = venue
        self.streams: dict[str, Stream] = {}
        self.connections: set[Connection] = set()
        # (symbol, interval, open_time) -> perf_counter() when its final kline was pushed
        self.closed_sent: OrderedDict[tuple[str, str, int], float] = OrderedDict()

    def parse(self, name: str) -> Stream | None:
        """The stream called ``name``, or None when it is not one the simulator serves."""
        return streams.parse(self.venue, name)

    def subscribe(self, conn: Connection, names: list[str]) -> None:
        now = self.venue.now_ms()
        for name in names:
            stream = self.streams.get(name)
            if stream is None:
                stream = self.parse(name)
                if stream is None:
                    continue
                streams.start(stream, now)
                self.streams[name] = stream
            stream.subscribers.add(conn)
            if name not in conn.streams:
                conn.streams.append(name)

    def unsubscribe(self, conn: Connection, names: list[str]) -> None:
        for name in names:
            stream = self.streams.get(name)
            if stream is not None:
                stream.subscribers.discard(conn)
                if not stream.subscribers:
                    del self.streams[name]
            if name in conn.streams:
                conn.streams.remove(name)

    def drop(self, conn: Connection) -> None:
        self.unsubscribe(conn, list(conn.streams))
        self.connections.discard(conn)

    def control(self, conn: Connection, text: str) -> dict:
        """The reply to one client request."""
        try:
            req = orjson.loads(text)
        except orjson.JSONDecodeError:
            return {"error": {"code": 3, "msg": "Invalid JSON"}, "id": None}
        if not isinstance(req, dict):
            return {"error": {"code": 3, "msg": "Invalid JSON"}, "id": None}
        rid, method, params = req.get("id"), req.get("method"), req.get("params") or []
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
                return {"error": {"code": 1, "msg": "Invalid value type"}, "id": rid}
            bad = [p for p in params if self.parse(p) is None]
            if bad:
                return {"error": {"code": 2, "msg": f"Invalid request: {bad[0]}"}, "id": rid}
            (self.subscribe if method == "SUBSCRIBE" else self.unsubscribe)(conn, params)
            return {"result": None, "id": rid}
        if method == "LIST_SUBSCRIPTIONS":
            return {"result": list(conn.streams), "id": rid}
        if method == "SET_PROPERTY":
            if params[:1] == ["combined"] and len(params) == 2:
                conn.combined = bool(params[1])
                return {"result": None, "id": rid}
            return {"error": {"code": 2, "msg": "Invalid request: unknown property"}, "id": rid}
        if method == "GET_PROPERTY":
            return {"result": conn.combined, "id": rid}
        return {"error": {"code": 2, "msg": "Invalid request: unknown method"}, "id": rid}

    async def run(self) -> None:
        """Push stream updates until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(_TICK_S)
            now, wall = self.venue.now_ms(), loop.time()
            for stream in list(self.streams.values()):
                try:
                    events = streams.produce(self.venue, stream, now, wall)
                except Exception:
                    # one broken stream must not silence all the others
                    _log.exception("stream %s failed", stream.name)
                    continue
                for event in events:
                    payload = orjson.dumps(event).decode()
                    for conn in list(stream.subscribers):
                        conn.push(stream.name, payload, depth=stream.kind == "depth")
                        self.venue.stats["ws_messages"] += 1
                    if stream.kind == "kline" and event["k"]["x"]:
                        self._note_closed(stream, event["k"]["t"])

    def _note_closed(self, stream: Stream, open_time: int) -> None:
        """Remember when a final kline was handed to its subscribers' send queues."""
        self.closed_sent[(stream.spec.symbol, stream.interval, open_time)] = time.perf_counter()
        if len(self.closed_sent) > SENT_KEEP:
            self.closed_sent.popitem(last=False)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """The websocket endpoint."""
        ws = web.WebSocketResponse(heartbeat=20.0, compress=False)
        await ws.prepare(request)
        combined = request.path.startswith("/stream")
        conn = Connection(ws, combined, WsFaults(self.venue.faults))
        self.connections.add(conn)
        self.venue.stats["ws_connections"] += 1
        names = [n for n in request.match_info.get("tail", "").split("/") if "@" in n]
        names += [n for n in request.query.get("streams", "").split("/") if n]
        self.subscribe(conn, names)
        writer = asyncio.create_task(conn.writer())
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    conn.reply(self.control(conn, msg.data))
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            self.drop(conn)
            # a writer that is closing the socket (drop fault) finishes the close handshake
            if not conn.closing:
                writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        return ws

    async def close_all(self) -> None:
        """Close every client socket (server shutdown)."""
        for conn in list(self.connections):
            await conn.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/ws", self.handle),
            web.get("/ws/{tail:.*}", self.handle),
            web.get("/stream", self.handle),
        ]
