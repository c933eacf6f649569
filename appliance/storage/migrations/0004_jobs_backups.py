"""Scheduled jobs, their runs, and alerts.

Backups themselves are not in the database: the backups folder is the truth
about which archives exist (each carries its manifest, and its verification
result sits beside it), so restoring an older database forgets no archive.
"""

import datetime

from peewee import BooleanField, CharField, Database, DateTimeField, FloatField, IntegerField, Model, TextField
from playhouse.migrate import SchemaMigrator


def up(migrator: SchemaMigrator, db: Database) -> None:
    class Job(Model):
        name = CharField(primary_key=True, max_length=64)
        schedule = CharField(max_length=200)
        enabled = BooleanField(default=True)
        options = TextField(default="{}")
        version = IntegerField(default=1)
        updated_at = DateTimeField(default=datetime.datetime.utcnow)
        next_run_at = DateTimeField(null=True)
        run_requested_at = DateTimeField(null=True)
        created_at = DateTimeField(default=datetime.datetime.utcnow)

        class Meta:
            database = db
            table_name = "job"

    class JobRun(Model):
        job = CharField(max_length=64, index=True)
        trigger = CharField(max_length=20)
        started_at = DateTimeField(index=True)
        finished_at = DateTimeField(null=True)
        outcome = CharField(max_length=20)
        message = TextField(default="")
        duration_seconds = FloatField(null=True)
        scheduled_for = DateTimeField(null=True)
        pid = IntegerField(null=True)

        class Meta:
            database = db
            table_name = "job_run"
            indexes = ((("job", "started_at"), False),)

    class Alert(Model):
        at = DateTimeField(index=True)
        kind = CharField(max_length=40)
        subject = CharField(max_length=200)
        message = TextField(default="")
        job = CharField(max_length=64, null=True)
        key = CharField(max_length=200, null=True, index=True)
        emailed = BooleanField(default=False)
        mail_error = TextField(null=True)
        acknowledged_at = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "alert"

    db.create_tables([Job, JobRun, Alert])


def down(migrator: SchemaMigrator, db: Database) -> None:
    for table in ("alert", "job_run", "job"):
        db.execute_sql(f'DROP TABLE "{table}"')
