-- The ledger: one row per served request, one row per upstream call.
-- Portable SQL (SQLite and PostgreSQL): times are epoch microseconds (BIGINT), money is integer pico-USD
-- (1e-12 USD, BIGINT) so sums are exact on both engines.

CREATE TABLE requests (
    id                  TEXT PRIMARY KEY,
    started_us          BIGINT NOT NULL,
    first_token_us      BIGINT,
    ended_us            BIGINT NOT NULL,
    key_id              TEXT,
    tenant              TEXT,
    endpoint            TEXT NOT NULL,
    requested_model     TEXT NOT NULL,
    served_model        TEXT,
    deployment          TEXT,
    tier                TEXT,
    provider            TEXT,
    stream              INTEGER NOT NULL,
    status              INTEGER NOT NULL,
    error_type          TEXT,
    error_code          TEXT,
    cache_status        TEXT NOT NULL,
    route_reason        TEXT,
    attempts            INTEGER NOT NULL,
    input_tokens        BIGINT NOT NULL,
    cached_read_tokens  BIGINT NOT NULL,
    cache_write_tokens  BIGINT NOT NULL,
    output_tokens       BIGINT NOT NULL,
    reasoning_tokens    BIGINT NOT NULL,
    usage_source        TEXT NOT NULL,
    cost_pusd           BIGINT,
    counterfactual_pusd BIGINT,
    saving_pusd         BIGINT,
    client_disconnected INTEGER NOT NULL
);

CREATE INDEX requests_started ON requests (started_us);
CREATE INDEX requests_model ON requests (served_model, started_us);
CREATE INDEX requests_key ON requests (key_id, started_us);

CREATE TABLE calls (
    id                  TEXT PRIMARY KEY,
    request_id          TEXT NOT NULL,
    attempt             INTEGER NOT NULL,
    started_us          BIGINT NOT NULL,
    first_token_us      BIGINT,
    ended_us            BIGINT NOT NULL,
    deployment          TEXT NOT NULL,
    provider            TEXT NOT NULL,
    model               TEXT NOT NULL,
    tier                TEXT NOT NULL,
    outcome             TEXT NOT NULL,
    upstream_status     INTEGER,
    error_type          TEXT,
    error_code          TEXT,
    input_tokens        BIGINT NOT NULL,
    cached_read_tokens  BIGINT NOT NULL,
    cache_write_5m_tokens BIGINT NOT NULL,
    cache_write_1h_tokens BIGINT NOT NULL,
    output_tokens       BIGINT NOT NULL,
    reasoning_tokens    BIGINT NOT NULL,
    usage_source        TEXT NOT NULL,
    cost_pusd           BIGINT
);

CREATE INDEX calls_request ON calls (request_id);
CREATE INDEX calls_started ON calls (started_us);
