-- 008_content_generation.sql - the content's generation: one number that changes whenever a book,
-- a chapter or a passage does.
--
-- The daemon's content routes (books, a book, chapters, passages, search) carry an ETag made of
-- the API's format version and this number (doc/design.md, "Caching"), and answer a matching
-- If-None-Match with 304 from the copy it keeps in shared memory. Every statement that changes a
-- row of books, chapters or passages (neonpoolctl import, seed, or SQL by hand) bumps it, in the
-- same transaction, from statement-level triggers: a statement that changed no row (an import
-- that found nothing new) leaves it alone, so the caches stay valid. The number only grows, and
-- jumps to the clock (microseconds since 1970) when that is larger, so a database restored from
-- an older dump never hands out a number an earlier state already had.

CREATE TABLE np_content_generation (
	id          int PRIMARY KEY DEFAULT 1 CHECK (id = 1),
	generation  bigint NOT NULL,
	changed_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

INSERT INTO np_content_generation (id, generation)
VALUES (1, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint);

CREATE FUNCTION np_content_changed() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
	-- a statement that touched no row changes nothing a reader sees
	IF TG_OP = 'INSERT' OR TG_OP = 'UPDATE' THEN
		IF NOT EXISTS (SELECT 1 FROM np_new) THEN
			RETURN NULL;
		END IF;
	ELSIF TG_OP = 'DELETE' THEN
		IF NOT EXISTS (SELECT 1 FROM np_old) THEN
			RETURN NULL;
		END IF;
	END IF;
	UPDATE np_content_generation
	SET generation = greatest(generation + 1, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint),
	    changed_at = clock_timestamp()
	WHERE id = 1;
	RETURN NULL;
END
$fn$;

CREATE TRIGGER np_books_gen_ins AFTER INSERT ON books REFERENCING NEW TABLE AS np_new
	FOR EACH STATEMENT EXECUTE FUNCTION np_content_changed();
CREATE TRIGGER np_books_gen_upd AFTER UPDATE ON books REFERENCING NEW TABLE AS np_new
	FOR EACH STATEMENT EXECUTE FUNCTION np_content_changed();
CREATE TRIGGER np_books_gen_del AFTER DELETE ON books REFERENCING OLD TABLE AS np_old
	FOR EACH STATEMENT EXECUTE FUNCTION np_content_changed();
CREATE TRIGGER np_books_gen_trunc AFTER TRUNCATE ON books
	FOR EACH STATEMENT EXECUTE FUNCTION np_content_changed();

CREATE TRIGGER np_chapters_gen_ins AFTER INSERT ON chapters REFERENCING NEW TABLE AS np_new
	FOR EACH STATEMENT EXECUTE FUNCTION np_content_changed();
CREATE TRIGGER np_chapters_gen_upd AFTER UPDATE ON chapters REFERENCING NEW TABLE AS np_new
	FOR EACH STATEMENT EXECUTE FUNCTION np_content_changed();
CREATE TRIGGER np_chapters_gen_del AFTER DELETE ON chapters REFERENCING OLD TABLE AS np_old
	FOR EACH STATEMENT EXECUTE FUNCTION np_content_changed();
CREATE TRIGGER np_chapters_gen_trunc AFTER TRUNCATE ON chapters
	FOR EACH STATEMENT EXECUTE FUNCTION np_content_changed();

CREATE TRIGGER np_passages_gen_ins AFTER INSERT ON passages REFERENCING NEW TABLE AS np_new
	FOR EACH STATEMENT EXECUTE FUNCTION np_content_changed();
CREATE TRIGGER np_passages_gen_upd AFTER UPDATE ON passages REFERENCING NEW TABLE AS np_new
	FOR EACH STATEMENT EXECUTE FUNCTION np_content_changed();
CREATE TRIGGER np_passages_gen_del AFTER DELETE ON passages REFERENCING OLD TABLE AS np_old
	FOR EACH STATEMENT EXECUTE FUNCTION np_content_changed();
CREATE TRIGGER np_passages_gen_trunc AFTER TRUNCATE ON passages
	FOR EACH STATEMENT EXECUTE FUNCTION np_content_changed();
