-- Files and batch jobs (OpenAI's /v1/files and /v1/batches), in the ledger's database so that a batch line's
-- result and its ledger rows commit in one transaction. Portable SQL; times are epoch seconds (as OpenAI's API
-- shows them) except batch_lines.not_before_us.

CREATE TABLE files (
    id          TEXT PRIMARY KEY,
    purpose     TEXT NOT NULL,
    filename    TEXT NOT NULL,
    bytes       BIGINT NOT NULL,
    lines       INTEGER NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT,
    status      TEXT NOT NULL,
    key_id      TEXT,
    deleted     INTEGER NOT NULL
);

CREATE INDEX files_created ON files (created_at);

CREATE TABLE batches (
    id                TEXT PRIMARY KEY,
    endpoint          TEXT NOT NULL,
    input_file_id     TEXT NOT NULL,
    completion_window TEXT NOT NULL,
    via               TEXT NOT NULL,
    status            TEXT NOT NULL,
    metadata          TEXT,
    errors            TEXT,
    model             TEXT,
    output_file_id    TEXT,
    error_file_id     TEXT,
    max_concurrency   INTEGER NOT NULL,
    key_id            TEXT,
    remote            TEXT,
    created_at        BIGINT NOT NULL,
    expires_at        BIGINT NOT NULL,
    in_progress_at    BIGINT,
    finalizing_at     BIGINT,
    completed_at      BIGINT,
    failed_at         BIGINT,
    expired_at        BIGINT,
    cancelling_at     BIGINT,
    cancelled_at      BIGINT
);

CREATE INDEX batches_status ON batches (status);
CREATE INDEX batches_created ON batches (created_at);

-- One row per input line. state: pending | done | failed | expired | cancelled. A line is executed while it is
-- pending; its result (the output or error file line), its usage and its ledger rows are written together.
CREATE TABLE batch_lines (
    batch_id          TEXT NOT NULL,
    line_no           INTEGER NOT NULL,
    custom_id         TEXT NOT NULL,
    state             TEXT NOT NULL,
    body              TEXT NOT NULL,
    result            TEXT,
    input_tokens      BIGINT NOT NULL,
    cached_tokens     BIGINT NOT NULL,
    output_tokens     BIGINT NOT NULL,
    reasoning_tokens  BIGINT NOT NULL,
    PRIMARY KEY (batch_id, line_no)
);

CREATE INDEX batch_lines_state ON batch_lines (batch_id, state, line_no);
