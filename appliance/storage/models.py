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
    # MCP options (migration 0009): JSON lists, null meaning "all its scope and user allow".
    mcp = peewee.BooleanField(default=False)
    mcp_tools = peewee.TextField(null=True)
    mcp_collections = peewee.TextField(null=True)
    mcp_approval = peewee.BooleanField(default=False)

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
    details = peewee.TextField(null=True)  # JSON, e.g. {"via": "mcp", "token": 7} (migration 0009)

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


class OutboxEvent(BaseModel):
    """One record change, written in the change's own transaction (see :mod:`appliance.records.events`)."""

    id = peewee.AutoField()
    event_id = peewee.CharField(max_length=40, unique=True)
    type = peewee.CharField(max_length=40)
    collection = peewee.CharField(max_length=50)
    record_id = peewee.IntegerField()
    data = peewee.TextField()
    actor_id = peewee.IntegerField(null=True)
    actor = peewee.CharField(max_length=320, default="")
    at = peewee.DateTimeField(index=True)

    class Meta:
        table_name = "outbox_event"


class PendingWrite(BaseModel):
    """An AI agent's write held for an admin's approval (a token created "writes need approval")."""

    id = peewee.AutoField()  # what peewee adds by itself, declared so type checkers know it
    token_id = peewee.IntegerField(index=True)  # not a foreign key: the row outlives a revoked token
    token_name = peewee.CharField(max_length=100, default="")
    user_id = peewee.IntegerField()
    user_email = peewee.CharField(max_length=320, default="")
    client = peewee.CharField(max_length=200, null=True)
    tool = peewee.CharField(max_length=40)  # create_record, update_record or delete_record
    collection = peewee.CharField(max_length=50, default="")
    arguments = peewee.TextField()  # JSON, exactly as the agent sent them
    status = peewee.CharField(max_length=20, index=True)  # pending, applied, rejected, failed
    result = peewee.TextField(null=True)  # JSON
    error = peewee.TextField(null=True)  # JSON {"code", "message", "fields"?}
    created_at = peewee.DateTimeField(index=True)
    decided_at = peewee.DateTimeField(null=True)
    decided_by_id = peewee.IntegerField(null=True)
    decided_by = peewee.CharField(max_length=320, null=True)

    class Meta:
        table_name = "mcp_pending_write"


class UserTotp(BaseModel):
    """A user's TOTP two-factor: the secret (encrypted), when it was confirmed (``None``: being set up)
    and the last time step a code was accepted for (a code is never accepted twice)."""

    id = peewee.AutoField()  # what peewee adds by itself, declared so type checkers know it
    user = peewee.ForeignKeyField(User, backref="totp", on_delete="CASCADE", unique=True)
    secret = peewee.CharField(max_length=400)
    created_at = peewee.DateTimeField()
    confirmed_at = peewee.DateTimeField(null=True)
    last_step = peewee.BigIntegerField(default=0)

    class Meta:
        table_name = "user_totp"


class RecoveryCode(BaseModel):
    """One of a user's two-factor recovery codes: only a keyed digest is stored; each works once."""

    id = peewee.AutoField()  # what peewee adds by itself, declared so type checkers know it
    user = peewee.ForeignKeyField(User, backref="recovery_codes", on_delete="CASCADE")
    digest = peewee.CharField(max_length=64, unique=True)
    created_at = peewee.DateTimeField()
    used_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "recovery_code"


class AccountLink(BaseModel):
    """A one-time link to an account: an invitation (``invite``) or a password reset (``reset``).
    Only the SHA-256 digest of its secret is stored."""

    id = peewee.AutoField()  # what peewee adds by itself, declared so type checkers know it
    kind = peewee.CharField(max_length=10)
    digest = peewee.CharField(max_length=64, unique=True)
    user = peewee.ForeignKeyField(User, backref="account_links", on_delete="CASCADE")
    user_id: int  # the foreign key's raw value, which peewee provides; declared for type checkers
    created_at = peewee.DateTimeField()
    expires_at = peewee.DateTimeField()
    used_at = peewee.DateTimeField(null=True)
    voided_at = peewee.DateTimeField(null=True)  # replaced by a newer link, or the user was disabled

    class Meta:
        table_name = "account_link"


class LinkRequest(BaseModel):
    """One "forgot password" request, by typed email (``email``) or client address (``address``)."""

    id = peewee.AutoField()  # what peewee adds by itself, declared so type checkers know it
    kind = peewee.CharField(max_length=10)
    key = peewee.CharField(max_length=320)
    at = peewee.DateTimeField(index=True)

    class Meta:
        table_name = "link_request"


class McpCall(BaseModel):
    """One MCP tool call of a token, counted for its per-minute and per-day limits."""

    id = peewee.AutoField()  # what peewee adds by itself, declared so type checkers know it
    token_id = peewee.IntegerField()
    at = peewee.DateTimeField()
    write = peewee.BooleanField(default=False)

    class Meta:
        table_name = "mcp_call"


class McpConfirmation(BaseModel):
    """A one-time ``delete_record`` confirm handle (its digest), bound to a token and the call's arguments."""

    id = peewee.AutoField()  # what peewee adds by itself, declared so type checkers know it
    digest = peewee.CharField(max_length=64, unique=True)
    token_id = peewee.IntegerField()
    arguments = peewee.CharField(max_length=64)
    created_at = peewee.DateTimeField()
    expires_at = peewee.DateTimeField(index=True)

    class Meta:
        table_name = "mcp_confirmation"


class Webhook(BaseModel):
    """A receiver of signed record events (see :mod:`appliance.webhooks`)."""

    id = peewee.AutoField()  # what peewee adds by itself, declared so type checkers know it
    url = peewee.CharField(max_length=2000)
    collection = peewee.CharField(max_length=50, index=True)
    events = peewee.TextField(default="[]")  # JSON list of event types
    description = peewee.CharField(max_length=200, default="")
    secret = peewee.CharField(max_length=200)  # "whsec_" + base64; needed in clear to sign
    active = peewee.BooleanField(default=True)
    paused_reason = peewee.TextField(null=True)  # set when the webhook paused itself after failures
    paused_at = peewee.DateTimeField(null=True)
    consecutive_failures = peewee.IntegerField(default=0)
    cursor = peewee.IntegerField(default=0)  # the last outbox event id this webhook has looked at
    created_at = peewee.DateTimeField()
    updated_at = peewee.DateTimeField()
    created_by = peewee.CharField(max_length=320, default="")

    class Meta:
        table_name = "webhook"


class WebhookDelivery(BaseModel):
    """One event sent (or to be sent) to one webhook, with how its last attempt went."""

    id = peewee.AutoField()  # what peewee adds by itself, declared so type checkers know it
    webhook = peewee.ForeignKeyField(Webhook, on_delete="CASCADE", index=True)
    webhook_id: int  # the foreign key's raw value, which peewee provides; declared for type checkers
    event = peewee.IntegerField()  # the outbox_event id (not a foreign key: events may be pruned)
    message_id = peewee.CharField(max_length=80, unique=True)  # the webhook-id header, stable across tries
    type = peewee.CharField(max_length=40)
    body = peewee.TextField()  # the exact JSON sent, fixed when the delivery is made
    status = peewee.CharField(max_length=20, index=True)  # pending, delivered, failed
    attempts = peewee.IntegerField(default=0)
    round_attempts = peewee.IntegerField(default=0)  # tries since it was made or last replayed
    next_attempt_at = peewee.DateTimeField(null=True, index=True)
    last_attempt_at = peewee.DateTimeField(null=True)
    last_status_code = peewee.IntegerField(null=True)
    last_error = peewee.TextField(null=True)
    last_response = peewee.TextField(null=True)  # the first bytes of the answer
    last_duration_ms = peewee.IntegerField(null=True)
    created_at = peewee.DateTimeField(index=True)
    delivered_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "webhook_delivery"


class Rule(BaseModel):
    """An automation rule: on record events of a collection, or every day at a time, do its actions
    (see :mod:`appliance.automations`). ``events``, ``changed_fields``, ``filter`` and ``actions`` are JSON."""

    id = peewee.AutoField()  # what peewee adds by itself, declared so type checkers know it
    name = peewee.CharField(max_length=60, unique=True)
    collection = peewee.CharField(max_length=50, index=True)
    active = peewee.BooleanField(default=True)
    events = peewee.TextField(default="[]")
    changed_fields = peewee.TextField(default="[]")
    daily_at = peewee.CharField(max_length=5, null=True)  # "HH:MM", local time, for a time rule
    conditions = peewee.TextField(default="{}")  # the filter, FIELD__OP: value
    actions = peewee.TextField(default="[]")
    since_event = peewee.IntegerField(default=0)  # the rule handles outbox events after this one
    last_daily_on = peewee.CharField(max_length=10, null=True)
    created_at = peewee.DateTimeField()
    updated_at = peewee.DateTimeField()
    created_by = peewee.CharField(max_length=320, default="")

    class Meta:
        table_name = "rule"


class RuleRun(BaseModel):
    """One run of a rule on one record: when, why, what each action did (JSON), the error if any."""

    id = peewee.AutoField()  # what peewee adds by itself, declared so type checkers know it
    rule_id = peewee.IntegerField()
    rule_name = peewee.CharField(max_length=60)
    at = peewee.DateTimeField(index=True)
    trigger = peewee.CharField(max_length=20)  # record.created, record.updated, record.deleted or daily
    event_id = peewee.CharField(max_length=40, null=True)
    collection = peewee.CharField(max_length=50)
    record_id = peewee.IntegerField(null=True)
    outcome = peewee.CharField(max_length=20)  # ok, failed, skipped
    actions = peewee.TextField(default="[]")
    error = peewee.TextField(null=True)
    mails_sent = peewee.IntegerField(default=0)
    depth = peewee.IntegerField(default=0)

    class Meta:
        table_name = "rule_run"


class RuleCursor(BaseModel):
    """The id of the last outbox event the rules handled."""

    name = peewee.CharField(primary_key=True, max_length=40)
    last_event_id = peewee.IntegerField(default=0)

    class Meta:
        table_name = "rule_cursor"
