"""An import whose process dies or stops keeps nothing, and its job ends (a real server, real signals)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import threading
from pathlib import Path

import pytest
import requests

from tests.conftest import browser_sign_in, csrf_token_in, start_server
from tests.waiting import eventually

ROWS = 20_000
BOOKS = {
    "name": "books",
    "label": "Books",
    "fields": [{"name": "title", "type": "text", "required": True}, {"name": "pages", "type": "integer"}],
    "permissions": {"editor": ["view", "create"]},
}


def big_csv() -> bytes:
    return ("title,pages\n" + "".join(f"Book {i},{i % 900}\n" for i in range(ROWS))).encode()


def jobs_dir(home: Path) -> Path:
    return home / "run" / "imports"


def wait_for_writing(home: Path, at_least: int = 1000, timeout: float = 60) -> dict:
    """The job file once the import is writing and has written ``at_least`` rows."""

    def writing() -> dict | None:
        for path in jobs_dir(home).glob("*.json"):
            try:
                job = json.loads(path.read_text())
            except ValueError:
                continue
            if job.get("state") == "running" and job.get("phase") == "writing" and job.get("done", 0) >= at_least:
                return job
            assert job.get("state") != "done", "the import finished before it could be interrupted"
        return None

    return eventually(writing, timeout=timeout, interval=0.01, message="the import never got to writing")


def rows_in(home: Path) -> tuple[int, int, int]:
    """(records in the table, the collection's row_count, history versions) read straight from the file."""
    db = sqlite3.connect(home / "db" / "appliance.sqlite3")
    try:
        count = db.execute('SELECT COUNT(*) FROM "c_books"').fetchone()[0]
        row_count = db.execute("SELECT row_count FROM collection WHERE name = 'books'").fetchone()[0]
        versions = db.execute("SELECT COUNT(*) FROM record_version WHERE collection = 'books'").fetchone()[0]
    finally:
        db.close()
    return count, row_count, versions


@pytest.fixture
def books_home(home, personas, api_token_for):
    from appliance.accounts.users import get_user
    from appliance.collections.definitions import create_collection
    from appliance.collections.schema import table_name
    from appliance.storage.db import database

    with database.connection_context():
        create_collection(BOOKS, get_user(personas.admin.id))
    assert table_name("books") == "c_books"
    return home, personas, api_token_for(personas.editor.email)


def start_page_import(server, personas) -> str:
    """Upload the big file through the import page and run it; returns the job page's path."""
    session, _token = browser_sign_in(server.url, personas.editor.email, personas.editor.password)
    page = session.get(server.url + "c/books/import", timeout=10).text
    answer = session.post(
        server.url + "c/books/import",
        data={"csrf_token": csrf_token_in(page)},
        files={"file": ("books.csv", big_csv(), "text/csv")},
        allow_redirects=False,
        timeout=30,
    )
    assert answer.status_code == 302, answer.text[:500]
    job_path = answer.headers["Location"]
    page = session.get(server.url + job_path.lstrip("/"), timeout=10).text
    answer = session.post(
        server.url + job_path.lstrip("/") + "/run",
        data={"csrf_token": csrf_token_in(page), "map-0": "title", "map-1": "pages"},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 302
    return job_path


def job_page_after_restart(home: Path, personas, job_path: str) -> str:
    server = start_server(home, workers=1)
    try:
        session, _ = browser_sign_in(server.url, personas.editor.email, personas.editor.password)
        return session.get(server.url + job_path.lstrip("/"), timeout=10).text
    finally:
        server.stop()


def test_an_api_import_whose_worker_is_killed_keeps_no_rows_once_the_server_restarts(books_home):
    home, _personas, token = books_home
    server = start_server(home, workers=1)
    try:
        outcome: dict = {}

        def post() -> None:
            try:
                outcome["answer"] = requests.post(
                    server.url + "api/collections/books/import",
                    headers={"Authorization": f"Bearer {token}"},
                    files={"file": ("books.csv", big_csv(), "text/csv")},
                    timeout=120,
                )
            except requests.RequestException as exc:
                outcome["error"] = exc

        poster = threading.Thread(target=post)
        poster.start()
        job = wait_for_writing(home)
        os.kill(job["pid"], signal.SIGKILL)
        poster.join(timeout=30)
        assert "answer" not in outcome or outcome["answer"].status_code >= 500
        assert rows_in(home)[0] > 0, "the kill came too late to leave rows behind"
    finally:
        server.stop()
    # The parent's start-up finds the job still "running" and undoes its range.
    restarted = start_server(home, workers=1)
    restarted.stop()
    assert rows_in(home) == (0, 0, 0)
    final = json.loads((jobs_dir(home) / f"{job['id']}.json").read_text())
    assert final["state"] == "failed" and final["error"]["code"] == "interrupted"
    assert not list(jobs_dir(home).glob("*.ids*"))


def test_a_page_import_whose_worker_is_killed_says_interrupted_and_can_be_uploaded_again(books_home):
    home, personas, _token = books_home
    server = start_server(home, workers=1)
    try:
        job_path = start_page_import(server, personas)
        job = wait_for_writing(home)
        os.kill(job["pid"], signal.SIGKILL)
    finally:
        server.stop()
    assert rows_in(home)[0] > 0
    page = job_page_after_restart(home, personas, job_path)
    assert rows_in(home) == (0, 0, 0)
    assert "interrupted" in page and 'http-equiv="refresh"' not in page
    assert "Upload the file again" in page


def test_a_sigterm_of_the_server_mid_import_undoes_the_rows_before_the_worker_exits(books_home):
    home, personas, _token = books_home
    server = start_server(home, workers=1)
    job_path = start_page_import(server, personas)
    job = wait_for_writing(home)
    assert server.stop() == 0
    # Undone by the stopping worker itself, not only at the next start.
    assert rows_in(home) == (0, 0, 0)
    final = json.loads((jobs_dir(home) / f"{job['id']}.json").read_text())
    assert final["state"] == "failed" and final["error"]["code"] == "interrupted"
    page = job_page_after_restart(home, personas, job_path)
    assert "interrupted" in page and 'http-equiv="refresh"' not in page
    assert rows_in(home) == (0, 0, 0)
