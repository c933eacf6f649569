"""Webhooks and their deliveries.

``webhook``: a receiver URL for the events of one collection, its signing
secret (kept in clear: it signs every delivery), whether it is active or
paused itself after failures, and its cursor in the outbox (the last event id
it has turned into deliveries). ``webhook_delivery``: one event for one
webhook, the exact body sent, a ``message_id`` stable across tries (the
``webhook-id`` header), and how its last attempt went.

Models are declared here as they were at this version (frozen).
"""

from peewee import (
    AutoField,
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


def up(migrator: SchemaMigrator, db: Database) -> None:
    class Webhook(Model):
        id = AutoField()
        url = CharField(max_length=2000)
        collection = CharField(max_length=50, index=True)
        events = TextField(default="[]")
        description = CharField(max_length=200, default="")
        secret = CharField(max_length=200)
        active = BooleanField(default=True)
        paused_reason = TextField(null=True)
        paused_at = DateTimeField(null=True)
        consecutive_failures = IntegerField(default=0)
        cursor = IntegerField(default=0)
        created_at = DateTimeField()
        updated_at = DateTimeField()
        created_by = CharField(max_length=320, default="")

        class Meta:
            database = db
            table_name = "webhook"

    class WebhookDelivery(Model):
        id = AutoField()
        webhook = ForeignKeyField(Webhook, on_delete="CASCADE", index=True)
        event = IntegerField()
        message_id = CharField(max_length=80, unique=True)
        type = CharField(max_length=40)
        body = TextField()
        status = CharField(max_length=20, index=True)
        attempts = IntegerField(default=0)
        round_attempts = IntegerField(default=0)
        next_attempt_at = DateTimeField(null=True, index=True)
        last_attempt_at = DateTimeField(null=True)
        last_status_code = IntegerField(null=True)
        last_error = TextField(null=True)
        last_response = TextField(null=True)
        last_duration_ms = IntegerField(null=True)
        created_at = DateTimeField(index=True)
        delivered_at = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "webhook_delivery"

    db.create_tables([Webhook, WebhookDelivery])


def down(migrator: SchemaMigrator, db: Database) -> None:
    db.execute_sql("DROP TABLE IF EXISTS webhook_delivery")
    db.execute_sql("DROP TABLE IF EXISTS webhook")
