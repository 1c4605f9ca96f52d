// SPDX-License-Identifier: PostgreSQL

// main.go - bench/run's Go peer: neonpool's benchmarked routes with the same SQL and the same JSON as the
// PHP peer (bench/peers/php/index.php, of which this is a translation), written the way a competent Go team
// would: net/http behind nginx (HTTP/1.1 with keep-alive on a unix socket), pgx v4's pgxpool holding at most
// NP_POOL_SIZE connections (all of them opened at start), pgx's statement cache (each statement prepared once
// per connection, then one round trip per query), the request's context on every query, rows scanned into
// typed variables, encoding/json without HTML escaping, no logging per request.
// Routes: GET /api/v1/passages/{id}, GET /api/v1/books/{id}, GET /api/v1/search?q=&book=&limit=&offset=,
// POST /api/v1/sessions/{id}/messages {role, content} with Authorization: Bearer <token>, /api/v1/version.
// Settings from the environment: NP_LISTEN (a unix socket path; host:port also works), NP_CONNINFO (libpq
// key=value, no password), NP_PASSWORD_FILE, NP_POOL_SIZE [4]. For PgBouncer in transaction mode (index.php's
// NP_PHP_STATEMENTS=unnamed) add statement_cache_mode=describe to NP_CONNINFO: pgx then runs unnamed statements.
// Built by build.sh next to this file.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgtype"
	"github.com/jackc/pgx/v4"
	"github.com/jackc/pgx/v4/pgxpool"
)

// The statements, byte for byte index.php's STMTS.
const (
	sqlBookGet = "SELECT b.id, b.slug, b.title, b.author, b.language, " +
		"COALESCE(json_agg(json_build_object('id', c.id, 'position', c.position, 'title', c.title) " +
		"ORDER BY c.position) FILTER (WHERE c.id IS NOT NULL), '[]'::json) " +
		"FROM books b LEFT JOIN chapters c ON c.book_id = b.id WHERE b.id = $1 GROUP BY b.id"
	sqlPassageGet = "SELECT p.id, p.chapter_id, c.book_id, p.position, p.body FROM passages p " +
		"JOIN chapters c ON c.id = p.chapter_id WHERE p.id = $1"
	sqlSearch = "WITH q AS MATERIALIZED (SELECT websearch_to_tsquery('english', $1) AS query), " +
		"hits AS (SELECT p.id, p.chapter_id, ts_rank_cd(p.tsv, q.query) AS rank FROM q, passages p " +
		"  WHERE p.tsv @@ q.query " +
		"  AND ($2::bigint IS NULL OR p.chapter_id IN (SELECT id FROM chapters WHERE book_id = $2)) " +
		"  ORDER BY rank DESC, p.id LIMIT $3::int + 1 OFFSET $4), " +
		"page AS (SELECT h.*, row_number() OVER (ORDER BY h.rank DESC, h.id) AS n FROM hits h) " +
		"SELECT $2::bigint IS NULL OR EXISTS (SELECT 1 FROM books WHERE id = $2), " +
		"  g.id, g.rank, b.id, b.title, c.id, c.position, c.title, " +
		"  CASE WHEN g.n <= $3 THEN ts_headline('english', p.body, q.query, " +
		`    E'StartSel=\x02, StopSel=\x03, MaxWords=35, MinWords=15, ShortWord=3') END, p.heading ` +
		"FROM (SELECT 1) a LEFT JOIN (page g JOIN passages p ON p.id = g.id " +
		"  JOIN chapters c ON c.id = g.chapter_id JOIN books b ON b.id = c.book_id CROSS JOIN q) ON true " +
		"ORDER BY g.n"
	sqlSessionAuth = "SELECT token_hash FROM sessions WHERE id = $1"
	sqlMessagePost = "SELECT status, body, replayed FROM np_post_message($1, $2, $3::bytea, $4, $5)"
)

const maxBody = 64 << 10 // the largest message body read

// ---- responses ----------------------------------------------------------------------------------------------

var (
	hdrJSON    = []string{"application/json"}
	hdrNoStore = []string{"no-store"}
)

func respond(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h["Content-Type"] = hdrJSON
	h["Cache-Control"] = hdrNoStore
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(status)
	w.Write(body)
}

// jsonBuf: a reusable buffer with its Encoder (HTML escaping off, so "<mark>" and "&amp;" stay as they are).
type jsonBuf struct {
	b   bytes.Buffer
	enc *json.Encoder
}

var jsonBufs = sync.Pool{New: func() interface{} {
	j := &jsonBuf{}
	j.enc = json.NewEncoder(&j.b)
	j.enc.SetEscapeHTML(false)
	return j
}}

func respondJSON(w http.ResponseWriter, status int, v interface{}) {
	j := jsonBufs.Get().(*jsonBuf)
	j.b.Reset()
	if err := j.enc.Encode(v); err != nil {
		jsonBufs.Put(j)
		fail(w, 500, "internal", "could not encode the answer", nil)
		return
	}
	out := j.b.Bytes()
	respond(w, status, out[:len(out)-1]) // without the Encoder's newline, as json_encode
	if j.b.Cap() <= 1<<20 {
		jsonBufs.Put(j)
	}
}

type apiError struct {
	Code    string  `json:"code"`
	Message string  `json:"message"`
	Field   *string `json:"field,omitempty"`
}

type errorBody struct {
	Error apiError `json:"error"`
}

func fail(w http.ResponseWriter, status int, code, message string, field *string) {
	respondJSON(w, status, errorBody{apiError{code, message, field}})
}

func str(s string) *string { return &s }

// dbUnavailable: index.php's catch-all, for every error from the database.
func dbUnavailable(w http.ResponseWriter) {
	fail(w, 503, "db_unavailable", "the database is unavailable", nil)
}

// rawJSON: a json column passed through (encoding/json compacts it, as PHP's decode and encode would).
// It decodes itself from pgx's buffer by copying (pgx reuses that buffer).
type rawJSON []byte

func (r *rawJSON) DecodeText(_ *pgtype.ConnInfo, src []byte) error {
	if src == nil {
		*r = nil
	} else {
		*r = append((*r)[:0], src...)
	}
	return nil
}

func (r *rawJSON) DecodeBinary(ci *pgtype.ConnInfo, src []byte) error { return r.DecodeText(ci, src) }

func (r rawJSON) MarshalJSON() ([]byte, error) {
	if r == nil {
		return []byte("null"), nil
	}
	// PostgreSQL leaves U+2028 and U+2029 as they are, json_encode escapes them (they occur in strings only)
	if bytes.IndexByte(r, 0xE2) >= 0 && (bytes.Contains(r, lineSep) || bytes.Contains(r, paraSep)) {
		return bytes.ReplaceAll(bytes.ReplaceAll(r, lineSep, []byte(`\u2028`)), paraSep, []byte(`\u2029`)), nil
	}
	return r, nil
}

var lineSep, paraSep = []byte("\u2028"), []byte("\u2029")

// rank: a float4 written the way PHP's json_encode writes the float it parses from PostgreSQL's text:
// the shortest digits, in exponent form ("1.0e-5") below 1e-4 and above 1e17.
type rank float32

func (r rank) MarshalJSON() ([]byte, error) {
	e := strconv.AppendFloat(make([]byte, 0, 24), float64(r), 'e', -1, 32) // [-]d[.ddd]e±XX
	i := bytes.IndexByte(e, 'e')
	exp, _ := strconv.Atoi(string(e[i+1:]))
	if r == 0 || (exp >= -4 && exp <= 16) {
		return strconv.AppendFloat(e[:0], float64(r), 'f', -1, 32), nil
	}
	out := append(make([]byte, 0, 24), e[:i]...)
	if bytes.IndexByte(out, '.') < 0 {
		out = append(out, ".0"...)
	}
	out = append(out, 'e')
	if exp >= 0 {
		out = append(out, '+')
	}
	return strconv.AppendInt(out, int64(exp), 10), nil
}

// ---- validation as index.php ----------------------------------------------------------------------------

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// pathID: /^[1-9][0-9]{0,18}$/ and at most 9223372036854775807, as index.php's path_id() (whose PCRE "$"
// also lets one trailing "\n" through, which PostgreSQL's int8 input then ignores).
func pathID(s string) (int64, bool) {
	d := strings.TrimSuffix(s, "\n")
	if len(d) < 1 || len(d) > 19 || d[0] < '1' || d[0] > '9' || !allDigits(d) ||
		!(len(s) < 19 || s <= "9223372036854775807") {
		return 0, false
	}
	n, err := strconv.ParseInt(d, 10, 64)
	return n, err == nil
}

// phpURLDecode: PHP's urldecode(): '+' is a space, %XX a byte, any other '%' stays.
func phpURLDecode(s string) string {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+':
			b = append(b, ' ')
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// queryParam looks name up in a raw query string the way PHP fills $_GET: pairs split on '&', names and
// values urldecode()d, a name cut at a NUL and without leading spaces, the last pair wins, and "name[...]"
// makes an array (set, but not a string). PHP turns ' ' and '.' (and an unclosed '[') in names into '_',
// which none of the names looked up here contains, so such pairs never match.
func queryParam(raw, name string) (v string, set, isString bool) {
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" {
			continue
		}
		k, val, _ := strings.Cut(pair, "=")
		key := phpURLDecode(k)
		if i := strings.IndexByte(key, 0); i >= 0 {
			key = key[:i]
		}
		key = strings.TrimLeft(key, " ")
		arr := false
		if i := strings.IndexByte(key, '['); i >= 0 {
			if strings.IndexByte(key[i+1:], ']') < 0 {
				continue
			}
			key, arr = key[:i], true
		}
		if key != name {
			continue
		}
		set = true
		if arr {
			v, isString = "", false
		} else {
			v, isString = phpURLDecode(val), true
		}
	}
	return v, set, isString
}

// intParam: index.php's int_param(): absent gives def; else /^-?[0-9]{1,19}$/ within [min, max], or a 400.
func intParam(w http.ResponseWriter, raw, key string, def, min, max int) (int, bool) {
	v, set, isString := queryParam(raw, key)
	if !set {
		return def, true
	}
	d := strings.TrimSuffix(v, "\n") // PCRE's "$"; PHP's (int) ignores trailing whitespace
	digits := strings.TrimPrefix(d, "-")
	n, err := strconv.ParseInt(d, 10, 64)
	if !isString || len(digits) < 1 || len(digits) > 19 || !allDigits(digits) || err != nil ||
		n < int64(min) || n > int64(max) {
		fail(w, 400, "invalid_parameter",
			fmt.Sprintf("query parameter '%s' must be an integer from %d to %d", key, min, max), str(key))
		return 0, false
	}
	return int(n), true
}

// isPCRESpace: \s without the u flag.
func isPCRESpace(c byte) bool { return c == ' ' || c >= '\t' && c <= '\r' }

func skipSpace(s string) string {
	for s != "" && isPCRESpace(s[0]) {
		s = s[1:]
	}
	return s
}

func hasPrefixFold(s, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}

// jsonContentType: ~^application/json\s*(;\s*charset=utf-8\s*)?$~i
func jsonContentType(ct string) bool {
	if !hasPrefixFold(ct, "application/json") {
		return false
	}
	s := skipSpace(ct[len("application/json"):])
	if s == "" {
		return true
	}
	if s[0] != ';' {
		return false
	}
	s = skipSpace(s[1:])
	if !hasPrefixFold(s, "charset=utf-8") {
		return false
	}
	return skipSpace(s[len("charset=utf-8"):]) == ""
}

// bearerToken: /^bearer +(\S+)$/i and then 43 characters of base64url for 32 bytes, or nil.
func bearerToken(auth string) []byte {
	if !hasPrefixFold(auth, "bearer ") {
		return nil
	}
	t := strings.TrimLeft(auth[len("bearer"):], " ")
	if len(t) != 43 {
		return nil
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return nil
		}
	}
	tok, err := base64.RawURLEncoding.DecodeString(t)
	if err != nil || len(tok) != 32 {
		return nil
	}
	return tok
}

// ---- the message body, read as PHP's json_decode($body, false, 16) reads it ----------------------------------
// Strict JSON (RFC 8259) in valid UTF-8, at most 15 nested arrays/objects, no unpaired UTF-16 surrogate
// escape, no object key starting with "\u0000"; anything else, or a top level that is not an object, is not
// "one JSON object". Keys repeat as PHP's properties do: the first occurrence fixes the order, the last the value.

type jsonField struct {
	set, isString bool
	s             string
}

type messageBody struct {
	unknown       *string // the first key that is neither role nor content
	role, content jsonField
}

const maxJSONNesting = 15

type jsonScanner struct {
	s     []byte
	i     int
	depth int
}

var errJSON = errors.New("invalid JSON")

func (p *jsonScanner) space() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonScanner) hex4() (rune, bool) {
	if p.i+4 > len(p.s) {
		return 0, false
	}
	var r rune
	for _, c := range p.s[p.i : p.i+4] {
		if !isHex(c) {
			return 0, false
		}
		r = r<<4 | rune(unhex(c))
	}
	p.i += 4
	return r, true
}

// str scans a string at p.i ('"'); with keep it returns the decoded value.
func (p *jsonScanner) str(keep bool) (string, error) {
	p.i++
	var b []byte
	start := p.i
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '"':
			if keep {
				b = append(b, p.s[start:p.i]...)
			}
			p.i++
			return string(b), nil
		case c < 0x20:
			return "", errJSON
		case c == '\\':
			if keep {
				b = append(b, p.s[start:p.i]...)
			}
			p.i++
			if p.i >= len(p.s) {
				return "", errJSON
			}
			e := p.s[p.i]
			p.i++
			switch e {
			case '"', '\\', '/':
				b = append(b, e)
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r, ok := p.hex4()
				if !ok || r >= 0xDC00 && r <= 0xDFFF {
					return "", errJSON
				}
				if r >= 0xD800 && r <= 0xDBFF {
					if p.i+1 >= len(p.s) || p.s[p.i] != '\\' || p.s[p.i+1] != 'u' {
						return "", errJSON
					}
					p.i += 2
					lo, ok := p.hex4()
					if !ok || lo < 0xDC00 || lo > 0xDFFF {
						return "", errJSON
					}
					r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
				}
				b = utf8.AppendRune(b, r)
			default:
				return "", errJSON
			}
			start = p.i
		case c < utf8.RuneSelf:
			p.i++
		default:
			r, n := utf8.DecodeRune(p.s[p.i:])
			if r == utf8.RuneError && n == 1 {
				return "", errJSON
			}
			p.i += n
		}
	}
	return "", errJSON
}

func (p *jsonScanner) digits() int {
	n := 0
	for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
		p.i++
		n++
	}
	return n
}

// value scans one value at p.i; a string's decoded text is returned when keep is set.
func (p *jsonScanner) value(keep bool) (isString bool, s string, err error) {
	if p.i >= len(p.s) {
		return false, "", errJSON
	}
	switch c := p.s[p.i]; {
	case c == '"':
		s, err = p.str(keep)
		return true, s, err
	case c == '{' || c == '[':
		return false, "", p.container(c == '{', nil)
	case c == '-' || c >= '0' && c <= '9':
		if c == '-' {
			p.i++
		}
		if p.i < len(p.s) && p.s[p.i] == '0' {
			p.i++
		} else if p.digits() == 0 {
			return false, "", errJSON
		}
		if p.i < len(p.s) && p.s[p.i] == '.' {
			p.i++
			if p.digits() == 0 {
				return false, "", errJSON
			}
		}
		if p.i < len(p.s) && (p.s[p.i] == 'e' || p.s[p.i] == 'E') {
			p.i++
			if p.i < len(p.s) && (p.s[p.i] == '+' || p.s[p.i] == '-') {
				p.i++
			}
			if p.digits() == 0 {
				return false, "", errJSON
			}
		}
		return false, "", nil
	}
	for _, lit := range [...]string{"true", "false", "null"} {
		if bytes.HasPrefix(p.s[p.i:], []byte(lit)) {
			p.i += len(lit)
			return false, "", nil
		}
	}
	return false, "", errJSON
}

// container scans an object or an array at p.i; m, for the top level, collects the message's fields.
func (p *jsonScanner) container(object bool, m *messageBody) error {
	if p.depth++; p.depth > maxJSONNesting {
		return errJSON
	}
	p.i++
	end := byte(']')
	if object {
		end = '}'
	}
	p.space()
	if p.i < len(p.s) && p.s[p.i] == end {
		p.i++
		p.depth--
		return nil
	}
	for {
		var field *jsonField
		if object {
			if p.i >= len(p.s) || p.s[p.i] != '"' {
				return errJSON
			}
			key, err := p.str(true)
			if err != nil || strings.HasPrefix(key, "\x00") {
				return errJSON
			}
			if m != nil {
				switch key {
				case "role":
					field = &m.role
				case "content":
					field = &m.content
				default:
					if m.unknown == nil {
						m.unknown = &key
					}
				}
			}
			p.space()
			if p.i >= len(p.s) || p.s[p.i] != ':' {
				return errJSON
			}
			p.i++
			p.space()
		}
		isString, s, err := p.value(field != nil)
		if err != nil {
			return err
		}
		if field != nil {
			*field = jsonField{true, isString, s}
		}
		p.space()
		if p.i >= len(p.s) {
			return errJSON
		}
		if c := p.s[p.i]; c == end {
			p.i++
			p.depth--
			return nil
		} else if c != ',' {
			return errJSON
		}
		p.i++
		p.space()
	}
}

// parseMessageBody: the fields of one JSON object, or false.
func parseMessageBody(body []byte) (messageBody, bool) {
	var m messageBody
	p := jsonScanner{s: body}
	p.space()
	if p.i >= len(p.s) || p.s[p.i] != '{' || p.container(true, &m) != nil {
		return m, false
	}
	p.space()
	return m, p.i == len(p.s)
}

// ---- the routes ---------------------------------------------------------------------------------------------

type server struct {
	pool    *pgxpool.Pool
	version []byte
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.EscapedPath() // as the request sent it, like parse_url($_SERVER['REQUEST_URI'])
	if path == "" {
		path = "/"
	}
	if r.Method == "GET" {
		for _, route := range [...]struct{ prefix, what string }{{"/api/v1/passages/", "passage"}, {"/api/v1/books/", "book"}} {
			if rest := strings.TrimPrefix(path, route.prefix); len(rest) < len(path) && rest != "" &&
				strings.IndexByte(rest, '/') < 0 {
				id, ok := pathID(rest)
				switch {
				case !ok:
					fail(w, 400, "invalid_id", route.what+" id must be a positive integer", nil)
				case route.what == "book":
					s.book(w, r, id)
				default:
					s.passage(w, r, id)
				}
				return
			}
		}
		if path == "/api/v1/search" {
			s.search(w, r)
			return
		}
	}
	const sessions, messages = "/api/v1/sessions/", "/messages"
	if r.Method == "POST" && len(path) > len(sessions+messages) && strings.HasPrefix(path, sessions) &&
		strings.HasSuffix(path, messages) {
		if sid := path[len(sessions) : len(path)-len(messages)]; strings.IndexByte(sid, '/') < 0 {
			if id, ok := pathID(sid); !ok {
				fail(w, 400, "invalid_id", "session id must be a positive integer", nil)
			} else {
				s.messagePost(w, r, id)
			}
			return
		}
	}
	if path == "/api/v1/version" {
		respond(w, 200, s.version)
		return
	}
	fail(w, 404, "not_found", "no such route", nil)
}

type passageJSON struct {
	ID        int64  `json:"id"`
	ChapterID int64  `json:"chapter_id"`
	BookID    int64  `json:"book_id"`
	Position  int32  `json:"position"`
	Body      string `json:"body"`
}

func (s *server) passage(w http.ResponseWriter, r *http.Request, id int64) {
	var p passageJSON
	err := s.pool.QueryRow(r.Context(), sqlPassageGet, id).Scan(&p.ID, &p.ChapterID, &p.BookID, &p.Position, &p.Body)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		fail(w, 404, "not_found", "no such passage", nil)
	case err != nil:
		dbUnavailable(w)
	default:
		respondJSON(w, 200, &p)
	}
}

type bookJSON struct {
	ID       int64   `json:"id"`
	Slug     string  `json:"slug"`
	Title    string  `json:"title"`
	Author   *string `json:"author"`
	Language *string `json:"language"`
	Chapters rawJSON `json:"chapters"`
}

func (s *server) book(w http.ResponseWriter, r *http.Request, id int64) {
	var b bookJSON
	err := s.pool.QueryRow(r.Context(), sqlBookGet, id).Scan(&b.ID, &b.Slug, &b.Title, &b.Author, &b.Language, &b.Chapters)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		fail(w, 404, "not_found", "no such book", nil)
	case err != nil:
		dbUnavailable(w)
	default:
		respondJSON(w, 200, &b)
	}
}

// snippet: ts_headline's text HTML-escaped, its \x02 and \x03 turned into <mark> and </mark> (balanced).
func snippet(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 64)
	open := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '"':
			b.WriteString("&quot;")
		case '\'':
			b.WriteString("&#39;")
		case 2:
			if !open {
				b.WriteString("<mark>")
			}
			open = true
		case 3:
			if open {
				b.WriteString("</mark>")
			}
			open = false
		default:
			b.WriteByte(c)
		}
	}
	if open {
		b.WriteString("</mark>")
	}
	return b.String()
}

type idTitle struct {
	ID    int64  `json:"id"`
	Title string `json:"title"`
}

type chapterRef struct {
	ID       int64  `json:"id"`
	Position int32  `json:"position"`
	Title    string `json:"title"`
}

type hitJSON struct {
	PassageID int64      `json:"passage_id"`
	Rank      rank       `json:"rank"`
	Heading   *string    `json:"heading"`
	Snippet   string     `json:"snippet"`
	Book      idTitle    `json:"book"`
	Chapter   chapterRef `json:"chapter"`
}

type searchJSON struct {
	Query      string    `json:"query"`
	Book       *int64    `json:"book"`
	Limit      int       `json:"limit"`
	Offset     int       `json:"offset"`
	Results    []hitJSON `json:"results"`
	NextOffset *int      `json:"next_offset"`
}

func (s *server) search(w http.ResponseWriter, r *http.Request) {
	raw := r.URL.RawQuery
	q, set, isString := queryParam(raw, "q")
	switch {
	case !set || !isString:
		fail(w, 400, "invalid_query", "query parameter 'q' is required", nil)
		return
	case !utf8.ValidString(q) || strings.IndexByte(q, 0) >= 0:
		fail(w, 400, "invalid_query", "query parameter 'q' is not valid UTF-8", nil)
		return
	case utf8.RuneCountInString(q) > 256:
		fail(w, 400, "invalid_query", "query parameter 'q' must be at most 256 characters", nil)
		return
	case strings.Trim(q, " \t\n\r\f\v") == "":
		fail(w, 400, "invalid_query", "query parameter 'q' must not be empty", nil)
		return
	}
	var book *int64
	var bookArg interface{} // NULL
	if v, set, isString := queryParam(raw, "book"); set {
		id, ok := pathID(v)
		if !isString || !ok {
			fail(w, 400, "invalid_parameter", "query parameter 'book' must be a book id (a positive integer)", nil)
			return
		}
		book, bookArg = &id, id
	}
	limit, ok := intParam(w, raw, "limit", 10, 1, 50)
	if !ok {
		return
	}
	offset, ok := intParam(w, raw, "offset", 0, 0, 1000)
	if !ok {
		return
	}

	rows, err := s.pool.Query(r.Context(), sqlSearch, q, bookArg, limit, offset)
	if err != nil {
		dbUnavailable(w)
		return
	}
	defer rows.Close()
	res := searchJSON{Query: q, Book: book, Limit: limit, Offset: offset, Results: make([]hitJSON, 0, limit)}
	var (
		n, hits                  int
		bookOK                   bool
		hitID, bookID, chapterID pgtype.Int8
		rk                       pgtype.Float4
		bookTitle, chapterTitle  pgtype.Text
		snip, heading            pgtype.Text
		chapterPos               pgtype.Int4
	)
	for rows.Next() {
		if err := rows.Scan(&bookOK, &hitID, &rk, &bookID, &bookTitle, &chapterID, &chapterPos, &chapterTitle,
			&snip, &heading); err != nil {
			dbUnavailable(w)
			return
		}
		if n == 0 && (!bookOK || hitID.Status != pgtype.Present) {
			n++
			continue // no such book, or no hits: the one row of the LEFT JOIN
		}
		if n++; hits < limit {
			hits++
			h := hitJSON{PassageID: hitID.Int, Rank: rank(rk.Float), Snippet: snippet(snip.String),
				Book: idTitle{bookID.Int, bookTitle.String}, Chapter: chapterRef{chapterID.Int, chapterPos.Int, chapterTitle.String}}
			if heading.Status == pgtype.Present {
				hd := heading.String
				h.Heading = &hd
			}
			res.Results = append(res.Results, h)
		}
	}
	if rows.Err() != nil {
		dbUnavailable(w)
		return
	}
	switch {
	case n == 0:
		fail(w, 500, "internal", "no answer row from the search", nil)
		return
	case !bookOK:
		fail(w, 404, "not_found", "no such book", nil)
		return
	}
	if hits > 0 && n > limit && offset+limit <= 1000 {
		next := offset + limit
		res.NextOffset = &next
	}
	respondJSON(w, 200, &res)
}

// tokenHash: sessions.token_hash (bytea), copied out of pgx's buffer.
type tokenHash struct {
	b  [sha256.Size]byte
	ok bool
}

func (t *tokenHash) DecodeBinary(_ *pgtype.ConnInfo, src []byte) error {
	t.ok = len(src) == len(t.b)
	copy(t.b[:], src)
	return nil
}

func (t *tokenHash) DecodeText(_ *pgtype.ConnInfo, src []byte) error { // "\x" and hex digits
	t.ok = len(src) == 2+2*len(t.b) && src[0] == '\\' && src[1] == 'x'
	if t.ok {
		_, err := hex.Decode(t.b[:], src[2:])
		t.ok = err == nil
	}
	return nil
}

var errTooLarge = errors.New("request body too large")

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	var b bytes.Buffer
	if r.ContentLength > maxBody {
		return nil, errTooLarge
	}
	if r.ContentLength > 0 {
		b.Grow(int(r.ContentLength) + 1)
	}
	_, err := b.ReadFrom(http.MaxBytesReader(w, r.Body, maxBody))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, errTooLarge
	}
	return b.Bytes(), err
}

func (s *server) messagePost(w http.ResponseWriter, r *http.Request, sid int64) {
	if !jsonContentType(r.Header.Get("Content-Type")) {
		fail(w, 415, "unsupported_media_type", "the body must be sent as Content-Type: application/json", nil)
		return
	}
	body, err := readBody(w, r)
	if err == errTooLarge {
		fail(w, 413, "payload_too_large", fmt.Sprintf("the request body must be at most %d bytes", maxBody), nil)
		return
	} else if err != nil {
		fail(w, 400, "bad_request", "could not read the request body", nil)
		return
	}
	m, ok := parseMessageBody(body)
	if !ok {
		fail(w, 400, "invalid_body", "the body must be one JSON object", nil)
		return
	}
	if m.unknown != nil {
		fail(w, 400, "invalid_body", "unknown field '"+*m.unknown+"'", m.unknown)
		return
	}
	role, content := m.role.s, m.content.s
	if !m.role.isString || len(role) < 1 || len(role) > 16 {
		fail(w, 400, "invalid_body", "'role' must be a string of 1 to 16 characters", str("role"))
		return
	}
	if !m.content.isString || content == "" || utf8.RuneCountInString(content) > 16384 {
		fail(w, 400, "invalid_body", "'content' must be a string of 1 to 16384 characters", str("content"))
		return
	}
	if role != "user" && role != "assistant" && role != "system" {
		fail(w, 400, "invalid_body", "'role' must be one of user, assistant, system", str("role"))
		return
	}
	tok := bearerToken(r.Header.Get("Authorization"))
	if tok == nil {
		fail(w, 404, "not_found", "no such session", nil)
		return
	}

	ctx := r.Context()
	conn, err := s.pool.Acquire(ctx) // one connection for both statements
	if err != nil {
		dbUnavailable(w)
		return
	}
	defer conn.Release()
	var stored tokenHash
	err = conn.QueryRow(ctx, sqlSessionAuth, sid).Scan(&stored)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		dbUnavailable(w)
		return
	}
	sum := sha256.Sum256(tok)
	if errors.Is(err, pgx.ErrNoRows) || !stored.ok || subtle.ConstantTimeCompare(stored.b[:], sum[:]) != 1 {
		fail(w, 404, "not_found", "no such session", nil)
		return
	}
	h := sha256.New()
	io.WriteString(h, "POST messages\x00")
	io.WriteString(h, role)
	io.WriteString(h, "\x00")
	io.WriteString(h, content)
	fp := h.Sum(make([]byte, 0, sha256.Size))

	// PHP's pg_send_execute() (like neonpool) passes the parameters as C strings: content ends at a NUL
	dbContent := content
	if i := strings.IndexByte(content, 0); i >= 0 {
		dbContent = content[:i]
	}
	var status pgtype.Int4
	var answer string
	var replayed bool
	err = conn.QueryRow(ctx, sqlMessagePost, sid, nil, fp, role, dbContent).Scan(&status, &answer, &replayed)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		dbUnavailable(w)
		return
	}
	switch st := int(status.Int); {
	case errors.Is(err, pgx.ErrNoRows) || status.Status != pgtype.Present || st < 200 || st > 299:
		if st == 404 {
			fail(w, 404, "not_found", "no such session", nil)
		} else {
			fail(w, 500, "internal", "malformed answer from np_post_message", nil)
		}
	default:
		respond(w, st, []byte(answer))
	}
}

// ---- main -------------------------------------------------------------------------------------------------

func die(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "go-peer: "+format+"\n", args...)
	os.Exit(1)
}

// quietSemicolons drops net/http's line for every request whose query has a ';' (PHP reads ';' as a character
// of a value, and so does queryParam; net/http's own query parsing is not used).
type quietSemicolons struct{ w io.Writer }

func (q quietSemicolons) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("URL query contains semicolon")) {
		return len(p), nil
	}
	return q.w.Write(p)
}

func listen(addr string) (net.Listener, error) {
	if !strings.Contains(addr, "/") {
		return net.Listen("tcp", addr)
	}
	if fi, err := os.Lstat(addr); err == nil && fi.Mode()&os.ModeSocket != 0 {
		os.Remove(addr) // a stale socket of an earlier run
	}
	ln, err := net.Listen("unix", addr)
	if err == nil {
		err = os.Chmod(addr, 0o666)
	}
	return ln, err
}

func main() {
	addr := os.Getenv("NP_LISTEN")
	if addr == "" {
		die("NP_LISTEN (a unix socket path) is not set")
	}
	cfg, err := pgxpool.ParseConfig(os.Getenv("NP_CONNINFO"))
	if err != nil {
		die("NP_CONNINFO: %v", err)
	}
	if f := os.Getenv("NP_PASSWORD_FILE"); f != "" {
		pw, err := os.ReadFile(f)
		if err != nil {
			die("NP_PASSWORD_FILE: %v", err)
		}
		cfg.ConnConfig.Password = strings.TrimSpace(string(pw))
	}
	size := 4
	if v := os.Getenv("NP_POOL_SIZE"); v != "" {
		if size, err = strconv.Atoi(v); err != nil || size < 1 || size > 10000 {
			die("NP_POOL_SIZE must be a number of connections, not %q", v)
		}
	}
	cfg.MaxConns, cfg.MinConns = int32(size), int32(size)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	pool, err := pgxpool.ConnectConfig(ctx, cfg) // opens the MinConns connections
	if err != nil {
		// keep serving (503 until the database answers), as the PHP peer would
		fmt.Fprintf(os.Stderr, "go-peer: the database is unavailable for now: %v\n", err)
		cfg.LazyConnect = true
		if pool, err = pgxpool.ConnectConfig(ctx, cfg); err != nil {
			die("pool: %v", err)
		}
	}

	version, _ := json.Marshal(struct {
		Name    string `json:"name"`
		Version string `json:"version"`
		API     string `json:"api"`
	}{"go-peer", runtime.Version(), "v1"})
	srv := &http.Server{
		Handler:           &server{pool: pool, version: version},
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          log.New(quietSemicolons{os.Stderr}, "go-peer: ", log.LstdFlags),
	}
	ln, err := listen(addr)
	if err != nil {
		die("listen on %s: %v", addr, err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err = <-served:
		pool.Close()
		die("serve: %v", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		fmt.Fprintf(os.Stderr, "go-peer: shutdown: %v\n", err)
	}
	pool.Close()
}
