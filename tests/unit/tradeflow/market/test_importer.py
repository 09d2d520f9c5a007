"""Binance Vision kline dump import: zip/csv, ms/us timestamps, checksums, corrupt files."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tradeflow.market.file_names import FileNameError, split_symbol
from tradeflow.market.importer import ImportFileError, import_file
from tradeflow.market.store import MarketStore, SeriesKey

ROOT = Path(__file__).resolve().parents[4]
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC


def kline_rows(n: int, micros: bool = False, start: int = T0) -> list[str]:
    rows = []
    for i in range(n):
        t = start + i * 60_000
        scale = 1000 if micros else 1
        rows.append(
            f"{t * scale},42000.1,42010.5,41990.0,42005.2,12.5,{(t + 59_999) * scale},"
            f"525000.75,{100 + i},6.1,256000.2,0"
        )
    return rows


def write_zip(path: Path, rows: list[str]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(path.with_suffix(".csv").name, "\n".join(rows) + "\n")
    return path


def test_monthly_zip_in_milliseconds_with_checksum(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "BTCUSDT-1m-2024-01.zip", kline_rows(30))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    (tmp_path / "BTCUSDT-1m-2024-01.zip.CHECKSUM").write_text(f"{digest}  {path.name}\n")
    store = MarketStore(":memory:")
    res = import_file(store, path)
    assert (res.symbol, res.timeframe, res.rows, res.checksum) == ("BTC/USDT", "1m", 30,
                                                                   "verified")
    frame = store.read(SeriesKey("binance", "BTC/USDT", "1m"))
    assert frame["open_time"].iloc[0] == T0 and len(frame) == 30
    assert frame["quote_volume"].iloc[0] == 525000.75 and frame["trades"].iloc[1] == 101


def test_daily_csv_in_microseconds(tmp_path: Path) -> None:
    path = tmp_path / "ETHUSDC-1m-2025-02-03.csv"
    path.write_text("\n".join(kline_rows(5, micros=True)) + "\n")
    store = MarketStore(":memory:")
    res = import_file(store, path)
    assert res.symbol == "ETH/USDC" and res.first == T0 and res.last == T0 + 4 * 60_000


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
        (lambda rows: rows.__setitem__(3, rows[3].replace("42000.1", "4x000")),
         "line 4: open '4x000' is not a number"),
        (lambda rows: rows.__setitem__(2, rows[2] + ",7"), "line 3: expected 12 columns"),
        (lambda rows: rows.__setitem__(4, rows[4].replace(str(T0 + 240_000), str(T0 + 240_123))),
         "line 5: open time .* not on the 1m grid"),
    ],
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
    assert "SOLUSDT-1m-2024-01.csv" in str(err.value)
    assert store.series() == []


def test_symbol_split_and_unknown_quote() -> None:
    assert split_symbol("BTCFDUSD") == "BTC/FDUSD"
    assert split_symbol("ETHBTC") == "ETH/BTC"
    with pytest.raises(FileNameError, match="--symbol"):
        split_symbol("FOOBAR")


def test_cli_import_reports_each_file_and_exit_code(tmp_path: Path) -> None:
    good = write_zip(tmp_path / "BTCUSDT-1h-2024-01.zip",
                     [r for i, r in enumerate(kline_rows(180)) if i % 60 == 0])
    bad = tmp_path / "BTCUSDT-1m-2024-02.csv"
    bad.write_text("garbage\n1,2\n")
    env_store = tmp_path / "store.duckdb"
    proc = subprocess.run(
        [sys.executable, "-m", "cli.main", "import", str(good), str(bad)],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
        env={"PATH": "", "TRADEFLOW_STORE__PATH": str(env_store), "HOME": str(tmp_path)},
    )
    assert proc.returncode == 1, proc.stderr
    assert "imported BTCUSDT-1h-2024-01.zip: 3 candles BTC/USDT 1h" in proc.stdout
    assert "FAILED" in proc.stdout and "BTCUSDT-1m-2024-02.csv, line 2" in proc.stdout
    assert "1 of 2 files imported" in proc.stdout
