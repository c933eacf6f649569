"""Runtime settings changed from the admin pages (those that need no restart)."""

import datetime

from peewee import CharField, Database, DateTimeField, Model, TextField
from playhouse.migrate import SchemaMigrator


def up(migrator: SchemaMigrator, db: Database) -> None:
    class RuntimeSetting(Model):
        key = CharField(primary_key=True, max_length=100)
        value = TextField()
        updated_at = DateTimeField(default=datetime.datetime.utcnow)

        class Meta:
            database = db
            table_name = "runtime_setting"

    db.create_tables([RuntimeSetting])


def down(migrator: SchemaMigrator, db: Database) -> None:
    db.execute_sql("DROP TABLE runtime_setting")
