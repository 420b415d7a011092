-- Analysis views over the projections (docs/views.md describes every column).
--
-- Plain views: always current, nothing to refresh. Conventions shared by all of them:
--   * "finished" means status <> 'running';
--   * tokens and cost come from the recorded model calls (experiments keeps their totals);
--     there is no price table here;
--   * every division is guarded with NULLIF: a ratio whose denominator is zero is NULL, while
--     a real zero (0 recalls, $0 cost, 0 % success) stays 0;
--   * percentages and other ratios are rounded to 2 decimals, money to 6 (the stored scale);
--   * per-run views aggregate agent_actions and model_calls in LATERAL subqueries keyed on
--     run_id, so a query that filters them (one run, one comment, one model) reads only those
--     runs' rows; the per-model and per-prompt statistics read every finished run anyway and
--     use one grouped pass over agent_actions instead.

-- 95 % Wilson score interval of a success rate, in percent (NULL when there are no trials).
-- Unlike the plain k/n +- z*sqrt(...) interval it stays inside 0..100 and is meaningful for
-- the small samples experiment batches have (1 of 2 -> 9.45 % .. 90.55 %).
CREATE FUNCTION wilson_ci_low_pct(successes bigint, trials bigint, z double precision DEFAULT 1.96)
RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN trials > 0 THEN round((100 * greatest(0.0,
        (successes::float8 / trials + z * z / (2.0 * trials)
         - z * sqrt(greatest(0.0, (successes::float8 / trials) * (1 - successes::float8 / trials))
                    / trials + z * z / (4.0 * trials * trials)))
        / (1 + z * z / trials)))::numeric, 2) END
$$;

CREATE FUNCTION wilson_ci_high_pct(successes bigint, trials bigint, z double precision DEFAULT 1.96)
RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN trials > 0 THEN round((100 * least(1.0,
        (successes::float8 / trials + z * z / (2.0 * trials)
         + z * sqrt(greatest(0.0, (successes::float8 / trials) * (1 - successes::float8 / trials))
                    / trials + z * z / (4.0 * trials * trials)))
        / (1 + z * z / trials)))::numeric, 2) END
$$;

COMMENT ON FUNCTION wilson_ci_low_pct(bigint, bigint, double precision) IS
    'Lower bound (percent, 2 decimals) of the Wilson score interval of successes/trials; z 1.96 = 95 %';
COMMENT ON FUNCTION wilson_ci_high_pct(bigint, bigint, double precision) IS
    'Upper bound (percent, 2 decimals) of the Wilson score interval of successes/trials; z 1.96 = 95 %';


-- One row per finished run.
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
       a.successful_moves,
       a.failed_moves,
       round(100.0 * a.successful_moves / NULLIF(a.successful_moves + a.failed_moves, 0), 2)
           AS move_success_rate_pct,
       a.recall_count,
       a.no_tool_calls,
       a.invalid_tool_calls
  FROM experiments e
 CROSS JOIN LATERAL (
       SELECT count(*) FILTER (WHERE x.action_type IN ('move_north', 'move_south',
                                                       'move_east', 'move_west')
                                 AND x.success) AS successful_moves,
              count(*) FILTER (WHERE x.action_type IN ('move_north', 'move_south',
                                                       'move_east', 'move_west')
                                 AND NOT x.success) AS failed_moves,
              count(*) FILTER (WHERE x.action_type LIKE 'recall%') AS recall_count,
              count(*) FILTER (WHERE x.action_type = 'no_tool_call') AS no_tool_calls,
              count(*) FILTER (WHERE x.action_type = 'invalid_tool_call') AS invalid_tool_calls
         FROM agent_actions x
        WHERE x.run_id = e.run_id
       ) a
 WHERE e.status <> 'running';

COMMENT ON VIEW v_experiment_summary IS
    'One row per finished run: outcome, effort, tokens and cost, move success, recalls';


-- One row per (provider, model_name) over finished runs. These statistics read every
-- finished run, so the action counts come from one grouped pass over agent_actions (a hash
-- aggregate) rather than one LATERAL lookup per run. Runs without actions count 0.
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
       round(100.0 * sum(a.successful_moves) / NULLIF(sum(a.moves), 0), 2)
           AS move_success_rate_pct,
       round(avg(coalesce(a.recalls, 0)), 2) AS recalls_per_experiment,
       round(avg(coalesce(a.no_tool_calls, 0)), 2) AS no_tool_calls_per_experiment,
       round(avg(e.actions) FILTER (WHERE e.success), 2) AS avg_actions_to_goal
  FROM experiments e
  LEFT JOIN (
       SELECT x.run_id,
              count(*) FILTER (WHERE x.action_type IN ('move_north', 'move_south',
                                                       'move_east', 'move_west')) AS moves,
              count(*) FILTER (WHERE x.action_type IN ('move_north', 'move_south',
                                                       'move_east', 'move_west')
                                 AND x.success) AS successful_moves,
              count(*) FILTER (WHERE x.action_type LIKE 'recall%') AS recalls,
              count(*) FILTER (WHERE x.action_type = 'no_tool_call') AS no_tool_calls
         FROM agent_actions x
        GROUP BY x.run_id
       ) a ON a.run_id = e.run_id
 WHERE e.status <> 'running'
 GROUP BY e.provider, e.model_name;

COMMENT ON VIEW v_model_performance IS
    'One row per provider and model over finished runs, with a 95 % Wilson interval of the success rate';


-- One row per (prompt_version, provider, model_name) over finished runs: prompt A/B tests.
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
       round(100.0 * sum(a.successful_moves) / NULLIF(sum(a.moves), 0), 2)
           AS move_success_rate_pct,
       round(avg(coalesce(a.recalls, 0)), 2) AS recalls_per_experiment,
       round(avg(coalesce(a.no_tool_calls, 0)), 2) AS no_tool_calls_per_experiment,
       round(avg(e.actions) FILTER (WHERE e.success), 2) AS avg_actions_to_goal
  FROM experiments e
  LEFT JOIN (
       SELECT x.run_id,
              count(*) FILTER (WHERE x.action_type IN ('move_north', 'move_south',
                                                       'move_east', 'move_west')) AS moves,
              count(*) FILTER (WHERE x.action_type IN ('move_north', 'move_south',
                                                       'move_east', 'move_west')
                                 AND x.success) AS successful_moves,
              count(*) FILTER (WHERE x.action_type LIKE 'recall%') AS recalls,
              count(*) FILTER (WHERE x.action_type = 'no_tool_call') AS no_tool_calls
         FROM agent_actions x
        GROUP BY x.run_id
       ) a ON a.run_id = e.run_id
 WHERE e.status <> 'running'
 GROUP BY e.prompt_version, e.provider, e.model_name;

COMMENT ON VIEW v_prompt_variant_analysis IS
    'One row per prompt version, provider and model over finished runs (prompt A/B tests)';


-- One row per (run, turn): every turn that has an action or a model call. Actions and model
-- calls are stacked (UNION ALL) and grouped once; a filter on run_id reaches both tables.
CREATE VIEW v_turn_statistics AS
SELECT u.run_id,
       u.turn,
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
       (array_agg(u.to_x ORDER BY u.step DESC) FILTER (WHERE u.step IS NOT NULL))[1] AS final_x,
       (array_agg(u.to_y ORDER BY u.step DESC) FILTER (WHERE u.step IS NOT NULL))[1] AS final_y,
       coalesce(sum(u.input_tokens), 0) AS input_tokens,
       coalesce(sum(u.output_tokens), 0) AS output_tokens,
       count(u.call_seq) AS model_calls,
       coalesce(sum(u.cost_usd), 0) AS cost_usd
  FROM (
        SELECT a.run_id, a.turn, a.step, a.action_type, a.success, a.to_x, a.to_y,
               NULL::integer AS call_seq, NULL::integer AS input_tokens,
               NULL::integer AS output_tokens, NULL::numeric AS cost_usd
          FROM agent_actions a
        UNION ALL
        SELECT m.run_id, m.turn, NULL, NULL, NULL, NULL, NULL,
               m.seq, m.input_tokens, m.output_tokens, m.cost_usd
          FROM model_calls m
         WHERE m.turn IS NOT NULL
       ) u
 GROUP BY u.run_id, u.turn;

COMMENT ON VIEW v_turn_statistics IS
    'One row per run and turn: actions by kind, final position, tokens and cost of the turn';


-- One row per run (running ones included): what the agent did and how it explored.
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
              count(DISTINCT (x.to_x, x.to_y))
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
                        WHERE z.run_id = e.run_id
                      ) y
              ) x
       ) p;

COMMENT ON VIEW v_action_patterns IS
    'One row per run: action mix, wall collisions (failed moves only), exploration shape';


-- One row per finished run: tokens and cost, from the recorded per-call cost.
CREATE VIEW v_cost_analysis AS
SELECT e.run_id,
       e.provider,
       e.model_name,
       e.prompt_version,
       e.comment,
       e.started_at,
       e.status,
       e.success,
       e.model_calls,
       e.input_tokens,
       e.output_tokens,
       e.input_tokens + e.output_tokens AS total_tokens,
       e.cost_usd,
       e.actions AS total_actions,
       e.footsteps,
       round((e.input_tokens + e.output_tokens)::numeric / NULLIF(e.actions, 0), 2)
           AS tokens_per_action,
       round((e.input_tokens + e.output_tokens)::numeric / NULLIF(e.model_calls, 0), 2)
           AS tokens_per_call,
       round(e.cost_usd / NULLIF(e.actions, 0), 6) AS cost_per_action,
       round(e.cost_usd / NULLIF(e.footsteps, 0), 6) AS cost_per_footstep,
       round(e.cost_usd * 1000000 / NULLIF(e.input_tokens + e.output_tokens, 0), 6)
           AS cost_per_million_tokens,
       CASE WHEN e.success THEN e.cost_usd END AS cost_if_successful
  FROM experiments e
 WHERE e.status <> 'running';

COMMENT ON VIEW v_cost_analysis IS
    'One row per finished run: tokens and recorded cost, per action, per footstep, per million tokens';


-- One row per UTC calendar day of started_at.
CREATE VIEW v_daily_summary AS
SELECT (e.started_at AT TIME ZONE 'UTC')::date AS day,
       count(*) AS experiments,
       count(*) FILTER (WHERE e.status <> 'running') AS finished,
       count(*) FILTER (WHERE e.status = 'running') AS running,
       count(*) FILTER (WHERE e.success) AS successes,
       round(100.0 * count(*) FILTER (WHERE e.success)
             / NULLIF(count(*) FILTER (WHERE e.status <> 'running'), 0), 2) AS success_rate_pct,
       sum(e.actions)::bigint AS total_actions,
       sum(e.footsteps)::bigint AS total_footsteps,
       sum(e.input_tokens + e.output_tokens)::bigint AS total_tokens,
       sum(e.cost_usd) AS total_cost_usd,
       round(avg(e.actions) FILTER (WHERE e.status <> 'running'), 2) AS avg_actions,
       round(avg(e.turns) FILTER (WHERE e.status <> 'running'), 2) AS avg_turns,
       round(avg(e.duration_seconds) FILTER (WHERE e.status <> 'running')::numeric, 2)
           AS avg_duration_seconds,
       round(avg(e.input_tokens + e.output_tokens) FILTER (WHERE e.status <> 'running'), 2)
           AS avg_tokens,
       round(avg(e.cost_usd) FILTER (WHERE e.status <> 'running'), 6) AS avg_cost_usd,
       count(DISTINCT (e.provider, e.model_name)) AS distinct_models,
       string_agg(DISTINCT e.provider || '/' || e.model_name, ', '
                  ORDER BY e.provider || '/' || e.model_name) AS models
  FROM experiments e
 GROUP BY (e.started_at AT TIME ZONE 'UTC')::date;

COMMENT ON VIEW v_daily_summary IS
    'One row per UTC day of started_at: runs, successes, totals, averages over finished runs, models';


-- One row per run (running ones included). Views have no order: ORDER BY started_at DESC.
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
       e.position_y AS final_y
  FROM experiments e
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
