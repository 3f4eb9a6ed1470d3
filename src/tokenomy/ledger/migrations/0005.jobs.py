"""The job engine's schema (procrastinate: tables, types and functions of its own ``procrastinate_*`` names), in the
ledger's PostgreSQL database, so batch lines are queued where their results commit. Nothing on SQLite: the
embedded gateway runs batches in its own process. Upgrading procrastinate past 3.x means applying its own migration
files after this one (docs/scale.md)."""

from importlib import resources

from yoyo import step


def apply(conn):  # type: ignore[no-untyped-def]
    if not type(conn).__module__.startswith("psycopg"):
        return
    schema = resources.files("procrastinate").joinpath("sql/schema.sql").read_text(encoding="utf-8")
    conn.cursor().execute(schema)


def rollback(conn):  # type: ignore[no-untyped-def]
    if not type(conn).__module__.startswith("psycopg"):
        return
    conn.cursor().execute("DROP TABLE IF EXISTS procrastinate_events, procrastinate_periodic_defers, "
                          "procrastinate_jobs, procrastinate_workers CASCADE")


steps = [step(apply, rollback)]
