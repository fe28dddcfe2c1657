"""/health: 200 while the database answers, 503 when it does not."""

from __future__ import annotations

from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from adapters.http.app import create_app
from adapters.http.health import health_of
from adapters.wiring import bootstrap
from core.model.errors import Unavailable
from tests.support.builders import a_settings


async def test_health_is_200_on_a_working_database(tmp_path: Path) -> None:
    container = bootstrap(a_settings(tmp_path))
    try:
        async with AsyncTestClient(app=create_app(container)) as client:
            response = await client.get("/health")
    finally:
        container.close()
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_health_is_503_when_the_database_is_unreadable(tmp_path: Path) -> None:
    container = bootstrap(a_settings(tmp_path))
    try:
        async with AsyncTestClient(app=create_app(container)) as client:
            assert (await client.get("/health")).status_code == 200
            db_file = tmp_path / "sentry-jira.db"
            for name in ("sentry-jira.db-wal", "sentry-jira.db-shm"):
                (tmp_path / name).unlink(missing_ok=True)
            db_file.write_bytes(b"this is not a sqlite database" * 200)
            response = await client.get("/health")
    finally:
        container.close()
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"


async def test_A_health_reports_dead_letters_and_a_running_worker(tmp_path: Path) -> None:
    container = bootstrap(a_settings(tmp_path))
    try:
        async with AsyncTestClient(app=create_app(container)) as client:
            response = await client.get("/health")
            assert container.worker is not None and container.worker.running
    finally:
        container.close()
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "queue_depth": 0,
                               "oldest_pending_seconds": None, "dead_letters": 0}


async def test_A_health_is_503_when_no_worker_runs_anywhere(tmp_path: Path) -> None:
    """A process with its worker disabled is healthy only while some worker beats."""
    container = bootstrap(a_settings(tmp_path, worker="false"))
    try:
        async with AsyncTestClient(app=create_app(container)) as client:
            alone = await client.get("/health")
            assert container.upkeep is not None
            await container.upkeep.beat("another-process", container.clock.now())
            with_worker = await client.get("/health")
    finally:
        container.close()
    assert alone.status_code == 503
    assert alone.json() == {"status": "unavailable", "detail": "no sync worker is running",
                            "queue_depth": 0, "oldest_pending_seconds": None, "dead_letters": 0}
    assert alone.headers["retry-after"] == "5"
    assert with_worker.status_code == 200


async def test_A_health_is_unavailable_when_the_in_process_worker_stopped(tmp_path: Path) -> None:
    container = bootstrap(a_settings(tmp_path))
    try:
        await container.startup()
        assert (await health_of(container))["dead_letters"] == 0
        assert container.worker is not None
        await container.worker.stop()
        with pytest.raises(Unavailable, match="no sync worker"):
            await health_of(container)
    finally:
        await container.shutdown()
        container.close()
