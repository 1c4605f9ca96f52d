<?php
// index.php - bench/run's PHP-FPM peer: neonpool's benchmarked routes with the same SQL and the same JSON,
// written the way a careful PHP developer would: one persistent connection per FPM child (pg_pconnect),
// statements prepared once per connection and executed by name (one round trip per query), no framework.
// Routes: GET /api/v1/passages/{id}, GET /api/v1/books/{id}, GET /api/v1/search?q=&book=&limit=&offset=,
// POST /api/v1/sessions/{id}/messages {role, content} with Authorization: Bearer <token>.
// Settings from the FPM pool's env: NP_CONNINFO (no password), NP_PASSWORD_FILE, NP_PHP_STATEMENTS:
// "named" (default: prepared once per persistent connection, then executed by name) or "unnamed"
// (pg_query_params: parse, bind and execute in one round trip, for PgBouncer in transaction mode,
// where a named statement prepared in one transaction is not on the next one's server connection).

const STMTS = [
	'np_book_get' => "SELECT b.id, b.slug, b.title, b.author, b.language, "
		. "COALESCE(json_agg(json_build_object('id', c.id, 'position', c.position, 'title', c.title) "
		. "ORDER BY c.position) FILTER (WHERE c.id IS NOT NULL), '[]'::json) "
		. "FROM books b LEFT JOIN chapters c ON c.book_id = b.id WHERE b.id = $1 GROUP BY b.id",
	'np_passage_get' => "SELECT p.id, p.chapter_id, c.book_id, p.position, p.body FROM passages p "
		. "JOIN chapters c ON c.id = p.chapter_id WHERE p.id = $1",
	'np_search' => "WITH q AS MATERIALIZED (SELECT websearch_to_tsquery('english', $1) AS query), "
		. "hits AS (SELECT p.id, p.chapter_id, ts_rank_cd(p.tsv, q.query) AS rank FROM q, passages p "
		. "  WHERE p.tsv @@ q.query "
		. "  AND ($2::bigint IS NULL OR p.chapter_id IN (SELECT id FROM chapters WHERE book_id = $2)) "
		. "  ORDER BY rank DESC, p.id LIMIT $3::int + 1 OFFSET $4), "
		. "page AS (SELECT h.*, row_number() OVER (ORDER BY h.rank DESC, h.id) AS n FROM hits h) "
		. "SELECT $2::bigint IS NULL OR EXISTS (SELECT 1 FROM books WHERE id = $2), "
		. "  g.id, g.rank, b.id, b.title, c.id, c.position, c.title, "
		. "  CASE WHEN g.n <= $3 THEN ts_headline('english', p.body, q.query, "
		. "    E'StartSel=\\x02, StopSel=\\x03, MaxWords=35, MinWords=15, ShortWord=3') END, p.heading "
		. "FROM (SELECT 1) a LEFT JOIN (page g JOIN passages p ON p.id = g.id "
		. "  JOIN chapters c ON c.id = g.chapter_id JOIN books b ON b.id = c.book_id CROSS JOIN q) ON true "
		. "ORDER BY g.n",
	'np_session_auth' => "SELECT token_hash FROM sessions WHERE id = $1",
	'np_message_post' => "SELECT status, body, replayed FROM np_post_message($1, $2, $3::bytea, $4, $5)",
];

function respond(int $status, string $json): void
{
	http_response_code($status);
	header('Content-Type: application/json');
	header('Cache-Control: no-store');
	echo $json;
}

function fail(int $status, string $code, string $message, ?string $field = null): void
{
	$e = ['code' => $code, 'message' => $message];
	if ($field !== null)
		$e['field'] = $field;
	respond($status, json_encode(['error' => $e], JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE));
}

function db()
{
	static $db = null;
	if ($db === null) {
		$pw = trim((string)@file_get_contents(getenv('NP_PASSWORD_FILE')));
		$db = @pg_pconnect(getenv('NP_CONNINFO') . " password='" . addcslashes($pw, "'\\") . "'");
		if ($db === false)
			throw new RuntimeException('database unavailable');
	}
	return $db;
}

// q: run the named statement; prepare it first when this persistent connection has not (SQLSTATE 26000).
// Returns the rows as arrays (pg_fetch_all_columns order), or throws.
function q(string $name, array $params): array
{
	$db = db();
	if (getenv('NP_PHP_STATEMENTS') === 'unnamed') {
		$r = @pg_query_params($db, STMTS[$name], $params);
		if ($r === false)
			throw new RuntimeException('query failed');
		return pg_fetch_all($r, PGSQL_NUM) ?: [];
	}
	for ($attempt = 0; $attempt < 2; $attempt++) {
		if (!pg_send_execute($db, $name, $params))
			throw new RuntimeException('send failed');
		$r = pg_get_result($db);
		while (pg_get_result($db) !== false) {
		}
		if ($r !== false && pg_result_status($r) === PGSQL_TUPLES_OK)
			return pg_fetch_all($r, PGSQL_NUM) ?: [];
		if ($r !== false && pg_result_error_field($r, PGSQL_DIAG_SQLSTATE) === '26000' && $attempt === 0) {
			if (!@pg_prepare($db, $name, STMTS[$name]))
				throw new RuntimeException('prepare failed');
			continue;
		}
		throw new RuntimeException('query failed');
	}
	throw new RuntimeException('query failed');
}

function path_id(string $s): ?string
{
	return preg_match('/^[1-9][0-9]{0,18}$/', $s) && (strlen($s) < 19 || strcmp($s, '9223372036854775807') <= 0) ? $s : null;
}

function int_param(string $key, int $def, int $min, int $max, ?int &$out): bool
{
	if (!isset($_GET[$key])) {
		$out = $def;
		return true;
	}
	$v = $_GET[$key];
	if (!is_string($v) || !preg_match('/^-?[0-9]{1,19}$/', $v) || (int)$v < $min || (int)$v > $max) {
		fail(400, 'invalid_parameter', "query parameter '$key' must be an integer from $min to $max", $key);
		return false;
	}
	$out = (int)$v;
	return true;
}

const JF = JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE;

function passage(string $id)
{
	$rows = q('np_passage_get', [$id]);
	if (!$rows)
		return fail(404, 'not_found', 'no such passage');
	$r = $rows[0];
	respond(200, json_encode(['id' => (int)$r[0], 'chapter_id' => (int)$r[1], 'book_id' => (int)$r[2],
		'position' => (int)$r[3], 'body' => $r[4]], JF));
}

function book(string $id)
{
	$rows = q('np_book_get', [$id]);
	if (!$rows)
		return fail(404, 'not_found', 'no such book');
	$r = $rows[0];
	$chapters = json_decode($r[5], true);
	respond(200, json_encode(['id' => (int)$r[0], 'slug' => $r[1], 'title' => $r[2], 'author' => $r[3],
		'language' => $r[4], 'chapters' => $chapters], JF));
}

function snippet(string $s): string
{
	$out = strtr($s, ['&' => '&amp;', '<' => '&lt;', '>' => '&gt;', '"' => '&quot;', "'" => '&#39;']);
	$open = false;
	$res = '';
	for ($i = 0, $n = strlen($out); $i < $n; $i++) {
		$ch = $out[$i];
		if ($ch === "\x02") {
			if (!$open)
				$res .= '<mark>';
			$open = true;
		} elseif ($ch === "\x03") {
			if ($open)
				$res .= '</mark>';
			$open = false;
		} else {
			$res .= $ch;
		}
	}
	return $open ? $res . '</mark>' : $res;
}

function search()
{
	$q = $_GET['q'] ?? null;
	if (!is_string($q))
		return fail(400, 'invalid_query', "query parameter 'q' is required");
	if (!preg_match('//u', $q) || strpos($q, "\0") !== false)
		return fail(400, 'invalid_query', "query parameter 'q' is not valid UTF-8");
	if (chars($q) > 256)
		return fail(400, 'invalid_query', "query parameter 'q' must be at most 256 characters");
	if (trim($q, " \t\n\r\f\v") === '')
		return fail(400, 'invalid_query', "query parameter 'q' must not be empty");
	$book = null;
	if (isset($_GET['book'])) {
		$book = is_string($_GET['book']) ? path_id($_GET['book']) : null;
		if ($book === null)
			return fail(400, 'invalid_parameter', "query parameter 'book' must be a book id (a positive integer)");
	}
	if (!int_param('limit', 10, 1, 50, $limit) || !int_param('offset', 0, 0, 1000, $offset))
		return;
	$rows = q('np_search', [$q, $book, (string)$limit, (string)$offset]);
	if (!$rows)
		return fail(500, 'internal', 'no answer row from the search');
	if ($rows[0][0] !== 't')
		return fail(404, 'not_found', 'no such book');
	$got = $rows[0][1] === null ? 0 : count($rows);
	$more = $got > $limit;
	if ($more)
		$got = $limit;
	$results = [];
	for ($i = 0; $i < $got; $i++) {
		$r = $rows[$i];
		$results[] = ['passage_id' => (int)$r[1], 'rank' => (float)$r[2], 'heading' => $r[9],
			'snippet' => snippet($r[8]), 'book' => ['id' => (int)$r[3], 'title' => $r[4]],
			'chapter' => ['id' => (int)$r[5], 'position' => (int)$r[6], 'title' => $r[7]]];
	}
	respond(200, json_encode(['query' => $q, 'book' => $book === null ? null : (int)$book, 'limit' => $limit,
		'offset' => $offset, 'results' => $results,
		'next_offset' => $more && $offset + $limit <= 1000 ? $offset + $limit : null], JF));
}

// chars: code points of a valid UTF-8 string (no mbstring needed)
function chars(string $s): int
{
	return strlen($s) - preg_match_all('/[\x80-\xBF]/', $s);
}

function b64url_decode(string $s): ?string
{
	if (!preg_match('/^[A-Za-z0-9_-]{43}$/', $s))
		return null;
	$d = base64_decode(strtr($s, '-_', '+/') . '=', true);
	return $d !== false && strlen($d) === 32 ? $d : null;
}

function message_post(string $sid)
{
	$ct = $_SERVER['CONTENT_TYPE'] ?? '';
	if (!preg_match('~^application/json\s*(;\s*charset=utf-8\s*)?$~i', $ct))
		return fail(415, 'unsupported_media_type', 'the body must be sent as Content-Type: application/json');
	$body = json_decode(file_get_contents('php://input'), false, 16);
	if (!($body instanceof stdClass))
		return fail(400, 'invalid_body', 'the body must be one JSON object');
	foreach (get_object_vars($body) as $k => $_)
		if ($k !== 'role' && $k !== 'content')
			return fail(400, 'invalid_body', "unknown field '$k'", $k);
	$role = $body->role ?? null;
	$content = $body->content ?? null;
	if (!is_string($role) || strlen($role) < 1 || strlen($role) > 16)
		return fail(400, 'invalid_body', "'role' must be a string of 1 to 16 characters", 'role');
	if (!is_string($content) || $content === '' || chars($content) > 16384)
		return fail(400, 'invalid_body', "'content' must be a string of 1 to 16384 characters", 'content');
	if ($role !== 'user' && $role !== 'assistant' && $role !== 'system')
		return fail(400, 'invalid_body', "'role' must be one of user, assistant, system", 'role');
	$auth = $_SERVER['HTTP_AUTHORIZATION'] ?? '';
	$tok = preg_match('/^bearer +(\S+)$/i', $auth, $m) ? b64url_decode($m[1]) : null;
	if ($tok === null)
		return fail(404, 'not_found', 'no such session');
	$rows = q('np_session_auth', [$sid]);
	if (count($rows) !== 1 || !hash_equals(substr($rows[0][0], 2), hash('sha256', $tok)))
		return fail(404, 'not_found', 'no such session');
	$fp = '\\x' . hash('sha256', "POST messages\0" . $role . "\0" . $content);
	$rows = q('np_message_post', [$sid, null, $fp, $role, $content]);
	$status = (int)($rows[0][0] ?? 0);
	if ($status === 404)
		return fail(404, 'not_found', 'no such session');
	if ($status < 200 || $status > 299)
		return fail(500, 'internal', 'malformed answer from np_post_message');
	respond($status, $rows[0][1]);
}

try {
	$path = parse_url($_SERVER['REQUEST_URI'] ?? '/', PHP_URL_PATH) ?: '/';
	$method = $_SERVER['REQUEST_METHOD'] ?? 'GET';
	if (preg_match('~^/api/v1/(passages|books)/([^/]+)$~', $path, $m) && $method === 'GET') {
		$id = path_id($m[2]);
		if ($id === null)
			fail(400, 'invalid_id', ($m[1] === 'books' ? 'book' : 'passage') . ' id must be a positive integer');
		elseif ($m[1] === 'books')
			book($id);
		else
			passage($id);
	} elseif ($path === '/api/v1/search' && $method === 'GET') {
		search();
	} elseif (preg_match('~^/api/v1/sessions/([^/]+)/messages$~', $path, $m) && $method === 'POST') {
		$id = path_id($m[1]);
		if ($id === null)
			fail(400, 'invalid_id', 'session id must be a positive integer');
		else
			message_post($id);
	} elseif ($path === '/api/v1/version') {
		respond(200, json_encode(['name' => 'php-fpm-peer', 'version' => PHP_VERSION, 'api' => 'v1'], JF));
	} else {
		fail(404, 'not_found', 'no such route');
	}
} catch (Throwable $e) {
	fail(503, 'db_unavailable', 'the database is unavailable');
}
