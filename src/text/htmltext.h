/* SPDX-License-Identifier: PostgreSQL */
/* htmltext.h - one HTML page to its title and a sequence of text blocks (headings, paragraphs, code). */
#ifndef NP_HTMLTEXT_H
#define NP_HTMLTEXT_H

#include <stddef.h>

/* Pages larger than this are refused (the PostgreSQL 15 manual's largest is 435 KiB). */
#define HTMLTEXT_MAX_BYTES (4u << 20)
/* Open elements deeper than this are refused (the manual nests at most about 20). */
#define HTMLTEXT_MAX_DEPTH 256

enum htmltext_kind {
	HTMLTEXT_HEADING,   /* <h1>..<h6>; level 1..6 */
	HTMLTEXT_PARA,      /* prose: whitespace runs collapsed to one space, no newline */
	HTMLTEXT_PRE,       /* <pre>: line breaks and indentation kept, no leading or trailing blank line */
};

struct htmltext_block {
	enum htmltext_kind kind;
	int level;          /* heading level, 0 for the others */
	char *text;         /* valid UTF-8, non-empty; no control character except '\n' and '\t' in PRE */
	size_t words;       /* whitespace-separated words */
};

struct htmltext_page {
	char *title;        /* <title>, else the first heading; whitespace-normalised, non-empty */
	struct htmltext_block *blocks;
	size_t nblocks;
	size_t cap;
};

struct htmltext_error {
	size_t line;        /* 1-based line of the input where it went wrong, 0 when it is about the whole page */
	char msg[160];      /* short, lowercase, factual */
};

/* Parse html[0..len) (UTF-8). Text inside <head> other than the title, <script>, <style>, <nav>,
 * and elements whose class is navigation chrome (DocBook's navheader, navfooter, toc,
 * list-of-tables/-figures/-examples..., the generated back-of-book index) is dropped; block
 * elements (p, div, li, dt, dd, tr, table, blockquote, ...) end a paragraph; character
 * references are decoded.
 * Returns 0 with *page filled (free it with htmltext_page_free), or -1 with *err filled and *page
 * empty: larger than HTMLTEXT_MAX_BYTES, invalid UTF-8, a NUL byte, an invalid numeric character
 * reference, an unterminated tag or comment, elements nested deeper than HTMLTEXT_MAX_DEPTH, no
 * title, or out of memory. */
__attribute__((warn_unused_result))
int htmltext_parse(const char *html, size_t len, struct htmltext_page *page, struct htmltext_error *err);

void htmltext_page_free(struct htmltext_page *page);

/* Whitespace-separated words in s[0..n) (space, tab, newline, CR, FF, VT). */
size_t htmltext_count_words(const char *s, size_t n);

#endif
