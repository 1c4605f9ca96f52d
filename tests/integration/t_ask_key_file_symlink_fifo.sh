#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_ask_key_file_symlink_fifo.sh - llm_api_key_file and llm_system_prompt_file are read as `neonpoold -t` checks them (one function): a key mounted as Kubernetes and Docker mount secrets (a symlink to a symlinked directory) passes -t and the asks answer 200 with the key sent; a FIFO is refused by -t with a clear message, and a FIFO put in the key's place at run time makes an ask fail at once (502) rather than block its worker.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx

key="sk-neonpool-test-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
# a secret volume: secrets/llm.key -> ..data/llm.key, ..data -> ..2026_12_04_v1/
mkdir -p "$NP_TMP/secrets/..2026_12_04_v1"
printf '%s\n' "$key" >"$NP_TMP/secrets/..2026_12_04_v1/llm.key"
printf 'You answer from the passages.\n' >"$NP_TMP/secrets/..2026_12_04_v1/prompt.txt"
ln -s ..2026_12_04_v1 "$NP_TMP/secrets/..data"
ln -s ..data/llm.key "$NP_TMP/secrets/llm.key"
ln -s ..data/prompt.txt "$NP_TMP/secrets/prompt.txt"
mkfifo "$NP_TMP/llm.fifo"
np_start_llm_mock --key "$key"

np_db_prepare
# ask_llm_fallback = false: the error path is what is pinned (with it on, the reader gets the
# labelled extractive answer, t_ask_llm)
llm=(llm_url="http://127.0.0.1:$mport/v1/chat/completions" llm_model=mock-1 ask_llm_fallback=false)

# -t: a FIFO is refused at once with a clear message (timeout: an open that waited for a writer)
for k in llm_api_key_file llm_system_prompt_file; do
	conf=$(np_daemon_conf "fifo-$k" database_url="$(np_db_url)" "${llm[@]}" "$k=$NP_TMP/llm.fifo")
	np_capture "t-fifo-$k" timeout 10 "$NEONPOOLD" -t -c "$conf"
	np_expect_eq "neonpoold -t with $k a FIFO: exit status 1" 1 "$NP_RC"
	np_expect "neonpoold -t with $k a FIFO: says it is not a regular file" \
		grep -qF "'$NP_TMP/llm.fifo' is not a regular file (a FIFO)" "$NP_TMP/out/t-fifo-$k.out"
done
conf=$(np_daemon_conf linked database_url="$(np_db_url)" "${llm[@]}" llm_api_key_file="$NP_TMP/secrets/llm.key" \
	llm_system_prompt_file="$NP_TMP/secrets/prompt.txt")
np_capture t-linked "$NEONPOOLD" -t -c "$conf"
np_expect_eq "neonpoold -t with the key and prompt behind symlinks: exit status 0" 0 "$NP_RC"

np_start_daemon database_url="$(np_db_url)" database_password_file="$NP_TMP/db.password" \
	status_file="$NP_TMP/status" control_listen="$NP_TMP/control.sock" ask_listen="$NP_TMP/ask.sock" \
	ask_workers=1 workers=1 budget=1 min_warm=1 "${llm[@]}" llm_api_key_file="$NP_TMP/secrets/llm.key" \
	llm_system_prompt_file="$NP_TMP/secrets/prompt.txt"
np_start_nginx "unix:$NP_TMP/neonpoold.sock" "" nginx "unix:$NP_TMP/control.sock" "unix:$NP_TMP/ask.sock"
np_wait_db_ready
np_session
ask() { # ask N: the status of one JSON ask (curl gives up after 15 s: "000")
	curl -s -m 15 -o "$NP_TMP/out/ask$1.json" -w '%{http_code}' -X POST \
		-H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
		--data "{\"question\":\"What is a passage? ($1)\"}" "http://127.0.0.1:$NP_HTTP_PORT/api/v1/sessions/$sid/ask"
}
np_expect_eq "an ask with the key and prompt behind symlinks: 200" 200 "$(ask 1)"
np_expect_eq "the model got the key (auth_ok)" True \
	"$(curl -s "http://127.0.0.1:$mport/_log" >"$NP_TMP/out/mocklog.json"; np_json_get "$NP_TMP/out/mocklog.json" 'd[-1]["auth_ok"]')"

# the secret is rotated to a FIFO: the ask fails at once (502), its worker is not blocked
mkdir "$NP_TMP/secrets/..2026_12_04_v2"
mkfifo "$NP_TMP/secrets/..2026_12_04_v2/llm.key"
cp "$NP_TMP/secrets/..2026_12_04_v1/prompt.txt" "$NP_TMP/secrets/..2026_12_04_v2/"
ln -sfn ..2026_12_04_v2 "$NP_TMP/secrets/..data"
np_expect_eq "an ask with a FIFO in the key's place: 502 at once" 502 "$(ask 2)"
np_expect "the ask worker logged why" grep -qF "llm_api_key_file: '$NP_TMP/secrets/llm.key' is not a regular file (a FIFO)" "$NP_DAEMON_LOG"
ln -sfn ..2026_12_04_v1 "$NP_TMP/secrets/..data"
np_expect_eq "the same worker answers the next ask once the key is back: 200" 200 "$(ask 3)"
np_finish
