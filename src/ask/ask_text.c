/* SPDX-License-Identifier: PostgreSQL */
/* ask_text.c - the text of an answer: its [n] citation markers, and retrieval mode's extractive
 * answer. */
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ask_text.h"

size_t ask_cites_used(const char *text, int k, int *out, size_t cap)
{
	/* a bitmap of the numbers seen; k is at most a few dozen */
	unsigned char seen[256] = { 0 };
	if (k > 255)
		k = 255;
	for (const char *p = text; p && *p; p++) {
		if (*p != '[')
			continue;
		/* [1], [1,3], [1, 3]: digits separated by commas and spaces, closed by ']' */
		const char *q = p + 1;
		int nums[16], nn = 0;
		bool ok = false;
		for (;;) {
			while (*q == ' ')
				q++;
			long v = 0;
			int digits = 0;
			while (*q >= '0' && *q <= '9' && digits < 4) {
				v = v * 10 + (*q - '0');
				q++;
				digits++;
			}
			if (digits == 0 || (*q >= '0' && *q <= '9'))
				break;
			if (nn < 16)
				nums[nn++] = (int)v;
			while (*q == ' ')
				q++;
			if (*q == ']') {
				ok = true;
				break;
			}
			if (*q != ',')
				break;
			q++;
		}
		if (!ok)
			continue;
		for (int i = 0; i < nn; i++)
			if (nums[i] >= 1 && nums[i] <= k)
				seen[nums[i]] = 1;
		p = q;
	}
	size_t n = 0;
	for (int i = 1; i <= k && n < cap; i++)
		if (seen[i])
			out[n++] = i;
	return n;
}

int ask_cites_pg_array(const int *used, size_t n, char *buf, size_t cap)
{
	size_t len = 0;
	if (cap < 3)
		return -1;
	buf[len++] = '{';
	for (size_t i = 0; i < n; i++) {
		int w = snprintf(buf + len, cap - len, "%s%d", i ? "," : "", used[i]);
		if (w < 0 || (size_t)w >= cap - len)
			return -1;
		len += (size_t)w;
	}
	if (len + 2 > cap)
		return -1;
	buf[len++] = '}';
	buf[len] = '\0';
	return 0;
}

/* s with whitespace runs as one space and no leading or trailing space; malloc'd. */
static char *ask_squeeze(const char *s)
{
	char *out = malloc(strlen(s) + 1), *o = out;
	if (!out)
		return NULL;
	bool space = false;
	for (; *s; s++) {
		if (strchr(" \t\r\n\f\v", *s)) {
			space = o != out;
			continue;
		}
		if (space)
			*o++ = ' ';
		space = false;
		*o++ = *s;
	}
	*o = '\0';
	return out;
}

/* Append "text [n] " to arr unless text is empty or already in arr. 0, 1 added, -1 no memory. */
static int ask_add_piece(cJSON *arr, const char *raw, int n)
{
	char *t = ask_squeeze(raw);
	if (!t)
		return -1;
	int rc = 0;
	if (t[0]) {
		size_t len = strlen(t) + 32;
		char *piece = malloc(len);
		bool dup = false;
		cJSON *it;
		if (piece) {
			snprintf(piece, len, "%s [%d] ", t, n);
			cJSON_ArrayForEach(it, arr)
				if (cJSON_IsString(it) && strcmp(it->valuestring, piece) == 0)
					dup = true;
			if (!dup)
				rc = cJSON_AddItemToArray(arr, cJSON_CreateString(piece)) ? 1 : -1;
			free(piece);
		} else {
			rc = -1;
		}
	}
	free(t);
	return rc;
}

cJSON *ask_extract(const cJSON *sentences, const cJSON *citations, int max_pieces, int per_passage)
{
	cJSON *arr = cJSON_CreateArray(), *it;
	if (!arr)
		return NULL;
	int count[256] = { 0 }, added = 0;
	cJSON_ArrayForEach(it, sentences)
	{
		if (added >= max_pieces)
			break;
		const cJSON *n = cJSON_GetObjectItemCaseSensitive(it, "n");
		const cJSON *s = cJSON_GetObjectItemCaseSensitive(it, "sentence");
		if (!cJSON_IsNumber(n) || !cJSON_IsString(s) || n->valueint < 1 || n->valueint > 255 ||
		    count[n->valueint] >= per_passage)
			continue;
		int rc = ask_add_piece(arr, s->valuestring, n->valueint);
		if (rc < 0)
			goto oom;
		count[n->valueint] += rc;
		added += rc;
	}
	if (added == 0)
		cJSON_ArrayForEach(it, citations)
		{
			if (added >= 2)
				break;
			const cJSON *n = cJSON_GetObjectItemCaseSensitive(it, "n");
			const cJSON *s = cJSON_GetObjectItemCaseSensitive(it, "snippet");
			if (!cJSON_IsNumber(n) || !cJSON_IsString(s) || n->valueint < 1 || n->valueint > 255)
				continue;
			int rc = ask_add_piece(arr, s->valuestring, n->valueint);
			if (rc < 0)
				goto oom;
			added += rc;
		}
	if (added == 0 && !cJSON_AddItemToArray(arr, cJSON_CreateString("The books have no passage about this question.")))
		goto oom;
	return arr;
oom:
	cJSON_Delete(arr);
	return NULL;
}
