"""New history streamed into the candles table in one INSERT, while the caller still makes it.

One INSERT costs DuckDB the least: an INSERT per file costs about 1.5x as much for a year of
monthly 1m files, and a transaction per file adds the file's open, checkpoint and close each
time. So a batch of new history (a series' candles where nothing is stored and no earlier
batch of the write has a candle) becomes part of one Arrow stream that a single INSERT
reads, each batch as soon as it is made: the importer's worker threads unzip and parse the
next files while DuckDB takes in the earlier ones. Every
other batch (one that may replace stored candles, another series than the first, rows with
a source of their own) is handed back, in order, for the store's replace path; a batch that
overlaps an earlier one is always handed back, so a later file's candle replaces an earlier
one's as if each were written alone.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator

import duckdb
import numpy as np
import pyarrow as pa

from tradeflow.market.tables import VALUE_COLUMNS, CandleBatch, SeriesKey, registered

_KEYS = ("exchange", "symbol", "timeframe", "source")
_TEXT = pa.dictionary(pa.int32(), pa.string())  # one value per batch: no string per row
STREAM_SCHEMA = pa.schema(
    [(k, _TEXT) for k in _KEYS] + [("open_time", pa.int64())]
    + [(c, pa.int64() if c == "trades" else pa.float64()) for c in VALUE_COLUMNS])
_INSERT = (f"INSERT INTO candles (exchange, symbol, timeframe, open_time, "
           f"{', '.join(VALUE_COLUMNS)}, ingested_at, source) SELECT exchange, symbol, "
           f"timeframe, open_time, {', '.join(VALUE_COLUMNS)}, now(), source FROM stream")


def insert_new_history(con: duckdb.DuckDBPyConnection, batches: Iterator[CandleBatch],
                       seen: list[CandleBatch]) -> list[CandleBatch]:
    """Insert the batches that are new history in one statement, inside the caller's
    transaction; returns the others in order. Appends every batch to ``seen`` as it is
    read (the caller quarantines and reports them)."""
    first = next(batches, None)
    if first is None:
        return []
    stored = _stored_span(con, first.key)
    spans: dict[SeriesKey, list[tuple[int, int]]] = {}
    deferred: list[CandleBatch] = []

    def new_history(batch: CandleBatch, span: tuple[int, int] | None) -> bool:
        if span is None or batch.key != first.key or "source" in batch.table.column_names:
            return False
        lo, hi = span
        if stored is not None and lo <= stored[1] and hi >= stored[0]:
            return False
        return not any(lo <= h and hi >= low for low, h in spans.get(batch.key, ()))

    failed: list[BaseException] = []

    def stream() -> Iterator[pa.RecordBatch]:
        try:
            for batch in itertools.chain([first], batches):
                seen.append(batch)
                span = _span(batch)
                if new_history(batch, span):
                    yield from _stream_table(batch).to_batches()
                else:
                    deferred.append(batch)
                if span is not None:
                    spans.setdefault(batch.key, []).append(span)
        except BaseException as exc:
            failed.append(exc)  # DuckDB reports it as its own error, traceback as text
            raise

    reader = pa.RecordBatchReader.from_batches(STREAM_SCHEMA, stream())
    with registered(con, "stream", reader):
        try:
            con.execute(_INSERT)
        except duckdb.Error:
            if failed:
                raise failed[0] from None  # the batch maker's own error, not DuckDB's wrapper
            raise
    return deferred


@contextlib.contextmanager
def one_thread(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """DuckDB on one thread for the block; call it outside the transaction (a SET fails in
    an aborted one). The stream is made by Python threads on the same cores: DuckDB's
    other threads mostly wait on it and take cores from them (measured on the importer's
    benchmark: about a third less CPU for the same or a shorter time). The setting is the
    database instance's, so a reader in another thread of this process runs on one thread
    too meanwhile."""
    threads = con.execute("SELECT current_setting('threads')").fetchone()
    con.execute("SET threads = 1")
    try:
        yield
    finally:
        con.execute(f"SET threads = {int(threads[0]) if threads else 1}")


def _span(batch: CandleBatch) -> tuple[int, int] | None:
    """(first, last) open_time of an ascending batch; None when it is empty."""
    times = batch.table["open_time"]
    return (times[0].as_py(), times[-1].as_py()) if len(times) else None


def _stored_span(con: duckdb.DuckDBPyConnection, key: SeriesKey) -> tuple[int, int] | None:
    row = con.execute(
        "SELECT min(open_time), max(open_time) FROM candles WHERE exchange = ? AND "
        "symbol = ? AND timeframe = ?", [key.exchange, key.symbol, key.timeframe]).fetchone()
    return None if row is None or row[0] is None else (int(row[0]), int(row[1]))


def _stream_table(batch: CandleBatch) -> pa.Table:
    n = len(batch.table)
    zeros = pa.array(np.zeros(n, dtype=np.int32))
    texts = [pa.DictionaryArray.from_arrays(zeros, pa.array([value], pa.string()))
             for value in (batch.key.exchange, batch.key.symbol, batch.key.timeframe,
                           batch.source)]
    values = [batch.table[c].cast(STREAM_SCHEMA.field(c).type)
              for c in ("open_time", *VALUE_COLUMNS)]
    return pa.Table.from_arrays([*texts, *values], schema=STREAM_SCHEMA)
