"""The outbox: one ``outbox_event`` row per record change, written in the change's own transaction.

Webhook deliveries and automation rules read it in the scheduler's process,
each with its own cursor (the last event id it handled). ``event_id`` is the
stable id receivers drop duplicates by.

Models are declared here as they were at this version (frozen).
"""

from peewee import AutoField, CharField, Database, DateTimeField, IntegerField, Model, TextField
from playhouse.migrate import SchemaMigrator


def up(migrator: SchemaMigrator, db: Database) -> None:
    class OutboxEvent(Model):
        id = AutoField()
        event_id = CharField(max_length=40, unique=True)
        type = CharField(max_length=40)
        collection = CharField(max_length=50)
        record_id = IntegerField()
        data = TextField()
        actor_id = IntegerField(null=True)
        actor = CharField(max_length=320, default="")
        at = DateTimeField(index=True)

        class Meta:
            database = db
            table_name = "outbox_event"
            indexes = ((("collection", "record_id"), False),)

    db.create_tables([OutboxEvent])


def down(migrator: SchemaMigrator, db: Database) -> None:
    db.execute_sql("DROP TABLE IF EXISTS outbox_event")
