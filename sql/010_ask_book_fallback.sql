-- 010_ask_book_fallback.sql - np_ask_begin() with a book scope (p_book: only that book's passages;
-- 404 with answer_status 'book' when it does not exist), and in LLM mode the extractive sentences
-- beside the passages' bodies when they are asked for (p_sentences > 0: the daemon's
-- ask_llm_fallback answers with them when the model fails before its first token).
--
-- Applied by `neonpoolctl migrate` inside its own transaction: no BEGIN/COMMIT here.
--
-- A new overload: the nine-parameter np_ask_begin() of 006 stays for the release before, which
-- keeps serving while a rolling upgrade runs (doc/design.md, "Schema changes a rolling upgrade
-- survives"); it becomes a call of this one for every book. Its body is 006's with the three
-- changes above: a migration is never edited, so the function is written out again here.

CREATE FUNCTION np_ask_begin(p_session bigint, p_key text, p_request_hash bytea, p_question text, p_top_k int,
                             p_history int, p_sentences int, p_mode text, p_lease_ms int, p_book bigint)
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
	-- a book scope that names no book: 404, answer_status 'book' says which
	IF p_book IS NOT NULL AND NOT EXISTS (SELECT 1 FROM books b WHERE b.id = p_book) THEN
		RETURN QUERY SELECT 404, NULL::bigint, NULL::bigint, 'book'::text, NULL::text, NULL::text, NULL::text,
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
		FROM passages p
		WHERE p.tsv @@ query
		  AND (p_book IS NULL OR p.chapter_id IN (SELECT c.id FROM chapters c WHERE c.book_id = p_book))
		ORDER BY rank DESC, p.id LIMIT p_top_k),
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
	END IF;
	IF p_mode = 'llm' THEN
		-- the model reads the passages themselves
		-- the model reads the passages themselves; the sentences (asked for when the extractive
		-- answer may replace the model's) follow them in the same array
		SELECT (COALESCE(jsonb_agg(jsonb_build_object('n', (e ->> 'n')::int, 'body', e ->> 'body')
		                           ORDER BY (e ->> 'n')::int), '[]'::jsonb) || COALESCE(sents, '[]')::jsonb)::text
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

-- the release before's signature: every book
CREATE OR REPLACE FUNCTION np_ask_begin(p_session bigint, p_key text, p_request_hash bytea, p_question text, p_top_k int,
                                        p_history int, p_sentences int, p_mode text, p_lease_ms int)
RETURNS TABLE (status int, question_id bigint, answer_id bigint, answer_status text, answer text,
               citations text, citations_used text, history text, sentences text, mode text)
LANGUAGE sql VOLATILE AS $fn$
	SELECT * FROM np_ask_begin(p_session, p_key, p_request_hash, p_question, p_top_k, p_history, p_sentences,
	                           p_mode, p_lease_ms, NULL::bigint)
$fn$;
