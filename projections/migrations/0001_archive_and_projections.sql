-- The event archive (every run event, verbatim) and the projections derived from it.
-- Projections can be dropped and rebuilt from run_events at any time (`oriole projections
-- rebuild`); run_events itself is the long-term store and is never rewritten.

CREATE TABLE run_events (
    run_id          text        NOT NULL,
    seq             integer     NOT NULL CHECK (seq >= 1),
    event_id        uuid        NOT NULL,
    type            text        NOT NULL,
    schema_version  integer     NOT NULL,
    time            timestamptz NOT NULL,
    payload         jsonb       NOT NULL,
    archived_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, seq),
    CONSTRAINT run_events_event_id_key UNIQUE (event_id)
);
CREATE INDEX run_events_type_time_idx ON run_events (type, time);

-- One row per distinct maze grid (the content hash covers grid and see-through flag).
CREATE TABLE mazes (
    content_hash       text        PRIMARY KEY,
    name               text        NOT NULL,
    width              integer     NOT NULL,
    height             integer     NOT NULL,
    grid_data          jsonb       NOT NULL,
    see_through_walls  boolean     NOT NULL,
    goal_x             integer     NOT NULL,
    goal_y             integer     NOT NULL,
    generator          jsonb,
    first_seen_at      timestamptz NOT NULL
);
CREATE INDEX mazes_name_idx ON mazes (name);

-- One row per run.
CREATE TABLE experiments (
    run_id                text        PRIMARY KEY,
    provider              text        NOT NULL,
    model_name            text        NOT NULL,
    agent_endpoint        text,
    prompt_version        text,
    prompt_text           text,
    maze_hash             text        NOT NULL,
    maze_name             text        NOT NULL,
    start_x               integer     NOT NULL,
    start_y               integer     NOT NULL,
    comment               text,
    labels                jsonb       NOT NULL DEFAULT '{}',
    warnings              jsonb       NOT NULL DEFAULT '[]',
    rerun_of              text,
    -- The whole configuration (agent options, game rules, limits); zero stays zero.
    model_config          jsonb       NOT NULL,
    -- Flattened copies for filtering and grouping; NULL only when the value was not set.
    temperature           double precision,
    num_ctx               integer,
    max_output_tokens     integer,
    repeat_penalty        double precision,
    top_p                 double precision,
    top_k                 integer,
    vision_range          integer     NOT NULL,
    max_actions_per_turn  integer     NOT NULL,
    max_footsteps         integer,
    max_actions           integer,
    max_duration_seconds  double precision,
    max_tokens            bigint,
    max_cost_usd          numeric(20, 10),
    goal_rule             text        NOT NULL,
    requested_at          timestamptz NOT NULL,
    started_at            timestamptz NOT NULL,
    last_action_at        timestamptz,
    completed_at          timestamptz,
    -- running | succeeded | failed | cancelled | stopped (a limit ended it without the goal)
    status                text        NOT NULL CHECK (
        status IN ('running', 'succeeded', 'failed', 'cancelled', 'stopped')),
    stop_reason           text,
    stop_detail           text,
    success               boolean,
    goal_seen             boolean     NOT NULL DEFAULT false,
    goal_reached          boolean     NOT NULL DEFAULT false,
    position_x            integer     NOT NULL,
    position_y            integer     NOT NULL,
    footsteps             integer     NOT NULL DEFAULT 0,
    actions               integer     NOT NULL DEFAULT 0,
    turns                 integer     NOT NULL DEFAULT 0,
    model_calls           integer     NOT NULL DEFAULT 0,
    input_tokens          bigint      NOT NULL DEFAULT 0,
    output_tokens         bigint      NOT NULL DEFAULT 0,
    cost_usd              numeric(20, 10) NOT NULL DEFAULT 0,
    duration_seconds      double precision,
    error_class           text,
    error_message         text,
    last_seq              integer     NOT NULL
);
CREATE INDEX experiments_model_config_idx ON experiments USING gin (model_config jsonb_path_ops);
CREATE INDEX experiments_labels_idx ON experiments USING gin (labels jsonb_path_ops);
CREATE INDEX experiments_model_idx ON experiments (model_name);
CREATE INDEX experiments_prompt_idx ON experiments (prompt_version);
CREATE INDEX experiments_maze_idx ON experiments (maze_hash);
CREATE INDEX experiments_started_idx ON experiments (started_at DESC);
CREATE INDEX experiments_running_idx ON experiments (started_at) WHERE status = 'running';
CREATE INDEX experiments_comment_idx ON experiments USING gin (to_tsvector('simple', coalesce(comment, '')));
CREATE INDEX experiments_comment_prefix_idx ON experiments (comment text_pattern_ops);
CREATE INDEX experiments_rerun_of_idx ON experiments (rerun_of) WHERE rerun_of IS NOT NULL;

-- One row per action (decision + outcome).
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
    -- The model call that produced this action (set on the first action of each call).
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
    PRIMARY KEY (run_id, step)
);
CREATE INDEX agent_actions_turn_idx ON agent_actions (run_id, turn);
CREATE INDEX agent_actions_time_idx ON agent_actions (run_id, completed_at DESC);

-- One row per model call: the unit of token and cost accounting.
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
    PRIMARY KEY (run_id, seq)
);
CREATE INDEX model_calls_turn_idx ON model_calls (run_id, turn);
