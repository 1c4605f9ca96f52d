/* SPDX-License-Identifier: PostgreSQL */
/* test_text.c - the text library: entity decoding, HTML to blocks, blocks to passages (invalid inputs first). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "entity.h"
#include "htmltext.h"
#include "passage.h"
#include "textbuf.h"

/* ---- entities ---- */

/* Decode s; returns the result (static) or NULL on error, with the reason in *why. */
static const char *decode(const char *s, const char **why)
{
	static char out[256];
	struct textbuf b = { 0 };
	size_t at = 0;
	*why = NULL;
	if (entity_decode(s, strlen(s), &b, why, &at) < 0) {
		textbuf_free(&b);
		return NULL;
	}
	snprintf(out, sizeof(out), "%s", b.p ? b.p : "");
	textbuf_free(&b);
	return out;
}

static void test_entity_invalid(void **state)
{
	const char *why;
	assert_null(decode("a&#0;b", &why));
	assert_string_equal(why, "numeric character reference to NUL");
	assert_null(decode("&#x0;", &why));
	assert_null(decode("&#xD800;", &why));                          /* surrogate */
	assert_string_equal(why, "numeric character reference to a surrogate (U+D800-U+DFFF)");
	assert_null(decode("&#57343;", &why));                          /* U+DFFF */
	assert_null(decode("&#x110000;", &why));
	assert_string_equal(why, "numeric character reference beyond U+10FFFF");
	assert_null(decode("&#1114112;", &why));                        /* 0x110000 in decimal */
	assert_null(decode("&#x123456789;", &why));                     /* 9 digits */
	assert_string_equal(why, "numeric character reference with more than 8 digits");
	assert_null(decode("&#99999999999999999999;", &why));           /* would overflow */
	assert_null(decode("&#1;", &why));                              /* C0 control */
	assert_string_equal(why, "numeric character reference to a control character");
	assert_null(decode("&#x7f;", &why));
	assert_null(decode("&#x85;", &why));                            /* C1 control */
	/* the offset of the bad reference */
	struct textbuf b = { 0 };
	size_t at = 99;
	assert_int_equal(entity_decode("abc&#0;", 7, &b, &why, &at), -1);
	assert_int_equal(at, 3);
	textbuf_free(&b);
}

static void test_entity_left_as_text(void **state)
{
	const char *why;
	/* not references: kept as they are, as browsers do */
	assert_string_equal(decode("a & b", &why), "a & b");
	assert_string_equal(decode("&", &why), "&");
	assert_string_equal(decode("&amp", &why), "&amp");              /* no ';' */
	assert_string_equal(decode("&nosuchname;", &why), "&nosuchname;");
	assert_string_equal(decode("&#;", &why), "&#;");
	assert_string_equal(decode("&#x;", &why), "&#x;");
	assert_string_equal(decode("&#12", &why), "&#12");
	assert_string_equal(decode("&#xZZ;", &why), "&#xZZ;");
	assert_string_equal(decode("&;", &why), "&;");
	assert_string_equal(decode("&AMP;", &why), "&AMP;");            /* names are case-sensitive */
}

static void test_entity_decoded(void **state)
{
	const char *why;
	assert_string_equal(decode("", &why), "");
	assert_string_equal(decode("plain", &why), "plain");
	assert_string_equal(decode("&lt;a&gt; &amp;&amp; &quot;q&quot; &apos;", &why), "<a> && \"q\" '");
	assert_string_equal(decode("&nbsp;", &why), "\xc2\xa0");
	assert_string_equal(decode("&copy; &mdash; &hellip; &euro;", &why), "\xc2\xa9 \xe2\x80\x94 \xe2\x80\xa6 \xe2\x82\xac");
	assert_string_equal(decode("&Eacute;&eacute;", &why), "\xc3\x89\xc3\xa9");
	assert_string_equal(decode("&#65;&#x42;&#X43;", &why), "ABC");
	assert_string_equal(decode("&#10;&#9;&#13;", &why), "\n\t\r");
	assert_string_equal(decode("&#233;", &why), "\xc3\xa9");
	assert_string_equal(decode("&#x20AC;", &why), "\xe2\x82\xac");
	assert_string_equal(decode("&#x1F600;", &why), "\xf0\x9f\x98\x80");
	assert_string_equal(decode("&#x10FFFF;", &why), "\xf4\x8f\xbf\xbf");
	assert_string_equal(decode("&#x0000041;", &why), "A");          /* leading zeros, 8 digits */
	assert_string_equal(decode("&amp;lt;", &why), "&lt;");          /* one level only */
	char out[4];
	assert_int_equal(entity_utf8_encode(0xD800, out), 0);
	assert_int_equal(entity_utf8_encode(0x110000, out), 0);
	assert_int_equal(entity_utf8_encode(0x7FF, out), 2);
	assert_int_equal(entity_utf8_encode(0xFFFF, out), 3);
}

/* ---- HTML pages ---- */

static int parse(const char *html, struct htmltext_page *p, struct htmltext_error *e)
{
	return htmltext_parse(html, strlen(html), p, e);
}

static void test_html_invalid(void **state)
{
	struct htmltext_page p;
	struct htmltext_error e;
	assert_int_equal(htmltext_parse("<title>a\0b</title>", 18, &p, &e), -1);
	assert_string_equal(e.msg, "a NUL byte (not a text file)");
	assert_int_equal(parse("<title>x</title>\n<p>\xff</p>", &p, &e), -1);
	assert_int_equal(e.line, 2);
	assert_non_null(strstr(e.msg, "invalid UTF-8 at byte offset 20"));
	assert_int_equal(parse("<title>\xc0\xaf</title>", &p, &e), -1);     /* overlong */
	assert_int_equal(parse("<title>\xed\xa0\x80</title>", &p, &e), -1); /* surrogate */
	assert_int_equal(parse("<title>\xe2\x82</title>", &p, &e), -1);     /* truncated */
	assert_int_equal(parse("<title>x</title>\n\n<p class=\"a", &p, &e), -1);
	assert_string_equal(e.msg, "unterminated tag");
	assert_int_equal(e.line, 3);
	assert_int_equal(parse("<title>x</title><p", &p, &e), -1);
	assert_int_equal(parse("<title>x</title></p", &p, &e), -1);
	assert_string_equal(e.msg, "unterminated end tag");
	assert_int_equal(parse("<title>x</title><!-- never closed", &p, &e), -1);
	assert_string_equal(e.msg, "unterminated comment");
	assert_int_equal(parse("<title>x</title><![CDATA[ open", &p, &e), -1);
	assert_int_equal(parse("<title>x</title><!DOCTYPE", &p, &e), -1);
	assert_int_equal(parse("<title>x</title><p>&#0;</p>", &p, &e), -1);
	assert_string_equal(e.msg, "numeric character reference to NUL");
	assert_int_equal(parse("", &p, &e), -1);
	assert_non_null(strstr(e.msg, "no title"));
	assert_int_equal(parse("<p>only text</p>", &p, &e), -1);
	assert_int_equal(parse("<title> \n </title><p>x</p>", &p, &e), -1);   /* blank title */
	/* nesting */
	char *deep = malloc((HTMLTEXT_MAX_DEPTH + 1) * 5 + 64);
	assert_non_null(deep);
	strcpy(deep, "<title>x</title>");
	for (int i = 0; i < HTMLTEXT_MAX_DEPTH; i++)
		strcat(deep, "<div>");
	assert_int_equal(parse(deep, &p, &e), 0);                         /* the limit itself is fine */
	htmltext_page_free(&p);
	strcat(deep, "<div>");
	assert_int_equal(parse(deep, &p, &e), -1);
	assert_non_null(strstr(e.msg, "nested deeper"));
	free(deep);
	/* size */
	size_t big = HTMLTEXT_MAX_BYTES + 1;
	char *huge = malloc(big);
	assert_non_null(huge);
	memset(huge, 'a', big);
	assert_int_equal(htmltext_parse(huge, big, &p, &e), -1);
	assert_non_null(strstr(e.msg, "larger than the limit"));
	free(huge);
	assert_null(p.title);
	assert_int_equal(p.nblocks, 0);
}

static void test_html_blocks(void **state)
{
	struct htmltext_page p;
	struct htmltext_error e;
	const char *html =
		"<?xml version=\"1.0\"?><!DOCTYPE html><html><head><meta charset=\"utf-8\"/>"
		"<title>25.1. Routine\n  Vacuuming</title><style>p { x: 1 }</style><script>var a = '<p>';</script></head>"
		"<body><div class=\"navheader\"><table><tr><td><a href=\"a.html\">Prev</a></td></tr></table></div>"
		"<div class=\"sect1\"><h2 class=\"title\">25.1. Routine   Vacuuming</h2>"
		"<div class=\"toc\"><dl><dt><a href=\"#x\">25.1.1. Basics</a></dt></dl></div>"
		"<p>\n   <span class=\"productname\">PostgreSQL</span> databases&nbsp;need <em>vacuuming</em>.\n  A &lt; B &amp;&amp; C.</p>"
		"<!-- a comment <p>not text</p> -->"
		"<pre class=\"programlisting\">\nBEGIN;\n    SELECT 1 &lt; 2;\r\nCOMMIT;\n\n</pre>"
		"<div class=\"note\"><h3 class=\"title\">Note</h3><p>Careful.</p></div>"
		"<ul><li>one</li><li>two<li>three</ul><table><tr><td>a</td><td>b</td></tr></table>"
		"x<br/>y <![CDATA[a<b]]> 1 < 2"
		"</div><div class=\"navfooter\"><hr/>Home</div></body></html>";
	assert_int_equal(parse(html, &p, &e), 0);
	assert_string_equal(p.title, "25.1. Routine Vacuuming");
	const char *want[][2] = {
		{ "H", "25.1. Routine Vacuuming" },
		{ "P", "PostgreSQL databases need vacuuming. A < B && C." },
		{ "C", "BEGIN;\n    SELECT 1 < 2;\nCOMMIT;" },
		{ "P", "Note" },                       /* an admonition's title is not a section */
		{ "P", "Careful." },
		{ "P", "one" }, { "P", "two" }, { "P", "three" },
		{ "P", "a b" },
		{ "P", "x y a<b 1 < 2" },
	};
	size_t n = sizeof(want) / sizeof(want[0]);
	for (size_t i = 0; i < p.nblocks && i < n; i++) {
		enum htmltext_kind k = want[i][0][0] == 'H' ? HTMLTEXT_HEADING : want[i][0][0] == 'C' ? HTMLTEXT_PRE : HTMLTEXT_PARA;
		assert_string_equal(p.blocks[i].text, want[i][1]);
		assert_int_equal(p.blocks[i].kind, k);
	}
	assert_int_equal(p.nblocks, n);
	assert_int_equal(p.blocks[0].level, 2);
	assert_int_equal(p.blocks[1].words, 9);
	htmltext_page_free(&p);

	/* the first heading stands in for a missing <title>; a BOM and unknown tags are fine */
	assert_int_equal(parse("\xef\xbb\xbf<h1>Only <b>a</b> heading</h1><custom-tag>t</custom-tag></nosuch>", &p, &e), 0);
	assert_string_equal(p.title, "Only a heading");
	assert_int_equal(p.nblocks, 2);
	assert_string_equal(p.blocks[1].text, "t");
	htmltext_page_free(&p);
	/* control characters become spaces; quoted '>' inside an attribute does not end the tag */
	assert_int_equal(parse("<title>t</title><p title=\"a > b\">x\x01y\x1f z</p>", &p, &e), 0);
	assert_int_equal(p.nblocks, 1);
	assert_string_equal(p.blocks[0].text, "x y z");
	htmltext_page_free(&p);
	/* a superscript number reads as a power; a footnote mark stays as it is */
	assert_int_equal(parse("<title>t</title><p>2<sup>32</sup> and x <sup>2</sup> and note<sup>[1]</sup></p>", &p, &e), 0);
	assert_string_equal(p.blocks[0].text, "2^32 and x 2 and note[1]");
	htmltext_page_free(&p);
	assert_int_equal(htmltext_count_words("  a b\n\tc  ", 10), 3);
	assert_int_equal(htmltext_count_words("", 0), 0);
}

/* ---- passages ---- */

/* A page of the given blocks: "H:text" heading, "C:text" code, anything else a paragraph. */
static void page_of(struct htmltext_page *p, const char *const *blocks, size_t n)
{
	memset(p, 0, sizeof(*p));
	p->title = strdup("t");
	p->blocks = calloc(n ? n : 1, sizeof(p->blocks[0]));
	assert_non_null(p->blocks);
	for (size_t i = 0; i < n; i++) {
		const char *s = blocks[i];
		enum htmltext_kind k = HTMLTEXT_PARA;
		if (strncmp(s, "H:", 2) == 0 || strncmp(s, "C:", 2) == 0) {
			k = s[0] == 'H' ? HTMLTEXT_HEADING : HTMLTEXT_PRE;
			s += 2;
		}
		p->blocks[i] = (struct htmltext_block){ .kind = k, .level = k == HTMLTEXT_HEADING ? 2 : 0, .text = strdup(s),
		                                        .words = htmltext_count_words(s, strlen(s)) };
	}
	p->nblocks = p->cap = n;
}

/* n words "wN" (N from start), sentences of sentence words each (0: no full stop). */
static char *words(size_t n, size_t start, size_t sentence)
{
	char *s = malloc(n * 12 + 1);
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += (size_t)sprintf(s + k, "%sw%zu%s", i ? " " : "", start + i, sentence && (i + 1) % sentence == 0 ? "." : "");
	s[k] = '\0';
	return s;
}

static void check_list(const struct passage_list *l, size_t max)
{
	for (size_t i = 0; i < l->n; i++) {
		assert_true(l->v[i].words >= 1 && l->v[i].words <= max);
		assert_int_equal(l->v[i].words, htmltext_count_words(l->v[i].body, strlen(l->v[i].body)));
		assert_non_null(l->v[i].heading);
	}
}

static void test_passage_invalid(void **state)
{
	struct htmltext_page p;
	struct passage_list l = { 0 };
	const char *b[] = { "a b c" };
	page_of(&p, b, 1);
	assert_int_equal(passage_split(&p, 0, 10, &l), -1);        /* min 0 */
	assert_int_equal(passage_split(&p, 11, 10, &l), -1);       /* min > max */
	assert_int_equal(l.n, 0);
	htmltext_page_free(&p);
	/* an empty page: no passage */
	page_of(&p, NULL, 0);
	assert_int_equal(passage_split(&p, 80, 300, &l), 0);
	assert_int_equal(l.n, 0);
	htmltext_page_free(&p);
	/* only headings: no passage */
	const char *h[] = { "H:One", "H:Two" };
	page_of(&p, h, 2);
	assert_int_equal(passage_split(&p, 80, 300, &l), 0);
	assert_int_equal(l.n, 0);
	htmltext_page_free(&p);
}

static void test_passage_split(void **state)
{
	struct htmltext_page p;
	struct passage_list l = { 0 };

	/* sections: a heading starts a passage once the current one has min words */
	char *s1 = words(100, 0, 10), *s2 = words(50, 100, 10), *s3 = words(30, 150, 10);
	const char *b1[] = { "H:Intro", s1, "H:Small", s2, "H:Tiny", s3 };
	page_of(&p, b1, 6);
	assert_int_equal(passage_split(&p, 80, 300, &l), 0);
	check_list(&l, 300);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.v[0].heading, "Intro");
	assert_int_equal(l.v[0].words, 100);
	assert_string_equal(l.v[1].heading, "Small");
	/* "Tiny" came when "Small" had 50 < 80 words: it stays in the body, on its own line */
	assert_non_null(strstr(l.v[1].body, "\n\nTiny\n\nw150"));
	assert_int_equal(l.v[1].words, 81);
	passage_list_free(&l);
	htmltext_page_free(&p);

	/* a long paragraph is cut between sentences, never above max */
	char *big = words(1000, 0, 20);
	const char *b2[] = { "H:Long", big };
	page_of(&p, b2, 2);
	assert_int_equal(passage_split(&p, 80, 300, &l), 0);
	check_list(&l, 300);
	assert_int_equal(l.n, 4);
	for (size_t i = 0; i < l.n; i++) {
		assert_string_equal(l.v[i].heading, "Long");
		size_t len = strlen(l.v[i].body);
		assert_true(l.v[i].body[len - 1] == '.');          /* ends at a sentence */
	}
	assert_int_equal(l.v[0].words, 300);
	assert_int_equal(l.v[3].words, 100);
	passage_list_free(&l);
	htmltext_page_free(&p);

	/* one sentence of 700 words: cut between words; the last piece joins none (100 ≥ min) */
	char *run = words(700, 0, 0);
	const char *b3[] = { run };
	page_of(&p, b3, 1);
	assert_int_equal(passage_split(&p, 80, 300, &l), 0);
	check_list(&l, 300);
	assert_int_equal(l.n, 3);
	assert_int_equal(l.v[2].words, 100);
	assert_string_equal(l.v[0].heading, "");
	assert_true(strncmp(l.v[1].body, "w300 w301", 9) == 0);
	passage_list_free(&l);
	htmltext_page_free(&p);

	/* code keeps its lines; a short tail joins the passage before when both fit */
	const char *b4[] = { "H:Code", s1, "C:BEGIN;\n  SELECT 1;\n\n\nCOMMIT;", "H:End", "Last words." };
	page_of(&p, b4, 5);
	assert_int_equal(passage_split(&p, 80, 300, &l), 0);
	check_list(&l, 300);
	assert_int_equal(l.n, 1);
	assert_non_null(strstr(l.v[0].body, "w99.\n\nBEGIN;\n  SELECT 1;\n\nCOMMIT;\n\nEnd\n\nLast words."));
	passage_list_free(&l);
	htmltext_page_free(&p);

	/* a short first passage before a paragraph that does not fit is filled to max, then cut */
	char *s4 = words(20, 0, 0), *s5 = words(400, 20, 0);
	const char *b5[] = { s4, s5 };
	page_of(&p, b5, 2);
	assert_int_equal(passage_split(&p, 80, 300, &l), 0);
	check_list(&l, 300);
	assert_int_equal(l.n, 2);
	assert_int_equal(l.v[0].words, 300);
	assert_int_equal(l.v[1].words, 120);
	passage_list_free(&l);
	htmltext_page_free(&p);

	/* headings with nothing between them join */
	const char *b6[] = { "H:Chapter", "H:Section", "text" };
	page_of(&p, b6, 3);
	assert_int_equal(passage_split(&p, 80, 300, &l), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0].heading, "Chapter / Section");
	passage_list_free(&l);
	htmltext_page_free(&p);
	free(s1), free(s2), free(s3), free(s4), free(s5), free(big), free(run);
}

/* The parser and the splitter on a real page shape, end to end. */
static void test_page_to_passages(void **state)
{
	struct htmltext_page p;
	struct htmltext_error e;
	char *body = words(250, 0, 25);
	char html[8192];
	snprintf(html, sizeof(html), "<title>T</title><h2>Sec &amp; more</h2><p>%s</p><h3>Next</h3><p>%s</p>", body, body);
	assert_int_equal(parse(html, &p, &e), 0);
	struct passage_list l = { 0 };
	assert_int_equal(passage_split(&p, PASSAGE_MIN_WORDS, PASSAGE_MAX_WORDS, &l), 0);
	check_list(&l, PASSAGE_MAX_WORDS);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.v[0].heading, "Sec & more");
	assert_string_equal(l.v[1].heading, "Next");
	passage_list_free(&l);
	htmltext_page_free(&p);
	free(body);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_entity_invalid), cmocka_unit_test(test_entity_left_as_text),
		cmocka_unit_test(test_entity_decoded), cmocka_unit_test(test_html_invalid),
		cmocka_unit_test(test_html_blocks),    cmocka_unit_test(test_passage_invalid),
		cmocka_unit_test(test_passage_split),  cmocka_unit_test(test_page_to_passages),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
