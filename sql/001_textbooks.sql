-- 001_textbooks.sql - the textbook schema: books, their chapters, and the passages of each chapter.
--
-- Applied by `neonpoolctl migrate`, which runs this file inside its own transaction under an
-- advisory lock and records it in neonpool_migrations: no BEGIN/COMMIT here. Static SQL only.

CREATE TABLE books (
	id          bigserial PRIMARY KEY,
	slug        text NOT NULL UNIQUE,
	title       text NOT NULL,
	author      text,
	language    text DEFAULT 'en',
	created_at  timestamptz DEFAULT now()
);

CREATE TABLE chapters (
	id          bigserial PRIMARY KEY,
	book_id     bigint NOT NULL REFERENCES books ON DELETE CASCADE,
	position    int NOT NULL,
	title       text NOT NULL,
	UNIQUE (book_id, position)
);

CREATE TABLE passages (
	id          bigserial PRIMARY KEY,
	chapter_id  bigint NOT NULL REFERENCES chapters ON DELETE CASCADE,
	position    int NOT NULL,
	body        text NOT NULL,
	tsv         tsvector GENERATED ALWAYS AS (to_tsvector('english', body)) STORED,
	UNIQUE (chapter_id, position)
);

-- Full-text search over passages.
CREATE INDEX passages_tsv_idx ON passages USING gin (tsv);

-- The chapters of a book. (The UNIQUE (book_id, position) index can serve this too; this one is
-- smaller and is what the planner picks for plain book_id lookups and the cascade from books.)
CREATE INDEX chapters_book_id_idx ON chapters (book_id);
