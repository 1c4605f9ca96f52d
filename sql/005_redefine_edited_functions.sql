-- 005_redefine_edited_functions.sql - the functions of 003 and 004 as those files define them now.
--
-- Applied by `neonpoolctl migrate` inside its own transaction: no BEGIN/COMMIT here.
--
-- 003_sessions.sql and 004_ask.sql were edited after databases had applied them: np_ask_begin
-- gained the passages' text for the model in LLM mode, and np_idempotency_store became the one
-- place every keyed write (np_post_message, np_ask_begin) records its answer. A database migrated
-- before those edits kept the older functions (in LLM mode the model got no passage text). This
-- file re-creates each of them, so every database ends with the same definitions whatever file
-- versions it ran; on a database that has them already it replaces them with themselves.
-- Migrations are checksummed since: a change goes into a new file, never into an applied one.

-- Record a keyed write's answer (in the write's own transaction), replacing an expired record of
-- the same key, and remove up to 16 expired keys of any session: the table holds about one TTL's
-- worth of keys without a cron job. Every keyed write (messages, asks) goes through here.
CREATE OR REPLACE FUNCTION np_idempotency_store(p_session bigint, p_key text, p_request_hash bytea, p_status int, p_body text)
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

-- Add a message to a session: see 003_sessions.sql.
CREATE OR REPLACE FUNCTION np_post_message(p_session bigint, p_key text, p_request_hash bytea, p_role text, p_content text)
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

-- The first transaction of an ask: see 004_ask.sql.
CREATE OR REPLACE FUNCTION np_ask_begin(p_session bigint, p_key text, p_request_hash bytea, p_question text, p_top_k int,
                                        p_history int, p_sentences int, p_mode text)
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
	-- the history before the question: the last p_history messages, oldest first
	SELECT COALESCE(json_agg(json_build_object('role', h.role, 'content', h.content) ORDER BY h.id), '[]'::json)::text
	INTO hist
	FROM (SELECT m.id, m.role, m.content FROM messages m
	      WHERE m.session_id = p_session AND m.content <> '' ORDER BY m.id DESC LIMIT p_history) h;
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
	INSERT INTO messages (session_id, role, content, status, citations)
	VALUES (p_session, 'assistant', '', 'streaming', cites) RETURNING id INTO aid;
	IF p_key IS NOT NULL THEN
		PERFORM np_idempotency_store(p_session, p_key, p_request_hash, 200,
		        json_build_object('question_id', qid::text, 'message_id', aid::text, 'mode', p_mode)::text);
	END IF;
	RETURN QUERY SELECT 201, qid, aid, 'streaming'::text, ''::text, cites::text, NULL::text, hist,
	                    COALESCE(sents, '[]'), p_mode;
END
$fn$;
