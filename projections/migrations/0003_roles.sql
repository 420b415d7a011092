-- Least privilege: two group roles (NOLOGIN) that login roles are made members of
-- (docs/deployment.md shows how):
--   * oriole_reader: SELECT on every table and view (the gateway's read API, analysts);
--   * oriole_writer: what the projector needs to archive and project run events (SELECT,
--     INSERT, UPDATE; temporary stage tables), nothing more: no DELETE, no TRUNCATE, no DDL.
-- Migrations themselves, and rebuilding the projections (TRUNCATE), stay with the owner.
--
-- Roles belong to the whole cluster while GRANTs belong to one database, and several
-- databases (tests clone many from one migrated template; other Oriole installations may
-- share the server) run this concurrently: each role is created only when missing, a
-- concurrent creation is tolerated, and the GRANTs are made per database. A migrating user
-- that may not create roles (neither superuser nor CREATEROLE) skips the missing ones with a
-- NOTICE; an administrator can create them and re-run the GRANTs below by hand.

DO $roles$
DECLARE
    wanted text;
    can_create boolean;
BEGIN
    SELECT rolsuper OR rolcreaterole INTO can_create FROM pg_roles WHERE rolname = current_user;
    FOREACH wanted IN ARRAY ARRAY['oriole_reader', 'oriole_writer'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = wanted) THEN
            IF can_create THEN
                BEGIN
                    EXECUTE format('CREATE ROLE %I NOLOGIN', wanted);
                EXCEPTION WHEN duplicate_object OR unique_violation THEN
                    NULL;  -- created meanwhile by a migration of another database
                END;
            ELSE
                RAISE NOTICE 'role % does not exist and % may not create it; skipping its grants',
                    wanted, current_user;
            END IF;
        END IF;
    END LOOP;

    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'oriole_reader') THEN
        EXECUTE format('GRANT CONNECT ON DATABASE %I TO oriole_reader', current_database());
        GRANT USAGE ON SCHEMA public TO oriole_reader;
        GRANT SELECT ON ALL TABLES IN SCHEMA public TO oriole_reader;  -- views included
        GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO oriole_reader;
        -- Tables and views of later migrations (made by the same migrating user) too.
        ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO oriole_reader;
    END IF;

    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'oriole_writer') THEN
        EXECUTE format(
            'GRANT CONNECT, TEMPORARY ON DATABASE %I TO oriole_writer', current_database()
        );
        GRANT USAGE ON SCHEMA public TO oriole_writer;
        GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO oriole_writer;
        GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO oriole_writer;
        GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO oriole_writer;
        ALTER DEFAULT PRIVILEGES IN SCHEMA public
            GRANT SELECT, INSERT, UPDATE ON TABLES TO oriole_writer;
        ALTER DEFAULT PRIVILEGES IN SCHEMA public
            GRANT USAGE, SELECT ON SEQUENCES TO oriole_writer;
        -- Migration history is the owner's: readable, never rewritten by the projector.
        REVOKE INSERT, UPDATE ON oriole_migrations FROM oriole_writer;
    END IF;
END
$roles$;
