"""Import of candle files in every format: Binance Vision dumps (spot and futures, header or
not, ms or us, zip or csv, checksums), klines JSON bodies, freqtrade's json/json.gz/feather/
parquet, generic CSV with a column mapping; the timeframe read from the data; perpetuals;
corrupt files named in one line with nothing stored."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

from tradeflow.market.file_names import FileNameError, read_name, split_symbol
from tradeflow.market.importer import (
    ImportFileError,
    ImportOptions,
    ImportResult,
    import_file,
    import_paths,
    prepare_file,
)
from tradeflow.market.readers import (
    KLINE_COLUMNS,
    ReadOptions,
    load_bytes,
    parse_columns,
    read_file,
)
from tradeflow.market.store import MarketStore, SeriesKey

T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
MIN = 60_000
HOUR = 3_600_000
VALUES = ("open", "high", "low", "close", "volume", "quote_volume", "trades",
          "taker_buy_base", "taker_buy_quote")
FUTURES_HEADER = ("open_time,open,high,low,close,volume,close_time,quote_volume,count,"
                  "taker_buy_volume,taker_buy_quote_volume,ignore")


def kline_rows(n: int, micros: bool = False, start: int = T0, step: int = MIN) -> list[str]:
    rows = []
    for i in range(n):
        t = start + i * step
        scale = 1000 if micros else 1
        rows.append(
            f"{t * scale},{42000.1 + i},{42010.5 + i},{41990.0 + i},{42005.2 + i},12.5,"
            f"{(t + step - 1) * scale},525000.75,{100 + i},6.1,256000.2,0"
        )
    return rows


def write_zip(path: Path, rows: list[str], header: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(([header] if header else []) + rows) + "\n"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(path.with_suffix(".csv").name, text)
    return path


def ohlcv(n: int, step: int = HOUR, start: int = T0) -> pd.DataFrame:
    """A freqtrade-like frame: date (UTC datetimes), open, high, low, close, volume."""
    times = start + np.arange(n, dtype=np.int64) * step
    price = 10.0 + np.arange(n)
    return pd.DataFrame({"date": pd.to_datetime(times, unit="ms", utc=True), "open": price,
                         "high": price + 1, "low": price - 1, "close": price + 0.5,
                         "volume": np.full(n, 3.0)})


def stored(store: MarketStore, key: SeriesKey) -> pd.DataFrame:
    return store.read(key, columns=("open_time", *VALUES))


def test_monthly_zip_in_milliseconds_with_checksum(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "BTCUSDT-1m-2024-01.zip", kline_rows(30))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    (tmp_path / "BTCUSDT-1m-2024-01.zip.CHECKSUM").write_text(f"{digest}  {path.name}\n")
    store = MarketStore(":memory:")
    res = import_file(store, path)
    assert (res.symbol, res.timeframe, res.rows, res.checksum) == ("BTC/USDT", "1m", 30,
                                                                   "verified")
    assert res.absent == () and res.layout == "Binance Vision klines"
    frame = stored(store, SeriesKey("binance", "BTC/USDT", "1m"))
    assert frame["open_time"].iloc[0] == T0 and len(frame) == 30
    assert frame["quote_volume"].iloc[0] == 525000.75 and frame["trades"].iloc[1] == 101
    assert frame["taker_buy_base"].iloc[0] == 6.1 and frame["taker_buy_quote"].iloc[0] == 256000.2


def test_daily_csv_in_microseconds(tmp_path: Path) -> None:
    path = tmp_path / "ETHUSDC-1m-2025-02-03.csv"
    path.write_text("\n".join(kline_rows(5, micros=True)) + "\n")
    store = MarketStore(":memory:")
    res = import_file(store, path)
    assert res.symbol == "ETH/USDC" and res.first == T0 and res.last == T0 + 4 * MIN


def test_a_file_with_the_futures_header_and_one_without_store_the_same_candles(
        tmp_path: Path) -> None:
    rows = kline_rows(20)
    plain = write_zip(tmp_path / "spot" / "SOLUSDT-1m-2024-01.zip", rows)
    headed = write_zip(tmp_path / "futures" / "um" / "SOLUSDT-1m-2024-01.zip", rows,
                       header=FUTURES_HEADER)
    store = MarketStore(":memory:")
    assert import_file(store, plain).symbol == "SOL/USDT"
    assert import_file(store, headed).symbol == "SOL/USDT:USDT"  # a USDT-margined perpetual
    spot = stored(store, SeriesKey("binance", "SOL/USDT", "1m"))
    perp = stored(store, SeriesKey("binance", "SOL/USDT:USDT", "1m"))
    pd.testing.assert_frame_equal(spot, perp)


@pytest.mark.parametrize("group_rows", [1, 150, 10**6])
def test_many_files_store_what_importing_them_one_by_one_stores(
        tmp_path: Path, group_rows: int) -> None:
    jan = write_zip(tmp_path / "BTCUSDT-1m-2024-01.zip", kline_rows(100))
    bad = write_zip(tmp_path / "BTCUSDT-1m-2024-02.zip", kline_rows(5, start=T0 + 200 * MIN))
    bad.write_bytes(bad.read_bytes()[:-30])  # a truncated download in the middle
    # Overlaps January's last 10 candles with other prices: the later file wins.
    over = tmp_path / "BTCUSDT-1m-2024-03.csv"
    over.write_text("\n".join(r.replace(",12.5,", ",99.5,") for r in kline_rows(
        50, start=T0 + 90 * MIN)) + "\n")
    eth = write_zip(tmp_path / "ETHUSDT-1m-2024-01.zip", kline_rows(30))
    paths = [jan, bad, over, eth]
    store = MarketStore(tmp_path / "many.duckdb")
    seen: list[Path] = []
    outcomes = import_paths(store, paths, ImportOptions(), group_rows=group_rows,
                            done=lambda o: seen.append(o.path))
    assert seen == paths
    assert [type(o).__name__ for o in outcomes] == [
        "ImportResult", "ImportFailure", "ImportResult", "ImportResult"]
    assert [o.rows for o in outcomes if isinstance(o, ImportResult)] == [100, 50, 30]
    twin = MarketStore(":memory:")  # the obvious way: each good file alone, in order
    for path in (jan, over, eth):
        prepared = prepare_file(path, ImportOptions())
        twin.write(prepared.candles, exchange="binance", symbol=prepared.key.symbol,
                   timeframe="1m", source=f"import:{path.name}")
    query = "SELECT * EXCLUDE (ingested_at) FROM candles ORDER BY ALL"
    pd.testing.assert_frame_equal(store.sql(query), twin.sql(query))
    volumes = stored(store, SeriesKey("binance", "BTC/USDT", "1m"))["volume"]
    assert volumes.iloc[:90].eq(12.5).all() and volumes.iloc[90:].eq(99.5).all()
    assert store.duplicate_count() == 0


def test_bad_checksum_commits_nothing(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "BTCUSDT-1m-2024-01.zip", kline_rows(3))
    (tmp_path / "BTCUSDT-1m-2024-01.zip.CHECKSUM").write_text("0" * 64 + "  x\n")
    store = MarketStore(":memory:")
    with pytest.raises(ImportFileError, match="does not match"):
        import_file(store, path)
    assert store.series() == []


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda rows: rows.__setitem__(3, rows[3].replace("42003.1", "4x000")),
         "line 4: open '4x000' is not a number"),
        (lambda rows: rows.__setitem__(2, rows[2] + ",7"), "line 3: expected 12 columns"),
        (lambda rows: rows.__setitem__(4, rows[4].replace(str(T0 + 240_000), str(T0 + 240_123))),
         "line 5: open time .* not on the 1m grid"),
        (lambda rows: rows.__setitem__(4, rows[4].replace("42009.2", "")),
         "line 5: close is empty"),
        (lambda rows: rows.__setitem__(1, rows[1].replace(",12.5,", ",,")),
         "line 2: volume is empty"),
        (lambda rows: rows.__setitem__(5, rows[1].replace(",12.5,", ",13.5,")),
         "line 2 and line 6: two different candles"),
    ],
    ids=["not-a-number", "extra-column", "off-grid", "empty-close", "empty-volume", "twice"],
)
def test_corrupt_file_names_file_and_line_and_commits_nothing(
    tmp_path: Path, mutate: object, message: str
) -> None:
    rows = kline_rows(6)
    mutate(rows)  # type: ignore[operator]
    path = tmp_path / "SOLUSDT-1m-2024-01.csv"
    path.write_text("\n".join(rows) + "\n")
    store = MarketStore(":memory:")
    with pytest.raises(ImportFileError, match=message) as err:
        import_file(store, path)
    assert "SOLUSDT-1m-2024-01.csv" in str(err.value) and "\n" not in str(err.value)
    assert "nan" not in str(err.value)
    assert store.series() == []


def test_a_file_whose_spacing_is_not_its_timeframe_is_refused_naming_both(
        tmp_path: Path) -> None:
    one_minute = tmp_path / "BTCUSDT-8m-2024-01.csv"  # 1m candles under an 8m name
    one_minute.write_text("\n".join(kline_rows(64)) + "\n")
    store = MarketStore(":memory:")
    with pytest.raises(ImportFileError, match="spaced 1m apart .* the file name says 8m; "
                                              "allowed: 8m candles, or --timeframe 1m"):
        import_file(store, one_minute)
    hourly = tmp_path / "hourly.csv"
    hourly.write_text("\n".join(kline_rows(10, step=HOUR)) + "\n")
    with pytest.raises(ImportFileError, match="spaced 1h apart .* --timeframe says 1m"):
        import_file(store, hourly, symbol="BTC/USDT", timeframe="1m")
    assert store.series() == []
    # Gaps (an illiquid market) make larger steps, never a wrong timeframe.
    sparse = tmp_path / "BTCUSDT-1m-2024-02.csv"
    rows = kline_rows(200)
    sparse.write_text("\n".join(rows[:10] + rows[10::3]) + "\n")
    assert import_file(store, sparse).rows == 10 + len(rows[10::3])


def test_a_timeframe_nobody_declares_is_read_from_the_data(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text("timestamp,open,high,low,close,volume\n" + "\n".join(
        f"{(T0 + i * 4 * HOUR) // 1000},1,2,0.5,1.5,{i}" for i in range(6)) + "\n")
    store = MarketStore(":memory:")
    res = import_file(store, path, symbol="BTC/USDT")
    assert (res.timeframe, res.timeframe_from) == ("4h", "data")
    frame = stored(store, SeriesKey("binance", "BTC/USDT", "4h"))
    assert frame["open_time"].tolist() == [T0 + i * 4 * HOUR for i in range(6)]  # seconds read
    assert frame[["quote_volume", "trades", "taker_buy_base"]].isna().all().all()


def test_freqtrade_files_in_every_format_store_the_same_candles(tmp_path: Path) -> None:
    frame = ohlcv(24)
    rows = [[int(t.timestamp() * 1000), *r] for t, *r in frame.itertuples(index=False)]
    (tmp_path / "json").mkdir()
    (tmp_path / "json" / "BTC_USDT-1h.json").write_text(json.dumps(rows))
    (tmp_path / "gz").mkdir()
    (tmp_path / "gz" / "ETH_USDT-1h.json.gz").write_bytes(gzip.compress(json.dumps(rows).encode()))
    feather.write_feather(frame, tmp_path / "SOL_USDT-1h.feather")
    pq.write_table(pa.Table.from_pandas(frame), tmp_path / "XRP_USDT-1h.parquet")
    store = MarketStore(":memory:")
    results = [import_file(store, p) for p in (
        tmp_path / "json" / "BTC_USDT-1h.json", tmp_path / "gz" / "ETH_USDT-1h.json.gz",
        tmp_path / "SOL_USDT-1h.feather", tmp_path / "XRP_USDT-1h.parquet")]
    assert [r.symbol for r in results] == ["BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT"]
    assert all(r.absent == ("quote_volume", "trades", "taker_buy_base", "taker_buy_quote")
               for r in results)
    assert [r.layout for r in results][2:] == ["freqtrade feather", "freqtrade parquet"]
    first = stored(store, SeriesKey("binance", "BTC/USDT", "1h"))
    assert first["open_time"].tolist() == [T0 + i * HOUR for i in range(24)]
    assert first["close"].tolist() == frame["close"].tolist()
    assert first[["quote_volume", "trades", "taker_buy_base", "taker_buy_quote"]].isna().all().all()
    for symbol in ("ETH/USDT", "SOL/USDT", "XRP/USDT"):
        pd.testing.assert_frame_equal(stored(store, SeriesKey("binance", symbol, "1h")), first)


def test_freqtrade_futures_names_give_perpetuals_and_other_candle_kinds_are_refused(
        tmp_path: Path) -> None:
    assert read_name(Path("BTC_USDT_USDT-1h-futures.feather")).symbol == "BTC/USDT:USDT"
    assert read_name(Path("x/futures/cm/BTCUSD_PERP-1m-2024-01.zip")).symbol == "BTC/USD:BTC"
    assert read_name(Path("futures/um/BTCUSDT_240628-1m-2024-01.zip")).symbol == \
        "BTC/USDT:USDT-240628"
    for name, what in (("BTC_USDT_USDT-1h-mark.feather", "mark prices"),
                       ("BTC_USDT_USDT-8h-funding_rate.feather", "funding rates"),
                       ("BTC_USDT-trades.json", "trades file")):
        with pytest.raises(FileNameError, match=what):
            read_name(Path(name))
    path = tmp_path / "BTC_USDT_USDT-1h-futures.feather"
    feather.write_feather(ohlcv(5), path)
    store = MarketStore(":memory:")
    assert import_file(store, path).symbol == "BTC/USDT:USDT"
    assert store.series() == [SeriesKey("binance", "BTC/USDT:USDT", "1h")]


def test_a_captured_klines_body_is_read_as_binance_klines(tmp_path: Path) -> None:
    body = [[T0 + i * MIN, "42000.10", "42010.00", "41990.00", "42005.00", "1.5",
             T0 + i * MIN + 59_999, "63000.0", 12, "0.7", "29400.0", "0"] for i in range(4)]
    path = tmp_path / "body.json"
    path.write_text(json.dumps(body))
    store = MarketStore(":memory:")
    res = import_file(store, path, symbol="BTC/USDT", timeframe="1m")
    assert res.layout == "Binance klines json" and res.absent == ()
    frame = stored(store, SeriesKey("binance", "BTC/USDT", "1m"))
    assert frame["open"].tolist() == [42000.10] * 4 and frame["trades"].tolist() == [12] * 4
    assert frame["taker_buy_quote"].tolist() == [29400.0] * 4


def test_a_generic_csv_is_mapped_sorted_and_read_in_utc(tmp_path: Path) -> None:
    path = tmp_path / "kraken.csv"
    lines = ["Date,Symbol,O,H,L,Last,Volume XBT,Volume USD"]
    for i in reversed(range(5)):  # newest first, as many exports are written
        when = pd.Timestamp(T0 + i * HOUR, unit="ms").strftime("%Y-%m-%d %H:%M:%S")  # naive
        lines.append(f"{when},XBTUSD,10,11,9,10.5,{i + 1},{(i + 1) * 10.5}")
    path.write_text("\n".join(lines) + "\n")
    options = ImportOptions(symbol="BTC/USD", read=ReadOptions(columns=parse_columns(
        "open=O,high=H,low=L,close=Last,volume=Volume XBT,quote_volume=Volume USD")))
    store = MarketStore(":memory:")
    res = import_file(store, path, options)
    assert (res.timeframe, res.rows) == ("1h", 5)
    frame = stored(store, SeriesKey("binance", "BTC/USD", "1h"))
    assert frame["open_time"].tolist() == [T0 + i * HOUR for i in range(5)]
    assert frame["volume"].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert frame["quote_volume"].tolist() == [10.5, 21.0, 31.5, 42.0, 52.5]
    with pytest.raises(ValueError, match="--columns entry 'price=Last'"):
        parse_columns("price=Last")
    with pytest.raises(ImportFileError, match="no such column; the file has Date, Symbol"):
        import_file(store, path, ImportOptions(symbol="BTC/USD", read=ReadOptions(
            columns={"close": "Close"})))


def test_iso_times_with_a_zone_and_a_volume_in_the_quote_asset(tmp_path: Path) -> None:
    path = tmp_path / "quotes.csv"
    path.write_text("time,open,high,low,close,volume\n" + "\n".join(
        f"2024-01-01T0{i}:00:00+01:00,10,11,9,10.5,{100 + i}" for i in range(1, 4)) + "\n")
    store = MarketStore(":memory:")
    res = import_file(store, path, ImportOptions(symbol="ETH/EUR", read=ReadOptions(
        volume_unit="quote")))
    assert res.absent == ("volume", "trades", "taker_buy_base", "taker_buy_quote")
    # The base volume is unknown: stored NULL (never derived) and quarantined for training.
    assert res.quarantined == {"volume_not_nan": 3}
    frame = stored(store, SeriesKey("binance", "ETH/EUR", "1h"))
    assert frame["open_time"].tolist() == [T0, T0 + HOUR, T0 + 2 * HOUR]  # 01:00+01 = 00:00Z
    assert frame["volume"].isna().all() and frame["quote_volume"].tolist() == [101, 102, 103]


@pytest.mark.parametrize(("values", "unit", "forced"), [
    ([T0 // 1000 + 60 * i for i in range(3)], "s", None),
    ([(T0 + 60_000 * i) * 1000 for i in range(3)], "us", None),
    ([(T0 + 60_000 * i) * 1_000_000 for i in range(3)], "ns", None),
    ([T0 / 1000 + 60.0 * i for i in range(3)], "s", None),
    ([T0 // 1000 + 60 * i for i in range(3)], "s", "s"),
])
def test_numeric_times_in_any_unit(tmp_path: Path, values: list[float], unit: str,
                                   forced: str | None) -> None:
    path = tmp_path / "t.csv"
    path.write_text("ts,open,high,low,close,volume\n" + "\n".join(
        f"{v},1,2,0.5,1.5,1" for v in values) + "\n")
    parsed = read_file(path, ReadOptions(time_unit=forced))
    assert parsed.time_unit == unit
    assert parsed.frame["open_time"].tolist() == [T0, T0 + MIN, T0 + 2 * MIN]


def test_times_in_the_wrong_unit_are_refused_with_the_flag_that_fixes_them(
        tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("ts,open,high,low,close,volume\n" + "\n".join(
        f"{T0 // 1000 + 60 * i},1,2,0.5,1.5,1" for i in range(3)) + "\n")
    with pytest.raises(ImportFileError, match=r"open time 1704067200 \(1970-01-20.* read as "
                                              r"ms; allowed: times from 2009 to 2100 "
                                              r"\(--time-unit"):
        import_file(MarketStore(":memory:"), path, ImportOptions(
            symbol="BTC/USDT", read=ReadOptions(time_unit="ms")))


def test_every_single_byte_flip_of_a_zip_fails_in_one_line_or_reads_the_same_candles(
        tmp_path: Path) -> None:
    good = write_zip(tmp_path / "good" / "BTCUSDT-1m-2024-01.zip", kline_rows(8))
    original = good.read_bytes()
    expected = prepare_file(good, ImportOptions()).candles
    outcomes = {"refused": 0, "same": 0}
    path = tmp_path / "BTCUSDT-1m-2024-01.zip"
    for at in range(len(original)):
        flipped = bytearray(original)
        flipped[at] ^= 0xFF
        path.write_bytes(bytes(flipped))
        try:
            got = prepare_file(path, ImportOptions())  # what import_file would write
        except ImportFileError as exc:  # any other exception fails the test
            assert "\n" not in str(exc) and str(path) in str(exc)
            outcomes["refused"] += 1
            continue
        # A flip in a field nothing reads (a time stamp of the archive) changes nothing.
        pd.testing.assert_frame_equal(got.candles, expected)
        outcomes["same"] += 1
    assert outcomes["refused"] > len(original) // 2


@pytest.mark.parametrize("method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED])
def test_the_fast_unzip_equals_zipfiles_read_and_refuses_damaged_data(
        tmp_path: Path, method: int) -> None:
    text = ("\n".join(kline_rows(3000)) + "\n").encode()
    path = tmp_path / "BTCUSDT-1m-2024-01.zip"
    with zipfile.ZipFile(path, "w", method) as archive:
        info = zipfile.ZipInfo("BTCUSDT-1m-2024-01.csv", (2024, 2, 1, 0, 0, 0))
        info.extra = b"\xca\xfe\x04\x00abcd"  # an extra field shifts the data's start
        archive.writestr(info, text, compress_type=method)
    with zipfile.ZipFile(path) as archive:
        assert archive.read("BTCUSDT-1m-2024-01.csv") == text
    assert load_bytes(path) == (text, "BTCUSDT-1m-2024-01.csv")
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 3] ^= 0x01  # in the member's data: zlib's error or the CRC-32 check
    path.write_bytes(bytes(raw))
    with pytest.raises(ImportFileError, match=r"^\S+\.zip: not a valid zip archive \("):
        load_bytes(path)


def test_the_fast_csv_path_equals_a_plain_line_by_line_parse(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    rows = []
    for i in range(500):
        t = T0 + i * MIN
        o, c = rng.uniform(100, 200, 2).round(8)
        rows.append([t, o, max(o, c) + 1, min(o, c) - 1, c, round(rng.uniform(0, 5), 6),
                     t + MIN - 1, round(rng.uniform(0, 900), 4), int(rng.integers(0, 99)),
                     round(rng.uniform(0, 2), 6), round(rng.uniform(0, 400), 4), 0])
    rows[7][8] = ""  # a trade count missing: NULL, not zero
    path = tmp_path / "ADAUSDT-1m-2024-01.csv"
    path.write_text("\n".join(",".join(map(str, r)) for r in rows) + "\n")
    fast = read_file(path, ReadOptions()).frame
    slow: dict[str, list[float]] = {c: [] for c in KLINE_COLUMNS}
    for row in csv.reader(io.StringIO(path.read_text())):
        for name, cell in zip(KLINE_COLUMNS, row, strict=True):
            slow[name].append(float(cell) if cell else np.nan)
    for name in ("open_time", *VALUES):
        np.testing.assert_array_equal(fast[name].to_numpy(dtype=float, na_value=np.nan),
                                      np.asarray(slow[name]), err_msg=name)


def test_symbol_split_and_unknown_quote() -> None:
    assert split_symbol("BTCFDUSD") == "BTC/FDUSD"
    assert split_symbol("ETHBTC") == "ETH/BTC"
    with pytest.raises(FileNameError, match="--symbol"):
        split_symbol("FOOBAR")
