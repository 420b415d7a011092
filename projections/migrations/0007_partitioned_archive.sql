-- The archive and the two big projections partitioned by the month their run started.
--
-- run_events, agent_actions and model_calls grow with every step of every run; retention
-- (`oriole archive prune`) must be able to let old experiments go without deleting and
-- vacuuming millions of rows. Each of the three tables becomes a partitioned table (RANGE
-- over a new column, run_started_at: the time of the run's run.started event, the same for
-- every row of a run), one partition per UTC month plus a DEFAULT partition. A run never
-- straddles partitions, so dropping the partition of a month whose runs have all finished
-- removes exactly those runs, and a redelivered event always lands in the partition that
-- already holds it (the keys below catch it).
--
-- Keys: a primary or unique key of a partitioned table must contain the partition column.
-- (run_id, seq) becomes (run_id, seq, run_started_at): since every row of a run has the
-- same run_started_at, it is as strong as before. event_id is unique per run_started_at,
-- i.e. within a partition; an event reusing the id of an event of a run started in another
-- month would no longer be refused by the database (ids are random UUIDs written by the
-- single writer of a run; a redelivery always carries its own run, so idempotence holds).
--
-- experiments stays one plain table: one row per run (about 11 kB with its indexes, against
-- 1.7 MB for a run's rows in the three tables), looked up by run_id from everywhere (the
-- API, batch_runs, the views), and pruned with a DELETE by key. It gains each finished
-- run's action counters, which the per-model statistics read instead of every action.
--
-- The conversion copies the existing rows in place, in this one transaction (it needs
-- about the three tables' size again in free disk while it runs; about 30 s per million
-- events on the development machine). The views reading the converted tables are dropped
-- and created again with the same columns (faster definitions: see below).

-- One month's partition of a partitioned table, created when missing. Rows of that month
-- already caught by the DEFAULT partition are moved into it first (attaching a partition
-- whose rows sit in the default partition would fail). NULL when it existed already.
CREATE FUNCTION oriole_month_partition(parent text, month date)
RETURNS text
LANGUAGE plpgsql
AS $fn$
DECLARE
    first_day date := date_trunc('month', month)::date;
    lo timestamptz := first_day::timestamp AT TIME ZONE 'UTC';
    hi timestamptz := (first_day + interval '1 month')::timestamp AT TIME ZONE 'UTC';
    name text := format('%s_p%s', parent, to_char(first_day, 'YYYY_MM'));
    fallback text := parent || '_default';
BEGIN
    IF to_regclass(name) IS NOT NULL THEN
        RETURN NULL;
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                   name, parent);
    IF to_regclass(fallback) IS NOT NULL THEN
        EXECUTE format('WITH moved AS (DELETE FROM %I WHERE run_started_at >= $1'
                       ' AND run_started_at < $2 RETURNING *) INSERT INTO %I SELECT * FROM moved',
                       fallback, name) USING lo, hi;
    END IF;
    EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                   parent, name, lo, hi);
    RETURN name;
END
$fn$;

-- The month partitions of the three tables from first_month to last_month (inclusive);
-- returns the partitions created now. `oriole db migrate`, every start-up (`migrate`) and
-- the projector call it for the current and the next month.
CREATE FUNCTION oriole_ensure_partitions(first_month date, last_month date)
RETURNS SETOF text
LANGUAGE plpgsql
AS $fn$
DECLARE
    month date;
    parent text;
    made text;
BEGIN
    FOR month IN
        SELECT generate_series(date_trunc('month', first_month),
                               date_trunc('month', last_month), interval '1 month')::date
    LOOP
        FOREACH parent IN ARRAY ARRAY['run_events', 'agent_actions', 'model_calls'] LOOP
            made := oriole_month_partition(parent, month);
            IF made IS NOT NULL THEN
                RETURN NEXT made;
            END IF;
        END LOOP;
    END LOOP;
END
$fn$;

COMMENT ON FUNCTION oriole_ensure_partitions(date, date) IS
    'Creates the missing month partitions of run_events, agent_actions and model_calls';


-- Every run's key: the time of its run.started event; for a log the archive holds without
-- its start (never written by Oriole), its earliest event; for projection rows without an
-- archive, the experiment's start.
CREATE TEMP TABLE oriole_0007_keys ON COMMIT DROP AS
SELECT run_id,
       coalesce(min(time) FILTER (WHERE type = 'run.started'), min(time)) AS run_started_at
  FROM run_events
 GROUP BY run_id;
INSERT INTO oriole_0007_keys
SELECT e.run_id, e.started_at FROM experiments e
 WHERE NOT EXISTS (SELECT 1 FROM oriole_0007_keys k WHERE k.run_id = e.run_id);
ALTER TABLE oriole_0007_keys ADD PRIMARY KEY (run_id);
ANALYZE oriole_0007_keys;

-- The views over the converted tables go, and come back unchanged below.
DROP VIEW v_experiment_summary, v_model_performance, v_prompt_variant_analysis,
          v_turn_statistics, v_action_patterns, v_batch_monitor;

ALTER TABLE run_events RENAME TO run_events_0006;
ALTER TABLE agent_actions RENAME TO agent_actions_0006;
ALTER TABLE model_calls RENAME TO model_calls_0006;

CREATE TABLE run_events (
    run_id          text        NOT NULL,
    seq             integer     NOT NULL CHECK (seq >= 1),
    event_id        uuid        NOT NULL,
    type            text        NOT NULL,
    schema_version  integer     NOT NULL,
    time            timestamptz NOT NULL,
    payload         jsonb       NOT NULL,
    archived_at     timestamptz NOT NULL DEFAULT now(),
    -- The time of the run's run.started event: the partition key, equal on all its rows.
    run_started_at  timestamptz NOT NULL
) PARTITION BY RANGE (run_started_at);

CREATE TABLE agent_actions (
    run_id             text        NOT NULL,
    step               integer     NOT NULL CHECK (step >= 1),
    seq                integer     NOT NULL,
    turn               integer     NOT NULL,
    action_type        text        NOT NULL,
    tool_name          text,
    arguments          jsonb,
    reasoning          text,
    depth              integer,
    problem            text,
    assistant_message  text,
    from_x             integer     NOT NULL,
    from_y             integer     NOT NULL,
    to_x               integer     NOT NULL,
    to_y               integer     NOT NULL,
    success            boolean     NOT NULL,
    tiles_seen         jsonb       NOT NULL,
    goal_seen          boolean     NOT NULL,
    goal_reached       boolean     NOT NULL,
    footsteps          integer     NOT NULL,
    message            text        NOT NULL,
    result             jsonb       NOT NULL,
    call_id            text,
    input_tokens       integer,
    output_tokens      integer,
    cost_usd           numeric(20, 10),
    inference_ms       double precision,
    prompt_eval_ms     double precision,
    eval_ms            double precision,
    tokens_per_second  double precision,
    done_reason        text,
    sent_at            timestamptz NOT NULL,
    decided_at         timestamptz NOT NULL,
    completed_at       timestamptz NOT NULL,
    run_started_at     timestamptz NOT NULL
) PARTITION BY RANGE (run_started_at);

CREATE TABLE model_calls (
    run_id             text        NOT NULL,
    seq                integer     NOT NULL,
    call_id            text        NOT NULL,
    turn               integer,
    provider           text        NOT NULL,
    model              text        NOT NULL,
    input_tokens       integer     NOT NULL,
    output_tokens      integer     NOT NULL,
    cost_usd           numeric(20, 10) NOT NULL,
    duration_ms        double precision,
    prompt_eval_ms     double precision,
    eval_ms            double precision,
    tokens_per_second  double precision,
    done_reason        text,
    attempts           integer     NOT NULL,
    endpoint           text,
    context_trimmed    integer     NOT NULL,
    called_at          timestamptz NOT NULL,
    run_started_at     timestamptz NOT NULL
) PARTITION BY RANGE (run_started_at);

CREATE TABLE run_events_default PARTITION OF run_events DEFAULT;
CREATE TABLE agent_actions_default PARTITION OF agent_actions DEFAULT;
CREATE TABLE model_calls_default PARTITION OF model_calls DEFAULT;

-- A partition for every month that has runs, and for this month and the next.
SELECT oriole_ensure_partitions(month, month)
  FROM (SELECT DISTINCT date_trunc('month', run_started_at AT TIME ZONE 'UTC')::date AS month
          FROM oriole_0007_keys
        UNION
        SELECT date_trunc('month', now() AT TIME ZONE 'UTC')::date
        UNION
        SELECT (date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month')::date
       ) months;

INSERT INTO run_events (run_id, seq, event_id, type, schema_version, time, payload,
                        archived_at, run_started_at)
SELECT r.run_id, r.seq, r.event_id, r.type, r.schema_version, r.time, r.payload,
       r.archived_at, k.run_started_at
  FROM run_events_0006 r JOIN oriole_0007_keys k ON k.run_id = r.run_id;

INSERT INTO agent_actions
SELECT a.*, coalesce(k.run_started_at, a.sent_at)
  FROM agent_actions_0006 a LEFT JOIN oriole_0007_keys k ON k.run_id = a.run_id;

INSERT INTO model_calls
SELECT m.*, coalesce(k.run_started_at, m.called_at)
  FROM model_calls_0006 m LEFT JOIN oriole_0007_keys k ON k.run_id = m.run_id;

-- Not a row lost: the counts must agree before the old tables go.
DO $check$
DECLARE
    table_name text;
    before bigint;
    after bigint;
BEGIN
    FOREACH table_name IN ARRAY ARRAY['run_events', 'agent_actions', 'model_calls'] LOOP
        EXECUTE format('SELECT count(*) FROM %I', table_name || '_0006') INTO before;
        EXECUTE format('SELECT count(*) FROM %I', table_name) INTO after;
        IF before <> after THEN
            RAISE EXCEPTION 'converting %: % rows before, % after', table_name, before, after;
        END IF;
    END LOOP;
END
$check$;

DROP TABLE run_events_0006, agent_actions_0006, model_calls_0006;

-- Keys and indexes, built once over the copied rows (each partition gets its own).
ALTER TABLE run_events ADD CONSTRAINT run_events_pkey PRIMARY KEY (run_id, seq, run_started_at);
ALTER TABLE run_events
    ADD CONSTRAINT run_events_event_id_key UNIQUE (event_id, run_started_at);
CREATE INDEX run_events_type_time_idx ON run_events (type, time);

-- The key also carries the few columns the per-run views read, so they read a run's actions
-- from the index alone (an index-only scan) instead of visiting every wide row.
ALTER TABLE agent_actions
    ADD CONSTRAINT agent_actions_pkey PRIMARY KEY (run_id, step, run_started_at)
    INCLUDE (turn, action_type, success, to_x, to_y);
CREATE INDEX agent_actions_turn_idx ON agent_actions (run_id, turn);
CREATE INDEX agent_actions_time_idx ON agent_actions (run_id, completed_at DESC);

ALTER TABLE model_calls ADD CONSTRAINT model_calls_pkey PRIMARY KEY (run_id, seq, run_started_at);
CREATE INDEX model_calls_turn_idx ON model_calls (run_id, turn);

-- Each finished run's action counters (NULL while it runs): the projector counts them from
-- the run's actions when it finishes; here, for the runs already archived.
ALTER TABLE experiments
    ADD COLUMN moves              integer,
    ADD COLUMN successful_moves   integer,
    ADD COLUMN recalls            integer,
    ADD COLUMN no_tool_calls      integer,
    ADD COLUMN invalid_tool_calls integer;

UPDATE experiments e
   SET moves = c.moves, successful_moves = c.successful_moves, recalls = c.recalls,
       no_tool_calls = c.no_tool_calls, invalid_tool_calls = c.invalid_tool_calls
  FROM (SELECT x.run_id,
               count(*) FILTER (WHERE x.action_type IN ('move_north', 'move_south',
                                                        'move_east', 'move_west')) AS moves,
               count(*) FILTER (WHERE x.action_type IN ('move_north', 'move_south',
                                                        'move_east', 'move_west')
                                  AND x.success) AS successful_moves,
               count(*) FILTER (WHERE x.action_type LIKE 'recall%') AS recalls,
               count(*) FILTER (WHERE x.action_type = 'no_tool_call') AS no_tool_calls,
               count(*) FILTER (WHERE x.action_type = 'invalid_tool_call') AS invalid_tool_calls
          FROM agent_actions x
         GROUP BY x.run_id) c
 WHERE c.run_id = e.run_id AND e.status <> 'running';
UPDATE experiments
   SET moves = 0, successful_moves = 0, recalls = 0, no_tool_calls = 0, invalid_tool_calls = 0
 WHERE status <> 'running' AND moves IS NULL;

ANALYZE run_events;
ANALYZE agent_actions;
ANALYZE model_calls;
ANALYZE experiments;


-- The views, with the columns migrations 2 and 5 gave them. What changed, for speed on a
-- large archive (bench/archive_scale.py; docs/capacity.md):
--   * a per-run lookup of agent_actions or model_calls also names the run's partition key
--     (run_started_at = experiments.started_at, the same run.started time), so it reads
--     one partition instead of probing every month's index;
--   * v_experiment_summary, v_model_performance and v_prompt_variant_analysis read the
--     run's action counters from experiments (counted once by the projector when the run
--     finishes) instead of aggregating every action of every finished run on each query;
--   * v_action_patterns counts distinct positions as one bigint per (x, y), not as rows;
--   * v_turn_statistics groups each run's turns under its experiments row, so "ORDER BY
--     run_id, turn LIMIT n" walks runs in key order instead of sorting every action (a
--     run without an experiments row, i.e. whose run.started the database refused, is
--     not listed).

CREATE VIEW v_experiment_summary AS
SELECT e.run_id,
       e.provider,
       e.model_name,
       e.prompt_version,
       e.maze_name,
       e.comment,
       e.status,
       e.stop_reason,
       e.success,
       e.goal_seen,
       e.goal_reached,
       e.started_at,
       e.completed_at,
       e.duration_seconds,
       e.turns AS total_turns,
       e.actions AS total_actions,
       round(e.actions::numeric / NULLIF(e.turns, 0), 2) AS avg_actions_per_turn,
       e.input_tokens,
       e.output_tokens,
       e.input_tokens + e.output_tokens AS total_tokens,
       e.cost_usd,
       round(e.cost_usd / NULLIF(e.actions, 0), 6) AS cost_per_action,
       round((e.input_tokens + e.output_tokens)::numeric / NULLIF(e.actions, 0), 2)
           AS tokens_per_action,
       e.successful_moves::bigint AS successful_moves,
       (e.moves - e.successful_moves)::bigint AS failed_moves,
       round(100.0 * e.successful_moves / NULLIF(e.moves, 0), 2) AS move_success_rate_pct,
       e.recalls::bigint AS recall_count,
       e.no_tool_calls::bigint AS no_tool_calls,
       e.invalid_tool_calls::bigint AS invalid_tool_calls
  FROM experiments e
 WHERE e.status <> 'running';

COMMENT ON VIEW v_experiment_summary IS
    'One row per finished run: outcome, effort, tokens and cost, move success, recalls';


CREATE VIEW v_model_performance AS
SELECT e.provider,
       e.model_name,
       count(*) AS experiments,
       count(*) FILTER (WHERE e.success) AS successful_experiments,
       count(*) FILTER (WHERE e.status = 'failed') AS failed_experiments,
       count(*) FILTER (WHERE e.status = 'cancelled') AS cancelled_experiments,
       round(100.0 * count(*) FILTER (WHERE e.success) / count(*), 2) AS success_rate_pct,
       wilson_ci_low_pct(count(*) FILTER (WHERE e.success), count(*)) AS success_rate_ci_low_pct,
       wilson_ci_high_pct(count(*) FILTER (WHERE e.success), count(*)) AS success_rate_ci_high_pct,
       round(avg(e.actions), 2) AS avg_actions,
       round(avg(e.turns), 2) AS avg_turns,
       round(sum(e.actions)::numeric / NULLIF(sum(e.turns), 0), 2) AS actions_per_turn,
       round(avg(e.duration_seconds)::numeric, 2) AS avg_duration_seconds,
       round(avg(e.footsteps), 2) AS avg_footsteps,
       round(avg(e.input_tokens + e.output_tokens), 2) AS avg_total_tokens,
       round(sum(e.input_tokens + e.output_tokens) / NULLIF(sum(e.actions), 0), 2)
           AS tokens_per_action,
       round(avg(e.cost_usd), 6) AS cost_per_experiment,
       round(sum(e.cost_usd) / NULLIF(sum(e.actions), 0), 6) AS cost_per_action,
       sum(e.cost_usd) AS total_cost_usd,
       round(sum(e.cost_usd) / NULLIF(count(*) FILTER (WHERE e.success), 0), 6)
           AS cost_per_success,
       round(100.0 * sum(e.successful_moves::bigint) / NULLIF(sum(e.moves::bigint), 0), 2)
           AS move_success_rate_pct,
       round(avg(coalesce(e.recalls::bigint, 0)), 2) AS recalls_per_experiment,
       round(avg(coalesce(e.no_tool_calls::bigint, 0)), 2) AS no_tool_calls_per_experiment,
       round(avg(e.actions) FILTER (WHERE e.success), 2) AS avg_actions_to_goal
  FROM experiments e
 WHERE e.status <> 'running'
 GROUP BY e.provider, e.model_name;

COMMENT ON VIEW v_model_performance IS
    'One row per provider and model over finished runs, with a 95 % Wilson interval of the success rate';


CREATE VIEW v_prompt_variant_analysis AS
SELECT e.prompt_version,
       e.provider,
       e.model_name,
       count(*) AS experiments,
       count(*) FILTER (WHERE e.success) AS successful_experiments,
       count(*) FILTER (WHERE e.status = 'failed') AS failed_experiments,
       count(*) FILTER (WHERE e.status = 'cancelled') AS cancelled_experiments,
       round(100.0 * count(*) FILTER (WHERE e.success) / count(*), 2) AS success_rate_pct,
       wilson_ci_low_pct(count(*) FILTER (WHERE e.success), count(*)) AS success_rate_ci_low_pct,
       wilson_ci_high_pct(count(*) FILTER (WHERE e.success), count(*)) AS success_rate_ci_high_pct,
       round(avg(e.actions), 2) AS avg_actions,
       round(avg(e.turns), 2) AS avg_turns,
       round(sum(e.actions)::numeric / NULLIF(sum(e.turns), 0), 2) AS actions_per_turn,
       round(avg(e.duration_seconds)::numeric, 2) AS avg_duration_seconds,
       round(avg(e.footsteps), 2) AS avg_footsteps,
       round(avg(e.input_tokens + e.output_tokens), 2) AS avg_total_tokens,
       round(sum(e.input_tokens + e.output_tokens) / NULLIF(sum(e.actions), 0), 2)
           AS tokens_per_action,
       round(avg(e.cost_usd), 6) AS cost_per_experiment,
       round(sum(e.cost_usd) / NULLIF(sum(e.actions), 0), 6) AS cost_per_action,
       sum(e.cost_usd) AS total_cost_usd,
       round(sum(e.cost_usd) / NULLIF(count(*) FILTER (WHERE e.success), 0), 6)
           AS cost_per_success,
       round(100.0 * sum(e.successful_moves::bigint) / NULLIF(sum(e.moves::bigint), 0), 2)
           AS move_success_rate_pct,
       round(avg(coalesce(e.recalls::bigint, 0)), 2) AS recalls_per_experiment,
       round(avg(coalesce(e.no_tool_calls::bigint, 0)), 2) AS no_tool_calls_per_experiment,
       round(avg(e.actions) FILTER (WHERE e.success), 2) AS avg_actions_to_goal
  FROM experiments e
 WHERE e.status <> 'running'
 GROUP BY e.prompt_version, e.provider, e.model_name;

COMMENT ON VIEW v_prompt_variant_analysis IS
    'One row per prompt version, provider and model over finished runs (prompt A/B tests)';


CREATE VIEW v_turn_statistics AS
SELECT e.run_id,
       t.turn,
       t.actions,
       t.moves_north,
       t.moves_south,
       t.moves_east,
       t.moves_west,
       t.recalls,
       t.failed_moves,
       t.successful_actions,
       t.success_rate_pct,
       t.final_x,
       t.final_y,
       t.input_tokens,
       t.output_tokens,
       t.model_calls,
       t.cost_usd
  FROM experiments e
 CROSS JOIN LATERAL (
       SELECT u.turn,
              count(u.step) AS actions,
              count(*) FILTER (WHERE u.action_type = 'move_north') AS moves_north,
              count(*) FILTER (WHERE u.action_type = 'move_south') AS moves_south,
              count(*) FILTER (WHERE u.action_type = 'move_east') AS moves_east,
              count(*) FILTER (WHERE u.action_type = 'move_west') AS moves_west,
              count(*) FILTER (WHERE u.action_type LIKE 'recall%') AS recalls,
              count(*) FILTER (WHERE u.action_type IN ('move_north', 'move_south', 'move_east',
                                                        'move_west')
                                 AND NOT u.success) AS failed_moves,
              count(*) FILTER (WHERE u.success) AS successful_actions,
              round(100.0 * count(*) FILTER (WHERE u.success) / NULLIF(count(u.step), 0), 2)
                  AS success_rate_pct,
              -- the position after the turn's last action (Oriole took MAX(x), MAX(y))
              (array_agg(u.to_x ORDER BY u.step DESC) FILTER (WHERE u.step IS NOT NULL))[1]
                  AS final_x,
              (array_agg(u.to_y ORDER BY u.step DESC) FILTER (WHERE u.step IS NOT NULL))[1]
                  AS final_y,
              coalesce(sum(u.input_tokens), 0) AS input_tokens,
              coalesce(sum(u.output_tokens), 0) AS output_tokens,
              count(u.call_seq) AS model_calls,
              coalesce(sum(u.cost_usd), 0) AS cost_usd
         FROM (
               SELECT a.turn, a.step, a.action_type, a.success, a.to_x, a.to_y,
                      NULL::integer AS call_seq, NULL::integer AS input_tokens,
                      NULL::integer AS output_tokens, NULL::numeric AS cost_usd
                 FROM agent_actions a
                WHERE a.run_id = e.run_id AND a.run_started_at = e.started_at
               UNION ALL
               SELECT m.turn, NULL, NULL, NULL, NULL, NULL,
                      m.seq, m.input_tokens, m.output_tokens, m.cost_usd
                 FROM model_calls m
                WHERE m.run_id = e.run_id AND m.run_started_at = e.started_at
                  AND m.turn IS NOT NULL
              ) u
        GROUP BY u.turn
       ) t;

COMMENT ON VIEW v_turn_statistics IS
    'One row per run and turn: actions by kind, final position, tokens and cost of the turn';



CREATE VIEW v_action_patterns AS
SELECT e.run_id,
       e.provider,
       e.model_name,
       e.prompt_version,
       e.status,
       p.total_actions,
       p.movement_actions,
       p.recall_actions,
       round(100.0 * p.movement_actions / NULLIF(p.total_actions, 0), 2) AS movement_pct,
       p.moves_north,
       p.moves_south,
       p.moves_east,
       p.moves_west,
       p.wall_collisions,
       p.no_tool_calls,
       p.invalid_tool_calls,
       round(p.total_actions::numeric / NULLIF(p.recall_actions, 0), 2) AS actions_per_recall,
       p.unique_positions,
       p.direction_changes,
       p.reversals
  FROM experiments e
 CROSS JOIN LATERAL (
       SELECT count(*) AS total_actions,
              count(*) FILTER (WHERE x.is_move) AS movement_actions,
              count(*) FILTER (WHERE x.action_type LIKE 'recall%') AS recall_actions,
              count(*) FILTER (WHERE x.action_type = 'move_north') AS moves_north,
              count(*) FILTER (WHERE x.action_type = 'move_south') AS moves_south,
              count(*) FILTER (WHERE x.action_type = 'move_east') AS moves_east,
              count(*) FILTER (WHERE x.action_type = 'move_west') AS moves_west,
              count(*) FILTER (WHERE x.is_move AND NOT x.success) AS wall_collisions,
              count(*) FILTER (WHERE x.action_type = 'no_tool_call') AS no_tool_calls,
              count(*) FILTER (WHERE x.action_type = 'invalid_tool_call') AS invalid_tool_calls,
              -- tiles stood on: every "to" position, plus the start if no action ended there
              count(DISTINCT (x.to_x::bigint << 32) + x.to_y)
                  + CASE WHEN bool_or(x.to_x = e.start_x AND x.to_y = e.start_y)
                         THEN 0 ELSE 1 END AS unique_positions,
              -- over successful moves only (failed moves leave the agent where it was)
              count(*) FILTER (WHERE x.is_move AND x.success
                                 AND x.previous_move <> x.action_type) AS direction_changes,
              count(*) FILTER (WHERE x.is_move AND x.success
                                 AND (x.previous_move, x.action_type) IN (
                                     ('move_north', 'move_south'), ('move_south', 'move_north'),
                                     ('move_east', 'move_west'), ('move_west', 'move_east')))
                  AS reversals
         FROM (
               SELECT y.action_type, y.success, y.to_x, y.to_y, y.is_move,
                      -- the previous successful move (the partition holds only those)
                      lag(y.action_type) OVER (PARTITION BY y.is_move AND y.success
                                               ORDER BY y.step) AS previous_move
                 FROM (
                       SELECT z.step, z.action_type, z.success, z.to_x, z.to_y,
                              z.action_type IN ('move_north', 'move_south',
                                                'move_east', 'move_west') AS is_move
                         FROM agent_actions z
                        WHERE z.run_id = e.run_id AND z.run_started_at = e.started_at
                      ) y
              ) x
       ) p;

COMMENT ON VIEW v_action_patterns IS
    'One row per run: action mix, wall collisions (failed moves only), exploration shape';


CREATE VIEW v_batch_monitor AS
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
                WHERE x.run_id = e.run_id AND x.run_started_at = e.started_at
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
        WHERE m.run_id = e.run_id AND m.run_started_at = e.started_at
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

-- The new tables and views get the grants of migrations 3 and 5 (explicitly: default
-- privileges only cover the user that ran migration 3). Partitions are read and written
-- through their parent, whose privileges apply.
DO $grants$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'oriole_reader') THEN
        GRANT SELECT ON run_events, agent_actions, model_calls, v_experiment_summary,
            v_model_performance, v_prompt_variant_analysis, v_turn_statistics,
            v_action_patterns, v_batch_monitor TO oriole_reader;
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'oriole_writer') THEN
        GRANT SELECT, INSERT, UPDATE ON run_events, agent_actions, model_calls TO oriole_writer;
    END IF;
END
$grants$;
