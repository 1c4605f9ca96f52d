-- 009_search_ranking.sql - one ranking for the search route and the ask turn: a side table of
-- per-passage search documents (the page title and the heading weighted above the body, the words
-- as written beside their English lexemes), the documents' lexeme counts (term rarity), and
-- np_search_rank(), the ranking both use.
--
-- Applied by `neonpoolctl migrate` in its own transaction: no BEGIN/COMMIT here. Static SQL only.
--
-- The ranking in two stages (doc/design.md, "Retrieval"): candidates from a few GIN queries, at
-- most a few hundred: the passages holding most of the query's words and the best passages for
-- each word (a plain query is an OR weighted by coverage, so no page is empty while a word of it
-- occurs in the book; a query in websearch syntax, with a quoted phrase or a -word, takes what
-- websearch_to_tsquery matches, and the OR only when that is nothing); then each candidate scored
-- by the query's terms it holds weighted by their rarity (inverse document frequency, the part of
-- BM25 that ts_rank_cd lacks), where it holds them (the page's title above the passage's heading
-- above its body: the page about a term beats a passage that mentions it), how much of its title
-- the query is, whether it holds the query as a phrase, and how often; a page's second passage
-- counts a third, its third a fifth, so that the first results name different pages.

-- A word as written: lower case, letters, digits and underscores ('enable_sort', 'pqexec',
-- 'between', 'with'), prefixed with '=' so that it never meets an English lexeme.
CREATE FUNCTION np_search_words(t text) RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT COALESCE(array_agg(DISTINCT '=' || m[1]), '{}')
   FROM regexp_matches(lower(t), '([[:alnum:]_]+)', 'g') AS m $$;

-- The words of a text (a title's length): runs of letters and digits that begin with a letter
-- ('SPI_execute_plan' is three, numbers such as '20.11' none).
CREATE FUNCTION np_search_length(t text) RETURNS int LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT count(*)::int FROM regexp_matches(lower(t), '([[:alpha:]][[:alnum:]]*)', 'g') $$;

-- A text's search vector: its English lexemes (with positions, for phrases and proximity) and its
-- words as written (without).
CREATE FUNCTION np_search_vector(t text) RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT to_tsvector('english', t) || array_to_tsvector(np_search_words(t)) $$;

-- A passage's search document. doc: the page title (weight A), the heading (B) and the body (D);
-- title and head: the page title, the heading, on their own (the page-level signal); their
-- lengths in words.
CREATE TABLE passage_search (
	passage_id  bigint PRIMARY KEY REFERENCES passages ON DELETE CASCADE,
	chapter_id  bigint NOT NULL,
	book_id     bigint NOT NULL,
	doc         tsvector NOT NULL,
	title       tsvector NOT NULL,
	head        tsvector NOT NULL,
	title_len   int NOT NULL,
	head_len    int NOT NULL
);
CREATE INDEX passage_search_doc_idx ON passage_search USING gin (doc);
-- the page title and the heading: the passages of the page or section about a word
CREATE INDEX passage_search_head_idx ON passage_search USING gin ((title || head));
CREATE INDEX passage_search_book_idx ON passage_search (book_id);

-- Rarity: in how many documents each lexeme or word occurs; the row '' holds the number of documents.
CREATE TABLE passage_search_df (
	lexeme  text PRIMARY KEY,
	ndoc    bigint NOT NULL
);

-- The documents of the passages named (ids), from their rows and their chapters' and books'.
CREATE FUNCTION np_search_fill(ids bigint[]) RETURNS void LANGUAGE sql VOLATILE AS
$$ INSERT INTO passage_search (passage_id, chapter_id, book_id, doc, title, head, title_len, head_len)
   SELECT p.id, p.chapter_id, c.book_id,
          setweight(np_search_vector(c.title), 'A') || setweight(np_search_vector(p.heading), 'B') ||
              np_search_vector(p.body),
          np_search_vector(c.title), np_search_vector(p.heading),
          np_search_length(c.title), np_search_length(p.heading)
   FROM passages p JOIN chapters c ON c.id = p.chapter_id
   WHERE p.id = ANY (ids)
   ORDER BY p.id
   ON CONFLICT (passage_id) DO UPDATE
   SET chapter_id = excluded.chapter_id, book_id = excluded.book_id, doc = excluded.doc, title = excluded.title,
       head = excluded.head, title_len = excluded.title_len, head_len = excluded.head_len $$;

-- The passages' documents follow their rows: inserted (neonpoolctl import, seed), updated, or
-- their chapter retitled (a deleted passage's document goes by ON DELETE CASCADE).
CREATE FUNCTION np_search_passages_changed() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
	PERFORM np_search_fill(ARRAY(SELECT n.id FROM np_new n));
	RETURN NULL;
END
$fn$;
CREATE TRIGGER np_passages_search_ins AFTER INSERT ON passages REFERENCING NEW TABLE AS np_new
	FOR EACH STATEMENT EXECUTE FUNCTION np_search_passages_changed();
CREATE TRIGGER np_passages_search_upd AFTER UPDATE ON passages REFERENCING NEW TABLE AS np_new
	FOR EACH STATEMENT EXECUTE FUNCTION np_search_passages_changed();

CREATE FUNCTION np_search_chapters_changed() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
	PERFORM np_search_fill(ARRAY(SELECT p.id FROM passages p WHERE p.chapter_id IN (SELECT n.id FROM np_new n)));
	RETURN NULL;
END
$fn$;
CREATE TRIGGER np_chapters_search_upd AFTER UPDATE ON chapters REFERENCING NEW TABLE AS np_new
	FOR EACH STATEMENT EXECUTE FUNCTION np_search_chapters_changed();

-- The counts follow the documents (in lexeme order: two imports at once take the rows' locks in
-- the same order).
CREATE FUNCTION np_search_df_changed() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
	IF TG_OP IN ('DELETE', 'UPDATE') THEN
		INSERT INTO passage_search_df AS d (lexeme, ndoc)
		SELECT l.lexeme, -count(*) FROM np_old o, unnest(tsvector_to_array(o.doc)) AS l (lexeme)
		GROUP BY l.lexeme
		UNION ALL SELECT '', -count(*) FROM np_old
		ORDER BY 1
		ON CONFLICT (lexeme) DO UPDATE SET ndoc = d.ndoc + excluded.ndoc;
	END IF;
	IF TG_OP IN ('INSERT', 'UPDATE') THEN
		INSERT INTO passage_search_df AS d (lexeme, ndoc)
		SELECT l.lexeme, count(*) FROM np_new n, unnest(tsvector_to_array(n.doc)) AS l (lexeme)
		GROUP BY l.lexeme
		UNION ALL SELECT '', count(*) FROM np_new
		ORDER BY 1
		ON CONFLICT (lexeme) DO UPDATE SET ndoc = d.ndoc + excluded.ndoc;
	END IF;
	RETURN NULL;
END
$fn$;
CREATE TRIGGER np_passage_search_df_ins AFTER INSERT ON passage_search REFERENCING NEW TABLE AS np_new
	FOR EACH STATEMENT EXECUTE FUNCTION np_search_df_changed();
CREATE TRIGGER np_passage_search_df_upd AFTER UPDATE ON passage_search REFERENCING OLD TABLE AS np_old NEW TABLE AS np_new
	FOR EACH STATEMENT EXECUTE FUNCTION np_search_df_changed();
CREATE TRIGGER np_passage_search_df_del AFTER DELETE ON passage_search REFERENCING OLD TABLE AS np_old
	FOR EACH STATEMENT EXECUTE FUNCTION np_search_df_changed();

-- The books already imported get their documents now.
INSERT INTO passage_search_df (lexeme, ndoc) VALUES ('', 0);
SELECT np_search_fill(ARRAY(SELECT id FROM passages));

-- A lexeme or word quoted for tsquery's text form.
CREATE FUNCTION np_tsq_lit(t text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT '''' || replace(replace(t, '\', '\\'), '''', '''''') || '''' $$;

-- The query's terms: each word of q (at most 16) as a tsquery matching it as written or as its
-- English lexemes in a row ('=enable_sort' | 'enabl' <-> 'sort'), with its rarity (idf, BM25's
-- form) and whether it is a stop word; a word after a '-' that begins a word is excluded (neg).
-- Stop words count only when the query has nothing else ('WITH', 'BETWEEN').
CREATE FUNCTION np_search_terms(q text)
RETURNS TABLE (ord bigint, word text, clause tsquery, lexemes text[], idf float8, neg boolean)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
	WITH negs AS (
		SELECT DISTINCT m[1] AS word FROM regexp_matches(' ' || lower(left(q, 1024)), '\s-([[:alnum:]_]+)', 'g') AS m),
	words AS (
		SELECT w.word, min(w.ord) AS ord
		FROM regexp_matches(lower(left(q, 1024)), '([[:alnum:]_]+)', 'g') WITH ORDINALITY AS x (m, ord),
		     LATERAL (SELECT x.m[1] AS word, x.ord) w
		GROUP BY w.word ORDER BY 2 LIMIT 16),
	eng AS (
		SELECT w.word, w.ord, e.lexemes, w.word IN (SELECT word FROM negs) AS neg
		FROM words w, LATERAL (SELECT array_agg(u.lexeme ORDER BY u.positions[1]) AS lexemes
		                       FROM unnest(to_tsvector('english', w.word)) u) e),
	n AS (SELECT greatest(ndoc, 1) AS n FROM passage_search_df WHERE lexeme = ''),
	t AS (
		SELECT e.*, (np_tsq_lit('=' || e.word) ||
		             COALESCE(' | (' || (SELECT string_agg(np_tsq_lit(l), ' <-> ') FROM unnest(e.lexemes) l) || ')', ''))::tsquery AS clause,
		            CASE WHEN cardinality(e.lexemes) > 1
		                 THEN COALESCE((SELECT d.ndoc FROM passage_search_df d WHERE d.lexeme = '=' || e.word), 0)
		                 ELSE greatest((SELECT d.ndoc FROM passage_search_df d WHERE d.lexeme = '=' || e.word),
		                               (SELECT d.ndoc FROM passage_search_df d WHERE d.lexeme = ANY (e.lexemes)), 0) END AS df
		FROM eng e
		WHERE e.neg OR e.lexemes IS NOT NULL OR NOT EXISTS (SELECT 1 FROM eng x WHERE x.lexemes IS NOT NULL AND NOT x.neg))
	SELECT t.ord, t.word, t.clause, t.lexemes, ln(1 + (n.n - t.df + 0.5) / (t.df + 0.5)), t.neg
	FROM t, n ORDER BY t.ord
$$;

-- The ranking: one plan for every call (planning the statement took longer than running it), and
-- the GIN index for every match (a generic plan cannot see how few passages a query matches, and
-- took a sequential scan for the best passages of each word). The best p_limit passages for q
-- (of book p_book, or of every book when NULL), best first, ties by passage id. score > 0.
CREATE FUNCTION np_search_rank(q text, p_book bigint, p_limit int)
RETURNS TABLE (passage_id bigint, chapter_id bigint, score float8)
LANGUAGE plpgsql STABLE SET plan_cache_mode = force_generic_plan SET enable_seqscan = off AS $fn$
BEGIN
	RETURN QUERY
	WITH terms AS MATERIALIZED (SELECT * FROM np_search_terms(q)),
	pos AS MATERIALIZED (SELECT * FROM terms WHERE NOT neg),
	qs AS MATERIALIZED (
		SELECT websearch_to_tsquery('english', q) AS web,
		       (SELECT string_agg('(' || p.clause::text || ')', ' | ') FROM pos p)::tsquery AS anyq,
		       (SELECT string_agg('(' || t.clause::text || ')', ' | ') FROM terms t WHERE t.neg)::tsquery AS negq,
		       (SELECT CASE WHEN count(*) > 1 THEN string_agg('(' || array_to_string(ARRAY(SELECT np_tsq_lit(l) FROM unnest(p.lexemes) l), ' <-> ') || ')',
		                                                      ' <-> ' ORDER BY p.ord) END
		        FROM pos p WHERE p.lexemes IS NOT NULL)::tsquery AS phrase,
		       (SELECT sum(p.idf) FROM pos p) AS total,
		       (SELECT count(*) FROM pos p) AS nterms,
		       (SELECT string_agg('((' || a.clause::text || ') & (' || b.clause::text || '))', ' | ')
		        FROM pos a JOIN pos b ON a.ord < b.ord)::tsquery AS pairs,
		       q ~ '(^|\s)-\S|"' AS strict),
	-- every word as websearch_to_tsquery reads the query (quotes, or, -word): alone in websearch syntax
	c1 AS (SELECT s.passage_id FROM passage_search s, qs
	       WHERE s.doc @@ qs.web AND (p_book IS NULL OR s.book_id = p_book)
	       ORDER BY ts_rank(s.doc, qs.web) DESC, s.passage_id LIMIT 60),
	-- whether to look further: nothing found in websearch syntax, fewer than 10 passages otherwise
	-- (a page of passages with every word outranks the passages with some: the OR's cost is saved)
	c1n AS (SELECT CASE WHEN (SELECT qs.strict FROM qs) THEN count(*) = 0 ELSE count(*) < 10 END AS more FROM c1),
	-- fewer: the passages with two of the words at least, and those whose page title or heading
	-- has a word (the page about it)
	c2 AS (SELECT s.passage_id FROM passage_search s, qs
	       WHERE (SELECT c1n.more FROM c1n) AND s.doc @@ qs.pairs AND NOT COALESCE(s.doc @@ qs.negq, false)
	         AND (p_book IS NULL OR s.book_id = p_book)
	       ORDER BY ts_rank(s.doc, qs.anyq) DESC, s.passage_id LIMIT 60),
	c3 AS (SELECT x.passage_id FROM pos p CROSS JOIN qs CROSS JOIN LATERAL (
	           SELECT s.passage_id FROM passage_search s
	           WHERE (SELECT c1n.more FROM c1n) AND (s.title || s.head) @@ p.clause
	             AND NOT COALESCE(s.doc @@ qs.negq, false) AND (p_book IS NULL OR s.book_id = p_book)
	           ORDER BY ts_rank(s.title || s.head, p.clause) DESC, s.passage_id LIMIT 15) x),
	-- the best passages for each rare word (in at most about 5 % of the passages: idf >= 3), where
	-- ranking all its passages costs little
	c5 AS (SELECT x.passage_id FROM pos p CROSS JOIN qs CROSS JOIN LATERAL (
	           SELECT s.passage_id FROM passage_search s
	           WHERE (SELECT c1n.more FROM c1n) AND p.idf >= 3 AND s.doc @@ p.clause
	             AND NOT COALESCE(s.doc @@ qs.negq, false) AND (p_book IS NULL OR s.book_id = p_book)
	           ORDER BY ts_rank(s.doc, p.clause) DESC, s.passage_id LIMIT 30) x),
	-- still none: any word (no page is empty while a word of the query occurs in the book)
	c4 AS (SELECT s.passage_id FROM passage_search s, qs
	       WHERE (SELECT c1n.more FROM c1n) AND NOT EXISTS (SELECT 1 FROM c2) AND NOT EXISTS (SELECT 1 FROM c3)
	         AND NOT EXISTS (SELECT 1 FROM c5)
	         AND s.doc @@ qs.anyq AND NOT COALESCE(s.doc @@ qs.negq, false) AND (p_book IS NULL OR s.book_id = p_book)
	       ORDER BY ts_rank(s.doc, qs.anyq) DESC, s.passage_id LIMIT 60),
	cand AS (SELECT c1.passage_id FROM c1 UNION SELECT c2.passage_id FROM c2 UNION SELECT c3.passage_id FROM c3
	         UNION SELECT c4.passage_id FROM c4 UNION SELECT c5.passage_id FROM c5),
	scored AS (
		SELECT s.passage_id, s.chapter_id,
		       COALESCE(sum(p.idf * CASE WHEN s.title @@ p.clause THEN 1.0 WHEN s.head @@ p.clause THEN 0.9
		                                 WHEN s.doc @@ p.clause THEN 0.7 ELSE 0 END) / nullif(max(qs.total), 0), 0) AS cov,
		       COALESCE(sum(p.idf) FILTER (WHERE s.title @@ p.clause) / nullif(max(qs.total), 0), 0) AS tcov,
		       COALESCE(sum(p.idf) FILTER (WHERE s.head @@ p.clause) / nullif(max(qs.total), 0), 0) AS hcov,
		       count(*) FILTER (WHERE s.title @@ p.clause) AS tn, count(*) FILTER (WHERE s.head @@ p.clause) AS hn,
		       max(s.title_len) AS title_len, max(s.head_len) AS head_len,
		       COALESCE(bool_or(s.doc @@ qs.phrase), false) AS phrase,
		       max(ts_rank(s.doc, COALESCE(qs.anyq, qs.web))) AS tf
		FROM cand JOIN passage_search s ON s.passage_id = cand.passage_id CROSS JOIN qs LEFT JOIN pos p ON true
		GROUP BY s.passage_id, s.chapter_id),
	fin AS (SELECT g.passage_id, g.chapter_id,
	       (g.cov + 0.5 * g.tcov * least(1.0, g.tn::float8 / greatest(g.title_len, 1))
	              + 0.3 * g.hcov * least(1.0, g.hn::float8 / greatest(g.head_len, 1))
	              + CASE WHEN g.phrase THEN 0.2 ELSE 0 END + 0.5 * least(g.tf, 1.0) + 1e-6)::float8 AS score
	FROM scored g),
	ranked AS (SELECT f.*, row_number() OVER (PARTITION BY f.chapter_id ORDER BY f.score DESC, f.passage_id) AS rn FROM fin f)
	SELECT r.passage_id, r.chapter_id, r.score / (1 + 2 * (r.rn - 1)) AS score
	FROM ranked r
	ORDER BY 3 DESC, 1 LIMIT p_limit;
END
$fn$;

-- The query as one tsquery, any of its words (ts_headline's marks, the ask's sentences).
CREATE FUNCTION np_search_query(q text) RETURNS tsquery LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT (SELECT string_agg('(' || t.clause::text || ')', ' | ') FROM np_search_terms(q) t WHERE NOT t.neg)::tsquery $$;

-- np_ask_begin() as in 006_ask_lease.sql, with four changes: the passages are np_search_rank()'s
-- (the search route's ranking, np_ask_query's OR of lexemes no longer); the extractive answer's
-- sentences are np_ask_sentences()'s, in LLM mode too when p_sentences > 0 (before the passages'
-- bodies: the answer when the model fails before its first token); and an optional book scope (p_book: NULL for every book;
-- a book that does not exist answers 404 with answer_status 'book').
DROP FUNCTION np_ask_begin(bigint, text, bytea, text, int, int, int, text, int);

-- The sentences of the cited passages (cites: [{n, body}], n 1 the best) that answer q best, at
-- most lim of them (a paragraph ends a sentence: a heading is not glued to the text after it):
-- the better passages first (a passage's rank outweighs the rest: an answer
-- whose first sentence came from the sentence with most terms of any passage cited a wrong page
-- more often), then the question's terms a sentence holds weighted by their rarity, a definition
-- ('X is a ...') preferred; a sentence that starts mid-thought ('During this phase', 'This',
-- 'It', 'However') or in the middle of a list is left out, so is one with none of the terms.
CREATE FUNCTION np_ask_sentences(q text, cites jsonb, lim int)
RETURNS TABLE (n int, sentence text, ord bigint, score float8)
LANGUAGE sql STABLE AS $$
	WITH terms AS MATERIALIZED (SELECT * FROM np_search_terms(q) WHERE NOT neg),
	total AS (SELECT sum(t.idf) AS w FROM terms t),
	sents AS (
		SELECT (e ->> 'n')::int AS n, x.sentence, x.ord
		FROM jsonb_array_elements(cites) e,
		     regexp_split_to_table(e ->> 'body', '(?<=[.!?])\s+|\n\s*\n') WITH ORDINALITY AS x (sentence, ord)
		WHERE char_length(x.sentence) BETWEEN 20 AND 600),
	scored AS (
		SELECT s.n, s.sentence, s.ord,
		       (SELECT sum(t.idf) FROM terms t WHERE np_search_vector(s.sentence) @@ t.clause) / nullif((SELECT w FROM total), 0) AS cov
		FROM sents s)
	SELECT s.n, s.sentence, s.ord,
	       s.cov + 3.0 / s.n
	       + CASE WHEN s.sentence ~* '^[^,;:]{0,80}\m(is|are|refers to|means|provides|allows|lets you|can be used)\M' THEN 0.2 ELSE 0 END
	       + CASE WHEN s.ord = 1 THEN 0.05 ELSE 0 END AS score
	FROM scored s
	WHERE s.cov > 0
	  AND s.sentence !~ '^(During|This|These|That|Those|It|Its|They|Them|Then|However|Also|Thus|Therefore|Otherwise|Such|Here|But|And|Or|In this|In that|For this|As such|Moreover|Furthermore|Similarly|Likewise|Hence|So|In particular|In addition|In that case|Instead|Again)\M'
	  AND s.sentence ~ '^[[:upper:][:digit:]"''(]'
	ORDER BY 4 DESC, 1, 3 LIMIT lim
$$;

CREATE FUNCTION np_ask_begin(p_session bigint, p_key text, p_request_hash bytea, p_question text, p_top_k int,
                             p_history int, p_sentences int, p_mode text, p_lease_ms int,
                             p_book bigint)
RETURNS TABLE (status int, question_id bigint, answer_id bigint, answer_status text, answer text,
               citations text, citations_used text, history text, sentences text, mode text)
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
	k idempotency_keys%ROWTYPE;
	qid bigint;
	aid bigint;
	a messages%ROWTYPE;
	query tsquery := np_search_query(p_question);
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
	-- a book scope that names no book: 404 'book'
	IF p_book IS NOT NULL AND NOT EXISTS (SELECT 1 FROM books b WHERE b.id = p_book) THEN
		RETURN QUERY SELECT 404, NULL::bigint, NULL::bigint, 'book'::text, NULL::text, NULL::text, NULL::text,
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
	-- the passages: np_search_rank(), the search route's ranking
	WITH hits AS (
		SELECT p.id, p.chapter_id, p.heading, p.body, r.score AS rank
		FROM np_search_rank(p_question, p_book, p_top_k) r JOIN passages p ON p.id = r.passage_id),
	numbered AS (SELECT h.*, row_number() OVER (ORDER BY h.rank DESC, h.id) AS n FROM hits h)
	SELECT COALESCE(jsonb_agg(jsonb_build_object(
		'n', g.n, 'passage_id', g.id::text, 'book_id', b.id::text, 'book', b.title,
		'chapter_id', c.id::text, 'chapter_number', c.position, 'chapter', c.title, 'title', g.heading,
		'snippet', ts_headline('english', g.body, query, 'MaxWords=30, MinWords=12, ShortWord=3, HighlightAll=false, StartSel="", StopSel=""'),
		'body', g.body) ORDER BY g.n), '[]'::jsonb)
	INTO cites
	FROM numbered g JOIN chapters c ON c.id = g.chapter_id JOIN books b ON b.id = c.book_id;
	-- the sentences of those passages that answer best, for retrieval mode (np_ask_sentences)
	IF p_sentences > 0 THEN
		SELECT COALESCE(json_agg(json_build_object('n', s.n, 'sentence', s.sentence, 'score', s.score)
		                         ORDER BY s.score DESC, s.n, s.ord), '[]'::json)::text
		INTO sents
		FROM np_ask_sentences(p_question, cites, p_sentences) s;
	END IF;
	IF p_mode = 'llm' THEN
		-- the model reads the passages themselves ({n, body}), after the sentences ({n, sentence})
		-- of the extractive answer it is replaced by when it fails before its first token
		SELECT (COALESCE(sents::jsonb, '[]'::jsonb) ||
		        COALESCE(jsonb_agg(jsonb_build_object('n', (e ->> 'n')::int, 'body', e ->> 'body')
		                           ORDER BY (e ->> 'n')::int), '[]'::jsonb))::text
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
