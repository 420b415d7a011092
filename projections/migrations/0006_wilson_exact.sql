-- The Wilson score interval unrounded, as a fraction, with the exact normal quantile: the
-- comparison reports (oriole.comparison, statsmodels' proportion_confint) and SQL agree to
-- 1e-9 (tests/test_comparison_stats.py checks it). The percent functions of 0002 now round
-- these bounds, with the same exact z, so the views and the reports show the same interval.

CREATE FUNCTION wilson_ci_low(successes bigint, trials bigint,
                              z double precision DEFAULT 1.959963984540054)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN trials > 0 THEN greatest(0.0,
        (successes::float8 / trials + z * z / (2.0 * trials)
         - z * sqrt(greatest(0.0, (successes::float8 / trials) * (1 - successes::float8 / trials))
                    / trials + z * z / (4.0 * trials * trials)))
        / (1 + z * z / trials)) END
$$;

CREATE FUNCTION wilson_ci_high(successes bigint, trials bigint,
                               z double precision DEFAULT 1.959963984540054)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN trials > 0 THEN least(1.0,
        (successes::float8 / trials + z * z / (2.0 * trials)
         + z * sqrt(greatest(0.0, (successes::float8 / trials) * (1 - successes::float8 / trials))
                    / trials + z * z / (4.0 * trials * trials)))
        / (1 + z * z / trials)) END
$$;

COMMENT ON FUNCTION wilson_ci_low(bigint, bigint, double precision) IS
    'Lower bound (fraction, unrounded) of the Wilson score interval of successes/trials; default z is the exact 97.5 % normal quantile';
COMMENT ON FUNCTION wilson_ci_high(bigint, bigint, double precision) IS
    'Upper bound (fraction, unrounded) of the Wilson score interval of successes/trials; default z is the exact 97.5 % normal quantile';

CREATE OR REPLACE FUNCTION wilson_ci_low_pct(successes bigint, trials bigint,
                                             z double precision DEFAULT 1.959963984540054)
RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT round((100 * wilson_ci_low(successes, trials, z))::numeric, 2) $$;

CREATE OR REPLACE FUNCTION wilson_ci_high_pct(successes bigint, trials bigint,
                                              z double precision DEFAULT 1.959963984540054)
RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT round((100 * wilson_ci_high(successes, trials, z))::numeric, 2) $$;
