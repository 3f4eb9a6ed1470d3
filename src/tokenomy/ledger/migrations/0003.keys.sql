-- Team control: virtual keys, teams, and budget counters; chargeback tags on every request row.
-- Portable SQL (SQLite and PostgreSQL): times are epoch microseconds, money integer pico-USD (1e-12 USD).
-- A key is stored only as its SHA-256 (hex) and its last 4 characters; the key itself is shown once, at creation.

CREATE TABLE teams (
    name            TEXT PRIMARY KEY,
    budget_pusd     BIGINT,
    period          TEXT NOT NULL,
    rpm             INTEGER,
    tpm             INTEGER,
    created_us      BIGINT NOT NULL,
    updated_us      BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id              TEXT PRIMARY KEY,
    key_hash        TEXT NOT NULL UNIQUE,
    last4           TEXT NOT NULL,
    name            TEXT NOT NULL,
    team            TEXT,
    models          TEXT,
    budget_pusd     BIGINT,
    period          TEXT NOT NULL,
    rpm             INTEGER,
    tpm             INTEGER,
    expires_us      BIGINT,
    tags            TEXT,
    created_us      BIGINT NOT NULL,
    updated_us      BIGINT NOT NULL,
    revoked_us      BIGINT
);

CREATE INDEX api_keys_team ON api_keys (team);
CREATE INDEX api_keys_updated ON api_keys (updated_us);

-- Budget counters of the embedded (single-process) mode, one row per scope ('key:<id>', 'team:<name>') and period
-- ('total', '2026-11-24', '2026-11'). A new period is a new row, so a reset happens exactly once, by construction.
CREATE TABLE budget_counters (
    scope           TEXT NOT NULL,
    period          TEXT NOT NULL,
    spent_pusd      BIGINT NOT NULL,
    reserved_pusd   BIGINT NOT NULL,
    PRIMARY KEY (scope, period)
);

ALTER TABLE requests ADD COLUMN tags TEXT;

CREATE INDEX requests_tenant ON requests (tenant, started_us);
