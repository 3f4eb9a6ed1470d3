"""The semantic verifications of ``tokenomy spend`` (requests the verified semantic cache sent upstream to compare
with a would-be hit, ``cache_status = 'semantic-verify'``): a column in the hourly and daily spend rollups of
PostgreSQL (0004, 0006), kept by their statement triggers (replaced here with the column added, as 0009 left them
plus this one) and filled for the rows already there. Nothing on SQLite: its report sums the ledger rows directly."""

from yoyo import step

HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US


def _function(name: str, table: str, bucket: str, unit: int) -> str:
    return f"""
CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
    INSERT INTO {table} AS r
    SELECT started_us / {unit}, COALESCE(served_model, requested_model), COALESCE(tier, ''),
           COALESCE(key_id, ''), COALESCE(tenant, ''), COALESCE(deployment, ''),
           COUNT(*), SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END),
           SUM(CASE WHEN cache_status IN ('hit', 'semantic-hit') THEN 1 ELSE 0 END),
           SUM(CASE WHEN cost_pusd IS NULL THEN 1 ELSE 0 END),
           COALESCE(SUM(cost_pusd), 0), COALESCE(SUM(counterfactual_pusd), 0), COALESCE(SUM(saving_pusd), 0),
           SUM(input_tokens + cached_read_tokens + cache_write_tokens), SUM(output_tokens),
           SUM(CASE WHEN cost_pusd IS NULL
                    THEN input_tokens + cached_read_tokens + cache_write_tokens + output_tokens ELSE 0 END),
           SUM(CASE WHEN cache_status = 'semantic-verify' THEN 1 ELSE 0 END)
      FROM new_rows GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT ({bucket}, model, tier, key_id, tenant, deployment) DO UPDATE SET
           requests = r.requests + EXCLUDED.requests, errors = r.errors + EXCLUDED.errors,
           cache_hits = r.cache_hits + EXCLUDED.cache_hits, unpriced = r.unpriced + EXCLUDED.unpriced,
           cost_pusd = r.cost_pusd + EXCLUDED.cost_pusd,
           counterfactual_pusd = r.counterfactual_pusd + EXCLUDED.counterfactual_pusd,
           saving_pusd = r.saving_pusd + EXCLUDED.saving_pusd,
           prompt_tokens = r.prompt_tokens + EXCLUDED.prompt_tokens,
           output_tokens = r.output_tokens + EXCLUDED.output_tokens,
           unpriced_tokens = r.unpriced_tokens + EXCLUDED.unpriced_tokens,
           semantic_verifications = r.semantic_verifications + EXCLUDED.semantic_verifications;
    RETURN NULL;
END
$body$;
"""


def _backfill(table: str, bucket: str, unit: int) -> str:
    return f"""
UPDATE {table} AS r SET semantic_verifications = u.n
  FROM (SELECT started_us / {unit} AS {bucket}, COALESCE(served_model, requested_model) AS model,
               COALESCE(tier, '') AS tier, COALESCE(key_id, '') AS key_id, COALESCE(tenant, '') AS tenant,
               COALESCE(deployment, '') AS deployment, COUNT(*) AS n
          FROM requests WHERE cache_status = 'semantic-verify' GROUP BY 1, 2, 3, 4, 5, 6) AS u
 WHERE r.{bucket} = u.{bucket} AND r.model = u.model AND r.tier = u.tier AND r.key_id = u.key_id
   AND r.tenant = u.tenant AND r.deployment = u.deployment;
"""


def apply(conn):  # type: ignore[no-untyped-def]
    if not type(conn).__module__.startswith("psycopg"):
        return
    conn.cursor().execute(
        "ALTER TABLE spend_rollup ADD COLUMN semantic_verifications BIGINT NOT NULL DEFAULT 0;"
        "ALTER TABLE spend_rollup_day ADD COLUMN semantic_verifications BIGINT NOT NULL DEFAULT 0;"
        + _function("tokenomy_rollup_requests", "spend_rollup", "hour", HOUR_US)
        + _function("tokenomy_rollup_requests_day", "spend_rollup_day", "day", DAY_US)
        + _backfill("spend_rollup", "hour", HOUR_US) + _backfill("spend_rollup_day", "day", DAY_US))


def rollback(conn):  # type: ignore[no-untyped-def]
    if not type(conn).__module__.startswith("psycopg"):
        return
    raise NotImplementedError("0011 adds a rollup column; restore the 0009 triggers by hand to roll it back")


steps = [step(apply, rollback)]
