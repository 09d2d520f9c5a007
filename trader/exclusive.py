"""One trader per strategy and ledger: a lock the database or the OS releases when the holder dies.

Several traders run side by side (one Prefect flow run per strategy), and a crashed one is
restarted automatically, so two processes could otherwise trade the same strategy into the
same ledger: a restart that overlaps a run still stopping, or a second ``tradeflow trade``.
The lock is held for the trader's whole run:

* PostgreSQL ledger: a session-level advisory lock (``pg_try_advisory_lock``) on its own
  connection. The server drops it the moment that connection ends, a killed process included,
  and it works across hosts.
* SQLite ledger: ``flock`` on a file beside the database. The kernel drops it when the
  process's file descriptor closes, ``kill -9`` included; a SQLite ledger is one host's anyway.

A second trader of the same strategy fails at once with one line saying so.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa

from tradeflow.errors import UserError
from trader.ledger.database import create_ledger_engine


class StrategyBusy(UserError):
    """Another process trades this strategy into this ledger."""


def lock_key(strategy: str) -> int:
    """A stable signed 64-bit advisory-lock key for ``strategy``."""
    digest = hashlib.blake2b(f"tradeflow-trader:{strategy}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def lock_file(ledger_url: str, strategy: str) -> Path:
    """The lock file of ``strategy`` beside a SQLite ledger."""
    database = Path(sa.make_url(ledger_url).database or "")
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in strategy)
    return database.with_name(f"{database.name}.{safe}.lock")


@contextlib.contextmanager
def strategy_lock(ledger_url: str, strategy: str) -> Iterator[None]:
    """Hold the lock of ``strategy`` on ``ledger_url``; :class:`StrategyBusy` when taken."""
    url = sa.make_url(ledger_url)
    if url.get_backend_name() == "sqlite":
        with _file_lock(lock_file(ledger_url, strategy), strategy):
            yield
    else:
        with _advisory_lock(url, strategy):
            yield


def _busy(strategy: str) -> StrategyBusy:
    return StrategyBusy(f"strategy {strategy!r} is already being traded by another process "
                        "on this ledger; one trader per strategy (stop it first, or wait "
                        "for it to end)")


@contextlib.contextmanager
def _file_lock(path: Path, strategy: str) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _busy(strategy) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())  # who holds it, for a person looking
        yield
    finally:
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def _advisory_lock(url: sa.URL, strategy: str) -> Iterator[None]:
    engine = create_ledger_engine(url, poolclass=sa.pool.NullPool)  # its own connection
    try:
        with engine.connect() as conn:
            key = lock_key(strategy)
            taken = conn.scalar(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key})
            conn.commit()
            if not taken:
                raise _busy(strategy)
            try:
                yield
            finally:
                with contextlib.suppress(sa.exc.SQLAlchemyError):
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    conn.commit()
    finally:
        engine.dispose()
