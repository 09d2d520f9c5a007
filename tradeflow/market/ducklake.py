"""The market store on DuckLake: its catalog in PostgreSQL, its data Parquet files under a path
every host shares. Many processes on many hosts read and write at once.

DuckLake keeps DuckDB's SQL: a process attaches the lake once (``ATTACH 'ducklake:postgres:
<dsn>'``) and every operation gets a cursor on it with the lake as its default catalog, so the
store's queries and those of its callers run unchanged. A reader sees the snapshot its
transaction began on and never waits for a writer.

DuckLake has no unique constraints, and two transactions appending to one table both commit,
so "insert what is not stored yet" alone would store a candle twice when two processes write
one series at once. Writers of a series therefore hold a PostgreSQL advisory lock on it (the
catalog's own server; :meth:`DuckLakeCatalog.series_lock`) from before their transaction
begins until it has committed: the second writer's transaction starts after the first one's
commit and its anti-join sees those candles. Writers of different series never wait for each
other. Any other conflict DuckLake reports (a compaction rewriting files a delete touches) is
retried with backoff by :meth:`DuckLakeCatalog.retrying`.

The extensions are loaded from the files their PyPI packages install
(``duckdb-extension-ducklake``, ``duckdb-extension-postgres-scanner``, pinned with duckdb in
constraints.txt): the network ``INSTALL`` is never used.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from importlib import import_module
from pathlib import Path
from typing import TypeVar

import duckdb

from tradeflow.errors import UserError

T = TypeVar("T")

LAKE = "lake"  # the name the lake is attached under in every process
_EXTENSIONS = (("duckdb_extension_postgres_scanner", "postgres_scanner"),
               ("duckdb_extension_ducklake", "ducklake"))
_SCHEMA_LOCK = "tradeflow:market-store:schema"
_CONFLICT_RETRIES = 12


class _Lake:
    """One attached lake per (catalog, data path) in a process, shared by its stores."""

    def __init__(self) -> None:
        self.con: duckdb.DuckDBPyConnection | None = None
        self.locks: object | None = None  # the psycopg connection holding advisory locks
        self.write_lock = threading.Lock()
        self.guard = threading.Lock()


_LAKES: dict[tuple[str, str, int], _Lake] = {}
_LAKES_GUARD = threading.Lock()


def extension_file(package: str, name: str) -> Path:
    """The ``.duckdb_extension`` file a PyPI extension package installs for this duckdb."""
    try:
        module = import_module(package)
    except ImportError:
        raise UserError(f"store.engine ducklake needs the Python package "
                        f"{package.replace('_', '-')}=={duckdb.__version__} (see "
                        "constraints.txt)") from None
    root = Path(module.__file__ or "").parent / "extensions"
    path = root / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    if not path.is_file():
        found = sorted(p.parent.name for p in root.glob(f"*/{name}.duckdb_extension"))
        raise UserError(f"{package.replace('_', '-')} has {name} for duckdb {found or 'none'}, "
                        f"not for the installed duckdb {duckdb.__version__}: pin them together")
    return path


def lock_id(name: str) -> int:
    """A signed 64-bit PostgreSQL advisory lock id for a name (stable across processes)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big",
                          signed=True)


def is_conflict(exc: BaseException) -> bool:
    """DuckLake's transaction conflict (another commit touched what this one changes)."""
    return isinstance(exc, duckdb.TransactionException) or (
        isinstance(exc, duckdb.Error) and "conflict" in str(exc).lower())


class DuckLakeCatalog:
    """Cursors on one DuckLake (catalog DSN + data path), with the same interface as
    :class:`~tradeflow.market.duckdb_file.DuckDBFile`."""

    def __init__(self, catalog: str, data_path: str, *, read_only: bool = False) -> None:
        self.catalog = catalog
        self.path = str(data_path)
        self.read_only = read_only
        with _LAKES_GUARD:
            # keyed by pid too: a forked child must not use its parent's connections
            self._lake = _LAKES.setdefault((catalog, self.path, os.getpid()), _Lake())

    def close(self) -> None:
        """Nothing to release: the process keeps its attached lake for the next store."""

    def __str__(self) -> str:
        return f"ducklake:postgres:{self.catalog} (data {self.path})"

    # -- connections -----------------------------------------------------------------------
    @contextlib.contextmanager
    def connect(self, *, write: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor on the lake for one operation; ``write`` ones are serialised within the
        process (across processes, :meth:`series_lock` orders writers of one series)."""
        lock = self._lake.write_lock if write else contextlib.nullcontext()
        with lock:
            cursor = self._attached().cursor()
            try:
                cursor.execute(f"USE {LAKE}")
                yield cursor
            finally:
                cursor.close()

    def _attached(self) -> duckdb.DuckDBPyConnection:
        lake = self._lake
        with lake.guard:
            if lake.con is None:
                con = duckdb.connect()
                for package, name in _EXTENSIONS:
                    con.execute(f"LOAD '{extension_file(package, name)}'")
                Path(self.path).mkdir(parents=True, exist_ok=True)
                # The first ATTACH creates the catalog's tables: one process at a time.
                with self._advisory([_SCHEMA_LOCK]):
                    con.execute(f"ATTACH 'ducklake:postgres:{_quoted(self.catalog)}' AS {LAKE} "
                                f"(DATA_PATH '{_quoted(self.path)}/')")
                lake.con = con
            return lake.con

    # -- cross-process ordering --------------------------------------------------------------
    @contextlib.contextmanager
    def series_lock(self, names: Iterable[str]) -> Iterator[None]:
        """Hold PostgreSQL advisory locks on ``names`` (series keys) for the block.

        Call it around a whole write transaction, outside it: the transaction must begin
        after the lock is held so it sees the previous writer's commit.
        """
        with self._advisory(names):
            yield

    @contextlib.contextmanager
    def _advisory(self, names: Iterable[str]) -> Iterator[None]:
        ids = sorted({lock_id(n) for n in names})  # one order everywhere: no deadlock
        con = self._locks()
        for i in ids:
            con.execute("SELECT pg_advisory_lock(%s)", [i])
        try:
            yield
        finally:
            for i in reversed(ids):
                con.execute("SELECT pg_advisory_unlock(%s)", [i])

    def _locks(self):  # noqa: ANN202 - a psycopg connection, imported lazily
        lake = self._lake
        if lake.locks is None or lake.locks.closed:  # type: ignore[attr-defined]
            import psycopg

            lake.locks = psycopg.connect(self.catalog, autocommit=True)
        return lake.locks

    def retrying(self, operation: Callable[[], T]) -> T:
        """Run ``operation`` (one whole transaction), again while DuckLake reports a
        conflict with a concurrent commit, with jittered exponential backoff."""
        delay = 0.02
        for attempt in range(_CONFLICT_RETRIES + 1):
            try:
                return operation()
            except duckdb.Error as exc:
                if not is_conflict(exc) or attempt == _CONFLICT_RETRIES:
                    raise
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 1.0)
        raise AssertionError("unreachable")

    def ensure_schema(self, create: Callable[[duckdb.DuckDBPyConnection], None]) -> None:
        """Run ``create`` (idempotent DDL) once at a time across every process."""
        with self._advisory([_SCHEMA_LOCK]), self.connect(write=True) as con:
            self.retrying(lambda: create(con))

    # -- maintenance -----------------------------------------------------------------------
    def compact(self, *, keep_hours: float = 1.0) -> dict[str, int]:
        """Merge small Parquet files, fold deletes into rewritten files, expire snapshots
        older than ``keep_hours`` and delete the files nothing references any more.

        Safe beside writers and readers: a reader keeps the snapshot it began on (files of
        snapshots younger than ``keep_hours`` stay). Returns file counts before and after.
        """
        keep = f"INTERVAL '{float(keep_hours) * 3600:.0f} seconds'"
        with self.connect(write=True) as con:
            before = _data_files(con)
            for call in (f"CALL ducklake_flush_inlined_data('{LAKE}')",
                         f"CALL ducklake_rewrite_data_files('{LAKE}', delete_threshold => 0.0)",
                         f"CALL ducklake_merge_adjacent_files('{LAKE}')",
                         f"CALL ducklake_expire_snapshots('{LAKE}', older_than => now() - {keep})",
                         f"CALL ducklake_cleanup_old_files('{LAKE}', "
                         f"older_than => now() - {keep})"):
                self.retrying(lambda call=call: con.execute(call).fetchall())
            after = _data_files(con)
        return {"files_before": before, "files_after": after}


def _data_files(con: duckdb.DuckDBPyConnection) -> int:
    row = con.execute(f"SELECT count(*) FROM __ducklake_metadata_{LAKE}.ducklake_data_file "
                      "WHERE end_snapshot IS NULL").fetchone()
    return int(row[0]) if row else 0


def _quoted(text: str) -> str:
    return text.replace("'", "''")
