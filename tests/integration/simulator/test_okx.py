"""The simulator's OKX venue: REST and websocket bodies against OKX's documented examples (copied
from the comments of ccxt's okx classes, which quote OKX's v5 docs), its paging and errors, and
the same prices as the Binance venue over the one market."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import aiohttp
import orjson
import pytest

from tests.fixtures import simulator as fixtures
from tests.fixtures.simulator import START_MS, run

MIN = 60_000
FROZEN = 1e-9  # a clock that practically stands still

# ccxt/okx.py parse_market (GET /api/v5/public/instruments, instType SPOT)
INSTRUMENT_EXAMPLE = {
    "alias": "", "baseCcy": "BTC", "category": "1", "ctMult": "", "ctType": "", "ctVal": "",
    "ctValCcy": "", "expTime": "", "instId": "BTC-USDT", "instType": "SPOT", "lever": "10",
    "listTime": "1548133413000", "lotSz": "0.00000001", "minSz": "0.00001", "optType": "",
    "quoteCcy": "USDT", "settleCcy": "", "state": "live", "stk": "", "tickSz": "0.1", "uly": "",
}  # fmt: skip
# ccxt/okx.py fetch_ohlcv (GET /api/v5/market/candles)
CANDLE_EXAMPLE = ["1678928760000", "24341.4", "24344", "24313.2", "24323", "628", "2.5819",
                  "62800", "0"]
# ccxt/okx.py fetch_ticker (GET /api/v5/market/ticker)
TICKER_EXAMPLE = {
    "instType": "SPOT", "instId": "ETH-BTC", "last": "0.07319", "lastSz": "0.044378",
    "askPx": "0.07322", "askSz": "4.2", "bidPx": "0.0732", "bidSz": "6.050058",
    "open24h": "0.07801", "high24h": "0.07975", "low24h": "0.06019",
    "volCcy24h": "11788.887619", "vol24h": "167493.829229", "ts": "1621440583784",
    "sodUtc0": "0.07872", "sodUtc8": "0.07345",
}  # fmt: skip
# ccxt/okx.py fetch_trades (GET /api/v5/market/trades)
TRADE_EXAMPLE = {"instId": "ETH-BTC", "side": "sell", "sz": "0.119501", "px": "0.07065",
                 "tradeId": "15826757", "ts": "1621446178316"}
# ccxt/okx.py fetch_order_book (GET /api/v5/market/books)
BOOK_EXAMPLE = {"asks": [["0.07228", "4.211619", "0", "2"]],
                "bids": [["0.07221", "18.5", "0", "1"]], "ts": "1621438475342"}
# ccxt/pro/okx.py handle_order_book_message (the books channel's data)
BOOK_WS_EXAMPLE = {"asks": [["31738.3", "0.05973179", "0", "3"]],
                   "bids": [["31738.2", "0.67557666", "0", "9"]], "instId": "BTC-USDT",
                   "ts": "1626537446491", "checksum": -855196043, "prevSeqId": 123456,
                   "seqId": 123457}


def okx_sim(sim_factory: fixtures.SimFactory, **overrides: Any) -> Any:
    return sim_factory(venues=("binance", "okx"), **overrides)


async def get(url: str, **params: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(url, params=params) as resp:
        return resp.status, await resp.json(content_type=None)


def data_of(status_body: tuple[int, Any]) -> list:
    status, body = status_body
    assert status == 200 and body["code"] == "0" and body["msg"] == ""
    return body["data"]


def same_shape(ours: dict, example: dict) -> None:
    """Every documented field present, with the documented JSON type."""
    missing = set(example) - set(ours)
    assert not missing, f"fields missing: {missing}"
    for key, value in example.items():
        assert type(ours[key]) is type(value), f"{key}: {ours[key]!r} vs {value!r}"


def decimal_text(text: str) -> bool:
    return str(Decimal(text)) == text or text == format(Decimal(text), "f")


def test_rest_bodies_match_the_documented_examples(sim_factory: fixtures.SimFactory) -> None:
    sim = okx_sim(sim_factory, speed=FROZEN)
    api = sim.base_url + "/api/v5"

    async def body() -> dict[str, Any]:
        return {
            "time": data_of(await get(f"{api}/public/time")),
            "instruments": data_of(await get(f"{api}/public/instruments", instType="SPOT")),
            "candles": data_of(await get(f"{api}/market/candles", instId="BTC-USDT", bar="1m")),
            "ticker": data_of(await get(f"{api}/market/ticker", instId="BTC-USDT")),
            "trades": data_of(await get(f"{api}/market/trades", instId="BTC-USDT", limit=5)),
            "books": data_of(await get(f"{api}/market/books", instId="BTC-USDT", sz=3)),
        }

    got = run(body())
    assert int(got["time"][0]["ts"]) // 1000 == START_MS // 1000
    btc = next(i for i in got["instruments"] if i["instId"] == "BTC-USDT")
    same_shape(btc, INSTRUMENT_EXAMPLE)
    assert btc["tickSz"] == "0.01" and btc["lotSz"] == "0.00001" and btc["state"] == "live"
    assert {i["instId"] for i in got["instruments"]} == {"BTC-USDT", "ETH-USDT", "SOL-USDT"}
    rows = got["candles"]
    assert len(rows) == 100  # OKX's default page
    assert all(len(r) == len(CANDLE_EXAMPLE) and all(isinstance(v, str) for v in r)
               for r in rows)
    assert [int(r[0]) for r in rows] == sorted((int(r[0]) for r in rows), reverse=True)
    assert rows[0][8] == "0" and {r[8] for r in rows[1:]} == {"1"}  # the open one first
    assert all(decimal_text(v) for v in rows[1][1:8])
    same_shape(got["ticker"][0], TICKER_EXAMPLE)
    assert set(got["ticker"][0]) == set(TICKER_EXAMPLE)
    for trade in got["trades"]:
        same_shape(trade, TRADE_EXAMPLE)
        assert set(trade) == set(TRADE_EXAMPLE) and trade["side"] in ("buy", "sell")
    assert [int(t["tradeId"]) for t in got["trades"]] == sorted(
        (int(t["tradeId"]) for t in got["trades"]), reverse=True)
    book = got["books"][0]
    same_shape(book, BOOK_EXAMPLE)
    assert len(book["bids"]) == len(book["asks"]) == 3
    assert all(len(level) == 4 for level in book["bids"] + book["asks"])
    assert Decimal(book["bids"][0][0]) < Decimal(book["asks"][0][0])


def test_candle_paging_is_okx_s(sim_factory: fixtures.SimFactory) -> None:
    """``after``/``before`` are exclusive and the page is the newest ``limit`` between them;
    ``/market/candles`` reaches back 1,440 bars, ``history-candles`` further."""
    sim = okx_sim(sim_factory, speed=FROZEN)
    api = sim.base_url + "/api/v5/market"
    q = {"instId": "BTC-USDT", "bar": "1m"}

    async def body() -> dict[str, Any]:
        lo, hi = START_MS - 600 * MIN, START_MS - 100 * MIN
        return {
            "between": data_of(await get(f"{api}/history-candles", **q, before=lo, after=hi,
                                         limit=300)),
            "big": data_of(await get(f"{api}/history-candles", **q, limit=1000)),
            "old_recent": data_of(await get(f"{api}/candles", **q, after=START_MS - 1500 * MIN)),
            "old_history": data_of(await get(f"{api}/history-candles", **q,
                                             after=START_MS - 1500 * MIN)),
            "hour": data_of(await get(f"{api}/history-candles", instId="BTC-USDT", bar="1H",
                                      limit=2)),
            "bad_bar": await get(f"{api}/candles", instId="BTC-USDT", bar="6H"),
            "unknown": await get(f"{api}/candles", instId="BTC-EUR", bar="1m"),
            "no_inst": await get(f"{api}/candles", bar="1m"),
        }

    got = run(body())
    times = [int(r[0]) for r in got["between"]]
    assert len(times) == 300  # the newest 300 of the 499 between the bounds
    assert times[0] == START_MS - 101 * MIN and times[-1] == START_MS - 400 * MIN
    assert len(got["big"]) == 300
    assert got["old_recent"] == []  # older than 1,440 bars: not on /market/candles
    assert int(got["old_history"][0][0]) == START_MS - 1501 * MIN
    assert int(got["hour"][0][0]) - int(got["hour"][1][0]) == 60 * MIN
    assert got["bad_bar"] == (400, {"code": "51000", "msg": "Parameter bar error", "data": []})
    assert got["unknown"][1]["code"] == "51001"
    assert got["no_inst"] == (400, {"code": "50014", "msg": "Parameter instId can not be empty.",
                                    "data": []})


def test_both_venues_answer_from_one_market(sim_factory: fixtures.SimFactory) -> None:
    sim = okx_sim(sim_factory, speed=FROZEN)

    async def body() -> tuple[Any, Any]:
        binance = (await get(f"{sim.base_url}/api/v3/klines", symbol="BTCUSDT", interval="1m",
                             limit=50))[1]
        okx = data_of(await get(f"{sim.base_url}/api/v5/market/candles", instId="BTC-USDT",
                                bar="1m", limit=50))
        return binance, okx

    binance, okx = run(body())
    assert [int(r[0]) for r in binance] == [int(r[0]) for r in reversed(okx)]
    for b, o in zip(binance, reversed(okx), strict=True):
        assert [Decimal(x) for x in b[1:6]] == [Decimal(x) for x in o[1:6]]


def test_rate_limit_is_okx_s_50011(sim_factory: fixtures.SimFactory) -> None:
    sim = okx_sim(sim_factory, speed=FROZEN)
    sim.set_faults(rate_limit_every=2)

    async def body() -> list[tuple[int, Any]]:
        return [await get(f"{sim.base_url}/api/v5/public/time") for _ in range(2)]

    first, second = run(body())
    assert first[0] == 200
    assert second == (429, {"code": "50011", "msg": "Too Many Requests", "data": []})


def test_only_the_chosen_venues_are_served(sim_factory: fixtures.SimFactory) -> None:
    sim = sim_factory(venues=("okx",))

    async def body() -> tuple[int, int]:
        async with aiohttp.ClientSession() as s:
            async with s.get(f"{sim.base_url}/api/v3/time") as a:
                binance = a.status
            async with s.get(f"{sim.base_url}/api/v5/public/time") as b:
                okx = b.status
        return binance, okx

    assert run(body()) == (404, 200)


async def _ws_session(url: str, subscribe: list[dict], count: int) -> list[Any]:
    """Subscribe and collect ``count`` frames (text frames that are not JSON kept as text)."""
    frames: list[Any] = []
    async with aiohttp.ClientSession() as s, s.ws_connect(url) as ws:
        await ws.send_str("ping")
        await ws.send_str(orjson.dumps({"op": "subscribe", "args": subscribe}).decode())
        while len(frames) < count:
            msg = await ws.receive(timeout=20)
            frames.append(msg.data if msg.data == "pong" else orjson.loads(msg.data))
    return frames


def test_public_channels_match_the_documented_examples(sim_factory: fixtures.SimFactory) -> None:
    sim = okx_sim(sim_factory, speed=10.0)
    url = sim.base_url.replace("http", "ws") + "/ws/v5/public"
    args = [{"channel": c, "instId": "BTC-USDT"} for c in ("tickers", "trades", "books")]
    args.append({"channel": "candle1m", "instId": "BTC-USDT"})  # business only
    frames = run(_ws_session(url, args, 40))
    assert frames[0] == "pong"
    acks = [f for f in frames if isinstance(f, dict) and f.get("event") == "subscribe"]
    assert [a["arg"] for a in acks] == args[:3]
    errors = [f for f in frames if isinstance(f, dict) and f.get("event") == "error"]
    assert len(errors) == 1 and errors[0]["code"] == "60018" and "candle1m" in errors[0]["msg"]
    by_channel: dict[str, list[dict]] = {}
    for f in frames:
        if isinstance(f, dict) and "data" in f:
            by_channel.setdefault(f["arg"]["channel"], []).append(f)
    ticker = by_channel["tickers"][0]["data"][0]
    assert set(ticker) == set(TICKER_EXAMPLE)
    same_shape(ticker, TICKER_EXAMPLE)
    for trade in by_channel["trades"][0]["data"]:
        assert set(trade) == set(TRADE_EXAMPLE)
    books = by_channel["books"]
    assert books[0]["action"] == "snapshot" and books[0]["data"][0]["prevSeqId"] == -1
    for before, after in zip(books, books[1:], strict=False):
        assert after["action"] == "update"
        assert after["data"][0]["prevSeqId"] == before["data"][0]["seqId"]
    for push in books:
        same_shape(push["data"][0], {k: v for k, v in BOOK_WS_EXAMPLE.items() if k != "instId"})
    snap = books[0]["data"][0]
    interleaved = [x for pair in zip(snap["bids"][:25], snap["asks"][:25], strict=True)
                   for level in pair for x in level[:2]]
    crc = zlib.crc32(":".join(interleaved).encode())
    assert snap["checksum"] == (crc - 2**32 if crc >= 2**31 else crc)


def test_candles_stream_on_business_with_confirm(sim_factory: fixtures.SimFactory) -> None:
    """Candle pushes are 9 strings; the last push of a minute carries confirm "1"."""
    sim = okx_sim(sim_factory, speed=120.0)
    url = sim.base_url.replace("http", "ws") + "/ws/v5/business"
    frames = run(_ws_session(url, [{"channel": "candle1m", "instId": "BTC-USDT"}], 30))
    rows = [f["data"][0] for f in frames if isinstance(f, dict) and "data" in f]
    assert all(len(r) == len(CANDLE_EXAMPLE) and all(isinstance(v, str) for v in r)
               for r in rows)
    final = [r for r in rows if r[8] == "1"]
    assert final, "no candle closed in 30 frames at 120x"
    later = [r for r in rows if int(r[0]) > int(final[0][0])]
    assert later and all(r[8] == "0" for r in later[:1])


@pytest.mark.parametrize("bad", ["{", '{"op": "login"}', '{"op": "subscribe", "args": []}'])
def test_bad_requests_are_60012(sim_factory: fixtures.SimFactory, bad: str) -> None:
    sim = okx_sim(sim_factory, speed=FROZEN)
    url = sim.base_url.replace("http", "ws") + "/ws/v5/public"

    async def body() -> dict:
        async with aiohttp.ClientSession() as s, s.ws_connect(url) as ws:
            await ws.send_str(bad)
            return orjson.loads((await ws.receive(timeout=10)).data)

    reply = run(body())
    assert reply["event"] == "error" and reply["code"] == "60012"


# ccxt/okx.py parse_order: createOrder's acknowledgement and fetchOrder's spot order
ORDER_ACK_EXAMPLE = {"clOrdId": "oktswap6", "ordId": "312269865356374016", "tag": "",
                     "sCode": "0", "sMsg": ""}
ORDER_EXAMPLE = {
    "accFillSz": "0", "avgPx": "", "cTime": "1621910749815", "category": "normal", "ccy": "",
    "clOrdId": "", "fee": "0", "feeCcy": "ETH", "fillPx": "", "fillSz": "0", "fillTime": "",
    "instId": "ETH-USDT", "instType": "SPOT", "lever": "", "ordId": "317251910906576896",
    "ordType": "limit", "pnl": "0", "posSide": "net", "px": "2000", "rebate": "0",
    "rebateCcy": "USDT", "side": "buy", "slOrdPx": "", "slTriggerPx": "", "state": "live",
    "sz": "0.001", "tag": "", "tdMode": "cash", "tpOrdPx": "", "tpTriggerPx": "",
    "tradeId": "", "uTime": "1621910749815",
}  # fmt: skip
# ccxt/okx.py fetch_balance (GET /api/v5/account/balance, one entry of details)
BALANCE_DETAIL_EXAMPLE = {
    "availBal": "", "availEq": "28.21006347", "cashBal": "28.21006347", "ccy": "USDT",
    "crossLiab": "", "disEq": "28.2687404020176", "eq": "28.21006347",
    "eqUsd": "28.2687404020176", "frozenBal": "0", "interest": "", "isoEq": "0",
    "isoLiab": "", "liab": "", "maxLoan": "", "mgnRatio": "", "notionalLever": "0",
    "ordFrozen": "0", "twap": "0", "uTime": "1621556539861", "upl": "0", "uplLiab": "",
}  # fmt: skip


def test_private_bodies_match_the_documented_examples(sim_factory: fixtures.SimFactory) -> None:
    """Signed by ccxt's own okx class (OK-ACCESS-SIGN): the raw bodies it parses."""
    import ccxt.async_support as ccxt_async

    from tradeflow.exchange.ccxt_client import rebase_urls

    sim = okx_sim(sim_factory, speed=FROZEN)

    async def body() -> dict[str, Any]:
        ex = ccxt_async.okx({"apiKey": "sim-key", "secret": "sim-secret",
                             "password": "sim-passphrase",
                             "options": {"fetchMarkets": {"types": ["spot"]}}})
        ex.urls["api"] = rebase_urls(ex.urls["api"], sim.base_url)
        try:
            await ex.load_markets()
            last = (await ex.fetch_ticker("BTC/USDT"))["last"]
            placed = await ex.create_order("BTC/USDT", "limit", "buy", 0.001,
                                           round(last * 0.99, 2), {"clOrdId": "docs1"})
            got = await ex.fetch_order(placed["id"], "BTC/USDT")
            balance = await ex.fetch_balance()
            return {"ack": placed["info"], "order": got["info"], "balance": balance["info"],
                    "parsed": got, "free": balance["USDT"]}
        finally:
            await ex.close()

    got = run(body())
    same_shape(got["ack"], ORDER_ACK_EXAMPLE)
    assert got["ack"]["clOrdId"] == "docs1" and got["ack"]["sCode"] == "0"
    assert set(ORDER_EXAMPLE) <= set(got["order"])
    same_shape(got["order"], ORDER_EXAMPLE)
    assert got["order"]["state"] == "live" and got["order"]["sz"] == "0.001"
    assert got["parsed"]["status"] == "open" and got["parsed"]["clientOrderId"] == "docs1"
    details = got["balance"]["data"][0]["details"]
    usdt = next(d for d in details if d["ccy"] == "USDT")
    assert set(usdt) == set(BALANCE_DETAIL_EXAMPLE)
    same_shape(usdt, BALANCE_DETAIL_EXAMPLE)
    held = Decimal(usdt["frozenBal"])
    assert held > 0 and Decimal(usdt["eq"]) == Decimal(usdt["availBal"]) + held
    assert got["free"]["used"] == float(held)


def test_private_requests_need_okx_s_signature(sim_factory: fixtures.SimFactory) -> None:
    sim = okx_sim(sim_factory, speed=FROZEN)
    url = f"{sim.base_url}/api/v5/account/balance"

    async def body() -> list[tuple[int, Any]]:
        bad_sign = {"OK-ACCESS-KEY": "sim-key", "OK-ACCESS-PASSPHRASE": "sim-passphrase",
                    "OK-ACCESS-TIMESTAMP": "2026-01-01T00:00:00.000Z",
                    "OK-ACCESS-SIGN": "AAAA"}
        out = []
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        fresh = {**bad_sign, "OK-ACCESS-TIMESTAMP": now}
        cases = ({}, {**bad_sign, "OK-ACCESS-KEY": "nope"},
                 {**fresh, "OK-ACCESS-PASSPHRASE": "guess"}, bad_sign, fresh)
        async with aiohttp.ClientSession() as s:
            for headers in cases:
                async with s.get(url, headers=headers) as resp:
                    out.append((resp.status, (await resp.json())["code"]))
        return out

    assert run(body()) == [(401, "50103"), (401, "50111"), (401, "50105"), (401, "50102"),
                           (401, "50113")]
