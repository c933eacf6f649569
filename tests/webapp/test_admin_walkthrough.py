"""What an admin walkthrough found hard to read or use, fixed: plain words, one date format, drop-downs,
passwords to pass on, no repeated actions on refresh. Through the Flask test client."""

from __future__ import annotations

import json
import os
import re

import pytest

from appliance.accounts.passwords import verify_password
from appliance.accounts.users import find_user_by_email, get_user, get_user_by_email
from appliance.audit import record_event
from appliance.server.metrics import MAX_SLOTS
from appliance.storage.db import database
from tests.conftest import post_form


def section(page: str, start: str, end: str = "</section>") -> str:
    return page.split(start, 1)[1].split(end, 1)[0]


# --- /admin/jobs ---------------------------------------------------------------------------------


def test_the_jobs_page_puts_enabled_and_save_on_their_own_line_and_lists_the_plain_schedule_forms(signed_in):
    page = signed_in("admin").get("/admin/jobs").get_data(as_text=True)
    assert '<div class="table-responsive">' in page
    form = section(page, 'id="job-backup"', "</form>")
    # The schedule box, then a row of its own with the tick-box and Save (no grid columns to overlap).
    assert form.index('name="schedule"') < form.index('class="d-flex flex-wrap')
    row = form.split('class="d-flex flex-wrap', 1)[1]
    assert 'name="enabled"' in row and ">Save</button>" in row and "col-" not in form
    help_text = section(page, 'id="schedule-help"', "</div>")
    for form_text in ("daily 02:00", "weekdays 07:30", "weekly sunday 04:45", "every 6 hours", "0 2 * * *"):
        assert form_text in help_text


def test_a_plain_schedule_typed_on_the_jobs_page_is_stored_as_cron(signed_in):
    from appliance.jobs.definitions import get_job

    admin = signed_in("admin")
    answer = post_form(
        admin, "/admin/jobs/backup", {"schedule": "weekly Sunday 04:45", "enabled": "yes"}, token_from="/admin/jobs"
    )
    assert answer.status_code == 302
    assert get_job("backup").schedule == "45 4 * * 0"
    refused = post_form(
        admin, "/admin/jobs/backup", {"schedule": "daily 25:00", "enabled": "yes"}, token_from="/admin/jobs"
    )
    assert refused.status_code == 422
    assert "is not a time of day" in refused.get_data(as_text=True)
    assert get_job("backup").schedule == "45 4 * * 0"
    # The address a refused form leaves in the address bar leads back to the job, not to a 405.
    assert admin.get("/admin/jobs/backup").headers["Location"] == "/admin/jobs#job-backup"
    assert admin.get("/admin/jobs/nosuchjob").status_code == 404


def test_jobs_and_their_runs_show_times_one_way(signed_in):
    from appliance.jobs.definitions import request_run

    admin = signed_in("admin")
    # A saved schedule plans the next run at once.
    post_form(admin, "/admin/jobs/backup", {"schedule": "daily 02:00", "enabled": "yes"}, token_from="/admin/jobs")
    page = admin.get("/admin/jobs").get_data(as_text=True)
    next_run = section(page, 'id="job-backup"', "</tr>")
    assert re.search(r"<td>\d{4}-\d\d-\d\d \d\d:\d\d UTC</td>", next_run), next_run
    assert "T02:00:00Z" not in page
    request_run("backup")
    runs = admin.get("/admin/jobs/backup/runs").get_data(as_text=True)
    assert '<div class="table-responsive">' in runs


def test_job_descriptions_are_plain_words(signed_in):
    page = signed_in("admin").get("/admin/jobs").get_data(as_text=True)
    assert "PRAGMA" not in page and "WAL" not in page and "integrity_check" not in page


# --- /admin/backups, /admin/users -----------------------------------------------------------------


def test_the_backups_and_users_tables_scroll_inside_the_page(signed_in):
    admin = signed_in("admin")
    backups = admin.get("/admin/backups").get_data(as_text=True)
    assert '<div class="table-responsive">' in backups and 'class="d-flex flex-wrap' in backups
    users = admin.get("/admin/users").get_data(as_text=True)
    assert '<div class="table-responsive">' in users
    last_sign_in = re.findall(r'<td class="text-nowrap">([^<]+)</td>', users)
    assert last_sign_in and all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC|never", t) for t in last_sign_in)


# --- /admin/settings ------------------------------------------------------------------------------


def test_the_settings_form_leaves_out_backup_schedule_and_points_to_the_jobs_page(signed_in, instance):
    admin = signed_in("admin")
    page = admin.get("/admin/settings").get_data(as_text=True)
    assert 'name="backup_schedule"' not in page
    note = section(page, 'id="backup-schedule-note">', "</p>")
    assert 'href="/admin/jobs#job-backup"' in note
    before = instance.paths.settings_file.read_text()
    # A value sent all the same is not written: the form does not take it.
    answer = post_form(admin, "/admin/settings", {"backup_schedule": "0 5 * * *", "backup_keep_daily": "7"})
    assert answer.status_code == 302
    assert instance.paths.settings_file.read_text() == before


def test_the_registry_says_backup_schedule_is_where_a_new_installation_starts():
    from appliance.config.registry import registry

    assert "a new installation starts with" in registry()["backup_schedule"].help


def test_settings_have_human_labels_and_fixed_choices_are_drop_downs(signed_in):
    page = signed_in("admin").get("/admin/settings").get_data(as_text=True)
    assert '<label for="s-smtp_host" class="form-label">SMTP server</label>' in page
    assert '<label for="s-backup_keep_daily" class="form-label">Daily backups kept</label>' in page
    assert "<code>smtp_host</code>" not in page
    security = section(page, '<select id="s-smtp_security"', "</select>")
    assert re.findall(r'<option value="([^"]+)"', security) == ["starttls", "tls", "none"]
    assert '<option value="starttls" selected>STARTTLS (usually port 587)</option>' in security
    level = section(page, '<select id="s-log_level"', "</select>")
    assert '<option value="INFO" selected>' in level
    assert 'name="log_level" type="text"' not in page and 'name="smtp_security" type="text"' not in page


def test_a_drop_down_choice_is_saved(signed_in, instance):
    import tomllib

    answer = post_form(signed_in("admin"), "/admin/settings", {"smtp_security": "tls"})
    assert answer.status_code == 302
    assert tomllib.loads(instance.paths.settings_file.read_text())["smtp_security"] == "tls"


def _server_json(instance, **values):
    instance.paths.server_json.parent.mkdir(parents=True, exist_ok=True)
    instance.paths.server_json.write_text(json.dumps({"pid": 1, "host": "127.0.0.1", "port": 1, **values}))


def test_workers_0_is_not_flagged_when_one_worker_per_core_runs(signed_in, instance):
    admin = signed_in("admin")
    per_core = min(os.cpu_count() or 1, MAX_SLOTS)
    _server_json(instance, workers=per_core)
    cell = section(admin.get("/admin/settings").get_data(as_text=True), 'id="running-workers">', "</td>")
    assert str(per_core) in cell and "differs" not in cell
    _server_json(instance, workers=per_core + 1)
    cell = section(admin.get("/admin/settings").get_data(as_text=True), 'id="running-workers">', "</td>")
    assert "differs" in cell


# --- /admin/audit ---------------------------------------------------------------------------------


def test_audit_details_read_as_changes_ranges_and_action_names(signed_in, personas):
    with database.atomic():
        record_event(
            "record.updated",
            actor="bob@example.com",
            target="orders/3",
            details={"collection": "orders", "id": 3, "fields": ["title"], "changes": {"title": ["Old", "New"]}},
        )
        record_event(
            "records.imported",
            actor="bob@example.com",
            target="collection:orders",
            details={"collection": "orders", "created": 3, "ids": [4, 6]},
        )
        record_event("custom.thing", actor="cli", target="x", details={"note": "kept"})
    page = signed_in("admin").get("/admin/audit").get_data(as_text=True)
    events = section(page, 'id="events"', "</table>")
    assert "<div>Title: Old → New</div>" in events
    assert "<div>Records: 4–6</div>" in events and "<div>Created: 3</div>" in events  # noqa: RUF001
    assert '<td title="record.updated">Record changed</td>' in events
    assert '<td title="records.imported">Records imported</td>' in events
    assert '<td title="custom.thing">custom.thing</td>' in events
    assert "{&#34;" not in events and "[&#34;" not in events  # no raw JSON
    assert re.search(r'<td class="text-nowrap">\d{4}-\d\d-\d\d \d\d:\d\d UTC</td>', events)


def test_id_ranges_join_runs_of_ids():
    from webapp.audit_view import id_ranges

    assert id_ranges([9, 4, 5, 6]) == "4–6, 9"  # noqa: RUF001
    assert id_ranges([7]) == "7"
    assert id_ranges([]) == ""


# --- passwords the admin passes on ----------------------------------------------------------------


def test_a_generated_first_password_is_shown_once_after_adding_the_user(signed_in):
    admin = signed_in("admin")
    answer = post_form(
        admin,
        "/admin/users",
        {
            "email": "new@example.com",
            "name": "New",
            "role": "viewer",
            "password": "",
            "generate": "yes",
            "must_change": "yes",
        },
    )
    assert answer.status_code == 302
    page = admin.get(answer.headers["Location"]).get_data(as_text=True)
    password = re.search(r'id="generated-password">([^<]+)<', page).group(1)
    user = get_user_by_email("new@example.com")
    assert verify_password(user.password_hash, password) and user.must_change_password
    again = admin.get(answer.headers["Location"]).get_data(as_text=True)
    assert password not in again and 'id="generated"' not in again


def test_a_typed_password_and_generate_together_are_refused(signed_in):
    answer = post_form(
        signed_in("admin"),
        "/admin/users",
        {
            "email": "both@example.com",
            "name": "Both",
            "role": "viewer",
            "password": "a-typed-password-1",
            "generate": "yes",
        },
    )
    assert answer.status_code == 422
    assert "Leave the box empty" in answer.get_data(as_text=True)
    assert find_user_by_email("both@example.com") is None


def test_a_generated_reset_password_is_shown_once_and_works(signed_in, personas):
    admin = signed_in("admin")
    path = f"/admin/users/{personas.editor.id}"
    answer = post_form(admin, f"{path}/password", {"password": "", "generate": "yes"}, token_from=path)
    assert answer.status_code == 302
    page = admin.get(path).get_data(as_text=True)
    password = re.search(r'id="generated-password">([^<]+)<', page).group(1)
    assert verify_password(get_user(personas.editor.id).password_hash, password)
    assert password not in admin.get(path).get_data(as_text=True)
    # Another user's page does not show it either (it was for the editor only).
    assert 'id="generated"' not in admin.get(f"/admin/users/{personas.viewer.id}").get_data(as_text=True)


def test_generated_passwords_pass_the_policy_and_differ():
    from appliance.accounts.passwords import generate_password, policy_problem

    made = {generate_password() for _ in range(20)}
    assert len(made) == 20
    assert all(policy_problem(p, "someone@example.com") is None and len(p) == 19 for p in made)


# --- collections ----------------------------------------------------------------------------------


@pytest.fixture
def collection(signed_in):
    admin = signed_in("admin")
    answer = post_form(admin, "/admin/collections", {"name": "visitors", "label": "Visitors"})
    assert answer.status_code == 302
    return admin, admin.get(answer.headers["Location"]).get_data(as_text=True)


def test_a_new_collection_says_who_can_see_it(collection):
    _admin, page = collection
    assert "Nobody but admins can see it until you set permissions below." in page


def test_the_add_field_form_groups_options_under_the_types_they_apply_to(collection):
    _admin, page = collection
    form = section(page, 'id="add-field"', "</form>")
    legends = re.findall(r'<legend class="h6">([^<]+)</legend>', form)
    assert legends == [
        "For numbers, dates and text: limits",
        "For text, email and URL fields",
        "For select fields",
        "For computed fields",
        "For relation fields",
        "For file fields",
    ]
    assert form.index("For file fields") < form.index('name="max_size"')


def test_a_bad_file_size_is_explained_in_plain_words_and_the_address_leads_back(collection):
    admin, _page = collection
    answer = post_form(
        admin,
        "/admin/collections/visitors/fields",
        {"name": "photo", "type": "file", "max_size": "0"},
        token_from="/admin/collections/visitors",
    )
    assert answer.status_code == 422
    text = answer.get_data(as_text=True)
    assert "Enter the largest file size in bytes (1 or more)" in text and "'max_size'" not in text
    assert (
        admin.get("/admin/collections/visitors/fields").headers["Location"] == "/admin/collections/visitors#add-field"
    )


def test_field_options_are_listed_in_plain_words(collection):
    admin, _page = collection
    post_form(
        admin,
        "/admin/collections/visitors/fields",
        {"name": "count", "type": "integer", "required": "yes", "min": "1"},
        token_from="/admin/collections/visitors",
    )
    page = admin.get("/admin/collections/visitors").get_data(as_text=True)
    row = section(page, "<code>count</code>", "</tr>")
    assert "<td>Whole number</td>" in row and "required; at least 1" in row


def test_an_unaccepted_file_type_names_the_accepted_kinds_in_words():
    from appliance.records.files import describe_accepted

    assert describe_accepted(["image/*", "application/pdf"]) == "images, PDF files"
    assert describe_accepted(["application/x-thing"]) == "application/x-thing"


# --- the rest -------------------------------------------------------------------------------------


def test_an_admin_without_collections_gets_a_link_to_the_collection_editor(signed_in):
    page = signed_in("admin").get("/").get_data(as_text=True)
    assert '<a href="/admin/collections">collection editor</a>' in page
    assert "/admin/collections" not in section(signed_in("viewer").get("/").get_data(as_text=True), 'id="collections"')


def test_pages_name_an_icon_and_favicon_ico_is_not_a_404(client, signed_in):
    page = signed_in("viewer").get("/").get_data(as_text=True)
    assert '<link rel="icon" type="image/svg+xml" href="/static/favicon.svg">' in page
    answer = client.get("/favicon.ico")
    assert answer.status_code == 301 and answer.headers["Location"] == "/static/favicon.svg"
    icon = client.get("/static/favicon.svg")
    assert icon.status_code == 200 and icon.data.startswith(b"<svg")
    icon.close()
