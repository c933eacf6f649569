"""AI agents (MCP): a token's MCP options, the calls counted for its limits, delete confirmations,
and who-through-what on record versions.

``api_token``: ``mcp`` (usable at ``/mcp``), ``mcp_tools`` and ``mcp_collections``
(JSON lists; null means every tool its scope allows, every collection its user
may see) and ``mcp_approval`` (its writes wait for an admin).

``mcp_call``: one row per tool call, by token and time, for the per-minute and
per-day limits (shared by every worker through the database).

``mcp_confirmation``: the one-time handles a ``delete_record`` preview hands
out, stored as a digest, bound to the token and the call's arguments.

``record_version.details``: JSON such as ``{"via": "mcp", "token": 7}`` for a
change made through an agent (null otherwise).

Models are declared here as they were at this version (frozen).
"""

from peewee import BooleanField, CharField, Database, DateTimeField, IntegerField, Model, TextField
from playhouse.migrate import SchemaMigrator


def up(migrator: SchemaMigrator, db: Database) -> None:
    class McpCall(Model):
        token_id = IntegerField()
        at = DateTimeField()
        write = BooleanField(default=False)

        class Meta:
            database = db
            table_name = "mcp_call"
            indexes = ((("token_id", "at"), False),)

    class McpConfirmation(Model):
        digest = CharField(max_length=64, unique=True)
        token_id = IntegerField()
        arguments = CharField(max_length=64)
        created_at = DateTimeField()
        expires_at = DateTimeField(index=True)

        class Meta:
            database = db
            table_name = "mcp_confirmation"

    db.create_tables([McpCall, McpConfirmation])
    migrator.migrate(
        migrator.add_column("api_token", "mcp", BooleanField(default=False)),
        migrator.add_column("api_token", "mcp_tools", TextField(null=True)),
        migrator.add_column("api_token", "mcp_collections", TextField(null=True)),
        migrator.add_column("api_token", "mcp_approval", BooleanField(default=False)),
        migrator.add_column("record_version", "details", TextField(null=True)),
    )


def down(migrator: SchemaMigrator, db: Database) -> None:
    migrator.migrate(
        migrator.drop_column("record_version", "details"),
        migrator.drop_column("api_token", "mcp_approval"),
        migrator.drop_column("api_token", "mcp_collections"),
        migrator.drop_column("api_token", "mcp_tools"),
        migrator.drop_column("api_token", "mcp"),
    )
    db.execute_sql("DROP TABLE IF EXISTS mcp_confirmation")
    db.execute_sql("DROP TABLE IF EXISTS mcp_call")
