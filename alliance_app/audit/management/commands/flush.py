"""`flush` empties the whole database on purpose, audit trail included, on SQLite as well.

PostgreSQL flushes with TRUNCATE, which row triggers do not see. SQLite deletes row by row, and
the append-only triggers (migration 0002) would refuse: they step aside for the flush and are put
back exactly as they were. Test cases that run in real transactions flush after every test.
"""

from django.core.management.commands import flush
from django.db import connections

from alliance_app.audit.models import AuditEntry


class Command(flush.Command):
    def handle(self, **options) -> None:
        connection = connections[options["database"]]
        if connection.vendor != "sqlite":
            return super().handle(**options)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s",
                [AuditEntry._meta.db_table],
            )
            triggers = cursor.fetchall()
            for name, _sql in triggers:
                cursor.execute(f"DROP TRIGGER {connection.ops.quote_name(name)}")
        try:
            return super().handle(**options)
        finally:
            with connection.cursor() as cursor:
                for _name, sql in triggers:
                    cursor.execute(sql)
