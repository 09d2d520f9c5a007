"""Log files: one JSON object per line under ``<data_dir>/logs/<service>.log``, rotated.

:func:`attach_file_log` adds the file beside the process's readable stderr log and redacts
secrets in both: the profile's API key and secret wherever they appear, passwords in URLs and
DSNs, and the signature or key of a signed exchange request. Calling it again (another command
in the same process) replaces the file handler rather than adding one.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from logging.handlers import RotatingFileHandler
from pathlib import Path

from tradeflow.config import Settings

MAX_BYTES = 10 * 1024 * 1024
BACKUPS = 5
_PATTERNS = (
    (re.compile(r"(://[^/:@\s]*:)[^/@\s]*@"), r"\1***@"),                      # URL password
    (re.compile(r"(\bpassword\s*=\s*)('[^']*'|[^\s&]+)", re.IGNORECASE), r"\1***"),  # DSN
    (re.compile(r"((?:signature|apiKey|api_key|api_secret|secret)=)[^&\s'\",}]+",
                re.IGNORECASE), r"\1***"),                                      # query strings
    (re.compile(r"(X-MBX-APIKEY['\"]?\s*[:=]\s*['\"]?)[^'\"\s,}]+", re.IGNORECASE), r"\1***"),
)
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every known secret value and secret-looking parameter replaced by ***."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactFilter(logging.Filter):
    """Redacts the formatted message (and a traceback) of every record it passes."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_redacted", False):
            return True
        record.msg = redact(record.getMessage(), self.secrets)
        record.args = None
        if record.exc_info:
            # Format the traceback now, redacted; handlers then print this text.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info),
                                     self.secrets)
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        record._redacted = True
        return True


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per record: time (UTC ISO), level, logger, message, pid, extras."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value if isinstance(value, str | int | float | bool) else str(value)
        return json.dumps(line, ensure_ascii=False)


def secrets_of(settings: Settings) -> list[str]:
    """The secret values of a profile (API key and secret)."""
    out = []
    for secret in (settings.exchange.api_key, settings.exchange.api_secret):
        if secret is not None and secret.get_secret_value():
            out.append(secret.get_secret_value())
    return out


def log_path(settings: Settings, service: str) -> Path:
    return settings.data_dir / "logs" / f"{service}.log"


class _LazyFile(RotatingFileHandler):
    """The log file, created with its directory at the first record (a command that fails
    before logging creates nothing); a file that cannot be created disables it quietly:
    the command reports its own error."""

    broken = False
    service = ""

    def emit(self, record: logging.LogRecord) -> None:
        if self.broken:
            return
        if self.stream is None:
            try:
                Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
                self.stream = self._open()
            except OSError:
                self.broken = True
                return
            super().emit(_line(f"{self.service} started (pid {os.getpid()})"))
        super().emit(record)


def _line(message: str) -> logging.LogRecord:
    return logging.makeLogRecord({"name": "tradeflow.logs", "levelno": logging.INFO,
                                  "levelname": "INFO", "msg": message})


def attach_file_log(settings: Settings, service: str,
                    logger: logging.Logger | None = None) -> Path:
    """Log ``logger`` (default: the root) to ``<data_dir>/logs/<service>.log`` as JSON lines,
    with secrets redacted there and on its other handlers; returns the file's path."""
    root = logger or logging.getLogger()
    path = log_path(settings, service)
    redactor = RedactFilter(secrets_of(settings))
    for handler in list(root.handlers):
        if getattr(handler, "_tradeflow_file_log", False):
            root.removeHandler(handler)
            handler.close()
            continue
        for old in [f for f in handler.filters if isinstance(f, RedactFilter)]:
            handler.removeFilter(old)
        handler.addFilter(redactor)
    handler = _LazyFile(path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8",
                        delay=True)
    handler.service = service
    handler.setFormatter(JsonLinesFormatter())
    handler.addFilter(redactor)
    handler._tradeflow_file_log = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    return path


def detach_file_log(logger: logging.Logger | None = None) -> None:
    """Remove and close the file handler :func:`attach_file_log` added (end of a command)."""
    root = logger or logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_tradeflow_file_log", False):
            if handler.stream is not None:  # type: ignore[attr-defined]
                handler.emit(_line(f"ended (pid {os.getpid()})"))
            root.removeHandler(handler)
            handler.close()


@contextmanager
def file_log(settings: Settings, service: str) -> Iterator[Path]:
    """:func:`attach_file_log` for the duration of a block (a long-running flow run)."""
    path = attach_file_log(settings, service)
    try:
        yield path
    finally:
        detach_file_log()


def tail(path: Path, lines: int) -> list[str]:
    """The last ``lines`` lines of ``path`` (reads only the end of a big file)."""
    with path.open("rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        block, data = 8192, b""
        while size > 0 and data.count(b"\n") <= lines:
            step = min(block, size)
            size -= step
            f.seek(size)
            data = f.read(step) + data
    return data.decode("utf-8", errors="replace").splitlines()[-lines:]
