-- 006_ask_lease.sql - an answer being made holds a lease; an answer whose lease ran out (its
-- worker or its whole host is gone) is finished 'failed' by whoever sees it first; the answer's
-- maker stores the text it sent even when someone else finished the row first; the history an
-- ask reads is bounded.
--
-- Applied by `neonpoolctl migrate` inside its own transaction: no BEGIN/COMMIT here.
--
-- lease_until: set by np_ask_begin() and renewed while the answer is made (np_ask_renew(), for
-- every answer of a host at once); NULL once its maker stored the answer (np_ask_store()). A 'streaming' row
-- whose lease ran out (or that never had one: rows of before this migration) is finished
-- 'failed' by np_ask_expire(): for a session at its next ask, for every session by a worker's
-- periodic sweep.

ALTER TABLE messages ADD COLUMN lease_until timestamptz;
-- the sweep's scan: only the few rows being streamed are in it
CREATE INDEX messages_streaming_lease_idx ON messages (lease_until) WHERE status = 'streaming';

-- Finish 'failed' the answers still 'streaming' past their lease: of session p_session, or of any
-- session when it is NULL (at most p_limit of them, rows another sweep holds are skipped).
-- Content and lease_until stay: a maker that was only slow still stores its text (np_ask_store).
-- Returns how many were finished.
CREATE FUNCTION np_ask_expire(p_session bigint, p_limit int) RETURNS int
LANGUAGE sql VOLATILE AS $fn$
	WITH expired AS (
		SELECT m.id FROM messages m
		WHERE m.status = 'streaming' AND (m.lease_until IS NULL OR m.lease_until < now())
		  AND (p_session IS NULL OR m.session_id = p_session)
		ORDER BY m.id LIMIT p_limit FOR UPDATE SKIP LOCKED),
	done AS (
		UPDATE messages m SET status = 'failed' FROM expired e
		WHERE m.id = e.id AND m.status = 'streaming' RETURNING m.id)
	SELECT count(*)::int FROM done
$fn$;

-- The leases of the answers a host is making (p_answers: the ids its slots name), p_lease_ms more
-- from now, for those still 'streaming'. One statement per host every few seconds, whatever the
-- number of answers. Returns the ids among p_answers that are not streaming any more (finished
-- by a cancel served elsewhere, an expired lease, a session erased): their makers are told to
-- stop.
CREATE FUNCTION np_ask_renew(p_answers bigint[], p_lease_ms int) RETURNS SETOF bigint
LANGUAGE sql VOLATILE AS $fn$
	WITH renewed AS (
		UPDATE messages m SET lease_until = now() + p_lease_ms * interval '1 millisecond'
		WHERE m.id = ANY (p_answers) AND m.role = 'assistant' AND m.status = 'streaming'
		RETURNING m.id)
	SELECT a FROM unnest(p_answers) a WHERE NOT EXISTS (SELECT 1 FROM renewed r WHERE r.id = a)
$fn$;

-- The maker's store of its answer: the text it sent and the [n] it cites, once (lease_until goes
-- NULL). The status is p_status when the row is still 'streaming', else the one it was finished
-- with (a cancel that found no worker, an expired lease): what the maker then tells its client.
-- Returns the row's status after the call, no row when the message is gone.
CREATE FUNCTION np_ask_store(p_answer bigint, p_content text, p_status text, p_used int[])
RETURNS TABLE (status text)
LANGUAGE sql VOLATILE AS $fn$
	WITH stored AS (
		UPDATE messages m SET content = p_content, citations_used = p_used, lease_until = NULL,
		       status = CASE WHEN m.status = 'streaming' THEN p_status ELSE m.status END
		WHERE m.id = p_answer AND m.role = 'assistant' AND m.lease_until IS NOT NULL
		RETURNING m.status)
	SELECT s.status FROM stored s
	UNION ALL
	SELECT m.status FROM messages m
	WHERE m.id = p_answer AND m.role = 'assistant' AND NOT EXISTS (SELECT 1 FROM stored)
$fn$;

-- np_ask_begin() as in 004_ask.sql, with two changes: the answer row gets a lease of p_lease_ms,
-- the session's answers past their lease are finished first; and the history is bounded to
-- np_ask_history_chars() characters (the newest messages that fit): 50 messages of 16,384
-- characters escaped to ~5 MB of JSON, past what an ask worker reads of an internal answer.
DROP FUNCTION np_ask_begin(bigint, text, bytea, text, int, int, int, text);

CREATE FUNCTION np_ask_history_chars() RETURNS int LANGUAGE sql IMMUTABLE AS $$ SELECT 32768 $$;

CREATE FUNCTION np_ask_begin(p_session bigint, p_key text, p_request_hash bytea, p_question text, p_top_k int,
                             p_history int, p_sentences int, p_mode text, p_lease_ms int)
RETURNS TABLE (status int, question_id bigint, answer_id bigint, answer_status text, answer text,
               citations text, citations_used text, history text, sentences text, mode text)
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
	k idempotency_keys%ROWTYPE;
	qid bigint;
	aid bigint;
	a messages%ROWTYPE;
	query tsquery := np_ask_query(p_question);
	cites jsonb;
	hist text;
	sents text;
BEGIN
	PERFORM 1 FROM sessions s WHERE s.id = p_session FOR KEY SHARE;
	IF NOT FOUND THEN
		RETURN QUERY SELECT 404, NULL::bigint, NULL::bigint, NULL::text, NULL::text, NULL::text, NULL::text,
		                    NULL::text, NULL::text, NULL::text;
		RETURN;
	END IF;
	-- the session's answers whose maker is gone end here, before a replay reads one of them
	PERFORM np_ask_expire(p_session, 100);
	IF p_key IS NOT NULL THEN
		IF NOT pg_try_advisory_xact_lock(hashtextextended(p_session::text || '/' || p_key, 7003)) THEN
			RETURN QUERY SELECT 409, NULL::bigint, NULL::bigint, NULL::text, NULL::text, NULL::text, NULL::text,
			                    NULL::text, NULL::text, NULL::text;
			RETURN;
		END IF;
		SELECT * INTO k FROM idempotency_keys i
		WHERE i.session_id = p_session AND i.key = p_key AND i.created_at > now() - np_idempotency_ttl();
		IF FOUND THEN
			IF k.request_hash <> p_request_hash THEN
				RETURN QUERY SELECT 422, NULL::bigint, NULL::bigint, NULL::text, NULL::text, NULL::text,
				                    NULL::text, NULL::text, NULL::text, NULL::text;
				RETURN;
			END IF;
			SELECT * INTO a FROM messages m WHERE m.id = (k.body::json ->> 'message_id')::bigint;
			RETURN QUERY SELECT 200, (k.body::json ->> 'question_id')::bigint, a.id, a.status, a.content,
			                    a.citations::text, to_json(a.citations_used)::text, NULL::text, NULL::text,
			                    k.body::json ->> 'mode';
			RETURN;
		END IF;
	END IF;
	-- the history before the question: the last p_history messages, oldest first, as many of the
	-- newest as fit in np_ask_history_chars() characters
	SELECT COALESCE(json_agg(json_build_object('role', h.role, 'content', h.content) ORDER BY h.id), '[]'::json)::text
	INTO hist
	FROM (SELECT l.id, l.role, l.content, sum(char_length(l.content)) OVER (ORDER BY l.id DESC) AS total
	      FROM (SELECT m.id, m.role, m.content FROM messages m
	            WHERE m.session_id = p_session AND m.content <> '' ORDER BY m.id DESC LIMIT p_history) l) h
	WHERE h.total <= np_ask_history_chars();
	INSERT INTO messages (session_id, role, content) VALUES (p_session, 'user', p_question) RETURNING id INTO qid;
	-- the passages: ranked through the GIN index like the search route, the heading weighing most
	WITH hits AS (
		SELECT p.id, p.chapter_id, p.heading, p.body, ts_rank_cd(p.tsv, query) AS rank
		FROM passages p WHERE p.tsv @@ query ORDER BY rank DESC, p.id LIMIT p_top_k),
	numbered AS (SELECT h.*, row_number() OVER (ORDER BY h.rank DESC, h.id) AS n FROM hits h)
	SELECT COALESCE(jsonb_agg(jsonb_build_object(
		'n', g.n, 'passage_id', g.id::text, 'book_id', b.id::text, 'book', b.title,
		'chapter_id', c.id::text, 'chapter_number', c.position, 'chapter', c.title, 'title', g.heading,
		'snippet', ts_headline('english', g.body, query, 'MaxWords=30, MinWords=12, ShortWord=3, HighlightAll=false, StartSel="", StopSel=""'),
		'body', g.body) ORDER BY g.n), '[]'::jsonb)
	INTO cites
	FROM numbered g JOIN chapters c ON c.id = g.chapter_id JOIN books b ON b.id = c.book_id;
	-- the sentences of those passages with the most distinct question terms, for retrieval mode
	IF p_sentences > 0 THEN
		SELECT COALESCE(json_agg(json_build_object('n', s.n, 'sentence', s.sentence, 'score', s.score)
		                         ORDER BY s.score DESC, s.n, s.ord), '[]'::json)::text
		INTO sents
		FROM (SELECT x.n, x.sentence, x.ord,
		             (SELECT count(*) FROM unnest(tsvector_to_array(to_tsvector('english', x.sentence))) l
		              WHERE l = ANY (tsvector_to_array(to_tsvector('english', p_question)))) AS score
		      FROM (SELECT (e ->> 'n')::int AS n, t.sentence, t.ord
		            FROM jsonb_array_elements(cites) e,
		                 regexp_split_to_table(e ->> 'body', '(?<=[.!?])\s+') WITH ORDINALITY AS t (sentence, ord)) x
		      WHERE char_length(x.sentence) BETWEEN 20 AND 600
		      ORDER BY 4 DESC, x.n, x.ord LIMIT p_sentences) s
		WHERE s.score > 0;
	ELSIF p_mode = 'llm' THEN
		-- the model reads the passages themselves
		SELECT COALESCE(json_agg(json_build_object('n', (e ->> 'n')::int, 'body', e ->> 'body')
		                         ORDER BY (e ->> 'n')::int), '[]'::json)::text
		INTO sents FROM jsonb_array_elements(cites) e;
	END IF;
	-- the passages' bodies served the sentences; the citations keep their snippet only
	SELECT COALESCE(jsonb_agg(e - 'body' ORDER BY (e ->> 'n')::int), '[]'::jsonb) INTO cites
	FROM jsonb_array_elements(cites) e;
	INSERT INTO messages (session_id, role, content, status, citations, lease_until)
	VALUES (p_session, 'assistant', '', 'streaming', cites, now() + p_lease_ms * interval '1 millisecond')
	RETURNING id INTO aid;
	IF p_key IS NOT NULL THEN
		PERFORM np_idempotency_store(p_session, p_key, p_request_hash, 200,
		        json_build_object('question_id', qid::text, 'message_id', aid::text, 'mode', p_mode)::text);
	END IF;
	RETURN QUERY SELECT 201, qid, aid, 'streaming'::text, ''::text, cites::text, NULL::text, hist,
	                    COALESCE(sents, '[]'), p_mode;
END
$fn$;
