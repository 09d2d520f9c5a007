"""Reading Binance Vision trades and aggTrades dumps: every layout gives the exchange's trades;
a bad file is one line naming it and the line."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from simulator import orderflow
from simulator.market import MINUTE_MS
from tests.fixtures.simulator import START_MS, frozen_venue
from tradeflow.market.readers import ImportFileError
from tradeflow.market.trade_import import is_trade_dump, read_trade_dump

T0 = START_MS - 3 * 60 * MINUTE_MS
SYMBOL = "ETH/USDT"


def sim_rows(kind: str, minutes: int = 20) -> list[dict]:
    """The simulator's trades or aggTrades of some minutes, as its REST API sends them."""
    venue = frozen_venue()
    spec, end = venue.specs[SYMBOL], T0 + minutes * MINUTE_MS - 1
    if kind == "trades":
        return orderflow.trades_rest(spec, venue.trades_from(SYMBOL, start=T0, end=end,
                                                             limit=10**6))
    return orderflow.agg_trades_rest(spec, venue.agg_trades(SYMBOL, start=T0, end=end,
                                                            limit=10**6))


def csv_lines(kind: str, rows: list[dict], *, us: bool = False, futures: bool = False,
              header: bool = False) -> list[str]:
    """A dump's lines, as Binance Vision writes them."""
    scale = 1000 if us else 1
    out = []
    if header:
        out.append("id,price,qty,quote_qty,time,is_buyer_maker" if kind == "trades" else
                   "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,"
                   "is_buyer_maker")
    for r in rows:
        if kind == "trades":
            cells = [r["id"], r["price"], r["qty"], r["quoteQty"], r["time"] * scale,
                     r["isBuyerMaker"]]
        else:
            cells = [r["a"], r["p"], r["q"], r["f"], r["l"], r["T"] * scale, r["m"]]
        if not futures:
            cells.append(True)
        out.append(",".join(str(c) for c in cells))
    return out


def write_dump(folder: Path, name: str, lines: list[str], *, zipped: bool = True) -> Path:
    text = "\n".join(lines) + "\n"
    if not zipped:
        path = folder / name.replace(".zip", ".csv")
        path.write_text(text)
        return path
    path = folder / name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name.replace(".zip", ".csv"), text)
    return path


def expected(kind: str, rows: list[dict]) -> pd.DataFrame:
    if kind == "trades":
        return pd.DataFrame({"id": [r["id"] for r in rows], "ts": [r["time"] for r in rows],
                             "price": [float(r["price"]) for r in rows],
                             "amount": [float(r["qty"]) for r in rows],
                             "side": ["sell" if r["isBuyerMaker"] else "buy" for r in rows]})
    return pd.DataFrame({"id": [r["f"] for r in rows], "ts": [r["T"] for r in rows],
                         "price": [float(r["p"]) for r in rows],
                         "amount": [float(r["q"]) for r in rows],
                         "side": ["sell" if r["m"] else "buy" for r in rows]})


@pytest.mark.parametrize("kind", ["trades", "aggTrades"])
@pytest.mark.parametrize(("us", "futures", "header", "zipped"), [
    (False, False, False, True), (True, False, False, True), (False, True, True, True),
    (False, True, False, False), (True, False, True, False)])
def test_every_layout_reads_as_the_exchanges_trades(tmp_path: Path, kind: str, us: bool,
                                                    futures: bool, header: bool,
                                                    zipped: bool) -> None:
    rows = sim_rows(kind)
    name = f"ETHUSDT-{kind}-2025-12-31.zip"
    folder = tmp_path / ("futures/um" if futures else "spot")
    folder.mkdir(parents=True)
    path = write_dump(folder, name, csv_lines(kind, rows, us=us, futures=futures,
                                              header=header), zipped=zipped)
    assert is_trade_dump(path)
    dump = read_trade_dump(path)
    assert dump.symbol == ("ETH/USDT:USDT" if futures else "ETH/USDT") and dump.kind == kind
    assert (dump.time_unit, dump.header, dump.checksum) == ("us" if us else "ms", int(header),
                                                             "absent")
    pd.testing.assert_frame_equal(dump.trades, expected(kind, rows))
    assert set(dump.trades["side"]) == {"buy", "sell"} and len(rows) > 500


def test_rows_out_of_order_and_repeated_rows(tmp_path: Path) -> None:
    rows = sim_rows("trades", 3)
    lines = csv_lines("trades", rows)
    shuffled = [lines[5], *lines, lines[0]]
    shuffled[1], shuffled[2] = shuffled[2], shuffled[1]
    dump = read_trade_dump(write_dump(tmp_path, "ETHUSDT-trades-2025-12-31.zip", shuffled))
    pd.testing.assert_frame_equal(dump.trades, expected("trades", rows))


def bad(tmp_path: Path, lines: list[str], name: str = "ETHUSDT-trades-2025-12-31.csv") -> str:
    path = write_dump(tmp_path, name, lines, zipped=False)
    with pytest.raises(ImportFileError) as err:
        read_trade_dump(path)
    text = str(err.value)
    assert "\n" not in text and str(path) in text
    return text


def test_bad_files_are_one_line_naming_the_line(tmp_path: Path) -> None:
    lines = csv_lines("trades", sim_rows("trades", 2))
    broken = list(lines)
    broken[7] = broken[7].replace(".", "x", 1)
    assert "line 8: price" in bad(tmp_path, broken)
    short = list(lines)
    short[3] = ",".join(short[3].split(",")[:5])
    assert "line 4: expected 7 columns, found 5" in bad(tmp_path, short)
    cells = lines[4].split(",")
    twice = [*lines, ",".join([cells[0], "1.00000000", *cells[2:]])]
    assert f"lines 5 and {len(lines) + 1}: two different trades" in bad(tmp_path, twice)
    # a trades dump named as aggTrades: the futures layout has too few columns for one
    futures = csv_lines("trades", sim_rows("trades", 2), futures=True)
    assert "line 1: expected 7 or 8 columns of a aggTrades dump, found 6" in bad(
        tmp_path, futures, "ETHUSDT-aggTrades-2025-12-31.csv")
    assert "line 1: first_id '" in bad(tmp_path, lines, "ETHUSDT-aggTrades-2025-12-31.csv")
    seconds = [ln.replace(f",{ln.split(',')[4]},", f",{int(ln.split(',')[4]) // 1000},")
               for ln in lines]
    assert "line 1: time" in bad(tmp_path, seconds) and "not between 2009" in bad(
        tmp_path, seconds)
    assert "not named as a Binance Vision trades" in bad(tmp_path, lines, "trades.csv")


def test_a_checksum_beside_the_dump_is_verified(tmp_path: Path) -> None:
    path = write_dump(tmp_path, "ETHUSDT-aggTrades-2025-12-31.zip",
                      csv_lines("aggTrades", sim_rows("aggTrades", 2)))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    (tmp_path / (path.name + ".CHECKSUM")).write_text(f"{digest}  {path.name}\n")
    assert read_trade_dump(path).checksum == "verified"
    (tmp_path / (path.name + ".CHECKSUM")).write_text(f"{'0' * 64}  {path.name}\n")
    with pytest.raises(ImportFileError, match="does not match"):
        read_trade_dump(path)
    assert not is_trade_dump(tmp_path / "ETHUSDT-1m-2025-12.zip")
