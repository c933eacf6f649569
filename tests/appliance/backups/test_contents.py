"""The restore confirmation names what an archive holds as a person counts it (issue 16, item 9)."""

from __future__ import annotations

from appliance.backups.catalogue import describe_contents


def test_collections_users_and_files_are_named_and_bookkeeping_is_not():
    manifest = {
        "row_counts": {
            "c_customers": 215,
            "c_customers__fts": 215,
            "c_customers__fts_data": 18,
            "c_orders": 60,
            "user": 5,
            "user_session": 3,
            "record_version": 900,
            "audit_event": 1200,
            "schema_migration": 12,
        },
        "files": ["a", "b"],
    }
    assert describe_contents(manifest) == "215 customers, 60 orders, 5 users, 2 files"


def test_an_empty_or_odd_manifest_says_no_records():
    assert describe_contents({}) == "no records"
    assert describe_contents({"row_counts": {"c_x": "many"}}) == "no records"
    assert describe_contents({"row_counts": {"user": 1}, "files": []}) == "1 user, 0 files"
