"""Collections and their records: definitions, record versions and file references.

Each collection's own table (``c_<name>``) and its full-text index are not
created here: they are data, made and migrated by ``appliance.collections``
inside the transaction that saves the definition. This migration creates the
system tables that describe them. Models are declared inline (frozen).
"""

import datetime

from peewee import CharField, Database, DateTimeField, IntegerField, Model, TextField
from playhouse.migrate import SchemaMigrator


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def up(migrator: SchemaMigrator, db: Database) -> None:
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class Collection(Base):
        name = CharField(primary_key=True, max_length=50)
        label = CharField(max_length=200)
        fields = TextField(default="[]")  # JSON list of field definitions
        permissions = TextField(default="{}")  # JSON {role: ["view", "update:own", ...]}
        # Maintained in the transaction of every insert and delete, so that the
        # unfiltered total of a listing never needs COUNT(*) over a big table.
        row_count = IntegerField(default=0)
        created_at = DateTimeField(default=_now)
        updated_at = DateTimeField(default=_now)

        class Meta:
            table_name = "collection"

    class RecordVersion(Base):
        collection = CharField(max_length=50)
        record_id = IntegerField()
        version = IntegerField()
        action = CharField(max_length=20)  # create, update, delete, restore
        actor_id = IntegerField(null=True)
        actor = CharField(max_length=320, default="")
        at = DateTimeField(default=_now)
        data = TextField()  # JSON snapshot of the record after the change (before it, for a delete)
        changes = TextField(default="{}")  # JSON {field: [old, new]}

        class Meta:
            table_name = "record_version"
            indexes = (
                (("collection", "record_id", "version"), True),
                (("collection", "action"), False),
            )

    class FileRef(Base):
        sha256 = CharField(max_length=64, index=True)
        collection = CharField(max_length=50)
        record_id = IntegerField()
        field = CharField(max_length=63)

        class Meta:
            table_name = "file_ref"
            indexes = ((("collection", "record_id", "field"), True),)

    db.create_tables([Collection, RecordVersion, FileRef])


def down(migrator: SchemaMigrator, db: Database) -> None:
    for (name,) in db.execute_sql("SELECT name FROM collection").fetchall():
        db.execute_sql(f'DROP TABLE IF EXISTS "c_{name}__fts"')
        db.execute_sql(f'DROP TABLE IF EXISTS "c_{name}"')
    for table in ("file_ref", "record_version", "collection"):
        db.execute_sql(f'DROP TABLE "{table}"')
