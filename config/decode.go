package config

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/handoff-mta/handoff/internal/oauth"
	"github.com/handoff-mta/handoff/relay"
)

// The keys of each table, in the order WriteEffective prints them. They
// drive the "did you mean" suggestions; the walks below handle each.
var (
	topKeys   = []string{"hostname", "domain", "sender", "rewrite_from", "aliases_file", "aliases", "queue", "relay", "log", "daemon"}
	queueKeys = []string{"dir", "mode", "retry_min", "retry_max", "max_age", "delay_warning",
		"connections_per_relay", "messages_per_connection"}
	relayKeys = []string{"name", "url", "starttls", "username", "password", "password_file", "password_command",
		"password_credential", "auth",
		"tls_ca_file", "tls_cert_file", "tls_key_file", "tls_pin_sha256", "tls_min_version", "tls_server_name", "tls_insecure",
		"senders", "domains", "connect_timeout", "command_timeout", "data_timeout", "pipelining", "oauth2"}
	oauth2Keys = []string{"provider", "client_id", "client_secret", "client_secret_file", "client_secret_credential",
		"tenant", "scopes", "token_url", "device_auth_url", "auth_url", "token_file"}
	logKeys    = []string{"syslog", "format"}
	daemonKeys = []string{"socket", "trusted_users", "sender_policy", "senders", "max_message_size", "max_recipients",
		"submissions_per_minute", "max_connections", "idle_exit", "relay_idle"}

	// tables lists each table: its key ("" for the top level), how it is
	// written, and its keys.
	tables = []struct {
		name, header string
		keys         []string
	}{
		{"", "the top level", topKeys},
		{"queue", "[queue]", queueKeys},
		{"relay", "[[relay]]", relayKeys},
		{"relay.oauth2", "[relay.oauth2]", oauth2Keys},
		{"log", "[log]", logKeys},
		{"daemon", "[daemon]", daemonKeys},
	}
)

// optionalStrings are the keys whose default is "": setting one to ""
// is the same as leaving it out.
var optionalStrings = []string{"sender", "aliases_file", "username", "password", "password_file", "password_command",
	"password_credential", "tls_ca_file", "tls_cert_file", "tls_key_file", "tls_server_name"}

// optionalOAuth2Strings are the same for [relay.oauth2]: every string
// but client_id.
var optionalOAuth2Strings = []string{"provider", "client_secret", "client_secret_file", "client_secret_credential",
	"tenant", "token_url", "device_auth_url", "auth_url", "token_file"}

// passwordKeys are the alternative sources of a relay's secret.
var passwordKeys = []string{"password", "password_file", "password_command", "password_credential", "oauth2"}

// authMechanisms are the names auth accepts; oauthMechanisms take a token.
var (
	authMechanisms  = []string{"PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-256", "XOAUTH2", "OAUTHBEARER"}
	oauthMechanisms = []string{"XOAUTH2", "OAUTHBEARER"}
)

// decoder walks a decoded document against the schema, filling a Config
// and collecting problems.
type decoder struct {
	path     string
	src      string
	lines    keyLines
	problems []Problem
	warnings []Problem
}

func newDecoder(data []byte, path string) *decoder {
	return &decoder{path: path, src: string(data)}
}

func (d *decoder) problem(p keyPath, format string, args ...any) {
	d.problems = append(d.problems, Problem{Line: d.lines.find(p), Key: p.String(), Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) warn(p keyPath, format string, args ...any) {
	d.warnings = append(d.warnings, Problem{Line: d.lines.find(p), Key: p.String(), Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) err() *Error {
	sortProblems(d.problems)
	return &Error{Path: d.path, Problems: d.problems}
}

// parseTOML decodes the document into a generic map. A panic in the
// decoder (a bug there) becomes a problem rather than a crash.
func (d *decoder) parseTOML() (m map[string]any) {
	defer func() {
		if r := recover(); r != nil {
			m = nil
			d.problems = append(d.problems, Problem{Line: 1, Msg: fmt.Sprintf("TOML decoder failed: %v", r)})
		}
	}()
	if _, err := toml.Decode(d.src, &m); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			line, col := d.position(pe.Position)
			msg := "TOML syntax: " + pe.Message
			if d.onPasswordLine(line) {
				// The message may quote part of an unquoted password.
				msg = "TOML syntax error in the value of password (details not shown, they may contain the password); write it as a quoted string, password = \"...\""
			}
			d.problems = append(d.problems, Problem{Line: line, Col: col, Msg: msg})
		} else {
			d.problems = append(d.problems, Problem{Line: 1, Msg: "TOML: " + err.Error()})
		}
		return nil
	}
	if m == nil {
		m = map[string]any{}
	}
	return m
}

// position returns the line and column of a syntax error from its byte
// offset; the decoder's own line is one too far when the offending byte
// is a newline. The decoder counts offsets after a byte-order mark.
func (d *decoder) position(p toml.Position) (line, col int) {
	src := d.src
	for _, bom := range []string{"\xef\xbb\xbf", "\xff\xfe", "\xfe\xff"} {
		if strings.HasPrefix(src, bom) {
			src = src[len(bom):]
			break
		}
	}
	if p.Start < 0 || p.Start > len(src) || p.Line < 1 {
		return max(p.Line, 1), p.Col
	}
	before := src[:p.Start]
	return strings.Count(before, "\n") + 1, p.Start - strings.LastIndexByte(before, '\n')
}

// onPasswordLine reports whether line n of the source sets a password.
func (d *decoder) onPasswordLine(n int) bool {
	lines := strings.Split(d.src, "\n")
	if n < 1 || n > len(lines) {
		return false
	}
	key, _, ok := strings.Cut(lines[n-1], "=")
	key = strings.Trim(strings.TrimSpace(key), `"'`)
	for _, k := range []string{"password", "client_secret"} {
		if ok && (key == k || strings.HasSuffix(key, "."+k) || strings.HasSuffix(key, `."`+k)) {
			return true
		}
	}
	return false
}

func (d *decoder) decode() *Config {
	m := d.parseTOML()
	if m == nil {
		return nil
	}
	d.lines = scanKeyLines(d.src)
	c := defaults()
	c.Path = d.path

	var aliases map[string][]string
	var hostSet, domainSet bool
	root := keyPath{}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v, p := m[k], root.child(k)
		if v == "" && slices.Contains(optionalStrings, k) {
			continue
		}
		switch k {
		case "hostname":
			if s, ok := d.str(p, v); ok {
				c.Hostname, hostSet = strings.ToLower(strings.TrimSuffix(s, ".")), true
				if !validHostname(c.Hostname) {
					d.problem(p, "%s is not a host name; use letters, digits, '-' and '.', like \"mail.example.com\"", strconv.Quote(s))
				}
			}
		case "domain":
			if s, ok := d.str(p, v); ok {
				c.Domain, domainSet = strings.ToLower(strings.TrimSuffix(s, ".")), true
				if !validHostname(c.Domain) {
					d.problem(p, "%s is not a domain name; use letters, digits, '-' and '.', like \"example.com\"", strconv.Quote(s))
				}
			}
		case "sender":
			if s, ok := d.str(p, v); ok {
				c.Sender = s
				if msg := checkAddress(s); s != "" && msg != "" {
					d.problem(p, "%s %s", strconv.Quote(s), msg)
				}
			}
		case "rewrite_from":
			c.RewriteFrom, _ = d.boolean(p, v)
		case "aliases_file":
			if s, ok := d.str(p, v); ok {
				c.AliasesFile = s
				d.absPath(p, s)
			}
		case "aliases":
			aliases = d.aliasTable(p, v)
		case "queue":
			if t, ok := d.table(p, v, "[queue]"); ok {
				d.queue(p, t, &c.Queue)
			}
		case "relay":
			c.Relays = d.relays(p, v)
		case "log":
			if t, ok := d.table(p, v, "[log]"); ok {
				d.log(p, t, &c.Log)
			}
		case "daemon":
			if t, ok := d.table(p, v, "[daemon]"); ok {
				d.daemon(p, t, &c.Daemon)
			}
		default:
			d.unknown(root, k)
		}
	}
	if c.RewriteFrom && c.Sender == "" {
		d.problem(root.child("rewrite_from"), "needs sender: it rewrites From: to the forced sender address")
	}

	// aliases_file under [aliases].
	c.Aliases = map[string][]string{}
	if c.AliasesFile != "" && filepath.IsAbs(c.AliasesFile) {
		data, err := readFile(c.AliasesFile)
		if err != nil {
			d.problem(root.child("aliases_file"), "cannot read %s: %v", c.AliasesFile, pathErr(err))
		} else {
			fileAliases, probs := parseAliases(data)
			for i := range probs {
				probs[i].File = c.AliasesFile
			}
			d.problems = append(d.problems, probs...)
			maps.Copy(c.Aliases, fileAliases)
		}
	}
	maps.Copy(c.Aliases, aliases)

	if !hostSet {
		c.Hostname = systemHostname()
	}
	if !domainSet {
		name, bad := mailname()
		if bad != "" {
			d.warnings = append(d.warnings, Problem{File: mailnamePath, Line: 1, Msg: fmt.Sprintf("%s is not a domain name; using hostname %s as domain", strconv.Quote(bad), c.Hostname)})
		}
		c.Domain = name
		if c.Domain == "" {
			c.Domain = c.Hostname
		}
	}
	sortProblems(d.warnings)
	for _, w := range d.warnings {
		c.Warnings = append(c.Warnings, w.format(d.path))
	}
	return c
}

// pathErr returns the reason inside an *fs.PathError.
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// unknown reports key k of the table at p, with a suggestion.
func (d *decoder) unknown(p keyPath, k string) {
	// The table's name without indexes: "relay.oauth2" for
	// relay[2].oauth2.
	names := make([]string, len(p))
	for i, e := range p {
		names[i], _, _ = strings.Cut(e, "[")
	}
	table := strings.Join(names, ".")
	msg := "unknown key"
	if s := suggest(table, k); s != "" {
		msg += "; " + s
	}
	d.problem(p.child(k), "%s", msg)
}

// suggest proposes a known key close to k in the same table, or the
// table where k belongs.
func suggest(table, k string) string {
	var keys []string
	for _, t := range tables {
		if t.name == table {
			keys = t.keys
		}
	}
	best, bestDist := "", 3
	lk := strings.ToLower(k)
	for _, key := range keys {
		dist := editDistance(lk, key)
		if dist < bestDist && (dist <= 1 || len(k) >= 5) {
			best, bestDist = key, dist
		}
	}
	if best != "" {
		return "did you mean " + best + "?"
	}
	for _, t := range tables {
		if t.name == table || !slices.Contains(t.keys, lk) {
			continue
		}
		if t.name == "" {
			return lk + " is a top-level key: put it before the first [table]"
		}
		return lk + " belongs in " + t.header
	}
	return ""
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// ---------------------------------------------------------------- values

// describe names a decoded TOML value for messages.
func describe(v any) string {
	switch v := v.(type) {
	case string:
		return "the string " + quoteShort(v)
	case int64:
		return "the integer " + strconv.FormatInt(v, 10)
	case float64:
		return "the float " + strconv.FormatFloat(v, 'g', -1, 64)
	case bool:
		return "the boolean " + strconv.FormatBool(v)
	case time.Time:
		return "a date-time"
	case []map[string]any:
		return "an array of tables"
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	}
	return fmt.Sprintf("a %T", v)
}

// typeName names a value's type without its value, for secrets: "an
// integer".
func typeName(v any) string {
	s := describe(v)
	rest, ok := strings.CutPrefix(s, "the ")
	if !ok {
		return s
	}
	rest, _, _ = strings.Cut(rest, " ")
	if strings.HasPrefix(rest, "i") {
		return "an " + rest
	}
	return "a " + rest
}

// quoteShort quotes s, shortened to 80 bytes.
func quoteShort(s string) string {
	if len(s) > 80 {
		cut := 80
		for cut > 0 && !utf8RuneStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut]) + "..."
	}
	return strconv.Quote(s)
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// hasControl reports a control character (CR, LF, NUL, tab, DEL, ...).
func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return true
		}
	}
	return false
}

// str returns v as a string, reporting a wrong type or control
// characters.
func (d *decoder) str(p keyPath, v any) (string, bool) {
	s, ok := v.(string)
	if !ok {
		d.problem(p, "must be a string, not %s", describe(v))
		return "", false
	}
	if hasControl(s) {
		d.problem(p, "%s must not contain control characters (CR, LF, NUL, tab, ...)", quoteShort(s))
		return "", false
	}
	return s, true
}

// secret is str for passwords: the value never appears in a message.
func (d *decoder) secret(p keyPath, v any) (string, bool) {
	s, ok := v.(string)
	if !ok {
		d.problem(p, "must be a string, not %s", typeName(v))
		return "", false
	}
	if hasControl(s) {
		d.problem(p, "must not contain control characters (CR, LF, NUL, tab, ...)")
		return "", false
	}
	return s, true
}

func (d *decoder) boolean(p keyPath, v any) (bool, bool) {
	b, ok := v.(bool)
	if !ok {
		d.problem(p, "must be true or false, not %s", describe(v))
	}
	return b, ok
}

// integer returns v as an int in [lo, hi].
func (d *decoder) integer(p keyPath, v any, lo, hi int64) (int, bool) {
	n, ok := v.(int64)
	if !ok {
		d.problem(p, "must be an integer, not %s", describe(v))
		return 0, false
	}
	if n < lo || n > hi {
		if hi == 1<<31-1 {
			d.problem(p, "%d is out of range; it must be at least %d", n, lo)
		} else {
			d.problem(p, "%d is out of range; it must be from %d to %d", n, lo, hi)
		}
		return 0, false
	}
	return int(n), true
}

// strings returns v as a non-empty array of strings; example shows the
// expected form in messages.
func (d *decoder) strList(p keyPath, v any, example string) ([]string, bool) {
	arr, ok := v.([]any)
	if !ok {
		d.problem(p, "must be an array of strings, like %s, not %s", example, describe(v))
		return nil, false
	}
	out := make([]string, 0, len(arr))
	good := true
	for i, e := range arr {
		s, ok := e.(string)
		if !ok {
			d.problem(p, "element %d must be a string, not %s", i+1, describe(e))
			good = false
			continue
		}
		if hasControl(s) {
			d.problem(p, "element %d, %s, must not contain control characters", i+1, quoteShort(s))
			good = false
			continue
		}
		out = append(out, s)
	}
	return out, good
}

// duration returns v as a Duration that is positive (or zero, with
// zeroOK).
func (d *decoder) duration(p keyPath, v any, zeroOK bool) (Duration, bool) {
	s, ok := v.(string)
	if !ok {
		d.problem(p, "must be a duration string, like \"30s\", \"5m\", \"4h\" or \"5d\", not %s", describe(v))
		return Duration{}, false
	}
	dur, err := ParseDuration(s)
	if err != nil {
		d.problem(p, "%v", err)
		return Duration{}, false
	}
	switch {
	case dur < 0 && zeroOK:
		d.problem(p, "%s: must not be negative (\"0\" turns it off)", strconv.Quote(s))
		return Duration{}, false
	case dur <= 0 && !zeroOK:
		d.problem(p, "%s: must be positive", strconv.Quote(s))
		return Duration{}, false
	}
	return Duration{dur}, true
}

// enum returns v when it is one of allowed.
func (d *decoder) enum(p keyPath, v any, allowed ...string) (string, bool) {
	s, ok := d.str(p, v)
	if !ok {
		return "", false
	}
	if !slices.Contains(allowed, s) {
		d.problem(p, "%s is not allowed; use %s", quoteShort(s), orList(allowed))
		return "", false
	}
	return s, true
}

// orList writes "a", "b" or "c".
func orList(vals []string) string {
	q := make([]string, len(vals))
	for i, v := range vals {
		q[i] = strconv.Quote(v)
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

// table returns v as a table; header is how the table is written.
func (d *decoder) table(p keyPath, v any, header string) (map[string]any, bool) {
	t, ok := v.(map[string]any)
	if !ok {
		d.problem(p, "must be a table, %s, not %s", header, describe(v))
	}
	return t, ok
}

// absPath reports a path that is not absolute.
func (d *decoder) absPath(p keyPath, s string) bool {
	if !filepath.IsAbs(s) {
		d.problem(p, "%s is not an absolute path; paths must start with /", quoteShort(s))
		return false
	}
	return true
}

// secretFile reads the absolute path of a file holding a secret, and
// warns when every user may read that file.
func (d *decoder) secretFile(p keyPath, v any) (string, bool) {
	s, ok := d.str(p, v)
	if !ok || !d.absPath(p, s) {
		return "", false
	}
	if st, err := os.Stat(s); err == nil && st.Mode().Perm()&0o004 != 0 {
		d.warn(p, "%s is readable by every user (mode %04o); make it readable only by root and handoff (chmod 600 or 640)", s, st.Mode().Perm())
	}
	return s, true
}

// ---------------------------------------------------------------- tables

func (d *decoder) queue(p keyPath, t map[string]any, q *Queue) {
	nprob := len(d.problems)
	for _, k := range slices.Sorted(maps.Keys(t)) {
		v, kp := t[k], p.child(k)
		switch k {
		case "dir":
			if s, ok := d.str(kp, v); ok && d.absPath(kp, s) {
				q.Dir = filepath.Clean(s)
			}
		case "mode":
			if s, ok := d.enum(kp, v, ModeNever, ModeFallback, ModeAlways); ok {
				q.Mode = s
			}
		case "retry_min":
			if dur, ok := d.duration(kp, v, false); ok {
				q.RetryMin = dur
			}
		case "retry_max":
			if dur, ok := d.duration(kp, v, false); ok {
				q.RetryMax = dur
			}
		case "max_age":
			if dur, ok := d.duration(kp, v, false); ok {
				q.MaxAge = dur
			}
		case "delay_warning":
			if dur, ok := d.duration(kp, v, true); ok {
				q.DelayWarning = dur
			}
		case "connections_per_relay":
			if n, ok := d.integer(kp, v, 1, maxConnsPerRelay); ok {
				q.ConnectionsPerRelay = n
			}
		case "messages_per_connection":
			if n, ok := d.integer(kp, v, 1, 1<<31-1); ok {
				q.MessagesPerConnection = n
			}
		default:
			d.unknown(p, k)
		}
	}
	if len(d.problems) > nprob {
		return // the relations below would compare with defaults
	}
	if q.RetryMin.Duration > q.RetryMax.Duration {
		kp := p.child("retry_min")
		if _, ok := t["retry_min"]; !ok {
			kp = p.child("retry_max")
		}
		d.problem(kp, "retry_min (%s) is longer than retry_max (%s); it must not be", q.RetryMin, q.RetryMax)
	}
	if q.DelayWarning.Duration > 0 && q.DelayWarning.Duration >= q.MaxAge.Duration {
		d.warn(p.child("delay_warning"), "%s is not shorter than max_age (%s): no delay warning will be sent", q.DelayWarning, q.MaxAge)
	}
}

func (d *decoder) log(p keyPath, t map[string]any, l *Log) {
	for _, k := range slices.Sorted(maps.Keys(t)) {
		v, kp := t[k], p.child(k)
		switch k {
		case "syslog":
			if b, ok := d.boolean(kp, v); ok {
				l.Syslog = b
			}
		case "format":
			if s, ok := d.enum(kp, v, FormatText, FormatJSON); ok {
				l.Format = s
			}
		default:
			d.unknown(p, k)
		}
	}
}

func (d *decoder) daemon(p keyPath, t map[string]any, dm *Daemon) {
	for _, k := range slices.Sorted(maps.Keys(t)) {
		v, kp := t[k], p.child(k)
		switch k {
		case "socket":
			if s, ok := d.str(kp, v); ok && d.absPath(kp, s) {
				dm.Socket = filepath.Clean(s)
			}
		case "trusted_users":
			if l, ok := d.strList(kp, v, `["www-data"]`); ok {
				dm.TrustedUsers = l
			}
		case "sender_policy":
			if s, ok := d.enum(kp, v, SenderRefuse, SenderRewrite); ok {
				dm.SenderPolicy = s
			}
		case "senders":
			if t, ok := d.table(kp, v, "[daemon.senders]"); ok {
				for _, u := range slices.Sorted(maps.Keys(t)) {
					if l, ok := d.strList(kp.child(u), t[u], `["*@example.com"]`); ok {
						dm.Senders[u] = l
					}
				}
			}
		case "max_message_size":
			if n, ok := d.integer(kp, v, 1024, 1<<40); ok {
				dm.MaxMessageSize = int64(n)
			}
		case "max_recipients":
			if n, ok := d.integer(kp, v, 1, 100000); ok {
				dm.MaxRecipients = n
			}
		case "submissions_per_minute":
			if n, ok := d.integer(kp, v, 0, 1<<31-1); ok {
				dm.SubmissionsPerMinute = n
			}
		case "max_connections":
			if n, ok := d.integer(kp, v, 1, 10000); ok {
				dm.MaxConnections = n
			}
		case "idle_exit":
			if dur, ok := d.duration(kp, v, true); ok {
				dm.IdleExit = dur
			}
		case "relay_idle":
			if dur, ok := d.duration(kp, v, true); ok {
				dm.RelayIdle = dur
			}
		default:
			d.unknown(p, k)
		}
	}
}

// aliasTable decodes [aliases].
func (d *decoder) aliasTable(p keyPath, v any) map[string][]string {
	t, ok := d.table(p, v, "[aliases]")
	if !ok {
		return nil
	}
	out := map[string][]string{}
	first := map[string]string{} // lower-cased name -> name as written
	for _, k := range slices.Sorted(maps.Keys(t)) {
		kp := p.child(k)
		name := strings.ToLower(k)
		if msg := checkAliasName(k); msg != "" {
			d.problem(kp, "%s", msg)
			continue
		}
		prev, dup := first[name]
		if dup {
			d.problem(kp, "same name as %s (alias names ignore case)", p.child(prev))
		} else {
			first[name] = k
		}
		var targets []string
		switch v := t[k].(type) {
		case string:
			targets = []string{v}
		case []any:
			if len(v) == 0 {
				d.problem(kp, "must not be an empty array")
				continue
			}
			var good bool
			if targets, good = d.strList(kp, v, `["ops@example.com"]`); !good {
				continue
			}
		default:
			d.problem(kp, "must be an address or an array of addresses, not %s", describe(v))
			continue
		}
		good := true
		for _, a := range targets {
			if msg := checkAliasTarget(a); msg != "" {
				d.problem(kp, "%s", msg)
				good = false
			}
		}
		if good && !dup {
			out[name] = targets
		}
	}
	return out
}

// relays decodes the [[relay]] array.
func (d *decoder) relays(p keyPath, v any) []Relay {
	var elems []map[string]any // nil for an element that is not a table
	switch v := v.(type) {
	case []map[string]any:
		elems = v
	case []any:
		for i, e := range v {
			t, ok := e.(map[string]any)
			if !ok {
				d.problem(p.index(i+1), "must be a table; write each relay as a [[relay]] section")
			}
			elems = append(elems, t)
		}
	case map[string]any:
		d.problem(p, "is a single table; write [[relay]], with double brackets, for each relay")
		return nil
	default:
		d.problem(p, "must be an array of tables, [[relay]], not %s", describe(v))
		return nil
	}
	out := make([]Relay, 0, len(elems))
	names := map[string]keyPath{}
	for i, t := range elems {
		if t == nil {
			continue
		}
		rp := p.index(i + 1)
		r := d.relay(rp, t, i+1)
		if r.Name != "" {
			if prev, dup := names[r.Name]; dup {
				kp := rp.child("name")
				d.problem(kp, "%s is already the name of %s (line %d); relay names must be unique", strconv.Quote(r.Name), prev, d.lines.find(prev))
			} else {
				names[r.Name] = rp
			}
		}
		out = append(out, r)
	}
	return out
}

// Relay URL kinds.
const (
	urlBad = iota
	urlMbox
	urlUnix     // lmtp:///path
	urlImplicit // smtps://
	urlSTARTTLS // smtp://, submission://, lmtp://host
)

// relay decodes and checks one [[relay]] table.
func (d *decoder) relay(p keyPath, t map[string]any, n int) Relay {
	r := defaultRelay()
	r.Line = d.lines.find(p)
	set := map[string]bool{}
	badUser := false // a username was given but refused
	for _, k := range slices.Sorted(maps.Keys(t)) {
		v, kp := t[k], p.child(k)
		if v == "" && slices.Contains(optionalStrings, k) {
			continue
		}
		if slices.Contains(relayKeys, k) {
			set[k] = true
		}
		switch k {
		case "name":
			if s, ok := d.str(kp, v); ok {
				if msg := checkRelayName(s); msg != "" {
					d.problem(kp, "%s", msg)
				} else {
					r.Name = s
				}
			}
		case "url":
			if s, ok := d.str(kp, v); ok {
				r.URL = s
			}
		case "starttls":
			if s, ok := d.enum(kp, v, StartTLSRequired, StartTLSOpportunistic, StartTLSNone); ok {
				r.StartTLS = s
			}
		case "username":
			if s, ok := d.str(kp, v); ok {
				r.Username = s
			} else {
				badUser = true
			}
		case "password":
			if s, ok := d.secret(kp, v); ok {
				r.Password = s
			}
		case "password_file":
			if s, ok := d.secretFile(kp, v); ok {
				r.PasswordFile = s
			}
		case "password_command":
			if s, ok := d.str(kp, v); ok {
				r.PasswordCommand = s
				if words, err := splitWords(s); err != nil {
					d.problem(kp, "%v", err)
				} else if len(words) == 0 {
					d.problem(kp, "has no command in it")
				}
			}
		case "password_credential":
			if s, ok := d.str(kp, v); ok && d.credentialName(kp, s) {
				r.PasswordCredential = s
			}
		case "oauth2":
			if tb, ok := d.table(kp, v, "[relay.oauth2]"); ok {
				r.OAuth2 = d.oauth2(kp, tb)
			}
		case "auth":
			if list, ok := d.strList(kp, v, `["PLAIN"]`); ok {
				r.Auth = d.authList(kp, list)
			}
		case "tls_ca_file":
			if s, ok := d.str(kp, v); ok && d.absPath(kp, s) {
				r.TLSCAFile = s
			}
		case "tls_cert_file":
			if s, ok := d.str(kp, v); ok && d.absPath(kp, s) {
				r.TLSCertFile = s
			}
		case "tls_key_file":
			if s, ok := d.str(kp, v); ok && d.absPath(kp, s) {
				r.TLSKeyFile = s
			}
		case "tls_pin_sha256":
			if list, ok := d.strList(kp, v, `["base64 digest"]`); ok {
				for i, pin := range list {
					if _, err := (&relay.TLSOptions{PinSHA256: []string{pin}}).Config(""); err != nil {
						d.problem(kp, "element %d, %s, is not a SHA-256 digest of a public key in base64 (44 characters) or hex (64 digits)", i+1, quoteShort(pin))
					}
				}
				if len(list) > 0 {
					r.TLSPinSHA256 = list
				}
			}
		case "tls_min_version":
			if f, isFloat := v.(float64); isFloat {
				d.problem(kp, "must be a string, \"1.2\" or \"1.3\", not the float %g (put it in quotes)", f)
			} else if s, ok := d.enum(kp, v, "1.2", "1.3"); ok {
				r.TLSMinVersion = s
			}
		case "tls_server_name":
			if s, ok := d.str(kp, v); ok {
				if !validHostname(strings.TrimSuffix(s, ".")) {
					d.problem(kp, "%s is not a host name; use letters, digits, '-' and '.'", quoteShort(s))
				} else {
					r.TLSServerName = s
				}
			}
		case "tls_insecure":
			r.TLSInsecure, _ = d.boolean(kp, v)
		case "senders":
			if list, ok := d.strList(kp, v, `["*@example.com"]`); ok {
				r.Senders = d.globs(kp, list, false)
			}
		case "domains":
			if list, ok := d.strList(kp, v, `["example.com", "*.example.com"]`); ok {
				r.Domains = d.globs(kp, list, true)
			}
		case "connect_timeout":
			if dur, ok := d.duration(kp, v, false); ok {
				r.ConnectTimeout = dur
			}
		case "command_timeout":
			if dur, ok := d.duration(kp, v, false); ok {
				r.CommandTimeout = dur
			}
		case "data_timeout":
			if dur, ok := d.duration(kp, v, false); ok {
				r.DataTimeout = dur
			}
		case "pipelining":
			if b, ok := d.boolean(kp, v); ok {
				r.Pipelining = b
			}
		default:
			d.unknown(p, k)
		}
	}
	if !set["name"] {
		r.Name = "relay" + strconv.Itoa(n)
	}
	if r.OAuth2 != nil && r.OAuth2.TokenFile == "" && r.Name != "" {
		r.OAuth2.TokenFile = defaultTokenDir + "/" + r.Name + ".json"
	}
	d.checkRelay(p, &r, set, badUser)
	return r
}

// credentialName checks the name of a systemd credential.
func (d *decoder) credentialName(p keyPath, s string) bool {
	if s == "." || s == ".." || strings.Contains(s, "/") || len(s) > 255 {
		d.problem(p, "%s is not a credential name; use the name given to LoadCredential= (a file name, without '/')", quoteShort(s))
		return false
	}
	return true
}

// oauth2 decodes and checks a [relay.oauth2] table, filling in the
// provider's defaults.
func (d *decoder) oauth2(p keyPath, t map[string]any) *OAuth2 {
	o := &OAuth2{}
	set := map[string]bool{}
	nprob := len(d.problems)
	for _, k := range slices.Sorted(maps.Keys(t)) {
		v, kp := t[k], p.child(k)
		if v == "" && slices.Contains(optionalOAuth2Strings, k) {
			continue
		}
		set[k] = true
		switch k {
		case "provider":
			if s, ok := d.enum(kp, v, oauth.Google, oauth.Microsoft, ""); ok {
				o.Provider = s
			}
		case "client_id":
			if s, ok := d.str(kp, v); ok {
				if s == "" {
					d.problem(kp, "must not be empty")
				}
				o.ClientID = s
			}
		case "client_secret":
			if s, ok := d.secret(kp, v); ok {
				o.ClientSecret = s
			}
		case "client_secret_file":
			if s, ok := d.secretFile(kp, v); ok {
				o.ClientSecretFile = s
			}
		case "client_secret_credential":
			if s, ok := d.str(kp, v); ok && d.credentialName(kp, s) {
				o.ClientSecretCredential = s
			}
		case "tenant":
			if s, ok := d.str(kp, v); ok {
				if !validTenant(s) {
					d.problem(kp, "%s is not a tenant; use a directory ID, a domain, \"common\", \"organizations\" or \"consumers\"", quoteShort(s))
				} else {
					o.Tenant = s
				}
			}
		case "scopes":
			if list, ok := d.strList(kp, v, `["https://mail.google.com/"]`); ok {
				for i, sc := range list {
					if sc == "" || strings.ContainsAny(sc, " \"\\") {
						d.problem(kp, "element %d, %s, is not a scope (no spaces, quotes or backslashes)", i+1, quoteShort(sc))
					}
				}
				if len(list) > 0 {
					o.Scopes = list
				}
			}
		case "token_url", "device_auth_url", "auth_url":
			if s, ok := d.str(kp, v); ok {
				if msg := checkEndpointURL(s); msg != "" {
					d.problem(kp, "%s", msg)
				}
				switch k {
				case "token_url":
					o.TokenURL = s
				case "device_auth_url":
					o.DeviceAuthURL = s
				default:
					o.AuthURL = s
				}
			}
		case "token_file":
			if s, ok := d.str(kp, v); ok && d.absPath(kp, s) {
				o.TokenFile = filepath.Clean(s)
			}
		default:
			d.unknown(p, k)
		}
	}

	if !set["client_id"] {
		d.problem(p, "needs client_id, the ID of the application registered with the provider")
	}
	var secrets []string
	for _, k := range []string{"client_secret", "client_secret_file", "client_secret_credential"} {
		if set[k] {
			secrets = append(secrets, k)
		}
	}
	for _, k := range secrets[min(1, len(secrets)):] {
		d.problem(p.child(k), "%s and %s are alternatives; set only one", secrets[0], k)
	}
	if set["tenant"] && o.Provider != oauth.Microsoft {
		d.problem(p.child("tenant"), "applies only to provider = \"microsoft\"")
	}
	if len(d.problems) > nprob {
		return o
	}
	if _, ok := o.fillDefaults(); ok {
		if o.Provider == oauth.Microsoft && o.Tenant == "" {
			o.Tenant = oauth.DefaultTenant
		}
	} else {
		if o.TokenURL == "" {
			d.problem(p, "needs token_url without a provider (or provider = \"google\" or \"microsoft\")")
		}
		if o.DeviceAuthURL == "" && o.AuthURL == "" {
			d.problem(p, "needs device_auth_url or auth_url without a provider, for \"handoff oauth2 login\"")
		}
	}
	return o
}

// validTenant accepts a Microsoft tenant: a GUID, a domain or a keyword.
func validTenant(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// checkEndpointURL returns what is wrong with an OAuth2 endpoint, or "".
func checkEndpointURL(s string) string {
	u, err := url.Parse(s)
	switch {
	case err != nil || u.Host == "" || u.Opaque != "":
		return quoteShort(s) + " is not an absolute URL, like \"https://oauth2.example.com/token\""
	case u.User != nil:
		// Not echoed: it may hold a password.
		return "must not contain user information (user:password@)"
	case u.Fragment != "":
		return quoteShort(s) + " has a fragment (#...); endpoints do not"
	case u.Scheme == "https":
		return ""
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return "" // a test provider on this machine
	case u.Scheme == "http":
		return quoteShort(s) + " is not https://; tokens and secrets go only over TLS (http:// only to a loopback address)"
	}
	return quoteShort(s) + " is not an https:// URL"
}

// isLoopback reports localhost or a loopback address.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// authList upper-cases and checks auth mechanism names.
func (d *decoder) authList(p keyPath, list []string) []string {
	out := make([]string, 0, len(list))
	var oauth, password []string
	for _, m := range list {
		u := strings.ToUpper(m)
		switch {
		case !slices.Contains(authMechanisms, u):
			d.problem(p, "unknown mechanism %s; use %s", quoteShort(m), strings.Join(authMechanisms, ", "))
			continue
		case slices.Contains(out, u):
			d.problem(p, "%s is listed twice", u)
			continue
		case slices.Contains(oauthMechanisms, u):
			oauth = append(oauth, u)
		default:
			password = append(password, u)
		}
		out = append(out, u)
	}
	if len(out) == 0 {
		return nil // [] is the default
	}
	if len(oauth) > 0 && len(password) > 0 {
		d.problem(p, "OAuth2 mechanisms (%s) and password mechanisms (%s) cannot be mixed: the secret is either a token or a password", strings.Join(oauth, ", "), strings.Join(password, ", "))
	}
	return out
}

// globs checks and lower-cases senders or domains patterns.
func (d *decoder) globs(p keyPath, list []string, domains bool) []string {
	if len(list) == 0 {
		what := "sender"
		if domains {
			what = "domain"
		}
		d.problem(p, "must not be empty; leave it out to match any %s", what)
		return nil
	}
	out := make([]string, 0, len(list))
	for _, g := range list {
		lg := strings.ToLower(g)
		switch _, err := path.Match(lg, ""); {
		case g == "":
			d.problem(p, "an empty pattern matches nothing; use \"*\" to match anything")
		case err != nil:
			d.problem(p, "%s is not a valid pattern (* ? [...] and \\ escapes)", quoteShort(g))
		case strings.ContainsAny(g, " \t"):
			d.problem(p, "%s contains white space", quoteShort(g))
		case domains && strings.Contains(g, "@"):
			d.problem(p, "%s contains @; domains takes recipient domains like \"example.com\" (senders takes addresses)", quoteShort(g))
		default:
			out = append(out, lg)
		}
	}
	return out
}

// checkRelay checks what needs several keys of one relay.
func (d *decoder) checkRelay(p keyPath, r *Relay, set map[string]bool, badUser bool) {
	kind := d.checkURL(p.child("url"), r.URL, set["url"])
	tlsKeys := []string{"tls_ca_file", "tls_cert_file", "tls_key_file", "tls_pin_sha256", "tls_min_version", "tls_server_name", "tls_insecure"}
	switch kind {
	case urlMbox:
		for _, k := range relayKeys {
			if set[k] && !slices.Contains([]string{"name", "url", "senders", "domains"}, k) {
				d.problem(p.child(k), "has no effect on an mbox: relay, which takes only name, url, senders and domains")
			}
		}
		return
	case urlUnix:
		for _, k := range append([]string{"starttls"}, tlsKeys...) {
			if set[k] {
				d.problem(p.child(k), "has no effect: %s is a Unix socket, without TLS", r.URL)
			}
		}
	case urlImplicit:
		if set["starttls"] {
			d.problem(p.child("starttls"), "not allowed with smtps://, which always uses TLS; starttls applies to smtp://, submission:// and lmtp://")
		}
	case urlSTARTTLS:
		if r.StartTLS == StartTLSNone {
			for _, k := range tlsKeys {
				if set[k] {
					d.warn(p.child(k), "has no effect with starttls = \"none\"")
				}
			}
		}
	}

	// Credentials.
	var sources []string
	for _, k := range passwordKeys {
		if set[k] {
			sources = append(sources, k)
		}
	}
	for _, k := range sources[min(1, len(sources)):] {
		d.problem(p.child(k), "%s and %s are alternatives; set only one", sources[0], k)
	}
	switch {
	case badUser:
	case r.Username == "":
		for _, k := range append(sources, "auth") {
			if set[k] {
				d.problem(p.child(k), "needs username")
			}
		}
	case len(sources) == 0:
		d.problem(p.child("username"), "needs one of password, password_file, password_command, password_credential or [relay.oauth2]")
	}
	if r.OAuth2 != nil && len(sources) == 1 {
		var password []string
		for _, m := range r.Auth {
			if !slices.Contains(oauthMechanisms, m) {
				password = append(password, m)
			}
		}
		switch {
		case len(r.Auth) == 0:
			r.Auth = slices.Clone(oauthMechanisms)
		case len(password) == len(r.Auth): // a mix is reported by authList
			d.problem(p.child("auth"), "[relay.oauth2] gives an access token, for XOAUTH2 and OAUTHBEARER, not a password for %s", strings.Join(password, ", "))
		}
	}
	if r.Username != "" && r.StartTLS == StartTLSNone && kind == urlSTARTTLS {
		d.warn(p.child("starttls"), "\"none\" with username: AUTH is sent only to a loopback address without TLS, so authentication will fail elsewhere")
	}

	// TLS.
	if (r.TLSCertFile == "") != (r.TLSKeyFile == "") && kind != urlUnix {
		if r.TLSCertFile == "" {
			d.problem(p.child("tls_key_file"), "needs tls_cert_file")
		} else {
			d.problem(p.child("tls_cert_file"), "needs tls_key_file")
		}
	}
	if r.TLSInsecure && len(r.TLSPinSHA256) == 0 && kind != urlUnix {
		d.warn(p.child("tls_insecure"), "certificate verification is off and no tls_pin_sha256 is set: anyone on the path can read the mail and the password")
	}
}

// checkURL classifies a relay URL and reports what is wrong with it.
func (d *decoder) checkURL(p keyPath, u string, set bool) int {
	if !set {
		d.problem(p, "missing; every [[relay]] needs a url, like \"smtps://smtp.example.com\" or \"mbox:\"")
		return urlBad
	}
	if strings.Contains(u, "@") {
		// Not echoed: it may be user:password@host.
		d.problem(p, "must not contain user information (user:password@); use username and password_file")
		return urlBad
	}
	scheme, rest, hasScheme := strings.Cut(u, ":")
	scheme = strings.ToLower(scheme)
	if scheme == "mbox" && hasScheme {
		if rest != "" && (strings.HasPrefix(rest, "//") || !filepath.IsAbs(rest)) {
			d.problem(p, "%s: an mbox: URL is \"mbox:\" or \"mbox:/absolute/directory\"", quoteShort(u))
			return urlBad
		}
		return urlMbox
	}
	switch {
	case !hasScheme || !strings.HasPrefix(rest, "//"):
		d.problem(p, "%s has no scheme; use smtp://, submission://, smtps://, lmtp:// or mbox:", quoteShort(u))
		return urlBad
	case !slices.Contains([]string{"smtp", "submission", "smtps", "lmtp"}, scheme):
		d.problem(p, "unknown scheme %s in %s; use smtp://, submission://, smtps://, lmtp:// or mbox:", strconv.Quote(scheme), quoteShort(u))
		return urlBad
	}
	o, err := relay.ParseURL(u)
	if err != nil {
		d.problem(p, "%v", err)
		return urlBad
	}
	switch {
	case o.Network == "unix":
		if !filepath.IsAbs(o.Address) || filepath.Clean(o.Address) != o.Address {
			d.problem(p, "%s: the socket path must be absolute and clean, like lmtp:///run/dovecot/lmtp", quoteShort(u))
			return urlBad
		}
		return urlUnix
	case o.TLS == relay.ImplicitTLS:
		return urlImplicit
	}
	return urlSTARTTLS
}
