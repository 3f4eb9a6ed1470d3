"""tokenomy's ledger read from PostgreSQL (a ``postgresql://…`` or ``postgres://…`` LOG argument), in one pass.

The same query and the same record mapping as the SQLite ledger (``readers.LEDGER_SQL``, ``readers.ledger_record``:
the schema is the portable one of ``ledger/migrations``), through a server-side (named) cursor that fetches
``BATCH_ROWS`` rows at a time, so a ledger of millions of rows is never held in memory. The connection is the
ledger's own (``PostgresDatabase``, unpooled: one read, failing at once with the server's reason). Errors are one
line and never show the URL's password.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import parse_qs, unquote, urlsplit

from tokenomy.audit.readers import LEDGER_SQL, ledger_record
from tokenomy.audit.records import LogRecord
from tokenomy.db.engine import PostgresDatabase, masked_url, reason
from tokenomy.errors import AuditError

BATCH_ROWS = 10_000
CURSOR_NAME = "tokenomy_audit"
# SQLSTATEs of a database that is not a tokenomy ledger: no such table (42P01) or column (42703)
_NOT_A_LEDGER = ("42P01", "42703")


def shown_url(url: str) -> str:
    """The URL as errors and the report name it: the password (userinfo or ``?password=``) masked."""
    return re.sub(r"([?&]password=)[^&]*", r"\1***", masked_url(url))


def read_pg_ledger(url: str, batch_rows: int = BATCH_ROWS) -> Iterator[LogRecord]:
    """The ``requests`` rows of the ledger at ``url`` as records, ordered by ``started_us``."""
    import psycopg
    from psycopg.rows import tuple_row

    shown = shown_url(url)
    database = PostgresDatabase(url, pooled=False)
    try:
        opened = database.connection()  # unpooled: connects here, failing at once with the server's reason
    except psycopg.Error as exc:
        raise AuditError(f"cannot open ledger {shown}: {_scrubbed(reason(exc), url)}") from exc
    with opened as conn:
        conn.read_only = True
        try:
            with conn.cursor(name=CURSOR_NAME, row_factory=tuple_row) as cursor:
                cursor.itersize = batch_rows
                cursor.execute(LEDGER_SQL)
                for row in cursor:
                    yield ledger_record(row)
        except psycopg.Error as exc:
            if exc.sqlstate in _NOT_A_LEDGER:
                why = exc.diag.message_primary or reason(exc)
                raise AuditError(f"{shown}: not a tokenomy ledger ({_scrubbed(why, url)})") from exc
            raise AuditError(f"cannot read ledger {shown}: {_scrubbed(reason(exc), url)}") from exc


def _scrubbed(text: str, url: str) -> str:
    """A driver's message with any password from the URL replaced (a conninfo error may quote the URL)."""
    for secret in sorted(_passwords(url), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _passwords(url: str) -> set[str]:
    """The URL's passwords, as written and percent-decoded."""
    try:
        parts = urlsplit(url)
        found = [parts.password or "", *parse_qs(parts.query).get("password", [])]
    except ValueError:
        return set()
    return {s for p in found for s in (p, unquote(p)) if s}
