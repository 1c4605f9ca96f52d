/* SPDX-License-Identifier: PostgreSQL */
/* htmltext.c - one HTML page to its title and a sequence of text blocks (headings, paragraphs, code).
 *
 * A single forward scan, no DOM: text runs are decoded and appended to the current block; a small
 * stack of open elements tells whether the text is dropped (chrome), the title, a heading or code;
 * block elements end the current block. Lenient about what browsers accept (an unknown entity, a
 * stray '<', an end tag that matches nothing); strict about what means the file is not text
 * (invalid UTF-8, NUL, an unterminated tag or comment, absurd nesting). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "entity.h"
#include "htmltext.h"
#include "util.h"
#include "textbuf.h"

enum {
	HT_BLOCK = 1 << 0,     /* ends the current block when it opens or closes */
	HT_VOID = 1 << 1,      /* never has content or an end tag */
	HT_SKIP = 1 << 2,      /* its content is dropped */
	HT_HEAD = 1 << 3,
	HT_TITLE = 1 << 4,
	HT_PRE = 1 << 5,
	HT_HEADING = 1 << 6,
	HT_CELL = 1 << 7,      /* td, th: a space between cells */
	HT_AUTOCLOSE = 1 << 8, /* <p><p>, <li><li>: an open one of the same name closes first */
	HT_BODY = 1 << 9,
	HT_BREAK = 1 << 10,    /* br: a line break in code, a space elsewhere */
	HT_ASIDE = 1 << 11,    /* a note, tip, warning...: its heading ("Note") is a line of text, not a section */
	HT_SUP = 1 << 12,      /* superscript: "2<sup>32</sup>" reads 2^32 (a footnote mark "[1]" stays as it is) */
};

struct ht_tag {
	const char *name;
	unsigned flags;
};

/* Sorted by strcmp for bsearch. Elements not listed are inline: their text joins the block. */
static const struct ht_tag ht_tags[] = {
	{ "address", HT_BLOCK }, { "area", HT_VOID }, { "article", HT_BLOCK }, { "aside", HT_BLOCK },
	{ "base", HT_VOID }, { "blockquote", HT_BLOCK }, { "body", HT_BLOCK | HT_BODY },
	{ "br", HT_VOID | HT_BREAK }, { "caption", HT_BLOCK }, { "center", HT_BLOCK }, { "col", HT_VOID },
	{ "dd", HT_BLOCK | HT_AUTOCLOSE }, { "details", HT_BLOCK }, { "dialog", HT_BLOCK }, { "div", HT_BLOCK },
	{ "dl", HT_BLOCK }, { "dt", HT_BLOCK | HT_AUTOCLOSE }, { "embed", HT_VOID }, { "fieldset", HT_BLOCK },
	{ "figcaption", HT_BLOCK }, { "figure", HT_BLOCK }, { "footer", HT_BLOCK }, { "form", HT_BLOCK },
	{ "h1", HT_HEADING }, { "h2", HT_HEADING }, { "h3", HT_HEADING }, { "h4", HT_HEADING },
	{ "h5", HT_HEADING }, { "h6", HT_HEADING }, { "head", HT_HEAD }, { "header", HT_BLOCK },
	{ "hr", HT_VOID | HT_BLOCK }, { "html", HT_BLOCK }, { "iframe", HT_SKIP }, { "img", HT_VOID },
	{ "input", HT_VOID }, { "legend", HT_BLOCK }, { "li", HT_BLOCK | HT_AUTOCLOSE }, { "link", HT_VOID },
	{ "main", HT_BLOCK }, { "meta", HT_VOID }, { "nav", HT_SKIP }, { "noscript", HT_SKIP },
	{ "object", HT_SKIP }, { "ol", HT_BLOCK }, { "p", HT_BLOCK | HT_AUTOCLOSE }, { "param", HT_VOID },
	{ "pre", HT_PRE }, { "script", HT_SKIP }, { "section", HT_BLOCK }, { "source", HT_VOID },
	{ "style", HT_SKIP }, { "summary", HT_BLOCK }, { "sup", HT_SUP }, { "svg", HT_SKIP }, { "table", HT_BLOCK },
	{ "tbody", HT_BLOCK }, { "td", HT_CELL | HT_AUTOCLOSE }, { "template", HT_SKIP },
	{ "textarea", HT_SKIP }, { "tfoot", HT_BLOCK }, { "th", HT_CELL | HT_AUTOCLOSE },
	{ "thead", HT_BLOCK }, { "title", HT_TITLE }, { "tr", HT_BLOCK | HT_AUTOCLOSE }, { "track", HT_VOID },
	{ "ul", HT_BLOCK }, { "wbr", HT_VOID },
};

/* Classes of admonitions (DocBook XSL's): their own title is not a section heading. */
static bool ht_aside_class(const char *s, size_t n)
{
	static const char *const names[] = { "note", "tip", "warning", "caution", "important" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i]) == n && memcmp(names[i], s, n) == 0)
			return true;
	return false;
}

/* Classes of navigation chrome (DocBook XSL's): the element and its content are dropped. */
static bool ht_chrome_class(const char *s, size_t n)
{
	static const char *const exact[] = { "navheader", "navfooter", "toc", "index", "navigation" };
	for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
		if (strlen(exact[i]) == n && memcmp(exact[i], s, n) == 0)
			return true;
	return n > 8 && memcmp(s, "list-of-", 8) == 0;   /* list-of-tables, list-of-figures, ... */
}

#define HT_NAME_MAX 16

struct ht_open {
	char name[HT_NAME_MAX];
	unsigned flags;
	int level;
};

struct ht_state {
	const char *src;
	size_t len;
	struct htmltext_page *page;
	struct htmltext_error *err;
	struct ht_open stack[HTMLTEXT_MAX_DEPTH];
	size_t depth;
	int skip, head, title, pre, heading, heading_level, aside;
	bool title_done;
	struct textbuf cur;      /* the block being built */
	enum htmltext_kind cur_kind;   /* what cur is, set when its first text arrives */
	int cur_level;
	bool cur_space;          /* a space is owed before the next character of cur */
	bool sup;                /* a <sup> just opened: its first text gets a '^' */
	struct textbuf title_buf;
	bool title_space;
	struct textbuf decoded;  /* scratch: a text run with its references decoded */
	char *first_heading;
};

static size_t ht_line_of(const struct ht_state *st, size_t off)
{
	size_t line = 1;
	for (size_t i = 0; i < off && i < st->len; i++)
		if (st->src[i] == '\n')
			line++;
	return line;
}

static int ht_fail(struct ht_state *st, size_t off, const char *msg)
{
	st->err->line = off == (size_t)-1 ? 0 : ht_line_of(st, off);
	snprintf(st->err->msg, sizeof(st->err->msg), "%s", msg);
	return -1;
}

static bool ht_is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool ht_is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

size_t htmltext_count_words(const char *s, size_t n)
{
	size_t words = 0;
	bool in = false;
	for (size_t i = 0; i < n; i++) {
		bool sp = ht_is_space((unsigned char)s[i]);
		if (!sp && !in)
			words++;
		in = !sp;
	}
	return words;
}


/* Append decoded text t[0..n) to b, collapsing whitespace (and control characters, and U+00A0)
 * into single spaces; *space carries an owed space across calls. Leading space is dropped. */
static int ht_append_prose(struct textbuf *b, bool *space, const char *t, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned char c = (unsigned char)t[i];
		if (c < 0x20 || c == 0x7F || c == ' ') {
			*space = true;
			i++;
			continue;
		}
		if (c == 0xC2 && i + 1 < n && (unsigned char)t[i + 1] == 0xA0) {
			*space = true;
			i += 2;
			continue;
		}
		size_t j = i + 1;
		while (j < n) {
			unsigned char d = (unsigned char)t[j];
			if (d < 0x20 || d == 0x7F || d == ' ' || (d == 0xC2 && j + 1 < n && (unsigned char)t[j + 1] == 0xA0))
				break;
			j++;
		}
		if (*space && b->len > 0 && textbuf_putc(b, ' ') < 0)
			return -1;
		*space = false;
		if (textbuf_append(b, t + i, j - i) < 0)
			return -1;
		i = j;
	}
	return 0;
}

/* Append decoded code t[0..n) to b: line breaks and tabs kept (CR LF and lone CR become LF),
 * other control characters and U+00A0 become spaces. */
static int ht_append_code(struct textbuf *b, const char *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)t[i];
		int rc;
		if (c == '\r')
			rc = (i + 1 < n && t[i + 1] == '\n') ? 0 : textbuf_putc(b, '\n');
		else if (c == '\n' || c == '\t')
			rc = textbuf_putc(b, (char)c);
		else if (c < 0x20 || c == 0x7F)
			rc = textbuf_putc(b, ' ');
		else if (c == 0xC2 && i + 1 < n && (unsigned char)t[i + 1] == 0xA0) {
			rc = textbuf_putc(b, ' ');
			i++;
		} else
			rc = textbuf_putc(b, (char)c);
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* End the current block: keep it when it has text. */
static int ht_flush(struct ht_state *st)
{
	enum htmltext_kind kind = st->cur_kind;
	struct textbuf *b = &st->cur;
	st->cur_space = false;
	st->sup = false;
	if (b->len == 0)
		return 0;
	size_t start = 0, end = b->len;
	if (kind == HTMLTEXT_PRE) {
		/* drop leading blank lines and trailing whitespace; keep the first line's indentation */
		size_t i = 0;
		while (i < end) {
			size_t j = i;
			while (j < end && (b->p[j] == ' ' || b->p[j] == '\t'))
				j++;
			if (j < end && b->p[j] == '\n')
				i = j + 1;
			else
				break;
		}
		start = i;
		while (end > start && ht_is_space((unsigned char)b->p[end - 1]))
			end--;
	}
	if (end == start) {
		textbuf_clear(b);
		return 0;
	}
	if (st->page->nblocks == st->page->cap) {
		size_t cap = st->page->cap ? st->page->cap * 2 : 32;
		struct htmltext_block *v = realloc(st->page->blocks, cap * sizeof(*v));
		if (!v)
			return ht_fail(st, (size_t)-1, "out of memory");
		st->page->blocks = v;
		st->page->cap = cap;
	}
	char *text = malloc(end - start + 1);
	if (!text)
		return ht_fail(st, (size_t)-1, "out of memory");
	memcpy(text, b->p + start, end - start);
	text[end - start] = '\0';
	struct htmltext_block *blk = &st->page->blocks[st->page->nblocks++];
	blk->kind = kind;
	blk->level = kind == HTMLTEXT_HEADING ? st->cur_level : 0;
	blk->text = text;
	blk->words = htmltext_count_words(text, end - start);
	if (kind == HTMLTEXT_HEADING && !st->first_heading) {
		st->first_heading = strdup(text);
		if (!st->first_heading)
			return ht_fail(st, (size_t)-1, "out of memory");
	}
	textbuf_clear(b);
	return 0;
}

/* A run of text t[0..n) at offset off; raw: CDATA, no references. */
static int ht_text(struct ht_state *st, size_t off, const char *t, size_t n, bool raw)
{
	if (n == 0 || st->skip > 0 || (st->head > 0 && st->title == 0))
		return 0;
	if (st->title > 0 && st->title_done)
		return 0;
	textbuf_clear(&st->decoded);
	if (raw) {
		if (textbuf_append(&st->decoded, t, n) < 0)
			return ht_fail(st, (size_t)-1, "out of memory");
	} else {
		const char *reason = NULL;
		size_t at = 0;
		if (entity_decode(t, n, &st->decoded, &reason, &at) < 0)
			return ht_fail(st, off + at, reason);
	}
	const char *d = st->decoded.p ? st->decoded.p : "";
	size_t dn = st->decoded.len;
	int rc;
	/* every change of kind (a heading, pre, an aside opening or closing) ends the block first, so
	 * the kind of its first text is the kind of all of it */
	if (st->cur.len == 0) {
		st->cur_kind = st->heading && !st->aside ? HTMLTEXT_HEADING : st->pre ? HTMLTEXT_PRE : HTMLTEXT_PARA;
		st->cur_level = st->cur_kind == HTMLTEXT_HEADING ? st->heading_level : 0;
	}
	if (st->sup && st->title == 0) {
		st->sup = false;
		if (dn > 0 && d[0] != '[' && !ht_is_space((unsigned char)d[0]) && st->cur.len > 0 && !st->cur_space &&
		    textbuf_putc(&st->cur, '^') < 0)
			return ht_fail(st, (size_t)-1, "out of memory");
	}
	if (st->title > 0)
		rc = ht_append_prose(&st->title_buf, &st->title_space, d, dn);
	else if (st->cur_kind == HTMLTEXT_PRE)
		rc = ht_append_code(&st->cur, d, dn);
	else
		rc = ht_append_prose(&st->cur, &st->cur_space, d, dn);
	return rc < 0 ? ht_fail(st, (size_t)-1, "out of memory") : 0;
}

static const struct ht_tag *ht_lookup(const char *name)
{
	size_t lo = 0, hi = sizeof(ht_tags) / sizeof(ht_tags[0]);
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(name, ht_tags[mid].name);
		if (c == 0)
			return &ht_tags[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* Pop the open elements from the top down to index i (inclusive), ending the block first when one of
 * them is a block. */
static int ht_pop_to(struct ht_state *st, size_t i)
{
	bool block = false;
	for (size_t k = i; k < st->depth; k++)
		if (st->stack[k].flags & (HT_BLOCK | HT_PRE | HT_HEADING))
			block = true;
	if (block && ht_flush(st) < 0)   /* also when closing from inside dropped content */
		return -1;
	while (st->depth > i) {
		const struct ht_open *o = &st->stack[--st->depth];
		if (o->flags & HT_SKIP)
			st->skip--;
		if (o->flags & HT_HEAD)
			st->head--;
		if (o->flags & HT_TITLE) {
			st->title--;
			if (st->title == 0 && st->title_buf.len > 0)
				st->title_done = true;
		}
		if (o->flags & HT_PRE)
			st->pre--;
		if (o->flags & HT_ASIDE)
			st->aside--;
		if (o->flags & HT_HEADING) {
			st->heading--;
			if (st->heading == 0)
				st->heading_level = 0;
		}
	}
	return 0;
}

static int ht_close(struct ht_state *st, const char *name)
{
	for (size_t i = st->depth; i-- > 0;)
		if (strcmp(st->stack[i].name, name) == 0)
			return ht_pop_to(st, i);
	return 0;   /* an end tag that matches nothing: ignored, as browsers do */
}

static int ht_open(struct ht_state *st, size_t off, const char *name, unsigned class_flags, bool selfclose)
{
	const struct ht_tag *t = ht_lookup(name);
	unsigned flags = t ? t->flags : 0;
	flags |= class_flags;
	if ((flags & HT_AUTOCLOSE) && st->depth > 0 && strcmp(st->stack[st->depth - 1].name, name) == 0 &&
	    ht_pop_to(st, st->depth - 1) < 0)
		return -1;
	if (flags & HT_BODY) {   /* an unclosed <head> ends at <body> */
		for (size_t i = st->depth; i-- > 0;)
			if (st->stack[i].flags & HT_HEAD) {
				if (ht_pop_to(st, i) < 0)
					return -1;
				break;
			}
	}
	if (st->skip == 0) {
		if ((flags & (HT_BLOCK | HT_PRE | HT_HEADING)) && ht_flush(st) < 0)
			return -1;
		if (flags & HT_CELL)
			st->cur_space = true;
		if (flags & HT_SUP)
			st->sup = true;
		if (flags & HT_BREAK) {
			if (st->cur.len > 0 && st->cur_kind == HTMLTEXT_PRE) {   /* a leading one would be trimmed */
				if (textbuf_putc(&st->cur, '\n') < 0)
					return ht_fail(st, (size_t)-1, "out of memory");
			} else {
				st->cur_space = true;
			}
		}
	}
	if ((flags & HT_VOID) || selfclose)
		return 0;
	if (st->depth == HTMLTEXT_MAX_DEPTH) {
		char msg[96];
		snprintf(msg, sizeof(msg), "elements nested deeper than %d", HTMLTEXT_MAX_DEPTH);
		return ht_fail(st, off, msg);
	}
	struct ht_open *o = &st->stack[st->depth++];
	snprintf(o->name, sizeof(o->name), "%s", name);
	o->flags = flags;
	o->level = 0;
	if (flags & HT_SKIP)
		st->skip++;
	if (flags & HT_HEAD)
		st->head++;
	if (flags & HT_TITLE)
		st->title++;
	if (flags & HT_PRE)
		st->pre++;
	if (flags & HT_ASIDE)
		st->aside++;
	if (flags & HT_HEADING) {
		if (st->heading++ == 0)
			st->heading_level = name[1] - '0';
	}
	return 0;
}

/* Read a tag name at s[i..) into name (lowercased, truncated to fit); returns the index after it. */
static size_t ht_name(const struct ht_state *st, size_t i, char name[HT_NAME_MAX])
{
	size_t k = 0;
	while (i < st->len) {
		unsigned char c = (unsigned char)st->src[i];
		if (!(ht_is_alpha(c) || (c >= '0' && c <= '9') || c == '-' || c == ':' || c == '_' || c == '.'))
			break;
		if (k + 1 < HT_NAME_MAX)
			name[k++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
		i++;
	}
	name[k] = '\0';
	return i;
}

/* A start tag at st->src[lt] ('<' then a letter). Returns the index after its '>', or 0 on error. */
static size_t ht_start_tag(struct ht_state *st, size_t lt)
{
	const char *s = st->src;
	char name[HT_NAME_MAX];
	size_t i = ht_name(st, lt + 1, name);
	unsigned class_flags = 0;
	bool selfclose = false;
	while (i < st->len) {
		unsigned char c = (unsigned char)s[i];
		if (ht_is_space(c)) {
			i++;
			continue;
		}
		if (c == '>')
			break;
		if (c == '/') {
			selfclose = true;
			i++;
			continue;
		}
		selfclose = false;
		size_t an = i;
		while (i < st->len && !ht_is_space((unsigned char)s[i]) && s[i] != '>' && s[i] != '=' && s[i] != '/')
			i++;
		if (i == an)   /* a lone '=' */
			i++;
		size_t alen = i - an;
		while (i < st->len && ht_is_space((unsigned char)s[i]))
			i++;
		if (i >= st->len || s[i] != '=')
			continue;
		i++;
		while (i < st->len && ht_is_space((unsigned char)s[i]))
			i++;
		size_t vs, ve;
		if (i < st->len && (s[i] == '"' || s[i] == '\'')) {
			const char *q = memchr(s + i + 1, s[i], st->len - i - 1);
			if (!q) {
				i = st->len;   /* an unterminated value: reported below */
				break;
			}
			vs = i + 1;
			ve = (size_t)(q - s);
			i = ve + 1;
		} else {
			vs = i;
			while (i < st->len && !ht_is_space((unsigned char)s[i]) && s[i] != '>')
				i++;
			ve = i;
		}
		if (alen == 5 && strncasecmp(s + an, "class", 5) == 0) {
			size_t k = vs;
			while (k < ve) {
				while (k < ve && ht_is_space((unsigned char)s[k]))
					k++;
				size_t ws = k;
				while (k < ve && !ht_is_space((unsigned char)s[k]))
					k++;
				if (k > ws && ht_chrome_class(s + ws, k - ws))
					class_flags |= HT_SKIP;
				if (k > ws && ht_aside_class(s + ws, k - ws))
					class_flags |= HT_ASIDE;
			}
		}
	}
	if (i >= st->len) {
		ht_fail(st, lt, "unterminated tag");
		return 0;
	}
	if (ht_open(st, lt, name, class_flags, selfclose) < 0)
		return 0;
	return i + 1;
}

/* Find the NUL-terminated needle in st->src from i; the offset or (size_t)-1. */
static size_t ht_find(const struct ht_state *st, size_t i, const char *needle)
{
	size_t nl = strlen(needle);
	if (i > st->len)
		return (size_t)-1;
	const char *p = memmem(st->src + i, st->len - i, needle, nl);
	return p ? (size_t)(p - st->src) : (size_t)-1;
}

static int ht_scan(struct ht_state *st)
{
	const char *s = st->src;
	size_t p = 0, n = st->len;
	if (n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
		p = 3;
	while (p < n) {
		const char *ltp = memchr(s + p, '<', n - p);
		size_t lt = ltp ? (size_t)(ltp - s) : n;
		if (ht_text(st, p, s + p, lt - p, false) < 0)
			return -1;
		if (lt >= n)
			break;
		size_t rest = n - lt, e;
		if (rest >= 4 && memcmp(s + lt, "<!--", 4) == 0) {
			if ((e = ht_find(st, lt + 4, "-->")) == (size_t)-1)
				return ht_fail(st, lt, "unterminated comment");
			p = e + 3;
		} else if (rest >= 9 && memcmp(s + lt, "<![CDATA[", 9) == 0) {
			if ((e = ht_find(st, lt + 9, "]]>")) == (size_t)-1)
				return ht_fail(st, lt, "unterminated CDATA section");
			if (ht_text(st, lt + 9, s + lt + 9, e - lt - 9, true) < 0)
				return -1;
			p = e + 3;
		} else if (rest >= 2 && (s[lt + 1] == '!' || s[lt + 1] == '?')) {
			if ((e = ht_find(st, lt + 2, ">")) == (size_t)-1)
				return ht_fail(st, lt, "unterminated declaration");
			p = e + 1;
		} else if (rest >= 3 && s[lt + 1] == '/' && ht_is_alpha((unsigned char)s[lt + 2])) {
			char name[HT_NAME_MAX];
			ht_name(st, lt + 2, name);
			if ((e = ht_find(st, lt + 2, ">")) == (size_t)-1)
				return ht_fail(st, lt, "unterminated end tag");
			if (ht_close(st, name) < 0)
				return -1;
			p = e + 1;
		} else if (rest >= 2 && ht_is_alpha((unsigned char)s[lt + 1])) {
			if ((p = ht_start_tag(st, lt)) == 0)
				return -1;
		} else {   /* a '<' that starts no markup is text */
			if (ht_text(st, lt, s + lt, 1, false) < 0)
				return -1;
			p = lt + 1;
		}
	}
	/* end of input closes what is open and ends the last block */
	if (ht_pop_to(st, 0) < 0)
		return -1;
	return ht_flush(st);
}

void htmltext_page_free(struct htmltext_page *page)
{
	for (size_t i = 0; i < page->nblocks; i++)
		free(page->blocks[i].text);
	free(page->blocks);
	free(page->title);
	memset(page, 0, sizeof(*page));
}

int htmltext_parse(const char *html, size_t len, struct htmltext_page *page, struct htmltext_error *err)
{
	memset(page, 0, sizeof(*page));
	memset(err, 0, sizeof(*err));
	struct ht_state *st = calloc(1, sizeof(*st));
	if (!st) {
		snprintf(err->msg, sizeof(err->msg), "out of memory");
		return -1;
	}
	st->src = html;
	st->len = len;
	st->page = page;
	st->err = err;
	int rc = -1;
	if (len > HTMLTEXT_MAX_BYTES) {
		snprintf(err->msg, sizeof(err->msg), "larger than the limit of %u bytes (%zu bytes)",
		         HTMLTEXT_MAX_BYTES, len);
		goto out;
	}
	const char *nul = len ? memchr(html, '\0', len) : NULL;   /* html may be NULL when len is 0 */
	if (nul) {
		ht_fail(st, (size_t)(nul - html), "a NUL byte (not a text file)");
		goto out;
	}
	size_t ok = util_utf8_prefix(html, len);
	if (ok < len) {
		char msg[96];
		snprintf(msg, sizeof(msg), "invalid UTF-8 at byte offset %zu", ok);
		ht_fail(st, ok, msg);
		goto out;
	}
	if (ht_scan(st) < 0)
		goto out;
	if (st->title_buf.len > 0) {
		page->title = textbuf_take(&st->title_buf);
	} else if (st->first_heading) {
		page->title = st->first_heading;
		st->first_heading = NULL;
	} else {
		ht_fail(st, (size_t)-1, "no title: neither a <title> nor a heading with text");
		goto out;
	}
	if (!page->title) {
		ht_fail(st, (size_t)-1, "out of memory");
		goto out;
	}
	rc = 0;
out:
	if (rc < 0)
		htmltext_page_free(page);
	textbuf_free(&st->cur);
	textbuf_free(&st->title_buf);
	textbuf_free(&st->decoded);
	free(st->first_heading);
	free(st);
	return rc;
}
