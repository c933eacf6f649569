"""Two-factor sign-in: ``user_totp`` (one TOTP secret per user, encrypted) and ``recovery_code``.

An installation that already has users when this migration runs is an
existing one: it keeps signing in as before. The migration notes that in
``runtime_setting`` (key ``require_two_factor``, value ``none``), and the
two-factor policy (:mod:`appliance.accounts.two_factor_policy`) takes it
when the settings file does not name ``require_two_factor``; a new
installation gets the registry's default (admins need two-factor).

Models are declared here as they were at this version (frozen).
"""

import datetime

from peewee import BigIntegerField, CharField, Database, DateTimeField, ForeignKeyField, Model, Table
from playhouse.migrate import SchemaMigrator


def up(migrator: SchemaMigrator, db: Database) -> None:
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class User(Base):
        class Meta:
            table_name = "user"

    class UserTotp(Base):
        user = ForeignKeyField(User, on_delete="CASCADE", unique=True)
        secret = CharField(max_length=400)
        created_at = DateTimeField()
        confirmed_at = DateTimeField(null=True)
        last_step = BigIntegerField(default=0)

        class Meta:
            table_name = "user_totp"

    class RecoveryCode(Base):
        user = ForeignKeyField(User, on_delete="CASCADE", index=True)
        digest = CharField(max_length=64, unique=True)
        created_at = DateTimeField()
        used_at = DateTimeField(null=True)

        class Meta:
            table_name = "recovery_code"

    db.create_tables([UserTotp, RecoveryCode])
    if User.select().exists():
        runtime = Table("runtime_setting").bind(db)
        runtime.delete().where(runtime.c.key == "require_two_factor").execute()
        now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        runtime.insert(
            {runtime.c.key: "require_two_factor", runtime.c.value: "none", runtime.c.updated_at: now}
        ).execute()


def down(migrator: SchemaMigrator, db: Database) -> None:
    db.execute_sql("DELETE FROM runtime_setting WHERE key = 'require_two_factor'")
    db.execute_sql('DROP TABLE "recovery_code"')
    db.execute_sql('DROP TABLE "user_totp"')
