"""CSV import and export: reading real-world files, all-or-nothing import in batches, streamed export."""

from __future__ import annotations

import csv
import io
import threading

import pytest

from appliance.audit import list_events
from appliance.collections.definitions import get_collection
from appliance.errors import BadRequest, Conflict, NotFound, PermissionDenied, ValidationFailed
from appliance.records.csv.export import export_csv
from appliance.records.csv.importing import import_csv
from appliance.records.csv.jobs import get_import_job, run_import_job, save_import_upload, start_import_job
from appliance.records.csv.reading import read_csv
from appliance.records.history import list_history
from appliance.records.query import list_records
from appliance.records.write import create_record
from appliance.storage.db import database
from tests.appliance.data_helpers import make_orders, make_users


@pytest.fixture
def users(instance):
    people = make_users()
    make_orders(people["admin"])
    return people


def count(users) -> int:
    return list_records("orders", users["admin"], {})["total_items"]


def titles(users, **params) -> list[str]:
    return [r["title"] for r in list_records("orders", users["admin"], {"page_size": "500", **params})["items"]]


def test_reading_takes_bom_semicolons_and_quoted_line_breaks_and_numbers_lines_as_the_file_does():
    data = '\ufefftitle;notes\r\n"A";"two\r\nlines"\r\n\r\nB;"say ""hi"""\r\n'.encode()
    table = read_csv(data)
    assert table.delimiter == ";"
    assert table.header == ["title", "notes"]
    assert table.rows == [(2, ["A", "two\r\nlines"]), (5, ["B", 'say "hi"'])]


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"", "empty"),
        ("title\nCaf\u00e9\n".encode("latin-1"), "not UTF-8"),
        (b'title\n"unclosed\n', "Line"),
        (b"title,Title\nx,y\n", "appears twice"),
        (b"\n\n", "empty"),
    ],
)
def test_reading_refuses_a_file_that_is_not_usable_csv_saying_why(data, says):
    with pytest.raises(BadRequest, match=says):
        read_csv(data)


def test_an_import_creates_every_row_with_history_and_one_audit_event(users):
    data = 'title,quantity,unit_price,paid,status,extra\nDesk,2,150,yes,paid,"{""a"": 1}"\nLamp,1,20.5,no,,\n'
    assert import_csv("orders", data.encode(), users["editor"]) == 2
    desk = list_records("orders", users["admin"], {"title": "Desk"})["items"][0]
    assert desk["total"] == 300 and desk["paid"] is True and desk["extra"] == {"a": 1}
    assert desk["created_by"] == users["editor"].id
    lamp = list_records("orders", users["admin"], {"title": "Lamp"})["items"][0]
    assert lamp["status"] == "open"  # the default of an empty cell
    history = list_history(get_collection("orders"), desk["id"], users["admin"], {})["items"]
    assert [h["action"] for h in history] == ["create"]
    assert get_collection("orders").row_count == 2
    events = list(list_events(action="records.imported"))
    assert len(events) == 1 and '"created": 2' in events[0].details
    # The full-text index saw the rows too.
    assert [r["title"] for r in list_records("orders", users["admin"], {"search": "lamp"})["items"]] == ["Lamp"]


def test_an_import_with_bad_rows_saves_nothing_and_names_every_bad_line_and_field(users):
    create_record("orders", {"title": "Taken"}, users["admin"])
    data = (
        "title,quantity,due\n"
        "Good,1,2026-01-01\n"  # line 2
        "Bad qty,-4,2026-01-01\n"  # line 3
        '"Multi\nline",1,2026-02-30\n'  # lines 4-5: a bad date
        "Taken,1,\n"  # line 6: taken in the table
        "Good,2,\n"  # line 7: repeats line 2
        ",3,\n"  # line 8: no title
    )
    with pytest.raises(ValidationFailed) as caught:
        import_csv("orders", data.encode(), users["admin"], batch_size=2)
    rows = caught.value.extra["rows"]
    assert [r["line"] for r in rows] == [3, 4, 6, 7, 8]
    assert set(rows[0]["fields"]) == {"quantity"}
    assert set(rows[1]["fields"]) == {"due"}
    assert rows[2]["fields"] == {"title": "Another record already has this value."}
    assert rows[3]["fields"] == {"title": "Line 2 has this value too."}
    assert rows[4]["fields"] == {"title": "This field is required."}
    assert "5 rows" in caught.value.message
    assert titles(users) == ["Taken"]


def test_columns_that_match_no_field_are_refused_but_an_exports_own_columns_are_skipped(users):
    with pytest.raises(ValidationFailed) as caught:
        import_csv("orders", b"title,colour\nA,red\n", users["admin"])
    assert "'colour'" in caught.value.fields["mapping"]
    assert import_csv("orders", b"id,created_at,title,total\n99,2020-01-01,A,5\n", users["admin"]) == 1
    record = list_records("orders", users["admin"], {})["items"][0]
    assert record["id"] != 99 and record["total"] is None


def test_a_mapping_chooses_fields_for_columns_and_is_checked(users):
    data = b"Name,Qty,Comment\nA,3,x\n"
    assert import_csv("orders", data, users["admin"], mapping={"Name": "title", "Qty": "quantity", "Comment": ""}) == 1
    assert list_records("orders", users["admin"], {})["items"][0]["quantity"] == 3
    for mapping, says in (
        ({"Name": "total"}, "no field 'total'"),
        ({"Name": "title", "Qty": "title"}, "both fill"),
        ({}, "No column"),
    ):
        with pytest.raises(ValidationFailed) as caught:
            import_csv("orders", data, users["admin"], mapping=mapping)
        assert says in caught.value.fields["mapping"]


def test_only_those_who_may_create_may_import(users):
    with pytest.raises(PermissionDenied):
        import_csv("orders", b"title\nA\n", users["viewer"])
    assert count(users) == 0


def test_a_failure_while_writing_removes_the_rows_already_written(users, monkeypatch):
    from appliance.records.csv import importing

    real = importing._write_batch
    calls = []

    def second_batch_fails(collection, batch, actor, created):
        calls.append(len(batch))
        if len(calls) == 2:
            # Someone else takes a unique value of this batch after the checks.
            create_record("orders", {"title": batch[0]["title"]}, users["admin"])
        real(collection, batch, actor, created)

    monkeypatch.setattr(importing, "_write_batch", second_batch_fails)
    data = "title\n" + "".join(f"t{i}\n" for i in range(5))
    with pytest.raises(Conflict):
        import_csv("orders", data.encode(), users["admin"], batch_size=2)
    assert titles(users) == ["t2"]  # only the other person's record is left
    assert get_collection("orders").row_count == 1
    leftover = database.execute_sql("SELECT COUNT(*) FROM record_version WHERE collection = 'orders'").fetchone()[0]
    assert leftover == 1


def test_other_writers_are_not_blocked_for_the_whole_import(users, instance):
    """Between two batches another connection can write: the import never holds the lock throughout."""
    from appliance.records.csv import importing

    real = importing._write_batch
    saved = []

    def write_from_another_thread(collection, batch, actor, created):
        real(collection, batch, actor, created)
        if not saved:

            def other():
                with database.connection_context():
                    saved.append(create_record("orders", {"title": "meanwhile"}, users["editor"])["id"])

            thread = threading.Thread(target=other)
            thread.start()
            thread.join(timeout=10)

    importing._write_batch = write_from_another_thread
    try:
        data = "title\n" + "".join(f"t{i}\n" for i in range(6))
        assert import_csv("orders", data.encode(), users["admin"], batch_size=2) == 6
    finally:
        importing._write_batch = real
    assert len(saved) == 1 and count(users) == 7


def test_an_export_streams_every_visible_record_with_the_listing_filters(users):
    for title, quantity in (("a", 1), ("=SUM(A1)", 5), ("c", 9)):
        create_record("orders", {"title": title, "quantity": quantity, "extra": {"k": title}}, users["admin"])
    pieces = export_csv("orders", users["viewer"], {"quantity__gte": "5", "ordering": "-quantity", "page_size": "1"})
    rows = list(csv.DictReader(io.StringIO("".join(pieces))))
    assert [r["title"] for r in rows] == ["c", "'=SUM(A1)"]
    assert rows[0]["quantity"] == "9" and rows[0]["extra"] == '{"k": "c"}' and rows[0]["paid"] == ""
    assert list(rows[0])[:2] == ["id", "created_at"]


def test_an_export_imports_back_as_it_was(users):
    create_record("orders", {"title": "=risky", "quantity": 2, "notes": "a\nb", "paid": True}, users["admin"])
    text = "".join(export_csv("orders", users["admin"], {}))
    database.execute_sql("DELETE FROM c_orders")
    database.execute_sql("UPDATE collection SET row_count = 0")
    assert import_csv("orders", text.encode(), users["admin"]) == 1
    record = list_records("orders", users["admin"], {})["items"][0]
    assert (record["title"], record["notes"], record["paid"], record["quantity"]) == ("=risky", "a\nb", True, 2)


def test_an_export_refuses_a_bad_filter_before_writing_anything_and_hides_unknown_collections(users):
    with pytest.raises(BadRequest):
        export_csv("orders", users["viewer"], {"colour": "red"})
    with pytest.raises(NotFound):
        export_csv("nothing", users["viewer"], {})


def test_an_editor_limited_to_own_records_exports_only_those(users):
    from appliance.collections.definitions import update_collection

    update_collection("orders", {"permissions": {"editor": ["view:own", "create"]}}, users["admin"])
    create_record("orders", {"title": "mine"}, users["editor"])
    create_record("orders", {"title": "theirs"}, users["admin"])
    rows = list(csv.DictReader(io.StringIO("".join(export_csv("orders", users["editor"], {})))))
    assert [r["title"] for r in rows] == ["mine"]


def test_an_import_job_keeps_its_file_runs_once_and_reports_progress(users, tmp_path):
    jobs = tmp_path / "imports"
    job = save_import_upload(jobs, "orders", "o.csv", b"Title,Qty\nA,1\nB,2\nC,3\n", users["editor"])
    assert job["preview"]["total_rows"] == 3 and job["mapping"] == {"Title": "title", "Qty": ""}
    with pytest.raises(NotFound):
        get_import_job(jobs, job["id"], users["editor2"])
    start_import_job(jobs, job["id"], {"Title": "title", "Qty": "quantity"}, users["editor"])
    done = run_import_job(jobs, job["id"], users["editor"], batch_size=2)
    assert done["state"] == "done" and done["created"] == 3 and done["done"] == 3
    assert get_import_job(jobs, job["id"], users["editor"])["state"] == "done"
    with pytest.raises(Conflict):
        start_import_job(jobs, job["id"], {"Title": "title"}, users["editor"])
    assert sorted(titles(users)) == ["A", "B", "C"]


def test_an_import_job_with_a_bad_row_fails_with_the_rows_named(users, tmp_path):
    jobs = tmp_path / "imports"
    job = save_import_upload(jobs, "orders", "o.csv", b"title,quantity\nA,1\nB,x\n", users["editor"])
    start_import_job(jobs, job["id"], job["mapping"], users["editor"])
    failed = run_import_job(jobs, job["id"], users["editor"])
    assert failed["state"] == "failed"
    assert failed["error"]["rows"] == [{"line": 3, "fields": {"quantity": "Enter a whole number."}}]
    assert count(users) == 0


# --- interrupted imports, check-phase progress, formulas, header-only files -----------------------


def _dead_pid() -> int:
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _simulate_death_after_one_batch(jobs, job_id, actor, *, heartbeat_age: float, pid: int) -> None:
    """What a worker killed while writing leaves: the journal, one committed batch, a 'running' job."""
    import json
    import time

    from appliance.records.csv import importing
    from appliance.records.csv.job_files import write_journal

    collection = get_collection("orders")
    first, last = importing._reserve_ids(collection, 4)
    write_journal(jobs, job_id, "orders", first, last)
    importing._write_batch(collection, [{"title": "A"}, {"title": "B"}], actor, first)
    meta = jobs / f"{job_id}.json"
    job = json.loads(meta.read_text())
    job.update(state="running", phase="writing", done=2, pid=pid, updated_at=time.time() - heartbeat_age)
    meta.write_text(json.dumps(job))


def test_a_running_job_whose_process_died_is_undone_when_read_and_can_run_again(users, tmp_path):
    jobs = tmp_path / "imports"
    data = b"title\nA\nB\nC\nD\n"
    job = save_import_upload(jobs, "orders", "o.csv", data, users["editor"])
    start_import_job(jobs, job["id"], {"title": "title"}, users["editor"])
    _simulate_death_after_one_batch(jobs, job["id"], users["editor"], heartbeat_age=60, pid=_dead_pid())
    assert count(users) == 2

    read = get_import_job(jobs, job["id"], users["editor"])
    assert read["state"] == "failed" and read["error"]["code"] == "interrupted"
    assert "nothing was kept" in read["error"]["message"]
    assert count(users) == 0 and get_collection("orders").row_count == 0
    assert database.execute_sql("SELECT COUNT(*) FROM record_version").fetchone()[0] == 0
    assert [e.action for e in list_events(action="records.import_interrupted")] == ["records.import_interrupted"]
    # It may run again, and then keeps every row.
    start_import_job(jobs, job["id"], {"title": "title"}, users["editor"])
    assert run_import_job(jobs, job["id"], users["editor"])["state"] == "done"
    assert sorted(titles(users)) == ["A", "B", "C", "D"]


def test_a_running_job_with_a_fresh_heartbeat_or_a_live_process_is_left_alone(users, tmp_path):
    import json
    import os
    import time

    jobs = tmp_path / "imports"
    job = save_import_upload(jobs, "orders", "o.csv", b"title\nA\nB\nC\nD\n", users["editor"])
    start_import_job(jobs, job["id"], {"title": "title"}, users["editor"])
    _simulate_death_after_one_batch(jobs, job["id"], users["editor"], heartbeat_age=5, pid=_dead_pid())
    assert get_import_job(jobs, job["id"], users["editor"])["state"] == "running"
    meta = jobs / f"{job['id']}.json"
    stale = json.loads(meta.read_text())
    stale.update(pid=os.getpid(), updated_at=time.time() - 60)  # slow, but its process still runs
    meta.write_text(json.dumps(stale))
    assert get_import_job(jobs, job["id"], users["editor"])["state"] == "running"
    assert count(users) == 2


def test_server_start_recovers_every_running_import_whatever_its_heartbeat(users, tmp_path):
    import os
    from types import SimpleNamespace

    from appliance.records.csv.recovery import recover_interrupted_imports

    jobs = tmp_path / "run" / "imports"
    job = save_import_upload(jobs, "orders", "o.csv", b"title\nA\nB\nC\nD\n", users["editor"])
    start_import_job(jobs, job["id"], {"title": "title"}, users["editor"])
    _simulate_death_after_one_batch(jobs, job["id"], users["editor"], heartbeat_age=0, pid=os.getpid())
    lines = recover_interrupted_imports(SimpleNamespace(run_dir=tmp_path / "run"))
    assert len(lines) == 1 and "2 record(s)" in lines[0]
    assert count(users) == 0
    assert get_import_job(jobs, job["id"], users["editor"])["state"] == "failed"
    assert not list(jobs.glob("*.ids*"))


def test_the_check_phase_reports_its_progress_as_it_goes(users):
    from appliance.records.csv.checks import CHECK_PROGRESS_EVERY

    seen = []
    rows = CHECK_PROGRESS_EVERY * 2 + 5
    data = "title\n" + "".join(f"t{i}\n" for i in range(rows))
    import_csv("orders", data.encode(), users["admin"], progress=lambda *args: seen.append(args))
    checking = [done for phase, done, _total in seen if phase == "checking"]
    assert checking == [0, CHECK_PROGRESS_EVERY, CHECK_PROGRESS_EVERY * 2]


def test_a_formula_over_its_bounds_is_a_bad_row_naming_the_line_and_field(users):
    from appliance.collections.definitions import create_collection

    create_collection(
        {
            "name": "labels",
            "label": "Labels",
            "fields": [
                {"name": "word", "type": "text"},
                {"name": "n", "type": "integer"},
                {"name": "repeated", "type": "computed", "formula": "word * n"},
            ],
            "permissions": {},
        },
        users["admin"],
    )
    with pytest.raises(ValidationFailed) as caught:
        import_csv("labels", b"word,n\nab,3\nab,100000\n", users["admin"])
    assert caught.value.extra["rows"] == [
        {"line": 3, "fields": {"repeated": caught.value.extra["rows"][0]["fields"]["repeated"]}}
    ]
    assert "longer than" in caught.value.extra["rows"][0]["fields"]["repeated"]
    assert list_records("labels", users["admin"], {})["total_items"] == 0
    assert import_csv("labels", b"word,n\nab,3\n", users["admin"]) == 1
    assert list_records("labels", users["admin"], {})["items"][0]["repeated"] == "ababab"


def test_a_file_with_only_a_header_is_refused_at_upload(users, tmp_path):
    with pytest.raises(BadRequest, match="no rows"):
        save_import_upload(tmp_path / "imports", "orders", "o.csv", b"title,quantity\n", users["editor"])


def test_an_export_with_a_search_of_no_words_exports_nothing_as_the_list_shows_nothing(users):
    create_record("orders", {"title": "Oak table"}, users["admin"])
    assert list_records("orders", users["admin"], {"search": "\u2603"})["total_items"] == 0
    rows = list(csv.DictReader(io.StringIO("".join(export_csv("orders", users["admin"], {"search": "\u2603"})))))
    assert rows == []
    rows = list(csv.DictReader(io.StringIO("".join(export_csv("orders", users["admin"], {"search": "oak"})))))
    assert [r["title"] for r in rows] == ["Oak table"]
