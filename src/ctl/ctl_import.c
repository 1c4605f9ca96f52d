/* SPDX-License-Identifier: PostgreSQL */
/* ctl_import.c - `neonpoolctl import DIR`: a folder of HTML pages becomes a book, its chapters and passages. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl_db.h"
#include "htmltext.h"
#include "passage.h"
#include "textbuf.h"
#include "util.h"

/* One page of the folder, in book order. */
struct imp_page {
	char *file;              /* the name in DIR (the chapter's source) */
	char *next;              /* its <link rel="next" href> when that names a file of DIR, else NULL */
	char *title;
	struct passage_list passages;
	bool placed;
};

struct imp_book {
	struct imp_page *pages;
	size_t n;
	size_t *order;           /* indexes into pages, in book order */
	size_t passages;
	size_t words;
};

static int imp_cmp_name(const void *a, const void *b)
{
	return strcmp(((const struct imp_page *)a)->file, ((const struct imp_page *)b)->file);
}

static bool imp_has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n > k && strcmp(s + n - k, suffix) == 0;
}

/* The href of the first <link ... rel="next" ... href="X"> of html, when X is a plain file name
 * ending in .html (no directory, no fragment); NULL otherwise (or out of memory). */
static char *imp_next_link(const char *html, size_t len)
{
	const char *p = html, *end = html + len;
	while ((p = memmem(p, (size_t)(end - p), "<link", 5)) != NULL) {
		const char *gt = memchr(p, '>', (size_t)(end - p));
		if (!gt)
			return NULL;
		size_t tl = (size_t)(gt - p);
		if (memmem(p, tl, "rel=\"next\"", 10)) {
			const char *h = memmem(p, tl, "href=\"", 6);
			if (!h)
				return NULL;
			h += 6;
			const char *q = memchr(h, '"', (size_t)(gt - h));
			if (!q || q == h || q - h > 255)
				return NULL;
			for (const char *c = h; c < q; c++)
				if (*c == '/' || *c == '#' || *c == '?' || *c == '\\' || (unsigned char)*c < 0x21)
					return NULL;
			char *name = strndup(h, (size_t)(q - h));
			if (name && (!imp_has_suffix(name, ".html") || name[0] == '.')) {
				free(name);
				return NULL;
			}
			return name;
		}
		p = gt;
	}
	return NULL;
}

/* Read DIR/name (a regular file, not followed when a symlink, at most HTMLTEXT_MAX_BYTES). Returns
 * the malloc'd bytes with *len, or NULL after printing why. */
static char *imp_read(int dfd, const char *dir, const char *name, size_t *len)
{
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	struct stat sb;
	char *buf = NULL;
	if (fd < 0) {
		fprintf(stderr, "neonpoolctl: import: %s/%s: %s\n", dir, name,
		        errno == ELOOP ? "a symbolic link (not followed)" : strerror(errno));
		return NULL;
	}
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		fprintf(stderr, "neonpoolctl: import: %s/%s: not a regular file\n", dir, name);
		goto out;
	}
	if (sb.st_size > (off_t)HTMLTEXT_MAX_BYTES) {
		fprintf(stderr, "neonpoolctl: import: %s/%s: larger than the limit of %u bytes (%jd bytes)\n", dir, name,
		        HTMLTEXT_MAX_BYTES, (intmax_t)sb.st_size);
		goto out;
	}
	buf = malloc((size_t)sb.st_size + 1);
	if (!buf) {
		fprintf(stderr, "neonpoolctl: import: %s/%s: out of memory\n", dir, name);
		goto out;
	}
	size_t got = 0;
	while (got < (size_t)sb.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)sb.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			fprintf(stderr, "neonpoolctl: import: %s/%s: %s\n", dir, name, r < 0 ? strerror(errno) : "file shrank while read");
			free(buf);
			buf = NULL;
			goto out;
		}
		got += (size_t)r;
	}
	buf[got] = '\0';
	*len = got;
out:
	close(fd);
	return buf;
}

static void imp_book_free(struct imp_book *b)
{
	for (size_t i = 0; i < b->n; i++) {
		free(b->pages[i].file);
		free(b->pages[i].next);
		free(b->pages[i].title);
		passage_list_free(&b->pages[i].passages);
	}
	free(b->pages);
	free(b->order);
	memset(b, 0, sizeof(*b));
}

static struct imp_page *imp_find(struct imp_book *b, const char *file)
{
	struct imp_page key = { .file = (char *)file };
	return bsearch(&key, b->pages, b->n, sizeof(b->pages[0]), imp_cmp_name);
}

/* List DIR's *.html files, parse each into passages, and order them: from index.html along the
 * "next" links, then the files no link reached, by name. Returns 0, or -1 after printing the error
 * (naming the file). */
static int imp_load(const char *dir, struct imp_book *b)
{
	DIR *d = opendir(dir);
	if (!d) {
		fprintf(stderr, "neonpoolctl: import: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	size_t cap = 0;
	struct dirent *de;
	int rc = -1;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || !imp_has_suffix(de->d_name, ".html"))
			continue;
		if (b->n == CTL_IMPORT_MAX_FILES) {
			fprintf(stderr, "neonpoolctl: import: %s: more than %d .html files\n", dir, CTL_IMPORT_MAX_FILES);
			goto out;
		}
		if (b->n == cap) {
			cap = cap ? cap * 2 : 256;
			struct imp_page *v = realloc(b->pages, cap * sizeof(*v));
			if (!v)
				goto nomem;
			b->pages = v;
		}
		memset(&b->pages[b->n], 0, sizeof(b->pages[0]));
		if (!(b->pages[b->n].file = strdup(de->d_name)))
			goto nomem;
		b->n++;
	}
	if (b->n == 0) {
		fprintf(stderr, "neonpoolctl: import: %s: no .html file\n", dir);
		goto out;
	}
	qsort(b->pages, b->n, sizeof(b->pages[0]), imp_cmp_name);
	for (size_t i = 0; i < b->n; i++) {
		struct imp_page *pg = &b->pages[i];
		size_t len = 0;
		char *html = imp_read(dirfd(d), dir, pg->file, &len);
		if (!html)
			goto out;
		struct htmltext_page page;
		struct htmltext_error err;
		if (htmltext_parse(html, len, &page, &err) < 0) {
			if (err.line)
				fprintf(stderr, "neonpoolctl: import: %s/%s:%zu: %s\n", dir, pg->file, err.line, err.msg);
			else
				fprintf(stderr, "neonpoolctl: import: %s/%s: %s\n", dir, pg->file, err.msg);
			free(html);
			goto out;
		}
		pg->next = imp_next_link(html, len);
		free(html);
		pg->title = page.title;
		page.title = NULL;
		int sr = passage_split(&page, PASSAGE_MIN_WORDS, PASSAGE_MAX_WORDS, &pg->passages);
		htmltext_page_free(&page);
		if (sr < 0)
			goto nomem;
		b->passages += pg->passages.n;
		for (size_t k = 0; k < pg->passages.n; k++) {
			/* passages are bounded in words; a word of kilobytes (a blob, not prose) is refused */
			size_t bytes = strlen(pg->passages.v[k].body) + strlen(pg->passages.v[k].heading);
			if (bytes > CTL_IMPORT_MAX_PASSAGE_BYTES) {
				fprintf(stderr, "neonpoolctl: import: %s/%s: passage %zu has %zu bytes, more than the limit of %d"
				        " (words that long are not text)\n", dir, pg->file, k + 1, bytes, CTL_IMPORT_MAX_PASSAGE_BYTES);
				goto out;
			}
			b->words += pg->passages.v[k].words;
		}
	}
	/* book order */
	if (!(b->order = calloc(b->n, sizeof(b->order[0]))))
		goto nomem;
	size_t k = 0;
	for (struct imp_page *pg = imp_find(b, "index.html"); pg && !pg->placed; pg = pg->next ? imp_find(b, pg->next) : NULL) {
		pg->placed = true;
		b->order[k++] = (size_t)(pg - b->pages);
	}
	for (size_t i = 0; i < b->n; i++)
		if (!b->pages[i].placed)
			b->order[k++] = i;
	rc = 0;
	goto out;
nomem:
	fprintf(stderr, "neonpoolctl: import: out of memory\n");
out:
	closedir(d);
	return rc;
}

/* ---- loading ---- */

/* Append s to b as a COPY text-format field. */
static int imp_copy_field(struct textbuf *b, const char *s)
{
	for (const char *p = s; *p; p++) {
		const char *esc = NULL;
		switch (*p) {
		case '\\': esc = "\\\\"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		case '\t': esc = "\\t"; break;
		default: break;
		}
		if (esc ? textbuf_append(b, esc, 2) < 0 : textbuf_putc(b, *p) < 0)
			return -1;
	}
	return 0;
}

/* Run COPY sql FROM STDIN with the rows the callback appends; flushes every 256 KiB. */
static int imp_copy(PGconn *conn, const char *ctx, const char *sql, const struct imp_book *b, bool passages)
{
	PGresult *res = PQexec(conn, sql);
	if (!res || PQresultStatus(res) != PGRES_COPY_IN) {
		ctl_db_print_sql_error(conn, res, ctx, NULL);
		PQclear(res);
		return -1;
	}
	PQclear(res);
	struct textbuf buf = { 0 };
	char num[24];
	const char *fail = NULL;
	for (size_t i = 0; i < b->n && !fail; i++) {
		const struct imp_page *pg = &b->pages[b->order[i]];
		size_t rows = passages ? pg->passages.n : 1;
		for (size_t r = 0; r < rows && !fail; r++) {
			int e = 0;
			if (passages) {
				snprintf(num, sizeof(num), "%zu", r + 1);
				e |= imp_copy_field(&buf, pg->file) | textbuf_putc(&buf, '\t') | textbuf_append(&buf, num, strlen(num)) |
				     textbuf_putc(&buf, '\t') | imp_copy_field(&buf, pg->passages.v[r].heading) | textbuf_putc(&buf, '\t') |
				     imp_copy_field(&buf, pg->passages.v[r].body) | textbuf_putc(&buf, '\n');
			} else {
				snprintf(num, sizeof(num), "%zu", i + 1);
				e |= textbuf_append(&buf, num, strlen(num)) | textbuf_putc(&buf, '\t') | imp_copy_field(&buf, pg->file) |
				     textbuf_putc(&buf, '\t') | imp_copy_field(&buf, pg->title) | textbuf_putc(&buf, '\n');
			}
			if (e)
				fail = "out of memory";
			else if (buf.len >= 256 * 1024) {
				if (PQputCopyData(conn, buf.p, (int)buf.len) != 1)
					fail = PQerrorMessage(conn);
				textbuf_clear(&buf);
			}
		}
	}
	if (!fail && buf.len > 0 && PQputCopyData(conn, buf.p, (int)buf.len) != 1)
		fail = PQerrorMessage(conn);
	textbuf_free(&buf);
	if (PQputCopyEnd(conn, fail) != 1) {
		fprintf(stderr, "neonpoolctl: import: %s: %s\n", ctx, PQerrorMessage(conn));
		return -1;
	}
	res = PQgetResult(conn);
	int rc = 0;
	if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) {
		ctl_db_print_sql_error(conn, res, ctx, NULL);
		rc = -1;
	}
	PQclear(res);
	while ((res = PQgetResult(conn)) != NULL)
		PQclear(res);
	return rc;
}

/* The chapters and passages of this run, then each chapter's SHA-256 over its title and passages
 * (the separators \x1f \x1e \x1d never occur in the text: htmltext turns control characters into spaces). */
static const char imp_sql_temp_chapters[] =
	"CREATE TEMP TABLE np_import_chapters (position int NOT NULL, source text NOT NULL, title text NOT NULL)"
	" ON COMMIT DROP";
static const char imp_sql_temp_passages[] =
	"CREATE TEMP TABLE np_import_passages (source text NOT NULL, position int NOT NULL, heading text NOT NULL,"
	" body text NOT NULL) ON COMMIT DROP";
static const char imp_sql_hash[] =
	"CREATE TEMP TABLE np_import_hash ON COMMIT DROP AS"
	" SELECT c.position, c.source, c.title,"
	"  encode(sha256(convert_to(c.title || E'\\x1f' || coalesce((SELECT string_agg(p.heading || E'\\x1e' || p.body,"
	"   E'\\x1d' ORDER BY p.position) FROM np_import_passages p WHERE p.source = c.source), ''), 'UTF8')), 'hex')"
	"  AS content_hash"
	" FROM np_import_chapters c";
/* Chapters of the book that differ from this run in position, title or content go, with their
 * passages (ON DELETE CASCADE); the statement's snapshot still sees the passages, for the count. */
static const char imp_sql_delete[] =
	"WITH d AS (DELETE FROM chapters c WHERE c.book_id = $1 AND NOT EXISTS (SELECT 1 FROM np_import_hash h"
	"  WHERE h.source = c.source AND h.position = c.position AND h.title = c.title"
	"  AND h.content_hash = c.content_hash) RETURNING c.id)"
	" SELECT (SELECT count(*) FROM d), (SELECT count(*) FROM passages WHERE chapter_id IN (SELECT id FROM d))";
static const char imp_sql_insert[] =
	"WITH ins AS (INSERT INTO chapters (book_id, position, title, source, content_hash)"
	"  SELECT $1, h.position, h.title, h.source, h.content_hash FROM np_import_hash h"
	"  WHERE NOT EXISTS (SELECT 1 FROM chapters c WHERE c.book_id = $1 AND c.source = h.source)"
	"  ORDER BY h.position RETURNING id, source),"
	" p AS (INSERT INTO passages (chapter_id, position, heading, body)"
	"  SELECT ins.id, ip.position, ip.heading, ip.body FROM ins JOIN np_import_passages ip USING (source)"
	"  ORDER BY ins.id, ip.position RETURNING 1)"
	" SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM p)";

static int imp_store(PGconn *conn, const struct imp_book *b, const char *slug, const char *title, const char *author,
                     int64_t *book_id, long counts[6])
{
	const Oid t3[3] = { CTL_DB_TEXTOID, CTL_DB_TEXTOID, CTL_DB_TEXTOID };
	const char *v3[3] = { slug, title, author };
	const Oid t1[1] = { CTL_DB_INT8OID };
	char idbuf[24];
	const char *v1[1] = { idbuf };
	PGresult *res;

	/* counts: book inserted or retitled, chapters deleted, passages deleted, chapters inserted,
	 * passages inserted, chapters now */
	if (ctl_db_command(conn, "import", "BEGIN") < 0)
		return -1;
	res = ctl_db_exec(conn, "import: book",
	                  "INSERT INTO books (slug, title, author) VALUES ($1, $2, $3) ON CONFLICT (slug) DO NOTHING", 3, t3, v3,
	                  PGRES_COMMAND_OK);
	if (!res)
		return -1;
	counts[0] = strtol(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	/* the row lock serializes two imports of the same book */
	res = ctl_db_exec(conn, "import: book", "SELECT id FROM books WHERE slug = $1 FOR UPDATE", 1, t3, v3, PGRES_TUPLES_OK);
	if (!res)
		return -1;
	if (PQntuples(res) != 1 || util_parse_i64(PQgetvalue(res, 0, 0), 1, INT64_MAX, book_id) < 0) {
		fprintf(stderr, "neonpoolctl: import: book %s: not found after insert\n", slug);
		PQclear(res);
		return -1;
	}
	PQclear(res);
	snprintf(idbuf, sizeof(idbuf), "%" PRId64, *book_id);
	/* an update only when something differs: an unchanged book row keeps its xmin */
	const Oid tu[3] = { CTL_DB_INT8OID, CTL_DB_TEXTOID, CTL_DB_TEXTOID };
	const char *vu[3] = { idbuf, title, author };
	res = ctl_db_exec(conn, "import: book title",
	                  "UPDATE books SET title = $2, author = $3 WHERE id = $1"
	                  " AND (title IS DISTINCT FROM $2 OR author IS DISTINCT FROM $3)",
	                  3, tu, vu, PGRES_COMMAND_OK);
	if (!res)
		return -1;
	counts[0] += strtol(PQcmdTuples(res), NULL, 10);
	PQclear(res);

	if (ctl_db_command(conn, "import: temporary tables", imp_sql_temp_chapters) < 0 ||
	    ctl_db_command(conn, "import: temporary tables", imp_sql_temp_passages) < 0)
		return -1;
	if (imp_copy(conn, "import: copying chapters", "COPY np_import_chapters (position, source, title) FROM STDIN", b, false) < 0 ||
	    imp_copy(conn, "import: copying passages",
	             "COPY np_import_passages (source, position, heading, body) FROM STDIN", b, true) < 0)
		return -1;
	if (ctl_db_command(conn, "import: hashing chapters", imp_sql_hash) < 0)
		return -1;
	res = ctl_db_exec(conn, "import: deleting changed chapters", imp_sql_delete, 1, t1, v1, PGRES_TUPLES_OK);
	if (!res)
		return -1;
	counts[1] = strtol(PQgetvalue(res, 0, 0), NULL, 10);
	counts[2] = strtol(PQgetvalue(res, 0, 1), NULL, 10);
	PQclear(res);
	res = ctl_db_exec(conn, "import: inserting chapters and passages", imp_sql_insert, 1, t1, v1, PGRES_TUPLES_OK);
	if (!res)
		return -1;
	counts[3] = strtol(PQgetvalue(res, 0, 0), NULL, 10);
	counts[4] = strtol(PQgetvalue(res, 0, 1), NULL, 10);
	PQclear(res);
	/* a new statement: the one above does not see its own inserts */
	res = ctl_db_exec(conn, "import: counting chapters", "SELECT count(*) FROM chapters WHERE book_id = $1", 1, t1, v1,
	                  PGRES_TUPLES_OK);
	if (!res)
		return -1;
	counts[5] = strtol(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	if (counts[5] != (long)b->n) {
		fprintf(stderr, "neonpoolctl: import: the book has %ld chapters after the import, expected %zu\n", counts[5], b->n);
		return -1;
	}
	return ctl_db_command(conn, "import: commit", "COMMIT");
}

/* A slug: 1..100 of [a-z0-9-], not starting with '-'. */
static bool imp_slug_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 100 || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

/* The slug of a title: lowercase letters and digits, other runs as one '-'. */
static void imp_slugify(const char *title, char *out, size_t cap)
{
	size_t k = 0;
	bool dash = false;
	for (const char *p = title; *p && k + 2 < cap; p++) {
		char c = *p;
		if (c >= 'A' && c <= 'Z')
			c = (char)(c + 32);
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
			if (dash && k > 0)
				out[k++] = '-';
			out[k++] = c;
			dash = false;
		} else {
			dash = true;
		}
	}
	out[k] = '\0';
}

int ctl_import(const struct np_conf *c, const char *dir, const char *slug_opt, const char *title_opt,
               const char *author, bool dry_run)
{
	struct imp_book b = { 0 };
	char slug[101];
	int64_t t0 = util_now_us();
	int rc = 1;

	if (slug_opt && !imp_slug_ok(slug_opt)) {
		fprintf(stderr, "neonpoolctl: import: --slug: expected 1 to 100 of a-z, 0-9 and '-' (not first), got '%s'\n", slug_opt);
		return 1;
	}
	if (title_opt && (title_opt[0] == '\0' || strlen(title_opt) > CTL_IMPORT_MAX_TITLE ||
	                  util_utf8_prefix(title_opt, strlen(title_opt)) != strlen(title_opt))) {
		fprintf(stderr, "neonpoolctl: import: --title: expected 1 to %d bytes of UTF-8\n", CTL_IMPORT_MAX_TITLE);
		return 1;
	}
	if (author && (author[0] == '\0' || strlen(author) > CTL_IMPORT_MAX_TITLE ||
	               util_utf8_prefix(author, strlen(author)) != strlen(author))) {
		fprintf(stderr, "neonpoolctl: import: --author: expected 1 to %d bytes of UTF-8\n", CTL_IMPORT_MAX_TITLE);
		return 1;
	}
	if (imp_load(dir, &b) < 0)
		goto out;
	int64_t t1 = util_now_us();
	const char *title = title_opt ? title_opt : b.pages[b.order[0]].title;
	if (slug_opt) {
		snprintf(slug, sizeof(slug), "%s", slug_opt);
	} else {
		imp_slugify(title, slug, sizeof(slug));
		if (!imp_slug_ok(slug)) {
			fprintf(stderr, "neonpoolctl: import: no slug can be made of the title '%s': give --slug\n", title);
			goto out;
		}
	}
	printf("import: read %zu pages of %s: %zu passages, %zu words in %.2f s\n", b.n, dir, b.passages, b.words,
	       (double)(t1 - t0) / 1e6);
	printf("import: book '%s' (%s), first chapter '%s', last '%s'\n", slug, title, b.pages[b.order[0]].title,
	       b.pages[b.order[b.n - 1]].title);
	if (dry_run) {
		for (size_t i = 0; i < b.n; i++) {
			const struct imp_page *pg = &b.pages[b.order[i]];
			printf("%zu\t%s\t%zu\t%s\n", i + 1, pg->file, pg->passages.n, pg->title);
		}
		printf("import: dry run: nothing written\n");
		rc = 0;
		goto out;
	}
	PGconn *conn;
	if (ctl_db_connect(c, &conn) < 0)
		goto out;
	int64_t book_id = 0;
	long n[6] = { 0 };
	if (imp_store(conn, &b, slug, title, author, &book_id, n) < 0) {
		ctl_db_rollback(conn);
		PQfinish(conn);
		fprintf(stderr, "neonpoolctl: import: rolled back: nothing of %s was changed\n", dir);
		goto out;
	}
	PQfinish(conn);
	int64_t t2 = util_now_us();
	printf("import: book id %" PRId64 ": %s; chapters: %ld inserted, %ld deleted, %ld unchanged; passages: %ld inserted, %ld deleted\n",
	       book_id, n[0] ? "book row inserted or updated" : "book row unchanged", n[3], n[1], n[5] - n[3], n[4], n[2]);
	printf("import: changed rows: %ld\n", n[0] + n[1] + n[2] + n[3] + n[4]);
	printf("import: done in %.2f s (read %.2f s, load %.2f s)\n", (double)(t2 - t0) / 1e6, (double)(t1 - t0) / 1e6,
	       (double)(t2 - t1) / 1e6);
	rc = 0;
out:
	imp_book_free(&b);
	return rc;
}
