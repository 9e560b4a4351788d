-- The daemon's PostgreSQL role: append and read the log, hold the leader lease, nothing more
-- (README "Running two replicas"). Run once as the log's owner, after the owner has created the
-- log (any write does, e.g. `watchdog migrate --from events.db --to postgresql://owner@db/watchdog`
-- or `watchdog import --db postgresql://owner@db/watchdog data/history`):
--
--   psql postgresql://owner@db.internal/watchdog -f deploy/postgres-roles.sql
--
-- The triggers refuse UPDATE, DELETE and TRUNCATE of events whoever asks; without the privileges
-- the daemon's role cannot even drop those triggers. Give it a password (ALTER ROLE watchdog
-- PASSWORD ...) and hand that to each replica in a passfile credential, never in watchdog.toml.
CREATE ROLE watchdog LOGIN;
GRANT SELECT, INSERT ON events TO watchdog;                -- append-only: no UPDATE, DELETE, TRUNCATE
GRANT SELECT, INSERT, UPDATE ON verified TO watchdog;      -- the start-up verification point
GRANT SELECT, INSERT, UPDATE ON lease TO watchdog;         -- take, renew and release the leader lease
