-- The Responses API's conversation state (POST /v1/responses with store, previous_response_id; GET and DELETE
-- /v1/responses/{id}; its input_items): one row per stored response, owned by the caller that made it (a virtual
-- key's id, 'master' or 'anonymous'), read only by that owner. input_items and response are JSON text.
-- depends: 0008.client_request_id

CREATE TABLE responses (
    id            TEXT PRIMARY KEY,
    owner         TEXT NOT NULL,
    created_us    BIGINT NOT NULL,
    previous_id   TEXT,
    input_items   TEXT NOT NULL,
    response      TEXT NOT NULL
);

CREATE INDEX responses_owner ON responses (owner, created_us);
