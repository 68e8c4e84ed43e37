package smtpin

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// errNonASCII marks a UTF-8 address in a transaction without SMTPUTF8.
var errNonASCII = errors.New("non-ASCII address without SMTPUTF8")

// splitPath splits the argument of MAIL FROM: or RCPT TO: (after the
// colon and any spaces) into the path, without its angle brackets, and
// the rest of the line, which holds the parameters. A "<" path ends at
// the first ">" outside a quoted string; a path without brackets ends at
// the first space.
func splitPath(s string) (path, rest string, ok bool) {
	if s == "" {
		return "", "", false
	}
	if s[0] != '<' {
		if i := strings.IndexByte(s, ' '); i >= 0 {
			return s[:i], s[i:], true
		}
		return s, "", true
	}
	quoted := false
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && c == '>':
			return s[1:i], s[i+1:], true
		}
	}
	return "", "", false
}

// parseMailbox checks a non-empty path (RFC 5321 §4.1.2, with the UTF-8
// of RFC 6531 §3.3 when smtputf8 is set), drops a source route, and
// returns the mailbox in canonical form (see "Addresses" in the package
// documentation). The error is errNonASCII or says what is wrong.
func parseMailbox(p string, smtputf8 bool) (string, error) {
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x20 || c == 0x7f {
			return "", errors.New("control character in address")
		}
	}
	if !isASCII(p) {
		if !smtputf8 {
			return "", errNonASCII
		}
		if !utf8.ValidString(p) {
			return "", errors.New("invalid UTF-8 in address")
		}
	}
	if p[0] == '@' {
		// A-d-l ":" (RFC 5321 §4.1.2, C): accepted and ignored.
		i := strings.IndexByte(p, ':')
		if i < 0 {
			return "", errors.New("bad source route")
		}
		for _, hop := range strings.Split(p[:i], ",") {
			if len(hop) < 2 || hop[0] != '@' || !validDomain(hop[1:]) {
				return "", errors.New("bad source route")
			}
		}
		p = p[i+1:]
		if p == "" {
			return "", errors.New("no mailbox after the source route")
		}
	}

	var local, rest string
	if p[0] == '"' {
		var b strings.Builder
		i := 1
		for ; i < len(p) && p[i] != '"'; i++ {
			if p[i] == '\\' {
				if i++; i == len(p) {
					break
				}
			}
			b.WriteByte(p[i])
		}
		if i >= len(p) {
			return "", errors.New("unterminated quoted string")
		}
		rest = p[i+1:]
		if content := b.String(); isDotAtom(content) {
			local = content
		} else {
			local = quote(content)
		}
	} else {
		local, rest = p, ""
		if i := strings.IndexByte(p, '@'); i >= 0 {
			local, rest = p[:i], p[i:]
		}
		if !validDotString(local) {
			return "", errors.New("bad local part")
		}
	}
	if rest == "" {
		return local, nil
	}
	if rest[0] != '@' || !validDomain(rest[1:]) {
		return "", errors.New("bad domain")
	}
	return local + rest, nil
}

// quote makes a quoted-string of s, escaping only '"' and '\'.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

// isAtext reports an RFC 5321 atext octet; UTF-8 octets count (RFC 6531
// §3.3).
func isAtext(c byte) bool {
	switch {
	case c >= 0x80, 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// isDotAtom checks an RFC 5321 Dot-string: atoms joined by single dots.
func isDotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	return validDotString(s)
}

// validDotString is isDotAtom without the rules about where dots go,
// which real local parts break and Postfix does not enforce.
func validDotString(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] != '.' && !isAtext(s[i]) {
			return false
		}
	}
	return true
}

// validDomain checks a domain name of letters, digits, hyphens (and
// underscores, seen in real host names), UTF-8 labels allowed, or an
// address literal "[...]" of dtext (RFC 5321 §4.1.2, §4.1.3). The IP
// inside a literal is not checked.
func validDomain(d string) bool {
	if d == "" || len(d) > 255 {
		return false
	}
	if d[0] == '[' {
		if len(d) < 3 || d[len(d)-1] != ']' {
			return false
		}
		for i := 1; i < len(d)-1; i++ {
			if c := d[i]; c <= ' ' || c == '[' || c == ']' || c == '\\' || c >= 0x7f {
				return false
			}
		}
		return true
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 0x80 || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// param is one ESMTP parameter of MAIL or RCPT: esmtp-keyword
// ["=" esmtp-value] (RFC 5321 §4.1.2).
type param struct {
	key   string // upper case
	value string
	eq    bool // "=" given
}

// parseParams splits the parameters after a path. They are separated by
// spaces; a keyword is a letter or digit followed by letters, digits and
// hyphens; a value is one or more octets from "!" to "~" other than "=",
// or UTF-8 (RFC 6531 §3.3).
func parseParams(s string) ([]param, error) {
	var ps []param
	for _, f := range strings.Split(s, " ") {
		if f == "" {
			continue
		}
		k, v, eq := strings.Cut(f, "=")
		if !validKeyword(k) {
			return nil, errors.New("bad parameter keyword")
		}
		if eq {
			if v == "" {
				return nil, errors.New("empty parameter value")
			}
			for i := 0; i < len(v); i++ {
				if c := v[i]; c < '!' || c == '=' || c == 0x7f {
					return nil, errors.New("bad parameter value")
				}
			}
			if !utf8.ValidString(v) {
				return nil, errors.New("bad parameter value")
			}
		}
		ps = append(ps, param{key: strings.ToUpper(k), value: v, eq: eq})
	}
	return ps, nil
}

func validKeyword(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if !alnum && (i == 0 || c != '-') {
			return false
		}
	}
	return true
}

// decodeXtext decodes an RFC 3461 §4 xtext: "+" and two upper-case hex
// digits stand for one octet, any other octet from "!" to "~" but "+"
// and "=" for itself. ok is false for anything else.
func decodeXtext(s string) (v string, ok bool) {
	if strings.IndexByte(s, '+') < 0 {
		for i := 0; i < len(s); i++ {
			if c := s[i]; c < '!' || c > '~' || c == '=' {
				return "", false
			}
		}
		return s, true
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '+':
			if i+2 >= len(s) {
				return "", false
			}
			hi, ok1 := upperHex(s[i+1])
			lo, ok2 := upperHex(s[i+2])
			if !ok1 || !ok2 {
				return "", false
			}
			b = append(b, hi<<4|lo)
			i += 2
		case c < '!' || c > '~' || c == '=':
			return "", false
		default:
			b = append(b, c)
		}
	}
	return string(b), true
}

func upperHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// isPrintableASCII reports whether s holds only octets from " " to "~",
// the "printable (graphic and white space) characters from the US-ASCII
// repertoire" RFC 3461 asks of ENVID and ORCPT values.
func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c > '~' {
			return false
		}
	}
	return true
}

// parseNotify checks a NOTIFY value (RFC 3461 §4.1): "NEVER", or a
// comma-separated list of SUCCESS, FAILURE and DELAY, in any case. It
// returns the list in upper case.
func parseNotify(v string) ([]string, bool) {
	if v == "" {
		return nil, false
	}
	list := strings.Split(strings.ToUpper(v), ",")
	for _, e := range list {
		switch e {
		case "NEVER":
			if len(list) > 1 {
				return nil, false
			}
		case "SUCCESS", "FAILURE", "DELAY":
		default:
			return nil, false
		}
	}
	return list, true
}

// parseORcpt checks an ORCPT value (RFC 3461 §4.2): addr-type ";" xtext,
// the type an atom and the decoded address printable US-ASCII and not
// empty. It returns "type;address" with the type in lower case.
func parseORcpt(v string) (string, bool) {
	typ, addr, found := strings.Cut(v, ";")
	if !found || typ == "" || !isASCII(typ) {
		return "", false
	}
	for i := 0; i < len(typ); i++ {
		if !isAtext(typ[i]) {
			return "", false
		}
	}
	a, ok := decodeXtext(addr)
	if !ok || a == "" || !isPrintableASCII(a) {
		return "", false
	}
	return strings.ToLower(typ) + ";" + a, true
}
