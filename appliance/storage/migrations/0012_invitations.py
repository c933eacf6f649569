"""One-time account links (invitations and password resets) and the requests for reset links.

``account_link``: a link sent to (or passed on to) one user; only the SHA-256
digest of its secret is stored. ``kind`` is ``invite`` (valid 72 hours) or
``reset`` (valid 1 hour); ``used_at`` is set when it is spent, ``voided_at``
when a newer link replaced it or the user was disabled.

``link_request``: one row per "forgot password" request, keyed by the typed
email and by the client address, counted to throttle them.

Models are declared here as they were at this version (frozen).
"""

from peewee import AutoField, CharField, Database, DateTimeField, ForeignKeyField, Model
from playhouse.migrate import SchemaMigrator


def up(migrator: SchemaMigrator, db: Database) -> None:
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class User(Base):
        class Meta:
            table_name = "user"

    class AccountLink(Base):
        id = AutoField()
        kind = CharField(max_length=10)
        digest = CharField(max_length=64, unique=True)
        user = ForeignKeyField(User, on_delete="CASCADE", index=True)
        created_at = DateTimeField()
        expires_at = DateTimeField()
        used_at = DateTimeField(null=True)
        voided_at = DateTimeField(null=True)

        class Meta:
            table_name = "account_link"

    class LinkRequest(Base):
        id = AutoField()
        kind = CharField(max_length=10)
        key = CharField(max_length=320)
        at = DateTimeField(index=True)

        class Meta:
            table_name = "link_request"
            indexes = ((("kind", "key", "at"), False),)

    db.create_tables([AccountLink, LinkRequest])


def down(migrator: SchemaMigrator, db: Database) -> None:
    db.execute_sql('DROP TABLE IF EXISTS "link_request"')
    db.execute_sql('DROP TABLE IF EXISTS "account_link"')
