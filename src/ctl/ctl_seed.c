/* SPDX-License-Identifier: PostgreSQL */
/* ctl_seed.c - `neonpoolctl seed`: deterministic synthetic books for benchmarks. */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ctl_db.h"
#include "util.h"

/* ---- seed ---- */

/* Word lists for the generated text (consonant-initial, so "a %s" reads right). A CROSS JOIN
 * source named w. */
#define CTL_DB_SEED_WORDS \
	"(SELECT" \
	" ARRAY['simple','central','hidden','linear','stable','complex','natural','formal','careful'," \
	"'critical','basic','general','partial','random','modern','classical']::text[] AS adj," \
	" ARRAY['cell','equation','theorem','molecule','river','market','language','function','planet'," \
	"'protein','signal','population','structure','boundary','variable','pattern','theory','system'," \
	"'network','reaction']::text[] AS noun," \
	" ARRAY['explains','describes','changes','limits','supports','predicts','reveals','connects'," \
	"'measures','shapes','controls','transforms']::text[] AS verb," \
	" ARRAY['in practice','over time','under pressure','at every scale','to a first approximation'," \
	"'across many fields','for small values','in the long run','with surprising accuracy'," \
	"'in the simplest case']::text[] AS tail," \
	" ARRAY['The %s %s %s the %s %s %s.','In most cases, a %s %s %s every %s %s %s.'," \
	"'Students often find that the %s %s %s a %s %s %s.','As we saw earlier, each %s %s %s the %s %s %s.'" \
	"]::text[] AS tpl," \
	" ARRAY['Principles of %s','Introduction to %s','Foundations of %s','%s: A First Course'," \
	"'Essentials of %s','Topics in %s']::text[] AS title," \
	" ARRAY['Biology','Chemistry','Physics','Economics','Linguistics','History','Mathematics','Geology'," \
	"'Astronomy','Statistics']::text[] AS field," \
	" ARRAY['Ada','Boris','Clara','David','Elena','Farid','Grace','Hiro','Ines','Jonas','Kemal'," \
	"'Lena']::text[] AS first," \
	" ARRAY['Novak','Okafor','Petrov','Quinn','Rossi','Sato','Tanaka','Underwood','Varga','Weber'," \
	"'Xu','Young']::text[] AS last) AS w"

/* The sample book numbered b. */
#define CTL_DB_SEED_SLUG "format('sample-book-%s', lpad(b::text, 3, '0'))"

static const char ctl_db_sql_seed_books[] =
	"INSERT INTO books (slug, title, author, language)"
	" SELECT " CTL_DB_SEED_SLUG ","
	"  format('%s, Vol. %s', format(w.title[1 + (b * 7) % cardinality(w.title)],"
	"   w.field[1 + (b * 3) % cardinality(w.field)]), b),"
	"  w.first[1 + (b * 5) % cardinality(w.first)] || ' ' || w.last[1 + (b * 11) % cardinality(w.last)],"
	"  'en'"
	" FROM generate_series(1, $1::int) AS b CROSS JOIN " CTL_DB_SEED_WORDS
	" ON CONFLICT (slug) DO NOTHING";

static const char ctl_db_sql_seed_chapters[] =
	"INSERT INTO chapters (book_id, position, title)"
	" SELECT bk.id, c,"
	"  format('The %s %s', initcap(w.adj[1 + (b * 13 + c * 7) % cardinality(w.adj)]),"
	"   initcap(w.noun[1 + (b * 17 + c * 3) % cardinality(w.noun)]))"
	" FROM generate_series(1, $1::int) AS b"
	" JOIN books bk ON bk.slug = " CTL_DB_SEED_SLUG
	" CROSS JOIN generate_series(1, $2::int) AS c CROSS JOIN " CTL_DB_SEED_WORDS
	" ON CONFLICT (book_id, position) DO NOTHING";

/* Each passage: 3 to 6 sentences; word choices from a multiplicative hash of (book, chapter,
 * passage, sentence), all in bigint without overflow, so the text is the same on every run. */
static const char ctl_db_sql_seed_passages[] =
	"INSERT INTO passages (chapter_id, position, body)"
	" SELECT ch.id, p,"
	"  (SELECT string_agg(format(w.tpl[1 + (r.h / 1000003) % cardinality(w.tpl)],"
	"     w.adj[1 + r.h % cardinality(w.adj)], w.noun[1 + (r.h / 7) % cardinality(w.noun)],"
	"     w.verb[1 + (r.h / 101) % cardinality(w.verb)], w.adj[1 + (r.h / 1009) % cardinality(w.adj)],"
	"     w.noun[1 + (r.h / 10007) % cardinality(w.noun)], w.tail[1 + (r.h / 100003) % cardinality(w.tail)]),"
	"    ' ' ORDER BY s)"
	"   FROM generate_series(1, 3 + (x.seed % 4)::int) AS s,"
	"    LATERAL (SELECT ((x.seed + s * 7919) % 1000003) * 2654435761 % 4294967291 AS h) AS r)"
	" FROM generate_series(1, $1::int) AS b"
	" JOIN books bk ON bk.slug = " CTL_DB_SEED_SLUG
	" JOIN chapters ch ON ch.book_id = bk.id AND ch.position <= $2::int"
	" CROSS JOIN generate_series(1, $3::int) AS p"
	" CROSS JOIN LATERAL (SELECT b::bigint * 1000003 + ch.position * 10007 + p * 101 AS seed) AS x"
	" CROSS JOIN " CTL_DB_SEED_WORDS
	" ON CONFLICT (chapter_id, position) DO NOTHING";

static const char ctl_db_sql_seed_totals[] =
	"SELECT (SELECT count(*) FROM books WHERE slug LIKE 'sample-book-%'),"
	" (SELECT count(*) FROM chapters ch JOIN books bk ON bk.id = ch.book_id"
	"  WHERE bk.slug LIKE 'sample-book-%'),"
	" (SELECT count(*) FROM passages ps JOIN chapters ch ON ch.id = ps.chapter_id"
	"  JOIN books bk ON bk.id = ch.book_id WHERE bk.slug LIKE 'sample-book-%')";

int ctl_db_seed(const struct np_conf *c, int books, int chapters, int passages)
{
	static const char *const what[3] = { "books", "chapters", "passages" };
	const char *const sql[3] = { ctl_db_sql_seed_books, ctl_db_sql_seed_chapters, ctl_db_sql_seed_passages };
	const Oid types[3] = { CTL_DB_INT4OID, CTL_DB_INT4OID, CTL_DB_INT4OID };
	char nb[16], nc[16], np[16], ctx[64];
	const char *vals[3] = { nb, nc, np };
	char inserted[3][32];
	PGresult *res;
	PGconn *conn;

	if (books < 1 || books > CTL_DB_SEED_MAX_BOOKS || chapters < 1 || chapters > CTL_DB_SEED_MAX_CHAPTERS ||
	    passages < 1 || passages > CTL_DB_SEED_MAX_PASSAGES) {
		fprintf(stderr, "neonpoolctl: seed: counts out of range: books 1..%d, chapters 1..%d, passages 1..%d\n",
			CTL_DB_SEED_MAX_BOOKS, CTL_DB_SEED_MAX_CHAPTERS, CTL_DB_SEED_MAX_PASSAGES);
		return 1;
	}
	if ((long)books * chapters * passages > CTL_DB_SEED_MAX_TOTAL) {
		fprintf(stderr, "neonpoolctl: seed: %ld passages in total is more than the limit of %ld\n",
			(long)books * chapters * passages, CTL_DB_SEED_MAX_TOTAL);
		return 1;
	}
	snprintf(nb, sizeof(nb), "%d", books);
	snprintf(nc, sizeof(nc), "%d", chapters);
	snprintf(np, sizeof(np), "%d", passages);
	if (ctl_db_connect(c, &conn) < 0)
		return 1;

	/* One transaction: a failed seed leaves nothing half-inserted. */
	if (ctl_db_command(conn, "seed", "BEGIN") < 0)
		goto fail;
	for (int i = 0; i < 3; i++) {
		snprintf(ctx, sizeof(ctx), "seed: inserting %s", what[i]);
		res = PQexecParams(conn, sql[i], i + 1, types, vals, NULL, NULL, 0);
		if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) {
			const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
			ctl_db_print_sql_error(conn, res, ctx, NULL);
			if (state && strcmp(state, "42P01") == 0)
				fprintf(stderr, "neonpoolctl: seed: run `neonpoolctl migrate` first\n");
			PQclear(res);
			goto fail;
		}
		snprintf(inserted[i], sizeof(inserted[i]), "%s", PQcmdTuples(res));
		PQclear(res);
	}
	if (ctl_db_command(conn, "seed: commit", "COMMIT") < 0)
		goto fail;
	res = ctl_db_exec(conn, "seed: counting", ctl_db_sql_seed_totals, 0, NULL, NULL, PGRES_TUPLES_OK);
	if (!res)
		goto fail;
	printf("inserted: books %s, chapters %s, passages %s\n", inserted[0], inserted[1], inserted[2]);
	printf("sample totals: books %s, chapters %s, passages %s\n", PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1),
	       PQgetvalue(res, 0, 2));
	PQclear(res);
	PQfinish(conn);
	return 0;

fail:
	ctl_db_rollback(conn);
	PQfinish(conn);
	return 1;
}

