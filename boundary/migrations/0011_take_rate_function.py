"""PostgreSQL: the rate limit's check-and-admit as one server-side function, one round trip.

boundary.throttling.DatabaseRateStore used to send seven statements (BEGIN, the token's
advisory lock, the delete, the count, the insert, COMMIT), about 2 ms of every request on
loopback; the function runs the same statements in the database. Each statement inside sees
what committed before it (READ COMMITTED), so the count after the lock is exact.
"""

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION boundary_take_rate(
    p_key varchar, p_limit integer, p_period double precision, p_now double precision,
    p_sweep boolean
) RETURNS double precision LANGUAGE plpgsql AS $$
DECLARE
    admitted integer;
    oldest double precision;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(p_key, 0));
    IF p_sweep THEN
        DELETE FROM boundary_ratehit WHERE at <= p_now - p_period;
    ELSE
        DELETE FROM boundary_ratehit WHERE key = p_key AND at <= p_now - p_period;
    END IF;
    SELECT count(*), min(at) INTO admitted, oldest FROM boundary_ratehit WHERE key = p_key;
    IF admitted < p_limit THEN
        INSERT INTO boundary_ratehit (key, at) VALUES (p_key, p_now);
        RETURN 0;
    END IF;
    RETURN greatest(oldest + p_period - p_now, 1e-6);
END
$$
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FUNCTION)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "DROP FUNCTION boundary_take_rate(varchar, integer, double precision, "
            "double precision, boolean)"
        )


class Migration(migrations.Migration):
    dependencies = [("boundary", "0010_calls_fk_indexes_covered")]

    operations = [migrations.RunPython(create, drop)]
