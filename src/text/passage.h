/* SPDX-License-Identifier: PostgreSQL */
/* passage.h - a page's blocks cut into passages of a size fit for retrieval, each under its heading. */
#ifndef NP_PASSAGE_H
#define NP_PASSAGE_H

#include <stddef.h>

#include "htmltext.h"

/* The sizes `neonpoolctl import` uses, in words. */
#define PASSAGE_MIN_WORDS 80
#define PASSAGE_MAX_WORDS 300

struct passage {
	char *heading;   /* the section heading the passage belongs to, "" when none */
	char *body;      /* paragraphs separated by a blank line; code keeps its line breaks */
	size_t words;    /* words of body */
};

struct passage_list {
	struct passage *v;
	size_t n;
	size_t cap;
};

/* Cut page's blocks into passages of at most max_words words (1 ≤ min_words ≤ max_words):
 * - a heading starts a new passage and becomes its heading when the current passage has at least
 *   min_words words; a heading that arrives earlier is kept in the body as a line of its own;
 * - a passage is ended before a paragraph, sentence or code line that would take it over max_words,
 *   once it has min_words; below that, the sentence (or line) is cut at a word boundary to fill it;
 * - a paragraph is cut between sentences, code between lines, a single over-long sentence or line
 *   between words; nothing is cut inside a word, so every body is valid UTF-8 when the blocks are;
 * - a last passage under min_words joins the one before when the two fit in max_words.
 * So every passage has 1..max_words words, and fewer than min_words only at the end of a page or
 * before a unit that could not be joined. Appends to *out. Returns 0, or -1 when out of memory or
 * the sizes are invalid (*out keeps what was appended before; free it with passage_list_free). */
__attribute__((warn_unused_result))
int passage_split(const struct htmltext_page *page, size_t min_words, size_t max_words, struct passage_list *out);

void passage_list_free(struct passage_list *l);

#endif
