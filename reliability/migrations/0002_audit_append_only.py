"""On PostgreSQL, refuse UPDATE and DELETE on the audit log at the database itself."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION reliability_auditlog_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'reliability_auditlog is append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER reliability_auditlog_append_only
    BEFORE UPDATE OR DELETE ON reliability_auditlog
    FOR EACH ROW EXECUTE FUNCTION reliability_auditlog_append_only();
"""
DROP = """
DROP TRIGGER IF EXISTS reliability_auditlog_append_only ON reliability_auditlog;
DROP FUNCTION IF EXISTS reliability_auditlog_append_only();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("reliability", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
