"""OKX v5 websocket: ``/ws/v5/public`` (tickers, trades, books, books5, bbo-tbt) and
``/ws/v5/business`` (``candle<bar>``), with JSON ``subscribe``/``unsubscribe`` ops.

As OKX: one URL per access class, and a candle channel asked of ``/public`` (or a market channel
of ``/business``) is refused with 60018; the text ``ping`` is answered ``pong``; each
subscription is acknowledged ``{"event": "subscribe", "arg": ..., "connId": ...}``; data comes
as ``{"arg": {...}, "data": [...]}``. Candles carry ``confirm`` ("1" on a candle's final push,
which ccxt drops: a client sees no closed flag). ``books`` starts with a 400-level snapshot and
continues with diffs whose ``prevSeqId`` is the previous push's ``seqId``, with OKX's CRC32
checksum of the top 25 levels. Cadence: candles and tickers every ``ws_update_ms``, books every
100 ms, trades as they print. Websocket faults (drops, duplicates) apply as on Binance's streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from simulator import okx_payloads as payloads
from simulator import streams
from simulator.faults import WsFaults
from simulator.market import SymbolSpec
from simulator.okx_rest import BARS
from simulator.streams import TRADES_PER_PUSH, Stream
from simulator.venue import Venue
from simulator.ws import Connection

_TICK_S = 0.05
_BOOK_PERIOD_S = 0.1
PUBLIC = ("tickers", "trades", "books", "books5", "bbo-tbt")
_log = logging.getLogger(__name__)
_conn_ids = itertools.count(1)


@dataclass(slots=True)
class Sub:
    """One subscription of one connection and the cursor that makes its pushes incremental."""

    conn: Connection
    arg: dict[str, str]
    spec: SymbolSpec
    cursor_ms: int
    last_push: float = float("-inf")
    seq: int = -1
    kline: Stream | None = None


def _trim(text: str) -> str:
    """A Binance 8-decimal string as OKX prints numbers ("1.50000000" -> "1.5")."""
    return text.rstrip("0").rstrip(".") if "." in text else text


class OkxHub:
    """Subscriptions of every OKX websocket client and the loop that feeds them."""

    def __init__(self, venue: Venue):
        self.venue = venue
        self.subs: dict[tuple[int, str, str], Sub] = {}
        self.connections: set[Connection] = set()

    def _check(self, access: str, arg: Any) -> tuple[SymbolSpec, str] | str:
        """The market and channel of a subscribe ``arg``, or OKX's error message."""
        if not isinstance(arg, dict):
            return "Illegal request"
        channel, raw = str(arg.get("channel", "")), str(arg.get("instId", ""))
        spec = self.venue.spec(raw.replace("-", ""))
        is_candle = channel.startswith("candle") and channel[6:] in BARS
        wanted = "business" if is_candle else "public" if channel in PUBLIC else ""
        if spec is None or payloads.inst_id(spec) != raw or wanted != access:
            return (f"Wrong URL or channel:{channel},instId:{raw} doesn't exist. Please use the "
                    "correct URL, channel and parameters referring to API document.")
        return spec, channel

    def control(self, conn: Connection, cid: int, access: str, text: str) -> list[str]:
        """The replies to one client frame (already JSON text)."""
        if text == "ping":
            return ["pong"]
        try:
            req = orjson.loads(text)
        except orjson.JSONDecodeError:
            req = None
        op = req.get("op") if isinstance(req, dict) else None
        args = req.get("args") if isinstance(req, dict) else None
        if op not in ("subscribe", "unsubscribe") or not isinstance(args, list) or not args:
            return [self._error("60012", f"Illegal request: {text}", cid)]
        replies = []
        for arg in args:
            checked = self._check(access, arg)
            if isinstance(checked, str):
                replies.append(self._error("60018", checked, cid))
                continue
            spec, channel = checked
            key = (cid, channel, payloads.inst_id(spec))
            if op == "subscribe":
                self._subscribe(conn, key, spec)
            else:
                self.subs.pop(key, None)
            replies.append(orjson.dumps({"event": op, "arg": arg, "connId": f"{cid:08x}"})
                           .decode())
        return replies

    def _error(self, code: str, msg: str, cid: int) -> str:
        return orjson.dumps({"event": "error", "code": code, "msg": msg,
                             "connId": f"{cid:08x}"}).decode()

    def _subscribe(self, conn: Connection, key: tuple[int, str, str], spec: SymbolSpec) -> None:
        now = self.venue.now_ms()
        sub = Sub(conn, {"channel": key[1], "instId": key[2]}, spec, now)
        if key[1].startswith("candle"):
            interval = BARS[key[1][6:]]
            sub.kline = Stream(name=key[1], spec=spec, kind="kline", interval=interval)
            streams.start(sub.kline, now)
        self.subs[key] = sub

    def produce(self, sub: Sub, now: int, wall: float) -> list[dict]:
        """The messages of ``sub`` due at simulated ``now`` (wall clock ``wall``)."""
        channel, venue, spec = sub.arg["channel"], self.venue, sub.spec
        if sub.kline is not None:
            events = streams.produce(venue, sub.kline, now, wall)
            rows = [[str(k["t"]), *(_trim(k[f]) for f in "ohlcvqq"), "1" if k["x"] else "0"]
                    for k in (e["k"] for e in events)]
            return [{"arg": sub.arg, "data": [row]} for row in rows]
        if channel == "trades":
            first, sub.cursor_ms = sub.cursor_ms + 1, now
            if first > now:
                return []
            rows = venue.trades_from(spec.symbol, start=first, end=now, limit=TRADES_PER_PUSH,
                                     now_ms=now)
            cols = zip(rows.ids.tolist(), rows.times.tolist(), rows.prices.tolist(),
                       rows.qty.tolist(), rows.buyer_maker.tolist(), strict=True)
            data = [payloads.trade(spec, *c) for c in cols]
            return [{"arg": sub.arg, "data": data}] if data else []
        period = _BOOK_PERIOD_S if channel != "tickers" else venue.settings.ws_update_ms / 1000
        if wall - sub.last_push < period:
            return []
        sub.last_push = wall
        if channel == "tickers":
            t = venue.ticker_24h(spec.symbol, now)
            return [] if t is None else [
                {"arg": sub.arg, "data": [payloads.ticker(venue, spec, t, now)]}]
        if channel == "books":
            return self._book_diff(sub, now)
        bids, asks, update_id = venue.book(spec.symbol, 5 if channel == "books5" else 1, now)
        top = {**payloads.book(spec, bids, asks, now), "instId": sub.arg["instId"],
               "seqId": update_id}
        return [{"arg": sub.arg, "data": [top]}]

    def _book_diff(self, sub: Sub, now: int) -> list[dict]:
        spec, venue = sub.spec, self.venue
        if sub.seq < 0:  # the snapshot, right after the subscription
            bids, asks, update_id = venue.book(spec.symbol, 400, now)
            sub.cursor_ms, sub.seq = now, update_id
            body = payloads.book(spec, bids, asks, now)
            data = {**body, "checksum": payloads.checksum(body["bids"], body["asks"]),
                    "prevSeqId": -1, "seqId": update_id}
            return [{"arg": sub.arg, "action": "snapshot", "data": [data]}]
        diff = venue.books[spec.symbol].diff(sub.cursor_ms, now) if now > sub.cursor_ms else None
        sub.cursor_ms = now
        if diff is None:
            return []
        _, last_id, bids, asks = diff
        top_b, top_a, _ = venue.book(spec.symbol, 25, now)
        body = payloads.book(spec, bids, asks, now)
        check = payloads.checksum(payloads.levels(spec, top_b), payloads.levels(spec, top_a))
        data = {**body, "checksum": check, "prevSeqId": sub.seq, "seqId": last_id}
        sub.seq = last_id
        return [{"arg": sub.arg, "action": "update", "data": [data]}]

    async def run(self) -> None:
        """Push subscription updates until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(_TICK_S)
            now, wall = self.venue.now_ms(), loop.time()
            for sub in list(self.subs.values()):
                try:
                    messages = self.produce(sub, now, wall)
                except Exception:  # one broken subscription must not silence the others
                    _log.exception("okx subscription %s failed", sub.arg)
                    continue
                for message in messages:
                    sub.conn.push("", orjson.dumps(message).decode(),
                                  depth=sub.arg["channel"] == "books")
                    self.venue.stats["ws_messages"] += 1

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """``/ws/v5/{access}``: public, business or private."""
        access = request.match_info["access"]
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        conn = Connection(ws, False, WsFaults(self.venue.faults))
        cid = next(_conn_ids)
        self.connections.add(conn)
        self.venue.stats["ws_connections"] += 1
        writer = asyncio.create_task(conn.writer())
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    for reply in self.control(conn, cid, access, msg.data):
                        conn.queue.put_nowait(("reply", reply))
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            for key in [k for k in self.subs if k[0] == cid]:
                del self.subs[key]
            self.connections.discard(conn)
            if not conn.closing:
                writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        return ws

    async def close_all(self) -> None:
        for conn in list(self.connections):
            await conn.ws.close(message=b"server shutdown")

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/ws/v5/{access:public|business|private}", self.handle)]
