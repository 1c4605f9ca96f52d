-- SPDX-License-Identifier: PostgreSQL
-- load.sql - bench/run's generated corpus: :books books of :chapters chapters of :passages passages each,
-- made in SQL (generate_series), so a million passages load in well under a minute.
-- Usage: psql -v books=2000 -v chapters=25 -v passages=20 -v tag=gen -f bench/load.sql  (as the table owner)
-- The words are a lorem-ipsum vocabulary on purpose: the benchmark's searches are the PostgreSQL
-- manual's terms, so the generated passages add volume to every table and index without changing which
-- passages a search finds (the manual's). Bodies are three of 1,000 fixed sentences (about 36 words).
-- Ids come from the sequences; book slugs are ':tag-N', so a second load with another tag adds more.
\set ON_ERROR_STOP on
SET maintenance_work_mem = '256MB';
SET synchronous_commit = off;
BEGIN;
-- the GIN index is rebuilt once at the end: faster than a million inserts into it
DROP INDEX IF EXISTS passages_tsv_idx;
CREATE TEMP TABLE np_sentences ON COMMIT DROP AS
SELECT n, initcap(string_agg(w, ' ' ORDER BY k)) || '.' AS s
FROM (SELECT n, k, (ARRAY['lorem','ipsum','dolor','sit','amet','consectetur','adipiscing','elit','sed','eiusmod',
	'tempor','incididunt','labore','dolore','magna','aliqua','enim','minim','veniam','quis','nostrud',
	'exercitation','ullamco','laboris','nisi','aliquip','commodo','consequat','duis','aute','irure',
	'reprehenderit','voluptate','velit','esse','cillum','fugiat','nulla','pariatur','excepteur','sint',
	'occaecat','cupidatat','proident','sunt','culpa','officia','deserunt','mollit','anim','laborum',
	'praesentium','blanditiis','deleniti','corrupti','quos','molestias','excepturi','occaecati','provident'])
	[1 + ((n * 7919 + k * 104729) % 60)] AS w
      FROM generate_series(1, 1000) n, generate_series(1, 12) k) x
GROUP BY n;
ANALYZE np_sentences;
CREATE TEMP TABLE np_new_books ON COMMIT DROP AS
WITH ins AS (
	INSERT INTO books (slug, title, author, language)
	SELECT :'tag' || '-' || b, 'Generated volume ' || b, 'bench/load.sql', 'la'
	FROM generate_series(1, :books) b
	RETURNING id)
SELECT id FROM ins;
CREATE TEMP TABLE np_new_chapters ON COMMIT DROP AS
WITH ins AS (
	INSERT INTO chapters (book_id, position, title)
	SELECT b.id, c, 'Chapter ' || c || ' of volume ' || b.id
	FROM np_new_books b, generate_series(1, :chapters) c
	RETURNING id)
SELECT id FROM ins;
INSERT INTO passages (chapter_id, position, heading, body)
SELECT c.id, p, '', s1.s || ' ' || s2.s || ' ' || s3.s
FROM np_new_chapters c CROSS JOIN generate_series(1, :passages) p
JOIN np_sentences s1 ON s1.n = 1 + (c.id * 31 + p * 7) % 1000
JOIN np_sentences s2 ON s2.n = 1 + (c.id * 17 + p * 13 + 333) % 1000
JOIN np_sentences s3 ON s3.n = 1 + (c.id + p * 101 + 666) % 1000;
CREATE INDEX passages_tsv_idx ON passages USING gin (tsv);
COMMIT;
ANALYZE books;
ANALYZE chapters;
ANALYZE passages;
