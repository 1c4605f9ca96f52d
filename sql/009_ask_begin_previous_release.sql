-- 009_ask_begin_previous_release.sql - np_ask_begin() with the eight parameters of 004 again, for
-- the release before the answers' leases, which keeps serving while a rolling upgrade runs.
--
-- Applied by `neonpoolctl migrate` inside its own transaction: no BEGIN/COMMIT here.
--
-- 006 dropped the eight-parameter np_ask_begin() and created one with a ninth (the lease). A
-- migration must never remove what the release before still calls (doc/design.md, "Schema
-- changes a rolling upgrade survives"): that release's every ask failed with "function
-- np_ask_begin(...) does not exist" from the moment 006 was applied until its last worker was
-- gone (bench/upgrade_schema.sh found it). This overload brings the old signature back as a call
-- of the new one. The release before neither renews a lease nor knows one, so its answers get
-- the longest one it can need: llm_total_timeout_ms's maximum (1 h), so that no sweep of the new
-- release finishes an answer it is still making. Dropped by the release after the one that adds
-- it (the contract step), when no worker of the release before can still run.
--
-- The same result columns as the nine-parameter function: a statement the release before
-- prepared keeps its result type.

CREATE FUNCTION np_ask_begin(p_session bigint, p_key text, p_request_hash bytea, p_question text, p_top_k int,
                             p_history int, p_sentences int, p_mode text)
RETURNS TABLE (status int, question_id bigint, answer_id bigint, answer_status text, answer text,
               citations text, citations_used text, history text, sentences text, mode text)
LANGUAGE sql VOLATILE AS $fn$
	SELECT * FROM np_ask_begin(p_session, p_key, p_request_hash, p_question, p_top_k, p_history, p_sentences,
	                           p_mode, 3600000)
$fn$;
