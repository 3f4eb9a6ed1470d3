"""Scale-out (PostgreSQL only; nothing on SQLite): the spend rollup and file contents in the database.

- ``spend_rollup`` / ``calls_rollup``: the ledger summed per UTC hour and per (model, tier, key, team, deployment),
  kept by statement-level triggers over the rows a statement really inserted (its transition table), so a replayed
  row (``ON CONFLICT DO NOTHING``) is never counted twice and every insert path (the writer, batch lines, bulk
  loads) keeps it exact. ``tokenomy spend`` reads whole hours from here and the window's partial hours from the rows.
  Absent dimensions are '' (a team or key id is never empty).
- ``file_chunks``: the contents of /v1/files uploads and batch outputs, 1 MiB per row, so every replica reads
  every file without a shared volume.
"""

from yoyo import step

HOUR_US = 3_600_000_000

SQL = f"""
CREATE TABLE spend_rollup (
    hour                BIGINT NOT NULL,
    model               TEXT NOT NULL,
    tier                TEXT NOT NULL,
    key_id              TEXT NOT NULL,
    tenant              TEXT NOT NULL,
    deployment          TEXT NOT NULL,
    requests            BIGINT NOT NULL,
    errors              BIGINT NOT NULL,
    cache_hits          BIGINT NOT NULL,
    unpriced            BIGINT NOT NULL,
    cost_pusd           BIGINT NOT NULL,
    counterfactual_pusd BIGINT NOT NULL,
    saving_pusd         BIGINT NOT NULL,
    prompt_tokens       BIGINT NOT NULL,
    output_tokens       BIGINT NOT NULL,
    PRIMARY KEY (hour, model, tier, key_id, tenant, deployment)
);

CREATE TABLE calls_rollup (
    hour                BIGINT NOT NULL,
    key_id              TEXT NOT NULL,
    tenant              TEXT NOT NULL,
    calls               BIGINT NOT NULL,
    failed_calls        BIGINT NOT NULL,
    input_tokens        BIGINT NOT NULL,
    cached_read_tokens  BIGINT NOT NULL,
    cache_write_tokens  BIGINT NOT NULL,
    output_tokens       BIGINT NOT NULL,
    reasoning_tokens    BIGINT NOT NULL,
    cost_pusd           BIGINT NOT NULL,
    PRIMARY KEY (hour, key_id, tenant)
);

CREATE FUNCTION tokenomy_rollup_requests() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
    INSERT INTO spend_rollup AS r
    SELECT started_us / {HOUR_US}, COALESCE(served_model, requested_model), COALESCE(tier, ''),
           COALESCE(key_id, ''), COALESCE(tenant, ''), COALESCE(deployment, ''),
           COUNT(*), SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END),
           SUM(CASE WHEN cache_status IN ('hit', 'semantic-hit') THEN 1 ELSE 0 END),
           SUM(CASE WHEN cost_pusd IS NULL THEN 1 ELSE 0 END),
           COALESCE(SUM(cost_pusd), 0), COALESCE(SUM(counterfactual_pusd), 0), COALESCE(SUM(saving_pusd), 0),
           SUM(input_tokens + cached_read_tokens + cache_write_tokens), SUM(output_tokens)
      FROM new_rows GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (hour, model, tier, key_id, tenant, deployment) DO UPDATE SET
           requests = r.requests + EXCLUDED.requests, errors = r.errors + EXCLUDED.errors,
           cache_hits = r.cache_hits + EXCLUDED.cache_hits, unpriced = r.unpriced + EXCLUDED.unpriced,
           cost_pusd = r.cost_pusd + EXCLUDED.cost_pusd,
           counterfactual_pusd = r.counterfactual_pusd + EXCLUDED.counterfactual_pusd,
           saving_pusd = r.saving_pusd + EXCLUDED.saving_pusd,
           prompt_tokens = r.prompt_tokens + EXCLUDED.prompt_tokens,
           output_tokens = r.output_tokens + EXCLUDED.output_tokens;
    RETURN NULL;
END
$body$;

CREATE FUNCTION tokenomy_rollup_calls() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
    INSERT INTO calls_rollup AS r
    SELECT c.started_us / {HOUR_US}, COALESCE(q.key_id, ''), COALESCE(q.tenant, ''),
           COUNT(*), SUM(CASE WHEN c.outcome = 'error' THEN 1 ELSE 0 END), SUM(c.input_tokens),
           SUM(c.cached_read_tokens), SUM(c.cache_write_5m_tokens + c.cache_write_1h_tokens), SUM(c.output_tokens),
           SUM(c.reasoning_tokens), COALESCE(SUM(c.cost_pusd), 0)
      FROM new_rows c LEFT JOIN requests q ON q.id = c.request_id
     GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (hour, key_id, tenant) DO UPDATE SET
           calls = r.calls + EXCLUDED.calls, failed_calls = r.failed_calls + EXCLUDED.failed_calls,
           input_tokens = r.input_tokens + EXCLUDED.input_tokens,
           cached_read_tokens = r.cached_read_tokens + EXCLUDED.cached_read_tokens,
           cache_write_tokens = r.cache_write_tokens + EXCLUDED.cache_write_tokens,
           output_tokens = r.output_tokens + EXCLUDED.output_tokens,
           reasoning_tokens = r.reasoning_tokens + EXCLUDED.reasoning_tokens,
           cost_pusd = r.cost_pusd + EXCLUDED.cost_pusd;
    RETURN NULL;
END
$body$;

CREATE TRIGGER requests_rollup AFTER INSERT ON requests REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tokenomy_rollup_requests();
CREATE TRIGGER calls_rollup AFTER INSERT ON calls REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tokenomy_rollup_calls();

CREATE TABLE file_chunks (
    file_id TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    data    BYTEA NOT NULL,
    PRIMARY KEY (file_id, seq)
);
"""

def _postgres(conn: object) -> bool:
    return type(conn).__module__.startswith("psycopg")


def apply(conn):  # type: ignore[no-untyped-def]
    if not _postgres(conn):
        return
    cursor = conn.cursor()
    cursor.execute(SQL)
    # rows already in the ledger when the rollup arrives: summed once, by the same rules
    cursor.execute(f"""
        INSERT INTO spend_rollup
        SELECT started_us / {HOUR_US}, COALESCE(served_model, requested_model), COALESCE(tier, ''),
               COALESCE(key_id, ''), COALESCE(tenant, ''), COALESCE(deployment, ''),
               COUNT(*), SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END),
               SUM(CASE WHEN cache_status IN ('hit', 'semantic-hit') THEN 1 ELSE 0 END),
               SUM(CASE WHEN cost_pusd IS NULL THEN 1 ELSE 0 END),
               COALESCE(SUM(cost_pusd), 0), COALESCE(SUM(counterfactual_pusd), 0), COALESCE(SUM(saving_pusd), 0),
               COALESCE(SUM(input_tokens + cached_read_tokens + cache_write_tokens), 0),
               COALESCE(SUM(output_tokens), 0)
          FROM requests GROUP BY 1, 2, 3, 4, 5, 6""")
    cursor.execute(f"""
        INSERT INTO calls_rollup
        SELECT c.started_us / {HOUR_US}, COALESCE(q.key_id, ''), COALESCE(q.tenant, ''),
               COUNT(*), SUM(CASE WHEN c.outcome = 'error' THEN 1 ELSE 0 END), SUM(c.input_tokens),
               SUM(c.cached_read_tokens), SUM(c.cache_write_5m_tokens + c.cache_write_1h_tokens),
               SUM(c.output_tokens), SUM(c.reasoning_tokens), COALESCE(SUM(c.cost_pusd), 0)
          FROM calls c LEFT JOIN requests q ON q.id = c.request_id GROUP BY 1, 2, 3""")


def rollback(conn):  # type: ignore[no-untyped-def]
    if not _postgres(conn):
        return
    conn.cursor().execute("DROP TRIGGER requests_rollup ON requests; DROP TRIGGER calls_rollup ON calls; "
                          "DROP FUNCTION tokenomy_rollup_requests(); DROP FUNCTION tokenomy_rollup_calls(); "
                          "DROP TABLE spend_rollup; DROP TABLE calls_rollup; DROP TABLE file_chunks;")


steps = [step(apply, rollback)]
