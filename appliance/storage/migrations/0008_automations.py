"""Automation rules ("when this happens, do that"), their run log, and the rules' outbox cursor.

A ``rule`` reacts to record events of one collection (or runs every day at a
time) for the records matching its filter, and does its actions (JSON). Each
time a rule runs on a record, a ``rule_run`` row says when, on which record,
what each action did and the error if any. ``rule_cursor`` holds the id of the
last outbox event the rules handled (the outbox itself is never deleted from).

Models are declared here as they were at this version (frozen).
"""

from peewee import AutoField, BooleanField, CharField, Database, DateTimeField, IntegerField, Model, TextField
from playhouse.migrate import SchemaMigrator


def up(migrator: SchemaMigrator, db: Database) -> None:
    class Rule(Model):
        id = AutoField()
        name = CharField(max_length=60, unique=True)
        collection = CharField(max_length=50, index=True)
        active = BooleanField(default=True)
        events = TextField(default="[]")
        changed_fields = TextField(default="[]")
        daily_at = CharField(max_length=5, null=True)
        conditions = TextField(default="{}")
        actions = TextField(default="[]")
        since_event = IntegerField(default=0)
        last_daily_on = CharField(max_length=10, null=True)
        created_at = DateTimeField()
        updated_at = DateTimeField()
        created_by = CharField(max_length=320, default="")

        class Meta:
            database = db
            table_name = "rule"

    class RuleRun(Model):
        id = AutoField()
        rule_id = IntegerField()
        rule_name = CharField(max_length=60)
        at = DateTimeField(index=True)
        trigger = CharField(max_length=20)
        event_id = CharField(max_length=40, null=True)
        collection = CharField(max_length=50)
        record_id = IntegerField(null=True)
        outcome = CharField(max_length=20)
        actions = TextField(default="[]")
        error = TextField(null=True)
        mails_sent = IntegerField(default=0)
        depth = IntegerField(default=0)

        class Meta:
            database = db
            table_name = "rule_run"
            indexes = ((("rule_id", "event_id"), False), (("rule_id", "at"), False))

    class RuleCursor(Model):
        name = CharField(primary_key=True, max_length=40)
        last_event_id = IntegerField(default=0)

        class Meta:
            database = db
            table_name = "rule_cursor"

    db.create_tables([Rule, RuleRun, RuleCursor])


def down(migrator: SchemaMigrator, db: Database) -> None:
    for table in ("rule_cursor", "rule_run", "rule"):
        db.execute_sql(f"DROP TABLE IF EXISTS {table}")
