#!/usr/bin/env python3
# SPDX-License-Identifier: PostgreSQL
"""eval.py - the relevance evaluation: our search route, the ask turn's citations and a BM25 baseline
on the same passages, the same queries, in one run. Python standard library only.

usage: eval.py --passages CSV --port PORT [--lookups TSV] [--questions TSV] [--label NAME]
               [--md FILE] [--csv FILE] [--no-ask]

--passages  the book's passages as CSV: passage_id, chapter_id, page (the chapter's source file),
            chapter title, heading, body (bench/relevance/run writes it with psql's COPY)
--port      nginx in front of neonpoold: GET /api/v1/search?q=&limit=10 for the search; one session
            and POST /api/v1/sessions/ID/ask (JSON) per question for the ask turn
Lookups and questions: "query<TAB>page[,page...]" per line, '#' lines are comments.

For each query and system, the rank of the first result on an expected page (passages in the
order returned, 1-based): recall@1/5/10 and MRR@10 over the set. The ask turn is scored on its
citations (in their order, at most top_k of them) and on its first citation (the first [n] its
answer cites). "empty" counts queries answered by no result although a word of the query occurs
in the book (any word: the BM25 index's OR over the query's words finds a passage).
BM25: SQLite FTS5 (porter stemmer over unicode61), heading weighted 3x the body, the query's words
ORed (FTS5's bm25(); its AND would find nothing for most sentences).
"""
import argparse
import csv
import json
import re
import sqlite3
import sys
import time
import urllib.parse
import urllib.request

K = 10


def read_set(path):
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            q, pages = line.split("\t")
            out.append((q, set(p.strip() for p in pages.split(",") if p.strip())))
    return out


class Book:
    def __init__(self, path):
        csv.field_size_limit(1 << 24)
        self.page_of_passage = {}
        self.page_of_chapter = {}
        self.db = sqlite3.connect(":memory:")
        self.db.execute("CREATE VIRTUAL TABLE p USING fts5(heading, body, tokenize = 'porter unicode61')")
        rows = []
        with open(path, encoding="utf-8", newline="") as f:
            for pid, cid, page, _title, heading, body in csv.reader(f):
                self.page_of_passage[int(pid)] = page
                self.page_of_chapter[int(cid)] = page
                rows.append((int(pid), heading, body))
        self.db.executemany("INSERT INTO p (rowid, heading, body) VALUES (?, ?, ?)", rows)
        self.n = len(rows)

    @staticmethod
    def fts_query(q):
        words = re.findall(r"\w+", q)
        return " OR ".join('"%s"' % w for w in words)

    def bm25(self, q, k=K):
        fq = self.fts_query(q)
        if not fq:
            return []
        cur = self.db.execute("SELECT rowid FROM p WHERE p MATCH ? ORDER BY bm25(p, 3.0, 1.0) LIMIT ?", (fq, k))
        return [self.page_of_passage[r[0]] for r in cur]


class Api:
    def __init__(self, port):
        self.base = "http://127.0.0.1:%d" % port
        self.session = None
        self.asks = 0

    def _req(self, method, path, body=None, headers=None):
        h = {"Accept": "application/json"}
        h.update(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        req = urllib.request.Request(self.base + path, data=data, headers=h, method=method)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode("utf-8", "replace")

    def search(self, q, book, k=K):
        st, d = self._req("GET", "/api/v1/search?" + urllib.parse.urlencode({"q": q, "limit": k}))
        if st != 200:
            raise RuntimeError("search %r: %s %s" % (q, st, d))
        return [book.page_of_chapter[int(h["chapter"]["id"])] for h in d["results"]]

    def ask(self, q, book):
        # a fresh session every 20 asks keeps the history short (the history is not what is measured)
        if self.session is None or self.asks % 20 == 0:
            st, d = self._req("POST", "/api/v1/sessions")
            if st not in (200, 201):
                raise RuntimeError("session: %s %s" % (st, d))
            self.session = (d["id"], d["token"])
        self.asks += 1
        sid, tok = self.session
        st, d = self._req("POST", "/api/v1/sessions/%s/ask" % sid, {"question": q},
                          {"Authorization": "Bearer " + tok})
        if st not in (200, 201):
            raise RuntimeError("ask %r: %s %s" % (q, st, d))
        cites = sorted(d.get("citations") or [], key=lambda c: c["n"])
        pages = [book.page_of_chapter[int(c["chapter_id"])] for c in cites]
        by_n = {c["n"]: book.page_of_chapter[int(c["chapter_id"])] for c in cites}
        first = None
        m = re.search(r"\[(\d+)\]", d.get("answer") or "")
        if m:
            first = by_n.get(int(m.group(1)))
        return pages, first, d.get("answer") or ""


def rank_of(pages, expected, k=K):
    for i, p in enumerate(pages[:k]):
        if p in expected:
            return i + 1
    return None


def metrics(ranks):
    n = len(ranks)
    if n == 0:
        return {}
    r = lambda k: 100.0 * sum(1 for x in ranks if x is not None and x <= k) / n
    return {"n": n, "r1": r(1), "r5": r(5), "r10": r(10),
            "mrr": sum(1.0 / x for x in ranks if x is not None and x <= K) / n}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--passages", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--lookups")
    ap.add_argument("--questions")
    ap.add_argument("--label", default="")
    ap.add_argument("--md")
    ap.add_argument("--csv")
    ap.add_argument("--no-ask", action="store_true")
    a = ap.parse_args()
    t0 = time.time()
    book = Book(a.passages)
    api = Api(a.port)
    sets = []
    if a.lookups:
        sets.append(("lookups", read_set(a.lookups)))
    if a.questions:
        sets.append(("questions", read_set(a.questions)))
    rows = []
    table = []
    answers = []
    for name, items in sets:
        ranks = {"search": [], "bm25": [], "ask": [], "ask_first": []}
        empty = {"search": 0, "bm25": 0}
        for q, expected in items:
            ours = api.search(q, book)
            base = book.bm25(q)
            occurs = bool(book.bm25(q, 1))
            empty["search"] += (not ours) and occurs
            empty["bm25"] += (not base) and occurs
            row = {"set": name, "query": q, "expected": ",".join(sorted(expected)),
                   "search": rank_of(ours, expected), "bm25": rank_of(base, expected),
                   "search_top": ours[0] if ours else "", "bm25_top": base[0] if base else ""}
            ranks["search"].append(row["search"])
            ranks["bm25"].append(row["bm25"])
            if name == "questions" and not a.no_ask:
                cites, first, answer = api.ask(q, book)
                row["ask"] = rank_of(cites, expected)
                row["ask_first"] = 1 if first in expected else None
                row["ask_first_page"] = first or ""
                ranks["ask"].append(row["ask"])
                ranks["ask_first"].append(row["ask_first"])
                answers.append((q, answer))
            rows.append(row)
        for sysname in ("search", "bm25", "ask"):
            if ranks[sysname]:
                m = metrics(ranks[sysname])
                m.update({"set": name, "system": sysname, "empty": empty.get(sysname, "")})
                if sysname == "ask":
                    m["first"] = metrics(ranks["ask_first"])["r1"]
                table.append(m)
    lines = ["# Relevance%s" % (": " + a.label if a.label else ""), "",
             "%d passages; %s; %.0f s." % (book.n, ", ".join("%s %d" % (n, len(i)) for n, i in sets), time.time() - t0), "",
             "| set | system | n | recall@1 | recall@5 | recall@10 | MRR@10 | empty | first citation |",
             "|---|---|---|---|---|---|---|---|---|"]
    for m in table:
        lines.append("| %s | %s | %d | %.1f%% | %.1f%% | %.1f%% | %.3f | %s | %s |" % (
            m["set"], m["system"], m["n"], m["r1"], m["r5"], m["r10"], m["mrr"], m["empty"],
            "%.1f%%" % m["first"] if "first" in m else ""))
    if answers:
        lines += ["", "## The ask turn's answers (first sentence)", ""]
        for q, ans in answers:
            first = re.split(r"(?<=[.!?])\s+", ans.strip(), maxsplit=1)[0] if ans else ""
            lines.append("- %s → %s" % (q, first[:300]))
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if a.md:
        with open(a.md, "w", encoding="utf-8") as f:
            f.write(text)
    if a.csv:
        keys = ["set", "query", "expected", "search", "bm25", "ask", "ask_first", "search_top", "bm25_top", "ask_first_page"]
        with open(a.csv, "w", encoding="utf-8", newline="") as f:
            w = csv.DictWriter(f, keys, extrasaction="ignore")
            w.writeheader()
            for r in rows:
                w.writerow(r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
