-- 007_ask_sweep_never_waits.sql - the lease sweep gives way to a lock on messages instead of
-- waiting for it.
--
-- np_ask_renew() and np_ask_expire() (006) run between requests in a worker that holds a
-- connection, and np_ask_expire() at every ask's begin. With messages locked (a migration, a
-- long DDL, a write held back) they waited in the lock for query_timeout_ms with the worker out of
-- service, then failed and counted a database failure (t_ask_sweep_never_waits: a read waited
-- 6,005 ms). Now each waits at most 50 ms for a lock, then does nothing this time: a lease is
-- renewed every 3 s and lasts 10 s, and an orphan is expired by the next sweep, so a skipped turn
-- costs nothing but a few seconds. Same signatures and results otherwise.

CREATE OR REPLACE FUNCTION np_ask_expire(p_session bigint, p_limit int) RETURNS int
LANGUAGE plpgsql VOLATILE SET lock_timeout = '50ms' AS $fn$
DECLARE
	n int;
BEGIN
	WITH expired AS (
		SELECT m.id FROM messages m
		WHERE m.status = 'streaming' AND (m.lease_until IS NULL OR m.lease_until < now())
		  AND (p_session IS NULL OR m.session_id = p_session)
		ORDER BY m.id LIMIT p_limit FOR UPDATE SKIP LOCKED),
	done AS (
		UPDATE messages m SET status = 'failed' FROM expired e
		WHERE m.id = e.id AND m.status = 'streaming' RETURNING m.id)
	SELECT count(*)::int INTO n FROM done;
	RETURN n;
EXCEPTION WHEN lock_not_available THEN
	RETURN 0;
END
$fn$;

CREATE OR REPLACE FUNCTION np_ask_renew(p_answers bigint[], p_lease_ms int) RETURNS SETOF bigint
LANGUAGE plpgsql VOLATILE SET lock_timeout = '50ms' AS $fn$
BEGIN
	RETURN QUERY
	WITH renewed AS (
		UPDATE messages m SET lease_until = now() + p_lease_ms * interval '1 millisecond'
		WHERE m.id = ANY (p_answers) AND m.role = 'assistant' AND m.status = 'streaming'
		RETURNING m.id)
	SELECT a FROM unnest(p_answers) a WHERE NOT EXISTS (SELECT 1 FROM renewed r WHERE r.id = a);
EXCEPTION WHEN lock_not_available THEN
	-- nothing renewed, nobody told to stop: the next turn renews (the lease outlasts three turns)
	RETURN;
END
$fn$;
