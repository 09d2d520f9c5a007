"""Binance error bodies: ``{"code": <negative int>, "msg": <text>}`` with an HTTP status."""

from __future__ import annotations

import orjson


class ApiError(Exception):
    """An error the simulator answers exactly as Binance does."""

    def __init__(self, status: int, code: int, msg: str):
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg

    def body(self) -> bytes:
        return orjson.dumps({"code": self.code, "msg": self.msg})


def mandatory(name: str) -> ApiError:
    """Binance's -1102 for a missing parameter."""
    msg = f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    return ApiError(400, -1102, msg)


def rejected(msg: str) -> ApiError:
    """Binance's -2010 NEW_ORDER_REJECTED."""
    return ApiError(400, -2010, msg)


def filter_failure(name: str) -> ApiError:
    """Binance's -1013 for an order that breaks a symbol filter."""
    return ApiError(400, -1013, f"Filter failure: {name}")
