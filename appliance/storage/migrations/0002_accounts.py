"""Accounts and security: roles, users, audit events, API tokens, sign-in throttling, set-up links.

The models are declared here as they were at this version (frozen), not
imported from the services, so later changes to the services cannot change
what this migration does.
"""

import datetime

from peewee import (
    BooleanField,
    CharField,
    Database,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)
from playhouse.migrate import SchemaMigrator


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def up(migrator: SchemaMigrator, db: Database) -> None:
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class Role(Base):
        name = CharField(primary_key=True, max_length=40)
        label = CharField(max_length=100)
        builtin = BooleanField(default=False)
        created_at = DateTimeField(default=_now)

        class Meta:
            table_name = "role"

    class User(Base):
        email = CharField(max_length=320, unique=True)
        name = CharField(max_length=200)
        role = ForeignKeyField(Role, field=Role.name, column_name="role", on_update="CASCADE")
        active = BooleanField(default=True, index=True)
        password_hash = CharField(max_length=255)
        must_change_password = BooleanField(default=False)
        session_version = IntegerField(default=1)
        created_at = DateTimeField(default=_now)
        last_sign_in_at = DateTimeField(null=True)

        class Meta:
            table_name = "user"

    class AuditEvent(Base):
        at = DateTimeField(default=_now, index=True)
        actor_id = ForeignKeyField(User, null=True, on_delete="SET NULL", column_name="actor_id", index=True)
        actor = CharField(max_length=320, default="")
        action = CharField(max_length=80, index=True)
        target = CharField(max_length=400, default="", index=True)
        address = CharField(max_length=100, null=True)
        details = TextField(default="{}")

        class Meta:
            table_name = "audit_event"

    class ApiToken(Base):
        user = ForeignKeyField(User, on_delete="CASCADE", index=True)
        name = CharField(max_length=100)
        digest = CharField(max_length=64, unique=True)
        prefix = CharField(max_length=16)
        scope = CharField(max_length=10)
        created_at = DateTimeField(default=_now)
        expires_at = DateTimeField(index=True)
        last_used_at = DateTimeField(null=True)

        class Meta:
            table_name = "api_token"

    class SignInFailure(Base):
        kind = CharField(max_length=10)  # "account" or "address"
        key = CharField(max_length=320)
        at = DateTimeField(default=_now)

        class Meta:
            table_name = "sign_in_failure"
            indexes = ((("kind", "key", "at"), False),)

    class SignInLock(Base):
        kind = CharField(max_length=10)
        key = CharField(max_length=320)
        locked_until = DateTimeField()

        class Meta:
            table_name = "sign_in_lock"
            indexes = ((("kind", "key"), True),)

    class SetupLink(Base):
        digest = CharField(max_length=64, unique=True)
        created_at = DateTimeField(default=_now)
        expires_at = DateTimeField()
        used_at = DateTimeField(null=True)

        class Meta:
            table_name = "setup_link"

    db.create_tables([Role, User, AuditEvent, ApiToken, SignInFailure, SignInLock, SetupLink])
    now = _now()
    Role.insert_many(
        [
            {"name": "admin", "label": "Admin", "builtin": True, "created_at": now},
            {"name": "editor", "label": "Editor", "builtin": True, "created_at": now},
            {"name": "viewer", "label": "Viewer", "builtin": True, "created_at": now},
        ]
    ).execute()


def down(migrator: SchemaMigrator, db: Database) -> None:
    for table in ("setup_link", "sign_in_lock", "sign_in_failure", "api_token", "audit_event", "user", "role"):
        db.execute_sql(f'DROP TABLE "{table}"')
