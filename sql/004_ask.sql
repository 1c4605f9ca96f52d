-- 004_ask.sql - the ask turn (issue 9): an answer's status and citations on messages, and the two
-- short transactions of an ask (np_ask_begin, np_ask_finish).
--
-- Applied by `neonpoolctl migrate` inside its own transaction: no BEGIN/COMMIT here.
--
-- An ask stores the question and an empty answer row (status 'streaming') and reads what the
-- answer needs (the passages, the history) in one call, np_ask_begin(); the daemon then gives its
-- database connection back while the answer is generated, and stores it with np_ask_finish(). A
-- worker that dies in between leaves the row 'streaming'; the history shows it so.

ALTER TABLE messages
	ADD COLUMN status text NOT NULL DEFAULT 'complete'
		CHECK (status IN ('streaming', 'complete', 'stopped', 'failed')),
	ADD COLUMN citations jsonb,           -- the passages an answer was given, [{n, passage_id, ...}]
	ADD COLUMN citations_used int[];      -- the [n] markers its text cites
-- an answer may be empty (stopped before its first token, failed, still streaming)
ALTER TABLE messages DROP CONSTRAINT messages_content_check;
ALTER TABLE messages ADD CONSTRAINT messages_content_check
	CHECK (char_length(content) <= 16384 AND (char_length(content) >= 1 OR role = 'assistant'));

-- the message as the API shows it: an answer of an ask carries its status and citations
CREATE OR REPLACE FUNCTION np_message_json(m messages) RETURNS json LANGUAGE sql IMMUTABLE AS
$$ SELECT json_build_object('id', m.id, 'session_id', m.session_id, 'role', m.role, 'content', m.content,
                            'created_at', np_api_time(m.created_at), 'status', m.status,
                            'citations', m.citations, 'citations_used', to_json(m.citations_used)) $$;

-- The question's terms as an OR query: a passage matching more of them ranks higher (ts_rank_cd),
-- where websearch_to_tsquery's AND would find nothing for most questions written as sentences.
-- plainto_tsquery quotes each lexeme; its only operator is ' & '.
CREATE FUNCTION np_ask_query(q text) RETURNS tsquery LANGUAGE sql IMMUTABLE AS
$$ SELECT replace(plainto_tsquery('english', q)::text, ' & ', ' | ')::tsquery $$;

-- The first transaction of an ask, for a session already authenticated by the caller. Returns one
-- row: the HTTP status (201 new, 200 replay, 404 no session, 409 key in flight, 422 key reused
-- with another question), the question and answer ids, and for a new ask the top p_top_k passages
-- ([{n, passage_id, book_id, book, chapter_id, chapter_number, chapter, title, snippet}]), the
-- last p_history messages before the question ([{role, content}], oldest first) and, when
-- p_sentences > 0, that many of the passages' sentences with the most question terms
-- ([{n, sentence, score}]) for the extractive answer; with p_mode 'llm' the passages' text instead
-- ([{n, body}]) for the prompt. p_mode ('llm' or 'retrieval') is kept with
-- the Idempotency-Key for a replay. A replay returns the stored answer (status,
-- content, citations, citations_used).
CREATE FUNCTION np_ask_begin(p_session bigint, p_key text, p_request_hash bytea, p_question text, p_top_k int,
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

-- The second transaction: the answer's text, final status and the citations its text used. Only
-- a row still 'streaming' changes (a replay, or a second finish, changes nothing). Returns the
-- row's status after the call, no row when the message is gone (its session erased).
CREATE FUNCTION np_ask_finish(p_answer bigint, p_content text, p_status text, p_used int[])
RETURNS TABLE (status text)
LANGUAGE sql VOLATILE AS $fn$
	UPDATE messages m SET content = CASE WHEN m.status = 'streaming' THEN p_content ELSE m.content END,
	       status = CASE WHEN m.status = 'streaming' THEN p_status ELSE m.status END,
	       citations_used = CASE WHEN m.status = 'streaming' THEN p_used ELSE m.citations_used END
	WHERE m.id = p_answer AND m.role = 'assistant'
	RETURNING m.status
$fn$;
