/* SPDX-License-Identifier: PostgreSQL */
/* ask_text.h - the text of an answer: the [n] citation markers it uses, and the extractive
 * answer of retrieval mode built from the passages' best sentences. Pure (cJSON only). */
#ifndef NP_ASK_TEXT_H
#define NP_ASK_TEXT_H

#include <stddef.h>

struct cJSON;

/* The citation numbers text cites as [n] with 1 <= n <= k, ascending, each once, into out (cap
 * entries at most). A marker may list several: [1, 3] and [1][3] both cite 1 and 3. Returns how
 * many. */
size_t ask_cites_used(const char *text, int k, int *out, size_t cap);

/* The used numbers as a PostgreSQL int[] literal "{1,3}" into buf. -1 when buf is too small. */
int ask_cites_pg_array(const int *used, size_t n, char *buf, size_t cap);

/* Retrieval mode: the pieces of an extractive answer (a cJSON array of strings, each one sentence
 * followed by " [n]" and a space), from sentences: [{n, sentence, score}] best first, as
 * np_ask_begin() returns them. At most max_pieces sentences, at most per_passage from one
 * passage, none twice; whitespace runs become one space. With no sentence, the snippets of the
 * first citations ([{n, snippet}]) stand in; with neither, one piece saying nothing was found.
 * NULL when out of memory. */
struct cJSON *ask_extract(const struct cJSON *sentences, const struct cJSON *citations, int max_pieces,
                          int per_passage);

#endif
