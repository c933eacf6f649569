"""Writes of AI agents held for an admin's approval: one ``mcp_pending_write`` row per held call.

A token created "writes need approval" does not change records through MCP:
each ``create_record``/``update_record``/``delete_record`` call is stored here
as ``pending`` with the agent's arguments, and an admin approves (it is then
applied once, as the token's user: ``applied`` or ``failed``) or rejects it.
``token_id`` and ``user_id`` are plain numbers, not foreign keys: the row
stays as a record of what was asked after the token is revoked.

Models are declared here as they were at this version (frozen).
"""

from peewee import AutoField, CharField, Database, DateTimeField, IntegerField, Model, TextField
from playhouse.migrate import SchemaMigrator


def up(migrator: SchemaMigrator, db: Database) -> None:
    class PendingWrite(Model):
        id = AutoField()
        token_id = IntegerField(index=True)
        token_name = CharField(max_length=100, default="")
        user_id = IntegerField()
        user_email = CharField(max_length=320, default="")
        client = CharField(max_length=200, null=True)
        tool = CharField(max_length=40)
        collection = CharField(max_length=50, default="")
        arguments = TextField()
        status = CharField(max_length=20, index=True)
        result = TextField(null=True)
        error = TextField(null=True)
        created_at = DateTimeField(index=True)
        decided_at = DateTimeField(null=True)
        decided_by_id = IntegerField(null=True)
        decided_by = CharField(max_length=320, null=True)

        class Meta:
            database = db
            table_name = "mcp_pending_write"

    db.create_tables([PendingWrite])


def down(migrator: SchemaMigrator, db: Database) -> None:
    db.execute_sql("DROP TABLE IF EXISTS mcp_pending_write")
