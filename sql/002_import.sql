-- 002_import.sql - what `neonpoolctl import` needs: a chapter's source file and content hash (re-import
-- is a no-op), a passage's heading, and a search vector that weighs the heading above the body.
--
-- Applied by `neonpoolctl migrate` in its own transaction: no BEGIN/COMMIT here. Static SQL only.

-- The file a chapter was imported from (e.g. 'routine-vacuuming.html'), unique within its book;
-- NULL for chapters that were not imported (`neonpoolctl seed`): NULLs do not collide.
ALTER TABLE chapters ADD COLUMN source text;
ALTER TABLE chapters ADD CONSTRAINT chapters_book_id_source_key UNIQUE (book_id, source);

-- SHA-256 (hex) of the chapter's title and passages as imported; an import leaves a chapter whose
-- position, title and hash are unchanged untouched (same rows, same xmin).
ALTER TABLE chapters ADD COLUMN content_hash text;

-- The section heading a passage belongs to ('' when none); the body does not repeat it.
ALTER TABLE passages ADD COLUMN heading text NOT NULL DEFAULT '';

-- The search vector: the heading's lexemes weigh A, the body's D (ts_rank_cd's default weights
-- {0.1, 0.2, 0.4, 1.0} for D, C, B, A). A generated column's expression cannot be altered: drop it
-- (its GIN index goes with it) and add it back under the same names.
ALTER TABLE passages DROP COLUMN tsv;
ALTER TABLE passages ADD COLUMN tsv tsvector GENERATED ALWAYS AS
	(setweight(to_tsvector('english', heading), 'A') || setweight(to_tsvector('english', body), 'D')) STORED;
CREATE INDEX passages_tsv_idx ON passages USING gin (tsv);
