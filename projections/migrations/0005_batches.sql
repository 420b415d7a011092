-- Batches: each batch's event log (the archive) and two projections derived from it.
--
-- The batch scheduler writes one event log per batch to <prefix>.batches.events (seq 1, 2,
-- 3, ... without gaps). The projector archives every event verbatim in batch_events, in the
-- same transaction as it updates `batches` (one row per batch) and `batch_runs` (one row per
-- launched attempt of a planned run); `oriole projections rebuild` refills both from
-- batch_events. After a restart of the embedded broker, `oriole up` puts the logs of the
-- batches that have not finished back on the topic from here.

CREATE TABLE batch_events (
    batch_id     text        NOT NULL,
    seq          integer     NOT NULL CHECK (seq >= 1),
    event_id     uuid        NOT NULL,
    type         text        NOT NULL,
    time         timestamptz NOT NULL,
    -- The whole event (envelope and payload) as JSON.
    event        jsonb       NOT NULL,
    archived_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (batch_id, seq),
    CONSTRAINT batch_events_event_id_key UNIQUE (event_id)
);
CREATE INDEX batch_events_type_idx ON batch_events (type, batch_id);

-- One row per batch (started or rejected).
CREATE TABLE batches (
    batch_id      text        PRIMARY KEY,
    name          text,                       -- NULL for a rejected batch
    labels        jsonb       NOT NULL DEFAULT '{}',
    -- running | finished | rejected
    status        text        NOT NULL CHECK (status IN ('running', 'finished', 'rejected')),
    stop_reason   text,                       -- completed | budget | cancelled | failed
    detail        text,
    problems      jsonb,                      -- a rejected batch: [{"field", "reason"}, ...]
    warnings      jsonb       NOT NULL DEFAULT '[]',
    planned       integer     NOT NULL DEFAULT 0,
    launched      integer     NOT NULL DEFAULT 0,
    finished      integer     NOT NULL DEFAULT 0,
    succeeded     integer     NOT NULL DEFAULT 0,
    failed        integer     NOT NULL DEFAULT 0,
    in_flight     integer     NOT NULL DEFAULT 0,
    spent_usd     numeric(20, 10) NOT NULL DEFAULT 0,
    spent_tokens  bigint      NOT NULL DEFAULT 0,
    requested_by  text,
    started_at    timestamptz NOT NULL,
    finished_at   timestamptz,
    cells         jsonb       NOT NULL DEFAULT '{}',
    -- The seq of the last event folded into the row: updates are applied once, in order.
    last_seq      integer     NOT NULL
);
CREATE INDEX batches_started_idx ON batches (started_at DESC, batch_id DESC);
CREATE INDEX batches_running_idx ON batches (started_at) WHERE status = 'running';

-- One row per launched attempt (run) of a batch.
CREATE TABLE batch_runs (
    run_id          text        PRIMARY KEY,
    batch_id        text        NOT NULL,
    planned_run_id  text        NOT NULL,
    cell            text        NOT NULL,
    repetition      integer     NOT NULL,
    attempt         integer     NOT NULL,
    ended           boolean     NOT NULL DEFAULT false,
    success         boolean,
    failed          boolean,
    stop_reason     text,
    cost_usd        numeric(20, 10),
    tokens          bigint,
    retry           boolean,
    launched_at     timestamptz,
    ended_at        timestamptz
);
CREATE INDEX batch_runs_batch_idx ON batch_runs (batch_id, planned_run_id, attempt);

-- The batch monitor also names the batch, cell and repetition of a batch's run.
CREATE OR REPLACE VIEW v_batch_monitor AS
SELECT e.run_id,
       e.model_name AS model,
       e.provider,
       e.prompt_version,
       e.maze_name,
       e.comment,
       e.labels,
       e.num_ctx,
       e.temperature,
       CASE
           WHEN e.success THEN 'GOAL'
           WHEN e.status = 'failed' THEN 'FAILED'
           WHEN e.status = 'cancelled' THEN 'CANCELLED'
           WHEN e.status <> 'running' THEN 'DONE'
           WHEN e.actions = 0 THEN 'STARTING'
           ELSE 'RUNNING'
       END AS status_label,
       e.status,
       e.footsteps,
       e.actions AS total_actions,
       e.turns,
       round(100.0 * e.footsteps / NULLIF(e.actions, 0), 2) AS pct_moves,
       round(e.footsteps::numeric / NULLIF(e.turns, 0), 2) AS moves_per_turn,
       round(e.actions::numeric / NULLIF(e.turns, 0), 2) AS actions_per_turn,
       a.most_actions_in_turn,
       e.model_calls,
       e.input_tokens,
       e.output_tokens,
       e.cost_usd,
       c.avg_inference_ms,
       c.avg_prompt_eval_ms,
       c.avg_eval_ms,
       c.avg_tokens_per_second,
       c.min_tokens_per_second,
       c.max_tokens_per_second,
       round(60 * e.actions / NULLIF(t.elapsed, 0), 2) AS actions_per_minute,
       round(100 * l.used_fraction, 2) AS progress_pct,
       CASE WHEN e.status = 'running' THEN round(l.eta, 2) END AS eta_seconds,
       CASE WHEN e.status = 'running'
            THEN round(extract(epoch FROM now() - coalesce(e.last_action_at, e.started_at)), 2)
       END AS seconds_since_last_action,
       round(t.elapsed, 2) AS duration_seconds,
       e.started_at,
       e.last_action_at,
       e.completed_at,
       e.stop_reason,
       e.error_class,
       e.error_message,
       a.recall_count,
       e.position_x AS final_x,
       e.position_y AS final_y,
       -- Added by migration 5 (a replaced view may only gain columns at its end).
       br.batch_id,
       br.cell,
       br.repetition
  FROM experiments e
  LEFT JOIN batch_runs br ON br.run_id = e.run_id
 CROSS JOIN LATERAL (
       SELECT CASE WHEN e.status = 'running'
                   THEN greatest(0, extract(epoch FROM now() - e.started_at))
                   ELSE e.duration_seconds::numeric
              END AS elapsed
       ) t
 CROSS JOIN LATERAL (
       SELECT coalesce(max(per_turn.actions), 0) AS most_actions_in_turn,
              coalesce(sum(per_turn.recalls), 0)::bigint AS recall_count
         FROM (SELECT count(*) AS actions,
                      count(*) FILTER (WHERE x.action_type LIKE 'recall%') AS recalls
                 FROM agent_actions x
                WHERE x.run_id = e.run_id
                GROUP BY x.turn) per_turn
       ) a
 CROSS JOIN LATERAL (
       SELECT round(avg(m.duration_ms)::numeric, 2) AS avg_inference_ms,
              round(avg(m.prompt_eval_ms)::numeric, 2) AS avg_prompt_eval_ms,
              round(avg(m.eval_ms)::numeric, 2) AS avg_eval_ms,
              round(avg(m.tokens_per_second)::numeric, 2) AS avg_tokens_per_second,
              round(min(m.tokens_per_second)::numeric, 2) AS min_tokens_per_second,
              round(max(m.tokens_per_second)::numeric, 2) AS max_tokens_per_second
         FROM model_calls m
        WHERE m.run_id = e.run_id
       ) c
 CROSS JOIN LATERAL (
       -- Every limit that is set: the share of it used, and the seconds until it is used up
       -- at the pace since the start. The run ends at the first limit it reaches, so
       -- progress is the largest share and the ETA the smallest time.
       SELECT max(least(1, lim.used / lim.maximum)) AS used_fraction,
              min(CASE WHEN lim.kind = 'duration'
                       THEN greatest(0, lim.maximum - lim.used)
                       ELSE greatest(0, lim.maximum - lim.used) * t.elapsed / NULLIF(lim.used, 0)
                  END) AS eta
         FROM (VALUES ('footsteps', e.footsteps::numeric, e.max_footsteps::numeric),
                      ('actions', e.actions::numeric, e.max_actions::numeric),
                      ('duration', t.elapsed, e.max_duration_seconds::numeric),
                      ('tokens', (e.input_tokens + e.output_tokens)::numeric,
                       e.max_tokens::numeric),
                      ('cost', e.cost_usd::numeric, e.max_cost_usd::numeric)
              ) AS lim(kind, used, maximum)
        WHERE lim.maximum > 0 AND lim.used IS NOT NULL
       ) l;

COMMENT ON VIEW v_batch_monitor IS
    'One row per run, running ones included, for watching batches; ORDER BY started_at DESC';

-- Migration 3 set default privileges for the tables its user creates later; granted here
-- explicitly as well, so the roles get them whichever user runs this migration.
DO $grants$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'oriole_reader') THEN
        GRANT SELECT ON batch_events, batches, batch_runs, v_batch_monitor TO oriole_reader;
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'oriole_writer') THEN
        GRANT SELECT, INSERT, UPDATE ON batch_events, batches, batch_runs TO oriole_writer;
    END IF;
END
$grants$;
