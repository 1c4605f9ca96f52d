# SPDX-License-Identifier: PostgreSQL
"""fastapi_app.py - bench/run's FastAPI peer: neonpool's benchmarked routes with the same SQL and the same JSON,
on FastAPI + SQLAlchemy 1.4 (asyncio, asyncpg) under uvicorn, the stack the original plan named.

Best practice as written down in bench/README: one AsyncEngine per worker process, its pool sized so that
all workers together hold the same number of connections as neonpool's budget (pool_size = budget /
workers, max_overflow 0, pre-ping off: a broken connection is replaced on its error), autocommit (no
BEGIN/ROLLBACK round trips around single statements), asyncpg's prepared
statement cache (SQLAlchemy's dialect prepares each distinct statement once per connection), uvloop and
httptools (uvicorn picks them up), JSONResponse built directly (no response_model validation).
The SQL is neonpool's (src/api/) with named binds: SQLAlchemy's text() reads ":name::type" as no bind, so
"$2::bigint" is written CAST(:book AS bigint); the plans are the same.

Environment: NP_DB_HOST, NP_DB_PORT, NP_DB_NAME, NP_DB_USER, NP_PASSWORD_FILE, NP_POOL_SIZE.
"""
import base64
import hashlib
import hmac
import json
import os
import re

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

with open(os.environ["NP_PASSWORD_FILE"]) as f:
    _password = f.read().strip()

engine = create_async_engine(
    "postgresql+asyncpg://",
    connect_args={
        "host": os.environ.get("NP_DB_HOST", "127.0.0.1"),
        "port": int(os.environ["NP_DB_PORT"]),
        "database": os.environ.get("NP_DB_NAME", "neonpool"),
        "user": os.environ.get("NP_DB_USER", "neonpool"),
        "password": _password,
        "ssl": "require",
        "server_settings": {"application_name": "fastapi-peer"},
    },
    # every route is one statement or a function call that is atomic by itself (as in neonpool): no BEGIN/ROLLBACK
    # round trips around them
    isolation_level="AUTOCOMMIT",
    pool_size=int(os.environ.get("NP_POOL_SIZE", "1")),
    max_overflow=0,
    pool_timeout=30,
)
del _password

BOOK_GET = text(
    "SELECT b.id, b.slug, b.title, b.author, b.language, "
    "COALESCE(json_agg(json_build_object('id', c.id, 'position', c.position, 'title', c.title) "
    "ORDER BY c.position) FILTER (WHERE c.id IS NOT NULL), '[]'::json) "
    "FROM books b LEFT JOIN chapters c ON c.book_id = b.id WHERE b.id = :id GROUP BY b.id"
)
PASSAGE_GET = text(
    "SELECT p.id, p.chapter_id, c.book_id, p.position, p.body FROM passages p "
    "JOIN chapters c ON c.id = p.chapter_id WHERE p.id = :id"
)
SEARCH = text(
    "WITH q AS MATERIALIZED (SELECT websearch_to_tsquery('english', :q) AS query), "
    "hits AS (SELECT p.id, p.chapter_id, ts_rank_cd(p.tsv, q.query) AS rank FROM q, passages p "
    "  WHERE p.tsv @@ q.query "
    "  AND (CAST(:book AS bigint) IS NULL OR p.chapter_id IN (SELECT id FROM chapters WHERE book_id = CAST(:book AS bigint))) "
    "  ORDER BY rank DESC, p.id LIMIT CAST(:limit AS int) + 1 OFFSET CAST(:offset AS int)), "
    "page AS (SELECT h.*, row_number() OVER (ORDER BY h.rank DESC, h.id) AS n FROM hits h) "
    "SELECT CAST(:book AS bigint) IS NULL OR EXISTS (SELECT 1 FROM books WHERE id = CAST(:book AS bigint)), "
    "  g.id, g.rank, b.id, b.title, c.id, c.position, c.title, "
    "  CASE WHEN g.n <= CAST(:limit AS int) THEN ts_headline('english', p.body, q.query, "
    r"    E'StartSel=\\x02, StopSel=\\x03, MaxWords=35, MinWords=15, ShortWord=3') END, p.heading "
    "FROM (SELECT 1) a LEFT JOIN (page g JOIN passages p ON p.id = g.id "
    "  JOIN chapters c ON c.id = g.chapter_id JOIN books b ON b.id = c.book_id CROSS JOIN q) ON true "
    "ORDER BY g.n"
)
SESSION_AUTH = text("SELECT token_hash FROM sessions WHERE id = :id")
MESSAGE_POST = text(
    "SELECT status, body, replayed FROM np_post_message(:id, :key, CAST(:fp AS bytea), :role, :content)"
)

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
_ID = re.compile(r"[1-9][0-9]{0,18}")
_INT = re.compile(r"-?[0-9]{1,19}")
_TOKEN = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr] +([A-Za-z0-9_-]{43})")
_HEADERS = {"Cache-Control": "no-store"}


def respond(status, obj):
    return JSONResponse(obj, status_code=status, headers=_HEADERS)


def fail(status, code, message, field=None):
    e = {"code": code, "message": message}
    if field:
        e["field"] = field
    return respond(status, {"error": e})


def path_id(s):
    if _ID.fullmatch(s) and int(s) <= 9223372036854775807:
        return int(s)
    return None


async def rows(stmt, **params):
    async with engine.connect() as conn:
        return (await conn.execute(stmt, params)).all()


@app.exception_handler(Exception)
async def unavailable(request, exc):
    return fail(503, "db_unavailable", "the database is unavailable")


@app.get("/api/v1/version")
async def version():
    return respond(200, {"name": "fastapi-peer", "api": "v1"})


@app.get("/api/v1/passages/{pid}")
async def passage(pid: str):
    i = path_id(pid)
    if i is None:
        return fail(400, "invalid_id", "passage id must be a positive integer")
    r = await rows(PASSAGE_GET, id=i)
    if not r:
        return fail(404, "not_found", "no such passage")
    r = r[0]
    return respond(200, {"id": r[0], "chapter_id": r[1], "book_id": r[2], "position": r[3], "body": r[4]})


@app.get("/api/v1/books/{bid}")
async def book(bid: str):
    i = path_id(bid)
    if i is None:
        return fail(400, "invalid_id", "book id must be a positive integer")
    r = await rows(BOOK_GET, id=i)
    if not r:
        return fail(404, "not_found", "no such book")
    r = r[0]
    chapters = r[5] if isinstance(r[5], list) else json.loads(r[5])
    return respond(200, {"id": r[0], "slug": r[1], "title": r[2], "author": r[3], "language": r[4],
                         "chapters": chapters})


def snippet(s):
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;").replace("'", "&#39;")
    out, open_ = [], False
    for ch in s:
        if ch == "\x02":
            if not open_:
                out.append("<mark>")
            open_ = True
        elif ch == "\x03":
            if open_:
                out.append("</mark>")
            open_ = False
        else:
            out.append(ch)
    if open_:
        out.append("</mark>")
    return "".join(out)


def int_param(request, key, default, lo, hi):
    v = request.query_params.get(key)
    if v is None:
        return default, None
    if not _INT.fullmatch(v) or not lo <= int(v) <= hi:
        return None, fail(400, "invalid_parameter", f"query parameter '{key}' must be an integer from {lo} to {hi}", key)
    return int(v), None


@app.get("/api/v1/search")
async def search(request: Request):
    q = request.query_params.get("q")
    if q is None:
        return fail(400, "invalid_query", "query parameter 'q' is required")
    if "\0" in q:
        return fail(400, "invalid_query", "query parameter 'q' is not valid UTF-8")
    if len(q) > 256:
        return fail(400, "invalid_query", "query parameter 'q' must be at most 256 characters")
    if not q.strip(" \t\n\r\f\v"):
        return fail(400, "invalid_query", "query parameter 'q' must not be empty")
    book_id = None
    if "book" in request.query_params:
        book_id = path_id(request.query_params["book"])
        if book_id is None:
            return fail(400, "invalid_parameter", "query parameter 'book' must be a book id (a positive integer)")
    limit, err = int_param(request, "limit", 10, 1, 50)
    if err:
        return err
    offset, err = int_param(request, "offset", 0, 0, 1000)
    if err:
        return err
    r = await rows(SEARCH, q=q, book=book_id, limit=limit, offset=offset)
    if not r:
        return fail(500, "internal", "no answer row from the search")
    if not r[0][0]:
        return fail(404, "not_found", "no such book")
    got = 0 if r[0][1] is None else len(r)
    more = got > limit
    results = [
        {"passage_id": h[1], "rank": float(h[2]), "heading": h[9], "snippet": snippet(h[8]),
         "book": {"id": h[3], "title": h[4]}, "chapter": {"id": h[5], "position": h[6], "title": h[7]}}
        for h in r[: min(got, limit)]
    ]
    return respond(200, {"query": q, "book": book_id, "limit": limit, "offset": offset, "results": results,
                         "next_offset": offset + limit if more and offset + limit <= 1000 else None})


@app.post("/api/v1/sessions/{sid}/messages")
async def message_post(sid: str, request: Request):
    i = path_id(sid)
    if i is None:
        return fail(400, "invalid_id", "session id must be a positive integer")
    ct = request.headers.get("content-type", "")
    if not re.fullmatch(r"application/json\s*(;\s*charset=utf-8\s*)?", ct, re.I):
        return fail(415, "unsupported_media_type", "the body must be sent as Content-Type: application/json")
    try:
        body = json.loads(await request.body())
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return fail(400, "invalid_body", "the body must be one JSON object")
    for k in body:
        if k not in ("role", "content"):
            return fail(400, "invalid_body", f"unknown field '{k}'", k)
    role, content = body.get("role"), body.get("content")
    if not isinstance(role, str) or not 1 <= len(role) <= 16:
        return fail(400, "invalid_body", "'role' must be a string of 1 to 16 characters", "role")
    if not isinstance(content, str) or not 1 <= len(content) <= 16384:
        return fail(400, "invalid_body", "'content' must be a string of 1 to 16384 characters", "content")
    if role not in ("user", "assistant", "system"):
        return fail(400, "invalid_body", "'role' must be one of user, assistant, system", "role")
    m = _TOKEN.fullmatch(request.headers.get("authorization", ""))
    if not m:
        return fail(404, "not_found", "no such session")
    try:
        tok = base64.urlsafe_b64decode(m.group(1) + "=")
    except ValueError:
        return fail(404, "not_found", "no such session")
    fp = hashlib.sha256(b"POST messages\0" + role.encode() + b"\0" + content.encode()).digest()
    async with engine.connect() as conn:
        r = (await conn.execute(SESSION_AUTH, {"id": i})).all()
        if len(r) != 1 or not hmac.compare_digest(bytes(r[0][0]), hashlib.sha256(tok).digest()):
            return fail(404, "not_found", "no such session")
        r = (await conn.execute(MESSAGE_POST, {"id": i, "key": None, "fp": fp, "role": role,
                                               "content": content})).all()
    status = r[0][0] if r else 0
    if status == 404:
        return fail(404, "not_found", "no such session")
    if not 200 <= status <= 299:
        return fail(500, "internal", "malformed answer from np_post_message")
    return Response(r[0][1], status_code=status, media_type="application/json", headers=_HEADERS)
