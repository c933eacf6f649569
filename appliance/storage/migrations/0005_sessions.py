"""Browser sessions in the database, and sign-in attempts counted before the password is checked.

``user_session``: one row per signed-in browser. The cookie carries a random
key; the row stores only its SHA-256 digest, so a copy of the database
cannot be turned into cookies. Signing out deletes the row, so a copied
cookie dies with it.

``sign_in_failure.pending``: an attempt is counted (as pending) before its
password is checked, so parallel guesses cannot all pass the lock-out check
before any of them is counted.

Models are declared here as they were at this version (frozen).
"""

import datetime

from peewee import BooleanField, CharField, Database, DateTimeField, ForeignKeyField, Model
from playhouse.migrate import SchemaMigrator


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def up(migrator: SchemaMigrator, db: Database) -> None:
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class User(Base):
        class Meta:
            table_name = "user"

    class UserSession(Base):
        digest = CharField(max_length=64, unique=True)
        user = ForeignKeyField(User, on_delete="CASCADE", index=True)
        created_at = DateTimeField(default=_now)
        last_seen_at = DateTimeField(default=_now)
        # The earlier of the idle end (last_seen_at + idle time-out) and the absolute end.
        expires_at = DateTimeField(index=True)
        address = CharField(max_length=100, null=True)
        user_agent = CharField(max_length=300, default="")

        class Meta:
            table_name = "user_session"

    db.create_tables([UserSession])
    migrator.migrate(migrator.add_column("sign_in_failure", "pending", BooleanField(default=False)))


def down(migrator: SchemaMigrator, db: Database) -> None:
    migrator.migrate(migrator.drop_column("sign_in_failure", "pending"))
    db.execute_sql('DROP TABLE "user_session"')
