/* SPDX-License-Identifier: PostgreSQL */
/* fuzz_html.c - libFuzzer target: the text library (HTML page to blocks, blocks to passages) on any
 * bytes. Checks the library's promises, not just "no crash": valid UTF-8 out, normalised prose, word
 * counts that match, every passage within its bounds. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "htmltext.h"
#include "util.h"
#include "passage.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_text(const char *s, bool code)
{
	size_t n = strlen(s);
	if (n == 0 || util_utf8_prefix(s, n) != n)
		abort();
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (code ? (c < 0x20 && c != '\n' && c != '\t') || c == 0x7F : c < 0x20 || c == 0x7F)
			abort();
		if (!code && c == ' ' && (i == 0 || i + 1 == n || s[i + 1] == ' '))
			abort();   /* prose: no leading, trailing or double space */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* the first byte chooses the passage bounds, so small ones are explored too */
	size_t min = 80, max = 300;
	if (size >= 1) {
		max = 1 + (data[0] & 0x3f);
		min = 1 + (data[0] >> 6) * max / 4;
		if (min > max)
			min = max;
		data++;
		size--;
	}
	/* a copy of exactly size bytes, so that ASan sees any read past the end */
	char *buf = size ? malloc(size) : NULL;
	if (size && !buf)
		return 0;
	if (size)
		memcpy(buf, data, size);
	struct htmltext_page page;
	struct htmltext_error err;
	if (htmltext_parse(buf, size, &page, &err) < 0) {
		if (err.msg[0] == '\0' || page.nblocks != 0 || page.title != NULL)
			abort();
		free(buf);
		return 0;
	}
	check_text(page.title, false);
	size_t total = 0;
	for (size_t i = 0; i < page.nblocks; i++) {
		const struct htmltext_block *b = &page.blocks[i];
		check_text(b->text, b->kind == HTMLTEXT_PRE);
		if (b->words == 0 || b->words != htmltext_count_words(b->text, strlen(b->text)))
			abort();
		if ((b->kind == HTMLTEXT_HEADING) != (b->level >= 1 && b->level <= 6))
			abort();
		if (b->kind != HTMLTEXT_HEADING)
			total += b->words;
	}
	struct passage_list l = { 0 };
	if (passage_split(&page, min, max, &l) < 0)
		abort();   /* only out of memory may fail, and the fuzzer's inputs are small */
	size_t sum = 0;
	for (size_t i = 0; i < l.n; i++) {
		const struct passage *p = &l.v[i];
		size_t bn = strlen(p->body);
		if (p->words < 1 || p->words > max || p->words != htmltext_count_words(p->body, bn))
			abort();
		if (util_utf8_prefix(p->body, bn) != bn || util_utf8_prefix(p->heading, strlen(p->heading)) != strlen(p->heading))
			abort();
		sum += p->words;
	}
	/* no word of a paragraph or of code is lost (headings may be a passage's heading, not in its body) */
	if (sum < total)
		abort();
	passage_list_free(&l);
	htmltext_page_free(&page);
	free(buf);
	return 0;
}
