"""The check that a ``prefect deploy`` output carries no HTTP 422 must not trip on ids or ports."""

from __future__ import annotations

from tests.fixtures.prefect import http_422_in


def test_a_deployment_id_or_port_holding_422_is_not_an_error() -> None:
    # Printed by a clean `prefect deploy` in CI on 2026-11-21; the old substring check failed on it.
    out = ("Deployment 'backfill/backfill' successfully created with id\n"
           "'06848422-703e-4898-8cb6-4d11fc6973ff'.\n"
           "View Deployment in UI: http://127.0.0.1:42201/deployments/deployment/"
           "422abcde-0000-4422-8422-000000000422x")
    assert not http_422_in(out)


def test_an_http_422_is_found() -> None:
    assert http_422_in("httpx.HTTPStatusError: Client error '422 Unprocessable Entity' for url")
    assert http_422_in("Response status code 422")
    assert http_422_in('{"detail": "Unprocessable"}')


LOCKED = """11:43:01.697 | ERROR   | prefect.server.utilities.worker_channel - Worker channel \
heartbeat persistence failed: work_pool=tradeflow-local
Traceback (most recent call last):
  File "sqlalchemy/engine/base.py", line 2000, in _exec_single_context
sqlite3.OperationalError: database is locked
"""
REAL = """11:44:02.100 | ERROR   | prefect.server - Encountered exception in request:
Traceback (most recent call last):
  File "fastapi/routing.py", line 1, in app
TypeError: Body() got an unexpected keyword argument 'min_items'
"""


def test_server_errors_skip_sqlite_lock_contention_and_keep_the_rest() -> None:
    from tests.fixtures.prefect import server_errors

    info = "11:40:00.000 | INFO    | uvicorn.error - Application startup complete.\n"
    assert server_errors(info + LOCKED) == []
    errors = server_errors(info + LOCKED + REAL + info)
    assert len(errors) == 1 and "min_items" in errors[0] and "locked" not in errors[0]
