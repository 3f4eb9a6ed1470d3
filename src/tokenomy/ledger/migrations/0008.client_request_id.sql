-- Ledger ids are the server's: a client's own request id (x-client-request-id, or x-request-id) is kept in its own
-- column beside the server's id, and never merges rows.
-- depends: 0007.distill

ALTER TABLE requests ADD COLUMN client_request_id TEXT;
