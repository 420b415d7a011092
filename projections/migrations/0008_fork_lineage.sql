-- Lineage of forked runs (docs/events.md, `spec.fork_of`): a fork continues an archived run
-- from one of its steps, so runs form families. The experiment row names its parent and the
-- parent's step it continues after, so "the children of X" is one indexed look-up and a
-- family is a short recursive walk.
--
-- The columns are copies of the run's run.started `spec.fork_of` (both NULL for a run that is
-- not a fork), filled by the projector like every other column, so `oriole projections
-- rebuild` gives the same rows. Runs already archived are filled here from their archived
-- run.started.

ALTER TABLE experiments
    ADD COLUMN forked_from text,
    ADD COLUMN fork_step   integer,
    ADD CONSTRAINT experiments_fork_point_check
        CHECK ((forked_from IS NULL) = (fork_step IS NULL) AND fork_step >= 0);

CREATE INDEX experiments_forked_from_idx ON experiments (forked_from)
    WHERE forked_from IS NOT NULL;

UPDATE experiments e
   SET forked_from = s.payload #>> '{spec,fork_of,run_id}',
       fork_step = (s.payload #>> '{spec,fork_of,after_step}')::integer
  FROM run_events s
 WHERE s.run_id = e.run_id
   AND s.seq = 1
   AND s.type = 'run.started'
   AND jsonb_typeof(s.payload #> '{spec,fork_of,run_id}') = 'string'
   AND jsonb_typeof(s.payload #> '{spec,fork_of,after_step}') = 'number';

-- The family of one run: its ancestors (depth 1 = its parent, 2 = the grandparent, ...),
-- itself (depth 0, when it is known) and its descendants (depth 1 = its forks, ...), each
-- with the member's own parent and fork step. A parent whose row is gone (pruned) is still
-- named by its child. A run id met twice on one walk ends that walk (no cycle can be
-- recorded, since a parent has finished before its fork starts, but a walk must end).
CREATE FUNCTION oriole_run_family(root text)
RETURNS TABLE (member_id text, relation text, depth integer, forked_from text, fork_step integer)
LANGUAGE sql STABLE PARALLEL SAFE
AS $fn$
    WITH RECURSIVE
        ancestors (member_id, depth, walked) AS (
            SELECT c.forked_from, 1, ARRAY[c.run_id, c.forked_from]
              FROM experiments c
             WHERE c.run_id = root AND c.forked_from IS NOT NULL
            UNION ALL
            SELECT p.forked_from, a.depth + 1, a.walked || p.forked_from
              FROM ancestors a
              JOIN experiments p ON p.run_id = a.member_id
             WHERE p.forked_from IS NOT NULL AND p.forked_from <> ALL (a.walked)
        ),
        descendants (member_id, depth, walked) AS (
            SELECT c.run_id, 1, ARRAY[root, c.run_id]
              FROM experiments c
             WHERE c.forked_from = root AND c.run_id <> root
            UNION ALL
            SELECT c.run_id, d.depth + 1, d.walked || c.run_id
              FROM descendants d
              JOIN experiments c ON c.forked_from = d.member_id
             WHERE c.run_id <> ALL (d.walked)
        ),
        members (member_id, relation, depth) AS (
            SELECT a.member_id, 'ancestor', a.depth FROM ancestors a
            UNION ALL
            SELECT s.run_id, 'self', 0 FROM experiments s WHERE s.run_id = root
            UNION ALL
            SELECT d.member_id, 'descendant', d.depth FROM descendants d
        )
    SELECT m.member_id, m.relation, m.depth, x.forked_from, x.fork_step
      FROM members m
      LEFT JOIN experiments x ON x.run_id = m.member_id
$fn$;

COMMENT ON FUNCTION oriole_run_family(text) IS
    'The ancestors (relation ancestor, depth 1 = parent), the run itself (self, 0) and the '
    'descendants (descendant, depth 1 = its forks) of a run, with each member''s forked_from '
    'and fork_step.';

-- Every run's family: filter on run_id (the planner then walks one family only).
CREATE VIEW v_run_family AS
SELECT e.run_id, f.member_id, f.relation, f.depth, f.forked_from, f.fork_step
  FROM experiments e
 CROSS JOIN LATERAL oriole_run_family(e.run_id) f;

COMMENT ON VIEW v_run_family IS
    'One row per member of each run''s family (run_id: the run asked about): ancestors, '
    'the run itself and descendants, with depth; see oriole_run_family.';
