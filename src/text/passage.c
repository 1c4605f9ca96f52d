/* SPDX-License-Identifier: PostgreSQL */
/* passage.c - a page's blocks cut into passages of a size fit for retrieval, each under its heading. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "passage.h"
#include "textbuf.h"

struct ps_state {
	size_t min, max;
	struct passage_list *out;
	size_t first;             /* index in out of this page's first passage */
	struct textbuf body;
	size_t words;
	char *heading;            /* the current passage's heading (owned) */
	const char *section;      /* the latest heading seen (a block's text) */
	const char *sep;          /* what goes before the next unit when body is not empty */
};

static bool ps_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* The offset just after the k-th word of s[0..n) (k ≥ 1, s has at least k words). */
static size_t ps_after_words(const char *s, size_t n, size_t k)
{
	size_t i = 0, seen = 0;
	while (i < n) {
		while (i < n && ps_space(s[i]))
			i++;
		if (i >= n)
			break;
		while (i < n && !ps_space(s[i]))
			i++;
		if (++seen == k)
			return i;
	}
	return n;
}

static char *ps_strdup(const char *s)
{
	size_t n = strlen(s);
	char *p = malloc(n + 1);
	if (p)
		memcpy(p, s, n + 1);
	return p;
}

/* End the current passage (when it has words) and start an empty one under heading h. */
static int ps_flush(struct ps_state *st, const char *h)
{
	if (st->words > 0) {
		struct passage_list *l = st->out;
		if (l->n == l->cap) {
			size_t cap = l->cap ? l->cap * 2 : 64;
			struct passage *v = realloc(l->v, cap * sizeof(*v));
			if (!v)
				return -1;
			l->v = v;
			l->cap = cap;
		}
		char *body = textbuf_take(&st->body);
		char *heading = st->heading ? st->heading : ps_strdup("");
		if (!body || !heading) {
			free(body);
			free(heading);
			st->heading = NULL;
			return -1;
		}
		l->v[l->n++] = (struct passage){ .heading = heading, .body = body, .words = st->words };
		st->heading = NULL;
	}
	textbuf_clear(&st->body);
	st->words = 0;
	free(st->heading);
	st->heading = ps_strdup(h ? h : "");
	return st->heading ? 0 : -1;
}

/* Append unit u[0..n) of w words to the passage, with the pending separator. */
static int ps_put(struct ps_state *st, const char *u, size_t n, size_t w)
{
	if (st->body.len > 0 && textbuf_append(&st->body, st->sep, strlen(st->sep)) < 0)
		return -1;
	if (textbuf_append(&st->body, u, n) < 0)
		return -1;
	st->words += w;
	return 0;
}

/* Add one unit (a sentence, a code line, a heading kept in the body) of w ≥ 1 words; sep goes before
 * it, unit_sep between the pieces of a unit cut across passages. */
static int ps_unit(struct ps_state *st, const char *u, size_t n, size_t w, const char *sep)
{
	st->sep = sep;
	while (w > 0) {
		if (st->words + w <= st->max)
			return ps_put(st, u, n, w);
		if (st->words >= st->min || (st->words == 0 && w <= st->max)) {
			if (ps_flush(st, st->section) < 0)
				return -1;
			continue;
		}
		/* too short to end and the unit does not fit: cut it at a word boundary to fill the passage */
		size_t k = st->max - st->words;   /* ≥ 1: words < min ≤ max */
		size_t cut = ps_after_words(u, n, k);
		if (ps_put(st, u, cut, k) < 0 || ps_flush(st, st->section) < 0)
			return -1;
		while (cut < n && ps_space(u[cut]))
			cut++;
		u += cut;
		n -= cut;
		w -= k;
	}
	return 0;
}

/* A prose block: its sentences as units. A sentence ends after '.', '?' or '!' (and any closing
 * quotes or brackets) followed by a space. */
static int ps_prose(struct ps_state *st, const char *t, size_t n, const char *first_sep)
{
	size_t start = 0, i = 0;
	const char *sep = first_sep;
	while (i < n) {
		if ((t[i] == '.' || t[i] == '?' || t[i] == '!')) {
			size_t j = i + 1;
			while (j < n && (t[j] == '"' || t[j] == '\'' || t[j] == ')' || t[j] == ']'))
				j++;
			if (j == n || t[j] == ' ') {
				size_t w = htmltext_count_words(t + start, j - start);
				if (w > 0 && ps_unit(st, t + start, j - start, w, sep) < 0)
					return -1;
				if (w > 0)
					sep = " ";
				while (j < n && t[j] == ' ')
					j++;
				start = i = j;
				continue;
			}
		}
		i++;
	}
	size_t w = htmltext_count_words(t + start, n - start);
	if (w > 0 && ps_unit(st, t + start, n - start, w, sep) < 0)
		return -1;
	return 0;
}

/* A code block: its lines as units (blank lines ride with the next line). */
static int ps_code(struct ps_state *st, const char *t, size_t n, const char *first_sep)
{
	size_t start = 0;
	const char *sep = first_sep;
	while (start < n) {
		const char *nl = memchr(t + start, '\n', n - start);
		size_t end = nl ? (size_t)(nl - t) : n;
		size_t w = htmltext_count_words(t + start, end - start);
		if (w > 0) {
			if (ps_unit(st, t + start, end - start, w, sep) < 0)
				return -1;
			sep = "\n";
		} else if (sep[0] == '\n' && sep[1] == '\0') {
			sep = "\n\n";   /* keep one blank line between code lines */
		}
		start = end + 1;
	}
	return 0;
}

static int ps_heading(struct ps_state *st, const struct htmltext_block *b)
{
	st->section = b->text;
	if (st->words >= st->min)
		return ps_flush(st, b->text);
	if (st->words == 0) {
		/* nothing under the previous heading yet: the new one joins it ("A / B") or replaces an empty one */
		if (!st->heading || !st->heading[0]) {
			free(st->heading);
			st->heading = ps_strdup(b->text);
			return st->heading ? 0 : -1;
		}
		size_t a = strlen(st->heading), c = strlen(b->text);
		char *h = malloc(a + 3 + c + 1);
		if (!h)
			return -1;
		memcpy(h, st->heading, a);
		memcpy(h + a, " / ", 3);
		memcpy(h + a + 3, b->text, c + 1);
		free(st->heading);
		st->heading = h;
		return 0;
	}
	/* too little under the previous heading to stand alone: this one stays in the body */
	return ps_unit(st, b->text, strlen(b->text), b->words, "\n\n");
}

/* The page's last passage, when short, joins the one before if both fit. */
static int ps_finish(struct ps_state *st)
{
	struct passage_list *l = st->out;
	struct passage *prev = l->n > st->first ? &l->v[l->n - 1] : NULL;
	/* the short passage's heading goes into the joined body when it differs */
	bool other = prev && st->heading && st->heading[0] && strcmp(st->heading, prev->heading) != 0;
	size_t hw = other ? htmltext_count_words(st->heading, strlen(st->heading)) : 0;
	if (st->words > 0 && st->words < st->min && prev && prev->words + hw + st->words <= st->max) {
		struct textbuf b = { 0 };
		size_t pl = strlen(prev->body);
		if (textbuf_append(&b, prev->body, pl) < 0 || textbuf_append(&b, "\n\n", 2) < 0 ||
		    (other && (textbuf_append(&b, st->heading, strlen(st->heading)) < 0 ||
		               textbuf_append(&b, "\n\n", 2) < 0)) ||
		    textbuf_append(&b, st->body.p, st->body.len) < 0) {
			textbuf_free(&b);
			return -1;
		}
		char *body = textbuf_take(&b);
		if (!body)
			return -1;
		free(prev->body);
		prev->body = body;
		prev->words += hw + st->words;
		textbuf_clear(&st->body);
		st->words = 0;
		return 0;
	}
	return ps_flush(st, NULL);
}

int passage_split(const struct htmltext_page *page, size_t min_words, size_t max_words, struct passage_list *out)
{
	if (min_words < 1 || min_words > max_words)
		return -1;
	struct ps_state st = { .min = min_words, .max = max_words, .out = out, .first = out->n, .sep = "" };
	int rc = -1;
	for (size_t i = 0; i < page->nblocks; i++) {
		const struct htmltext_block *b = &page->blocks[i];
		int r;
		if (b->kind == HTMLTEXT_HEADING)
			r = ps_heading(&st, b);
		else if (b->kind == HTMLTEXT_PRE)
			r = ps_code(&st, b->text, strlen(b->text), "\n\n");
		else
			r = ps_prose(&st, b->text, strlen(b->text), "\n\n");
		if (r < 0)
			goto out;
	}
	if (ps_finish(&st) < 0)
		goto out;
	rc = 0;
out:
	textbuf_free(&st.body);
	free(st.heading);
	return rc;
}

void passage_list_free(struct passage_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].heading);
		free(l->v[i].body);
	}
	free(l->v);
	memset(l, 0, sizeof(*l));
}
