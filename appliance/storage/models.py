"""Every table of the system, in one place: the peewee models the services share.

A service that needs another area's table imports it from here, never from
that area's services, so the areas stack one way with no import back.
Collections' own tables (``c_<name>``) are not models: they are built from
their definitions (:mod:`appliance.collections`). Changing a model here is
never enough: the table changes through a migration in ``migrations/``.
"""

from __future__ import annotations

import peewee

from appliance.actors import ADMIN_ROLE
from appliance.clock import utcnow
from appliance.storage.db import BaseModel


class Role(BaseModel):
    name = peewee.CharField(primary_key=True, max_length=40)
    label = peewee.CharField(max_length=100)
    builtin = peewee.BooleanField(default=False)
    created_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        table_name = "role"


class User(BaseModel):
    id = peewee.AutoField()  # what peewee adds by itself, declared so type checkers know it
    email = peewee.CharField(max_length=320, unique=True)
    name = peewee.CharField(max_length=200)
    role = peewee.CharField(max_length=40, column_name="role")
    active = peewee.BooleanField(default=True, index=True)
    password_hash = peewee.CharField(max_length=255)
    must_change_password = peewee.BooleanField(default=False)
    session_version = peewee.IntegerField(default=1)
    created_at = peewee.DateTimeField(default=utcnow)
    last_sign_in_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "user"

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN_ROLE and self.active

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email} {self.role}{'' if self.active else ' disabled'}>"


class UserSession(BaseModel):
    """A signed-in browser. The cookie carries a random key; only its SHA-256 digest is stored."""

    id = peewee.AutoField()  # what peewee adds by itself, declared so type checkers know it
    digest = peewee.CharField(max_length=64, unique=True)
    user = peewee.ForeignKeyField(User, backref="sessions", on_delete="CASCADE")
    created_at = peewee.DateTimeField()
    last_seen_at = peewee.DateTimeField()
    expires_at = peewee.DateTimeField(index=True)  # the earlier of the idle end and the absolute end
    address = peewee.CharField(max_length=100, null=True)
    user_agent = peewee.CharField(max_length=300, default="")

    class Meta:
        table_name = "user_session"


class ApiToken(BaseModel):
    id = peewee.AutoField()  # what peewee adds by itself, declared so type checkers know it
    user = peewee.ForeignKeyField(User, backref="tokens", on_delete="CASCADE")
    name = peewee.CharField(max_length=100)
    digest = peewee.CharField(max_length=64, unique=True)
    prefix = peewee.CharField(max_length=16)
    scope = peewee.CharField(max_length=10)
    created_at = peewee.DateTimeField()
    expires_at = peewee.DateTimeField()
    last_used_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "api_token"


class SetupLink(BaseModel):
    id = peewee.AutoField()  # what peewee adds by itself, declared so type checkers know it
    digest = peewee.CharField(max_length=64, unique=True)
    created_at = peewee.DateTimeField()
    expires_at = peewee.DateTimeField()
    used_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "setup_link"


class SignInFailure(BaseModel):
    id = peewee.AutoField()  # what peewee adds by itself, declared so type checkers know it
    kind = peewee.CharField(max_length=10)
    key = peewee.CharField(max_length=320)
    at = peewee.DateTimeField()
    # True while the attempt's password is being checked; it counts against the limit all the same.
    pending = peewee.BooleanField(default=False)

    class Meta:
        table_name = "sign_in_failure"


class SignInLock(BaseModel):
    id = peewee.AutoField()  # what peewee adds by itself, declared so type checkers know it
    kind = peewee.CharField(max_length=10)
    key = peewee.CharField(max_length=320)
    locked_until = peewee.DateTimeField()

    class Meta:
        table_name = "sign_in_lock"


class AuditEvent(BaseModel):
    id = peewee.AutoField()  # what peewee adds by itself, declared so type checkers know it
    at = peewee.DateTimeField(index=True)
    # A plain column here (the table has the foreign key, ON DELETE SET NULL):
    # users record audit events, so the audit model cannot import theirs.
    actor_id = peewee.IntegerField(null=True, index=True)
    actor = peewee.CharField(max_length=320, default="")
    action = peewee.CharField(max_length=80, index=True)
    target = peewee.CharField(max_length=400, default="", index=True)
    address = peewee.CharField(max_length=100, null=True)
    details = peewee.TextField(default="{}")

    class Meta:
        table_name = "audit_event"


class Collection(BaseModel):
    name = peewee.CharField(primary_key=True, max_length=50)
    label = peewee.CharField(max_length=200)
    fields = peewee.TextField(default="[]")
    permissions = peewee.TextField(default="{}")
    row_count = peewee.IntegerField(default=0)
    created_at = peewee.DateTimeField(default=utcnow)
    updated_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        table_name = "collection"


class RecordVersion(BaseModel):
    id = peewee.AutoField()  # what peewee adds by itself, declared so type checkers know it
    collection = peewee.CharField(max_length=50)
    record_id = peewee.IntegerField()
    version = peewee.IntegerField()
    action = peewee.CharField(max_length=20)
    actor_id = peewee.IntegerField(null=True)
    actor = peewee.CharField(max_length=320, default="")
    at = peewee.DateTimeField(default=utcnow)
    data = peewee.TextField()
    changes = peewee.TextField(default="{}")

    class Meta:
        table_name = "record_version"


class Job(BaseModel):
    name = peewee.CharField(primary_key=True, max_length=64)
    schedule = peewee.CharField(max_length=200)
    enabled = peewee.BooleanField(default=True)
    options = peewee.TextField(default="{}")
    version = peewee.IntegerField(default=1)
    updated_at = peewee.DateTimeField()
    next_run_at = peewee.DateTimeField(null=True)
    run_requested_at = peewee.DateTimeField(null=True)
    created_at = peewee.DateTimeField()

    class Meta:
        table_name = "job"


class JobRun(BaseModel):
    id = peewee.AutoField()  # what peewee adds by itself, declared so type checkers know it
    job = peewee.CharField(max_length=64, index=True)
    trigger = peewee.CharField(max_length=20)
    started_at = peewee.DateTimeField(index=True)
    finished_at = peewee.DateTimeField(null=True)
    outcome = peewee.CharField(max_length=20)  # running, ok, failed, skipped, missed, interrupted
    message = peewee.TextField(default="")
    duration_seconds = peewee.FloatField(null=True)
    scheduled_for = peewee.DateTimeField(null=True)
    pid = peewee.IntegerField(null=True)

    class Meta:
        table_name = "job_run"


class Alert(BaseModel):
    id = peewee.AutoField()  # what peewee adds by itself, declared so type checkers know it
    is_new: bool  # set by jobs.alerts.raise_alert on the instance it returns, not a column
    at = peewee.DateTimeField(index=True)
    kind = peewee.CharField(max_length=40)
    subject = peewee.CharField(max_length=200)
    message = peewee.TextField(default="")
    job = peewee.CharField(max_length=64, null=True)
    key = peewee.CharField(max_length=200, null=True, index=True)
    emailed = peewee.BooleanField(default=False)
    mail_error = peewee.TextField(null=True)
    acknowledged_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "alert"
