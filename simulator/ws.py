"""Binance market streams over websocket: ``/ws``, ``/ws/<stream>``, ``/stream?streams=a/b``.

Streams: ``<symbol>@kline_<interval>``, ``<symbol>@trade``, ``<symbol>@aggTrade``,
``<symbol>@ticker`` and ``<symbol>@miniTicker`` (symbol in lower case). Control messages
``SUBSCRIBE``, ``UNSUBSCRIBE``, ``LIST_SUBSCRIPTIONS``, ``SET_PROPERTY`` and ``GET_PROPERTY``
are answered as Binance does (``{"result": null, "id": n}``). A hub ticks every 50 ms of wall
time: a kline stream pushes the final candle (``x: true``) as soon as it closes and the open
candle every ``ws_update_ms``; tickers push every ``ws_update_ms``; trade streams push the
trades since the previous tick (at most the newest 200 per tick, when the clock runs fast).

``StreamHub.closed_sent`` maps ``(symbol, interval, open_time)`` of each final kline pushed to
``time.perf_counter()`` when the hub queued it for its subscribers (the newest
:data:`SENT_KEEP`): where ``bench/trader.py`` starts the trader's decision latency, reading it
from a simulator thread in the same process so both ends use one clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import orjson
from aiohttp import WSCloseCode, WSMsgType, web

from simulator import payloads
from simulator.candles import INTERVALS, floor_open
from simulator.faults import WsFaults
from simulator.market import SymbolSpec
from simulator.venue import Venue

_STREAM_RE = re.compile(r"^([a-z0-9]+)@(kline_(\w+)|trade|aggTrade|ticker|miniTicker)$")
_TICK_S = 0.05
_TRADES_PER_TICK = 200
_QUEUE_MAX = 20_000
SENT_KEEP = 20_000  # closed-kline send times kept (~3 MB): a day of 1m candles of 14 symbols
_log = logging.getLogger(__name__)


@dataclass(slots=True)
class Stream:
    """One subscribed stream and the state that makes its pushes incremental."""

    name: str
    spec: SymbolSpec
    kind: str  # kline, trade, aggTrade, ticker, miniTicker
    interval: str = ""
    open_ms: int = -1
    cursor_ms: int = -1
    last_push: float = float("-inf")
    subscribers: set[Connection] = field(default_factory=set)


class Connection:
    """One websocket client: its streams, outgoing queue and fault counters."""

    def __init__(self, ws: web.WebSocketResponse, combined: bool, faults: WsFaults):
        self.ws = ws
        self.combined = combined
        self.faults = faults
        self.streams: list[str] = []
        self.closing = False
        self.queue: asyncio.Queue[tuple[bool, str]] = asyncio.Queue(_QUEUE_MAX)

    def push(self, stream: str, payload: str) -> None:
        text = f'{{"stream":"{stream}","data":{payload}}}' if self.combined else payload
        self._put((True, text))

    def reply(self, body: dict) -> None:
        self._put((False, orjson.dumps(body).decode()))

    def _put(self, item: tuple[bool, str]) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            # Binance disconnects consumers that cannot keep up
            asyncio.ensure_future(self.ws.close(code=WSCloseCode.POLICY_VIOLATION))

    async def writer(self) -> None:
        """Send queued frames, applying the websocket faults to data messages."""
        while True:
            is_data, text = await self.queue.get()
            if not is_data:
                await self.ws.send_str(text)
                continue
            frames, close = self.faults.process(text)
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
        m = _STREAM_RE.match(name)
        if not m:
            return None
        spec = self.venue.spec(m.group(1).upper())
        interval = m.group(3) or ""
        if spec is None or (m.group(3) is not None and interval not in INTERVALS):
            return None
        kind = "kline" if interval else m.group(2)
        return Stream(name=name, spec=spec, kind=kind, interval=interval)

    def subscribe(self, conn: Connection, names: list[str]) -> None:
        now = self.venue.now_ms()
        for name in names:
            stream = self.streams.get(name)
            if stream is None:
                stream = self.parse(name)
                if stream is None:
                    continue
                stream.cursor_ms = now
                if stream.kind == "kline":
                    stream.open_ms = floor_open(now, stream.interval)
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
                    events = self._produce(stream, now, wall)
                except Exception:
                    # one broken stream must not silence all the others
                    _log.exception("stream %s failed", stream.name)
                    continue
                for event in events:
                    payload = orjson.dumps(event).decode()
                    for conn in list(stream.subscribers):
                        conn.push(stream.name, payload)
                        self.venue.stats["ws_messages"] += 1
                    if stream.kind == "kline" and event["k"]["x"]:
                        self._note_closed(stream, event["k"]["t"])

    def _note_closed(self, stream: Stream, open_time: int) -> None:
        """Remember when a final kline was handed to its subscribers' send queues."""
        self.closed_sent[(stream.spec.symbol, stream.interval, open_time)] = time.perf_counter()
        if len(self.closed_sent) > SENT_KEEP:
            self.closed_sent.popitem(last=False)

    def _produce(self, s: Stream, now: int, wall: float) -> list[dict]:
        venue, symbol = self.venue, s.spec.symbol
        due = wall - s.last_push >= venue.settings.ws_update_ms / 1000
        if s.kind == "kline":
            events = []
            current = floor_open(now, s.interval)
            if current != s.open_ms:
                done = venue.klines(symbol, s.interval, s.open_ms, current - 1, 1000, now)
                events += [
                    payloads.kline_event(s.spec, s.interval, done, i, now)
                    for i in range(len(done))
                    if done.closed[i]
                ]
                s.open_ms, due = current, True
            if due:
                live = venue.klines(symbol, s.interval, current, current, 1, now)
                if len(live):
                    events.append(payloads.kline_event(s.spec, s.interval, live, 0, now))
                s.last_push = wall
            return events
        if s.kind in ("trade", "aggTrade"):
            rows = venue.recent_trades(symbol, _TRADES_PER_TICK, now)
            rows = rows.take(rows.times > s.cursor_ms)
            s.cursor_ms = now
            return payloads.trade_events(s.spec, rows, now, agg=s.kind == "aggTrade")
        if not due:
            return []
        s.last_push = wall
        ticker = venue.ticker_24h(symbol, now)
        if ticker is None:
            return []
        if s.kind == "miniTicker":
            return [payloads.mini_ticker_event(s.spec, ticker, now)]
        bids, asks, _ = venue.book(symbol, 1, now)
        return [payloads.ticker_event(s.spec, ticker, bids[0], asks[0], now)]

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
