#!/bin/sh
# SPDX-License-Identifier: PostgreSQL
# check-openapi-routes.sh - the router's routes (api_table[] in src/api/api.c) and the operations
# of doc/openapi.yaml are the same: the same methods on the same paths, each operationId the
# route's name. A route missing from the document, an operation the router does not have, a
# method on the wrong path or a renamed route fails `make check`. README.md's API table (rows
# "| `METHOD /path?query=` | ... |" under "## The API") names exactly the document's operations
# (a pending one may be missing there), each once.
#
# Python 3 standard library only (no YAML module): the document's `paths:` section is read with
# a strict line parser, and anything outside the subset it knows fails the check rather than
# being skipped:
#   paths:                       a key at column 0
#     /api/v1/books/{id}:        a path: a key at two spaces, unquoted, nothing after the colon
#       get:                     an operation: a method key at four spaces (summary, description,
#                                parameters and servers are the other keys allowed there)
#         operationId: books.get the route's name, at six spaces
#         x-neonpool-pending: h7b  optional: documented, not in the router yet (see below)
# No flow style, no $ref on a path item, no tabs. The document's validity as OpenAPI is the
# linter's job (tools/openapi/lint.sh).
#
# Error codes: every code the sources answer with (a string literal right after a 4xx/5xx status
# argument, as in http_respond_error(resp, 404, "not_found", ...) or input_fail(e, 400,
# "invalid_body", ...), including both arms of a ?: there; `code = "..."`; db_ensure_fail()'s and
# api_str_param()'s code argument; "code":"..." in contrib/nginx/*.conf) is in the enum of the
# document's ErrorCode schema (`    ErrorCode:` under components/schemas, its `      enum:` a block
# list), and every code of the enum is answered somewhere. Codes listed in ErrorCode's
# `      x-neonpool-pending-codes: [a, b]` are documented ahead of their code: they must not be
# found in the sources yet.
#
# x-neonpool-pending marks an operation documented ahead of the code that serves it (while it is
# built on another branch): it must NOT be in the router, and the check fails once it is, so the
# marker is removed when the route lands.
#
# Run by `make check` with top_srcdir set; falls back to the directory above this script.

set -u
top=${top_srcdir:-$(dirname "$0")/..}
exec python3 - "$top/src/api/api.c" "$top/doc/openapi.yaml" "$top/README.md" "$top" <<'EOF'
import glob
import os
import re
import sys

table_file, spec_file, readme_file, top = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
errors = []


def fail(msg):
    errors.append(msg)


def read(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().split("\n")
    except OSError as e:
        print(f"check-openapi-routes: cannot read {path}: {e.strerror}", file=sys.stderr)
        sys.exit(1)


# ---- the router: { "GET", "/path", handler, flags, "name" }, one entry a line --------------
ENTRY = re.compile(r'^\s*\{\s*"([A-Z]+)"\s*,\s*"(/[^"]*)"\s*,\s*[A-Za-z_][A-Za-z0-9_]*\s*,'
                   r'\s*[^,{}"]+,\s*"([^"]+)"\s*\}\s*,?\s*(/\*.*\*/|//.*)?$')
routes = {}  # (METHOD, path) -> name
lines = read(table_file)
start = next((i for i, l in enumerate(lines) if re.search(r"\bapi_table\s*\[\s*\]\s*=\s*\{", l)), None)
if start is None:
    print(f"check-openapi-routes: no 'api_table[] = {{' in {table_file}", file=sys.stderr)
    sys.exit(1)
end = None
for i in range(start + 1, len(lines)):
    l = lines[i].strip()
    if l.startswith("};"):
        end = i
        break
    if l == "" or l.startswith("/*") or l.startswith("*") or l.startswith("//"):
        continue
    m = ENTRY.match(lines[i])
    if not m:
        fail(f"{table_file}:{i + 1}: not a route entry of the form "
             f'{{ "METHOD", "/path", handler, flags, "name" }}: {l}')
        continue
    key = (m.group(1), m.group(2))
    if key in routes:
        fail(f"{table_file}:{i + 1}: {key[0]} {key[1]} is in the table twice")
    routes[key] = m.group(3)
if end is None:
    fail(f"{table_file}: api_table[] has no closing '}};'")
if not routes and not errors:
    fail(f"{table_file}: api_table[] has no routes")

# ---- the document's paths section --------------------------------------------------------
ops = {}  # (METHOD, path) -> {"id": operationId, "pending": str or None, "line": n}
lines = read(spec_file)
start = next((i for i, l in enumerate(lines) if l.rstrip() == "paths:"), None)
if start is None:
    print(f"check-openapi-routes: no 'paths:' at column 0 in {spec_file}", file=sys.stderr)
    sys.exit(1)
path = None
op = None
path_ops = {}
PATH = re.compile(r"^  (/[^\s:'\"]*):\s*(#.*)?$")
KEY4 = re.compile(r"^    ([A-Za-z$][A-Za-z0-9_$-]*):(\s.*)?$")
KEY6 = re.compile(r"^      ([A-Za-z$][A-Za-z0-9_$-]*):\s*(.*?)\s*$")
for i in range(start + 1, len(lines)):
    raw = lines[i]
    where = f"{spec_file}:{i + 1}"
    if raw.strip() == "" or raw.lstrip().startswith("#"):
        continue
    if "\t" in raw[: len(raw) - len(raw.lstrip())]:
        fail(f"{where}: a tab in the indentation")
        continue
    indent = len(raw) - len(raw.lstrip(" "))
    if indent == 0:
        break  # the next top-level key: the end of paths
    if indent == 2:
        m = PATH.match(raw)
        if not m:
            fail(f"{where}: expected a path key at two spaces (unquoted, nothing after the colon): {raw.strip()}")
            path = op = None
            continue
        path = m.group(1)
        if path in path_ops:
            fail(f"{where}: path {path} appears twice")
        path_ops[path] = path_ops.get(path, 0)
        op = None
    elif indent == 4:
        m = KEY4.match(raw)
        if path is None or not m:
            fail(f"{where}: unexpected line: {raw.strip()}")
            op = None
            continue
        key = m.group(1)
        if key in METHODS:
            if (m.group(2) or "").strip():
                fail(f"{where}: operation {key} of {path} in flow style")
            op = (key.upper(), path)
            if op in ops:
                fail(f"{where}: {key} {path} appears twice")
            ops[op] = {"id": None, "pending": None, "line": i + 1}
            path_ops[path] += 1
        elif key in ("summary", "description", "parameters", "servers"):
            op = None
        else:
            fail(f"{where}: '{key}' on path item {path}: only operations, summary, description, "
                 "parameters and servers are allowed there (no $ref: the check could not see its methods)")
            op = None
    elif indent == 6:
        m = KEY6.match(raw)
        if op is not None and m and m.group(1) == "operationId":
            ops[op]["id"] = m.group(2).strip("'\"")
        elif op is not None and m and m.group(1) == "x-neonpool-pending":
            ops[op]["pending"] = m.group(2).strip("'\"") or "yes"
    elif indent < 6 and indent % 2:
        fail(f"{where}: indentation of {indent} spaces (the paths section is indented by two)")
    # deeper lines belong to an operation's or a parameter's body: not the check's business

if not ops:
    fail(f"{spec_file}: no operations under paths:")
for p, n in path_ops.items():
    if n == 0:
        fail(f"{spec_file}: path {p} has no operation")
for key, o in ops.items():
    if not o["id"]:
        fail(f"{spec_file}:{o['line']}: {key[0]} {key[1]} has no operationId (six spaces under the method)")

# ---- README.md's API table ---------------------------------------------------------------
ROW = re.compile(r"^\|\s*`([A-Z]+) (/[^`?\s]*)(\?[^`\s]*)?`\s*\|")
readme = {}
section = False
for i, l in enumerate(read(readme_file)):
    if l.startswith("## "):
        section = l.startswith("## The API")
        continue
    m = ROW.match(l) if section else None
    if m:
        key = (m.group(1), m.group(2))
        if key in readme:
            fail(f"{readme_file}:{i + 1}: {key[0]} {key[1]} is in the API table twice")
        readme[key] = i + 1
if not readme:
    fail(f"{readme_file}: no API table rows (| `METHOD /path` | ... |) under a '## The API' heading")
for key in sorted(ops, key=lambda k: (k[1], k[0])):
    if key not in readme and not ops[key]["pending"]:  # a pending route's row comes with its code
        fail(f"in {spec_file}, not in {readme_file}'s API table: {key[0]} {key[1]}")
for key, n in sorted(readme.items(), key=lambda kv: kv[1]):
    if key not in ops:
        fail(f"{readme_file}:{n}: {key[0]} {key[1]} is in the API table, not in {spec_file}")

# ---- error codes -------------------------------------------------------------------------
CODE = r'"([a-z][a-z0-9_]*)"'
emitted = {}  # code -> first place
def found(code, where):
    emitted.setdefault(code, where)

def top_level_arg(text, start):
    """The text of the call argument starting at start, up to its top-level ',' or ')'."""
    depth, i, instr = 0, start, False
    while i < len(text):
        c = text[i]
        if instr:
            if c == "\\":
                i += 1
            elif c == '"':
                instr = False
        elif c == '"':
            instr = True
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            if depth == 0:
                break
            depth -= 1
        elif c == "," and depth == 0:
            break
        i += 1
    return text[start:i]

sources = sorted(glob.glob(os.path.join(top, "src", "*", "*.c")))
if not sources:
    fail(f"no sources under {os.path.join(top, 'src')}")
for path in sources:
    with open(path, encoding="utf-8") as f:
        text = f.read()
    rel = os.path.relpath(path, top)
    def where(pos):
        return f"{rel}:{text.count(chr(10), 0, pos) + 1}"
    for m in re.finditer(r"[(,]\s*[45][0-9][0-9]\s*,\s*", text):
        arg = top_level_arg(text, m.end())
        for c in re.findall(CODE, arg):
            found(c, where(m.end()))
    for m in re.finditer(r"\bcode\s*=\s*" + CODE, text):
        found(m.group(1), where(m.start()))
    for m in re.finditer(r"\b(db_ensure_fail|api_str_param)\s*\(", text):
        nth = 2 if m.group(1) == "db_ensure_fail" else 3
        pos = m.end()
        for _ in range(nth):
            pos += len(top_level_arg(text, pos)) + 1
        for c in re.findall(CODE, top_level_arg(text, pos)):
            found(c, where(m.start()))
for path in sorted(glob.glob(os.path.join(top, "contrib", "nginx", "*.conf"))):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for m in re.finditer(r'\\?"code\\?"\s*:\s*\\?"([a-z][a-z0-9_]*)', text):
        found(m.group(1), f"{os.path.relpath(path, top)}:{text.count(chr(10), 0, m.start()) + 1}")

enum, pending_codes = [], []
lines = read(spec_file)
start = next((i for i, l in enumerate(lines) if l.rstrip() == "    ErrorCode:"), None)
if start is None:
    fail(f"{spec_file}: no '    ErrorCode:' schema")
else:
    mode = None
    for i in range(start + 1, len(lines)):
        l = lines[i].rstrip()
        if not l.strip() or l.lstrip().startswith("#"):
            continue
        indent = len(l) - len(l.lstrip(" "))
        if indent <= 4:
            break
        if indent == 6:
            mode = None
            if l == "      enum:":
                mode = "enum"
            m = re.match(r"^      x-neonpool-pending-codes:\s*\[(.*)\]\s*$", l)
            if m:
                pending_codes = [c.strip() for c in m.group(1).split(",") if c.strip()]
            elif l.startswith("      x-neonpool-pending-codes:"):
                fail(f"{spec_file}:{i + 1}: x-neonpool-pending-codes must be a one-line [a, b] list")
        elif indent == 8 and mode == "enum":
            m = re.match(r"^        - ([a-z][a-z0-9_]*)$", l)
            if m:
                enum.append(m.group(1))
            else:
                fail(f"{spec_file}:{i + 1}: ErrorCode enum: expected '        - code': {l.strip()}")
    if not enum:
        fail(f"{spec_file}: ErrorCode has no block-list enum")
for c in sorted(set(x for x in enum if enum.count(x) > 1)):
    fail(f"{spec_file}: ErrorCode lists {c} twice")
for c in pending_codes:
    if c not in enum:
        fail(f"{spec_file}: x-neonpool-pending-codes names {c}, which is not in ErrorCode's enum")
for c, w in sorted(emitted.items()):
    if c not in enum:
        fail(f"{w}: error code '{c}' is not in ErrorCode's enum in {spec_file}")
    elif c in pending_codes:
        fail(f"{w}: error code '{c}' is answered now: remove it from x-neonpool-pending-codes in {spec_file}")
for c in enum:
    if c not in emitted and c not in pending_codes:
        fail(f"{spec_file}: ErrorCode '{c}' is answered nowhere in src/ or contrib/nginx")

# ---- compare -----------------------------------------------------------------------------
pending = []
for key in sorted(routes, key=lambda k: (k[1], k[0])):
    name = routes[key]
    o = ops.get(key)
    if o is None:
        fail(f"in the router, not in {spec_file}: {key[0]} {key[1]} ({name})")
    elif o["pending"]:
        fail(f"{spec_file}:{o['line']}: {key[0]} {key[1]} is marked x-neonpool-pending ({o['pending']}) "
             "but the router has it now: remove the marker")
    elif o["id"] and o["id"] != name:
        fail(f"{spec_file}:{o['line']}: {key[0]} {key[1]}: operationId '{o['id']}' but the route's name is '{name}'")
for key in sorted(ops, key=lambda k: (k[1], k[0])):
    o = ops[key]
    if key in routes:
        continue
    if o["pending"]:
        pending.append(f"{key[0]} {key[1]} ({o['pending']})")
    else:
        fail(f"in {spec_file}, not in the router ({table_file}): {key[0]} {key[1]} ({o['id']})")

if errors:
    for e in errors:
        print(f"check-openapi-routes: {e}", file=sys.stderr)
    sys.exit(1)
msg = (f"check-openapi-routes: the {len(routes)} routes of {table_file} are the operations of {spec_file}"
       f" ({readme_file}'s table: {len(readme)} rows); the {len(emitted)} error codes answered are its ErrorCode enum")
if pending:
    msg += f"; {len(pending)} more documented, pending (not in the router yet): " + ", ".join(pending)
if pending_codes:
    msg += f"; {len(pending_codes)} error codes pending: " + ", ".join(pending_codes)
print(msg)
EOF
