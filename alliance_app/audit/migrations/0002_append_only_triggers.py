"""The database itself refuses to change or delete an audit entry, whatever code or SQL asks.

One exception: deleting a user sets `actor` to NULL on their entries (on_delete=SET_NULL), and
`actor_name` keeps who it was. Nothing else may change. The SQLite trigger names every column,
so a column added later must be added to it in a new migration.
"""

from django.db import migrations

POSTGRESQL = [
    """
CREATE FUNCTION audit_auditentry_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.actor_id IS NULL
       AND (to_jsonb(NEW) - 'actor_id') = (to_jsonb(OLD) - 'actor_id') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit entries are append-only' USING ERRCODE = 'restrict_violation';
END;
$$;
""",
    """
CREATE TRIGGER audit_auditentry_append_only
    BEFORE UPDATE OR DELETE ON audit_auditentry
    FOR EACH ROW EXECUTE FUNCTION audit_auditentry_append_only();
""",
]
POSTGRESQL_REVERSE = [
    "DROP TRIGGER IF EXISTS audit_auditentry_append_only ON audit_auditentry;",
    "DROP FUNCTION IF EXISTS audit_auditentry_append_only();",
]

SQLITE = [
    """
    CREATE TRIGGER audit_auditentry_no_update BEFORE UPDATE ON audit_auditentry
    WHEN NEW.actor_id IS NOT NULL
        OR NEW.id IS NOT OLD.id
        OR NEW.at IS NOT OLD.at
        OR NEW.organization_id IS NOT OLD.organization_id
        OR NEW.actor_name IS NOT OLD.actor_name
        OR NEW.action IS NOT OLD.action
        OR NEW.object_type IS NOT OLD.object_type
        OR NEW.object_id IS NOT OLD.object_id
        OR NEW.detail IS NOT OLD.detail
        OR NEW.ip IS NOT OLD.ip
        OR NEW.user_agent IS NOT OLD.user_agent
    BEGIN
        SELECT RAISE(ABORT, 'audit entries are append-only');
    END;
    """,
    """
    CREATE TRIGGER audit_auditentry_no_delete BEFORE DELETE ON audit_auditentry
    BEGIN
        SELECT RAISE(ABORT, 'audit entries are append-only');
    END;
    """,
]
SQLITE_REVERSE = [
    "DROP TRIGGER IF EXISTS audit_auditentry_no_update;",
    "DROP TRIGGER IF EXISTS audit_auditentry_no_delete;",
]


def _execute(schema_editor, statements: dict) -> None:
    vendor = schema_editor.connection.vendor
    if vendor not in statements:
        raise NotImplementedError(f"no append-only triggers for the {vendor} database")
    for sql in statements[vendor]:
        schema_editor.execute(sql)


def create_triggers(apps, schema_editor) -> None:
    _execute(schema_editor, {"postgresql": POSTGRESQL, "sqlite": SQLITE})


def drop_triggers(apps, schema_editor) -> None:
    _execute(schema_editor, {"postgresql": POSTGRESQL_REVERSE, "sqlite": SQLITE_REVERSE})


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunPython(create_triggers, drop_triggers)]
