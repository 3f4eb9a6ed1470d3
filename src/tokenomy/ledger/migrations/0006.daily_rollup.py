"""The spend rollup per UTC day as well as per hour (PostgreSQL only; nothing on SQLite): a 90-day report then sums
about 90 rows per (model, tier, key, team, deployment) instead of 2,160, which is what keeps ``tokenomy spend``
under a second on a 10M-row ledger (bench/spend_scale.py, docs/scale.md). Kept by statement triggers exactly like
the hourly one (0004); filled from the hourly rollup for rows already there."""

from yoyo import step

DAY_US = 86_400_000_000

SQL = f"""
CREATE TABLE spend_rollup_day (LIKE spend_rollup INCLUDING ALL);
ALTER TABLE spend_rollup_day RENAME COLUMN hour TO day;
CREATE TABLE calls_rollup_day (LIKE calls_rollup INCLUDING ALL);
ALTER TABLE calls_rollup_day RENAME COLUMN hour TO day;

CREATE FUNCTION tokenomy_rollup_requests_day() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
    INSERT INTO spend_rollup_day AS r
    SELECT started_us / {DAY_US}, COALESCE(served_model, requested_model), COALESCE(tier, ''),
           COALESCE(key_id, ''), COALESCE(tenant, ''), COALESCE(deployment, ''),
           COUNT(*), SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END),
           SUM(CASE WHEN cache_status IN ('hit', 'semantic-hit') THEN 1 ELSE 0 END),
           SUM(CASE WHEN cost_pusd IS NULL THEN 1 ELSE 0 END),
           COALESCE(SUM(cost_pusd), 0), COALESCE(SUM(counterfactual_pusd), 0), COALESCE(SUM(saving_pusd), 0),
           SUM(input_tokens + cached_read_tokens + cache_write_tokens), SUM(output_tokens)
      FROM new_rows GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (day, model, tier, key_id, tenant, deployment) DO UPDATE SET
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

CREATE FUNCTION tokenomy_rollup_calls_day() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
    INSERT INTO calls_rollup_day AS r
    SELECT c.started_us / {DAY_US}, COALESCE(q.key_id, ''), COALESCE(q.tenant, ''),
           COUNT(*), SUM(CASE WHEN c.outcome = 'error' THEN 1 ELSE 0 END), SUM(c.input_tokens),
           SUM(c.cached_read_tokens), SUM(c.cache_write_5m_tokens + c.cache_write_1h_tokens), SUM(c.output_tokens),
           SUM(c.reasoning_tokens), COALESCE(SUM(c.cost_pusd), 0)
      FROM new_rows c LEFT JOIN requests q ON q.id = c.request_id
     GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (day, key_id, tenant) DO UPDATE SET
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

CREATE TRIGGER requests_rollup_day AFTER INSERT ON requests REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tokenomy_rollup_requests_day();
CREATE TRIGGER calls_rollup_day AFTER INSERT ON calls REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tokenomy_rollup_calls_day();

INSERT INTO spend_rollup_day
SELECT hour / 24, model, tier, key_id, tenant, deployment, SUM(requests), SUM(errors), SUM(cache_hits),
       SUM(unpriced), SUM(cost_pusd), SUM(counterfactual_pusd), SUM(saving_pusd), SUM(prompt_tokens),
       SUM(output_tokens)
  FROM spend_rollup GROUP BY 1, 2, 3, 4, 5, 6;
INSERT INTO calls_rollup_day
SELECT hour / 24, key_id, tenant, SUM(calls), SUM(failed_calls), SUM(input_tokens), SUM(cached_read_tokens),
       SUM(cache_write_tokens), SUM(output_tokens), SUM(reasoning_tokens), SUM(cost_pusd)
  FROM calls_rollup GROUP BY 1, 2, 3;
"""


def apply(conn):  # type: ignore[no-untyped-def]
    if type(conn).__module__.startswith("psycopg"):
        conn.cursor().execute(SQL)


def rollback(conn):  # type: ignore[no-untyped-def]
    if type(conn).__module__.startswith("psycopg"):
        conn.cursor().execute("DROP TRIGGER requests_rollup_day ON requests; DROP TRIGGER calls_rollup_day ON calls; "
                              "DROP FUNCTION tokenomy_rollup_requests_day(); DROP FUNCTION tokenomy_rollup_calls_day();"
                              " DROP TABLE spend_rollup_day; DROP TABLE calls_rollup_day;")


steps = [step(apply, rollback)]
