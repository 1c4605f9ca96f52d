#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_fcgi_body_end_awaited.sh - a worker reads a request through the empty STDIN record that ends its body before it answers and closes. It stopped at Content-Length and closed with that record unsent: nginx, sending a body over client_body_buffer_size from its temporary file in several writes, got EPIPE on the last and answered 502 (t_sessions_api's "content too long" under load). A raw client that sends the end record 0.5 s after the body: no answer and no close before it, the end record sent, the answer after; then POSTs of 100 kB bodies through nginx: none 502.
# np: shared-pg
. "$(dirname "$0")/lib.sh"
np_require curl nginx

raw() { "$NP_PYTHON" "$np_top/tests/integration/fcgi_raw.py" "$@"; }
np_start_pg
port=$(np_free_port) || np_fail "no free port"
np_start_daemon listen="127.0.0.1:$port" workers=2 max_body_bytes=131072
np_start_nginx "127.0.0.1:$port"

# 1. the raw client: body whole, its end record 0.5 s later (POST /healthz: 405 once read)
read -r late < <(raw late-end 127.0.0.1 "$port" /healthz 40000 0.5)
np_log "end record 0.5 s after a 40000-byte body: $late"
np_expect "nothing answered or closed before the body's end record ($late)" \
	bash -c "[[ '$late' == before_end=nothing* ]]"
np_expect "the end record was sent ($late)" bash -c "[[ '$late' == *' end_send=ok '* ]]"
np_expect "the answer: 405 ($late)" bash -c "[[ '$late' == *' status=405 '* ]]"
# a body over max_body_bytes is drained through its end record too: 413 after it
read -r big < <(raw late-end 127.0.0.1 "$port" /healthz 140000 0.5)
np_log "end record 0.5 s after a 140000-byte body: $big"
np_expect "413 after the end record of a body over max_body_bytes ($big)" \
	bash -c "[[ '$big' == 'before_end=nothing end_send=ok status=413 '* ]]"

# 2. through nginx: 100 kB bodies (over client_body_buffer_size, 64k: nginx sends them from a
#    temporary file), eight at a time
head -c 100000 /dev/zero | tr '\0' 'x' >"$NP_TMP/body"
args=()
for i in $(seq 1 40); do
	[ $i = 1 ] || args+=(--next)
	args+=(-o /dev/null -w '%{http_code}\n' -X POST --data-binary @"$NP_TMP/body"
		-H 'Content-Type: application/json' "http://127.0.0.1:$NP_HTTP_PORT/healthz?i=$i")
done
curl -s --parallel --parallel-max 8 "${args[@]}" >"$NP_TMP/out/codes.txt"
np_log "codes: $(sort "$NP_TMP/out/codes.txt" | uniq -c | tr '\n' ' ')"
np_expect_eq "40 POSTs of 100 kB through nginx: all 405" 40 "$(grep -c '^405$' "$NP_TMP/out/codes.txt")"
np_expect "nginx logged no broken pipe to the upstream" bash -c "! grep -q 'while sending request to upstream' '$NP_TMP/nginx/error.log'"

echo "RESULT late end record: $late; over max_body_bytes: $big; 40 POSTs of 100 kB via nginx: $(sort "$NP_TMP/out/codes.txt" | uniq -c | tr '\n' ' ')"
np_finish
