-- 003_sessions.sql - chat sessions: a reader's session (its token only as a SHA-256 hash), its
-- messages, feedback on a message, and the Idempotency-Key records of message writes.
--
-- Applied by `neonpoolctl migrate` inside its own transaction: no BEGIN/COMMIT here.
--
-- Writes are single statements (np_post_message() is one call): each is atomic on its own, holds
-- no transaction open across the daemon's C code, and works the same through a transaction-mode
-- pooler. Erasing a session cascades to its messages, their feedback and its idempotency keys.

CREATE TABLE sessions (
	id          bigserial PRIMARY KEY,
	token_hash  bytea NOT NULL CHECK (octet_length(token_hash) = 32),   -- SHA-256 of the bearer token
	created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE messages (
	id          bigserial PRIMARY KEY,
	session_id  bigint NOT NULL REFERENCES sessions ON DELETE CASCADE,
	role        text NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
	content     text NOT NULL CHECK (char_length(content) BETWEEN 1 AND 16384),
	created_at  timestamptz NOT NULL DEFAULT now()
);
-- keyset pagination, newest first: WHERE session_id = $1 AND id < $before ORDER BY id DESC
CREATE INDEX messages_session_id_id_idx ON messages (session_id, id DESC);

CREATE TABLE feedback (
	id          bigserial PRIMARY KEY,
	message_id  bigint NOT NULL UNIQUE REFERENCES messages ON DELETE CASCADE,
	rating      smallint NOT NULL CHECK (rating IN (-1, 1)),              -- thumbs down / up
	comment     text CHECK (char_length(comment) <= 2000),
	created_at  timestamptz NOT NULL DEFAULT now(),
	updated_at  timestamptz NOT NULL DEFAULT now()
);

-- An Idempotency-Key's outcome: written in the same transaction as the message, so a key is
-- recorded if and only if its message committed. "In flight" is not a row: it is the
-- transaction-scoped advisory lock np_post_message() holds on (session, key) for exactly as long
-- as the first request's transaction lives, so a crash (of the worker or the backend) can never
-- leave a key stuck in flight. A key is honoured for 24 hours after its first use
-- (np_idempotency_ttl()); expired rows are deleted a few at a time by later keyed writes (any
-- session's), and with their session.
CREATE TABLE idempotency_keys (
	session_id    bigint NOT NULL REFERENCES sessions ON DELETE CASCADE,
	key           text NOT NULL CHECK (octet_length(key) BETWEEN 1 AND 255),
	request_hash  bytea NOT NULL CHECK (octet_length(request_hash) = 32),
	status        smallint NOT NULL,
	body          text NOT NULL,
	created_at    timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (session_id, key)
);
CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);

CREATE FUNCTION np_idempotency_ttl() RETURNS interval LANGUAGE sql IMMUTABLE AS $$ SELECT interval '24 hours' $$;

-- A timestamp as the API shows it: RFC 3339 in UTC with microseconds, whatever the session's TimeZone.
CREATE FUNCTION np_api_time(t timestamptz) RETURNS text LANGUAGE sql IMMUTABLE AS
$$ SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') $$;

CREATE FUNCTION np_message_json(m messages) RETURNS json LANGUAGE sql IMMUTABLE AS
$$ SELECT json_build_object('id', m.id, 'session_id', m.session_id, 'role', m.role, 'content', m.content,
                            'created_at', np_api_time(m.created_at)) $$;

-- Add a message to a session (already authenticated by the caller), honouring an Idempotency-Key
-- (p_key NULL: none). Returns one row: the HTTP status and body to answer, and whether it is a
-- replay. 201 with the message; 404 when the session is gone; 409 while another request with the
-- key is in flight; 422 when the key was used with a different request (p_request_hash differs);
-- a replay returns the stored status and body.
-- Record a keyed write's answer (in the write's own transaction), replacing an expired record of
-- the same key, and remove up to 16 expired keys of any session: the table holds about one TTL's
-- worth of keys without a cron job. Every keyed write (messages, asks) goes through here.
CREATE FUNCTION np_idempotency_store(p_session bigint, p_key text, p_request_hash bytea, p_status int, p_body text)
RETURNS void
LANGUAGE sql VOLATILE AS $fn$
	INSERT INTO idempotency_keys (session_id, key, request_hash, status, body)
	VALUES (p_session, p_key, p_request_hash, p_status, p_body)
	ON CONFLICT (session_id, key) DO UPDATE
		SET request_hash = EXCLUDED.request_hash, status = EXCLUDED.status, body = EXCLUDED.body,
		    created_at = EXCLUDED.created_at;
	DELETE FROM idempotency_keys
	WHERE ctid = ANY (ARRAY(SELECT ctid FROM idempotency_keys
	                        WHERE created_at < now() - np_idempotency_ttl()
	                        LIMIT 16 FOR UPDATE SKIP LOCKED));
$fn$;

CREATE FUNCTION np_post_message(p_session bigint, p_key text, p_request_hash bytea, p_role text, p_content text)
RETURNS TABLE (status int, body text, replayed boolean)
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
	k idempotency_keys%ROWTYPE;
	m messages%ROWTYPE;
	b text;
BEGIN
	-- the session stays until we commit (an erase waits for us, or we see it gone)
	PERFORM 1 FROM sessions s WHERE s.id = p_session FOR KEY SHARE;
	IF NOT FOUND THEN
		RETURN QUERY SELECT 404, NULL::text, false;
		RETURN;
	END IF;
	IF p_key IS NOT NULL THEN
		IF NOT pg_try_advisory_xact_lock(hashtextextended(p_session::text || '/' || p_key, 7003)) THEN
			RETURN QUERY SELECT 409, NULL::text, false;
			RETURN;
		END IF;
		-- a fresh snapshot (READ COMMITTED, volatile function): sees the first request's commit
		SELECT * INTO k FROM idempotency_keys i
		WHERE i.session_id = p_session AND i.key = p_key AND i.created_at > now() - np_idempotency_ttl();
		IF FOUND THEN
			IF k.request_hash <> p_request_hash THEN
				RETURN QUERY SELECT 422, NULL::text, false;
			ELSE
				RETURN QUERY SELECT k.status::int, k.body, true;
			END IF;
			RETURN;
		END IF;
	END IF;
	INSERT INTO messages (session_id, role, content) VALUES (p_session, p_role, p_content) RETURNING * INTO m;
	b := np_message_json(m)::text;
	IF p_key IS NOT NULL THEN
		PERFORM np_idempotency_store(p_session, p_key, p_request_hash, 201, b);
	END IF;
	RETURN QUERY SELECT 201, b, false;
END
$fn$;
