"""The API rate limit's table (boundary.throttling.DatabaseRateStore): one row per admitted
request of the last period, per token.

UNLOGGED on PostgreSQL: a rate limit is not worth a WAL flush per request, and losing the table
in a crash only forgets how fast each token went lately. No model: only raw SQL touches it.
"""

from django.db import migrations


def create(apps, schema_editor):
    postgresql = schema_editor.connection.vendor == "postgresql"
    unlogged = "UNLOGGED " if postgresql else ""
    real = "double precision" if postgresql else "REAL"
    schema_editor.execute(
        f"CREATE {unlogged}TABLE boundary_ratehit (key varchar(255) NOT NULL, at {real} NOT NULL)"
    )
    schema_editor.execute("CREATE INDEX boundary_ratehit_key_at ON boundary_ratehit (key, at)")


def drop(apps, schema_editor):
    schema_editor.execute("DROP TABLE boundary_ratehit")


class Migration(migrations.Migration):
    dependencies = [("boundary", "0008_boundarycall_origin_db_default")]

    operations = [migrations.RunPython(create, drop)]
