-- Start requests as they arrive on the experiment-start topic, before any run exists.
--
-- The embedded broker keeps nothing across a crash: a start acknowledged by the broker but
-- not yet turned into a run would vanish without a trace. The projector archives every
-- start request (raw bytes, so any input can be kept) and every rejection; when `oriole up`
-- starts again it re-publishes the requests that neither started a run nor were rejected.
CREATE TABLE start_requests (
    origin       text        PRIMARY KEY,  -- topic:partition:offset@broker timestamp
    run_id       text,                     -- requested, or derived from the origin
    received_at  timestamptz NOT NULL DEFAULT now(),
    message_key  bytea,
    message      bytea       NOT NULL,
    rejected_at  timestamptz,
    problems     jsonb
);
CREATE INDEX start_requests_run_id ON start_requests (run_id);
CREATE INDEX start_requests_open ON start_requests (received_at) WHERE rejected_at IS NULL;
