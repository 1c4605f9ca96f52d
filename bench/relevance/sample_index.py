#!/usr/bin/env python3
# SPDX-License-Identifier: PostgreSQL
"""sample_index.py - the reference lookups of the relevance evaluation: the single-target entries of
the manual's back-of-book index (bookindex.html), a sample drawn with a fixed seed.

usage: sample_index.py BOOKINDEX_HTML [--seed N] [--count N] > lookups.tsv

An entry is a term of the index (a <dt>, with its parent term when it is a sub-entry, as
"parent, sub") whose links all point to one page: the page its editors chose for it. Entries
that only refer elsewhere ("see ...") have no link and are left out. Output: one line per
lookup, "query<TAB>page" (the page's file name). Python standard library only.
"""
import argparse
import html.parser
import random
import re
import sys


class IndexParser(html.parser.HTMLParser):
    """Collects (term path, [pages]) for every <dt> of the index."""

    def __init__(self):
        super().__init__()
        self.entries = []      # [(terms tuple, [page, ...])]
        self.stack = []        # the term of each open <dl> level
        self.depth = 0         # <dl> nesting inside the index
        self.cur = None        # the <dt> being read: [text parts, pages, in_link]
        self.in_index = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "div" and a.get("class") == "index":
            self.in_index = True
        if not self.in_index:
            return
        if tag == "dl":
            self.depth += 1
        elif tag == "dt":
            self.cur = [[], [], False]
        elif tag == "a" and self.cur is not None and a.get("class") == "indexterm":
            self.cur[1].append(a.get("href", "").split("#")[0])
            self.cur[2] = True

    def handle_endtag(self, tag):
        if not self.in_index:
            return
        if tag == "a" and self.cur is not None:
            self.cur[2] = False
        elif tag == "dt" and self.cur is not None:
            text = re.sub(r"\s+", " ", "".join(self.cur[0])).strip().rstrip(",").strip()
            text = re.sub(r"\s*\((see|see also)\b.*$", "", text)
            level = self.depth - 1
            del self.stack[level:]
            self.stack.append(text)
            self.entries.append((tuple(self.stack), self.cur[1]))
            self.cur = None
        elif tag == "dl":
            self.depth -= 1

    def handle_data(self, data):
        # the term is the text before its first link (what follows are the links' separators)
        if self.cur is not None and not self.cur[2] and not self.cur[1]:
            self.cur[0].append(data)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bookindex")
    ap.add_argument("--seed", type=int, default=20261205)
    ap.add_argument("--count", type=int, default=400)
    a = ap.parse_args()
    p = IndexParser()
    with open(a.bookindex, encoding="utf-8") as f:
        p.feed(f.read())
    single = []
    seen = set()
    for terms, pages in p.entries:
        pages = [x for x in pages if x]
        if not pages or len(set(pages)) != 1 or not all(terms):
            continue
        # "see also" remnants and pure punctuation are not lookups a reader types
        query = ", ".join(terms)
        query = re.sub(r"\s*\(see also.*$", "", query)
        if not re.search(r"[A-Za-z0-9]", query) or query in seen:
            continue
        seen.add(query)
        single.append((query, pages[0]))
    rnd = random.Random(a.seed)
    sample = rnd.sample(single, min(a.count, len(single)))
    print("# %d of the %d single-target entries of %s, seed %d" % (len(sample), len(single), "bookindex.html", a.seed))
    for q, page in sample:
        print("%s\t%s" % (q.replace("\t", " "), page))


if __name__ == "__main__":
    sys.exit(main())
