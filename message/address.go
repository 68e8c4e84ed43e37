package message

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// ParseAddressList returns the addr-specs of an address list: a header
// field's value (without the field name) or a recipient argument from the
// command line. Display names, comments and routes are dropped; a group
// ("friends: a@b, c@d;") contributes its members, so
// "undisclosed-recipients:;" contributes none. A local part alone ("root")
// is returned as it is, to be qualified by the caller. Quoted local parts
// keep their quotes (`"john doe"@example.org`), as SMTP wants them.
// Empty elements are skipped; an empty or blank s gives no addresses and
// no error.
//
// The error is an *Error (exit 65) with an empty Field: the list does not
// parse, an address is not valid UTF-8 or has a control character, or s
// contains a CR, LF or NUL.
func ParseAddressList(s string) ([]string, error) {
	if i := strings.IndexAny(s, "\r\n\x00"); i >= 0 {
		return nil, &Error{Msg: fmt.Sprintf("cannot parse address list: control character %q at offset %d", s[i], i)}
	}
	mbs, err := parseAddressList(s)
	if err != nil {
		return nil, &Error{Msg: "cannot parse address list: " + err.Error()}
	}
	out := make([]string, len(mbs))
	for i, mb := range mbs {
		out[i] = mb.addr()
	}
	return out, nil
}

// mailbox is one address found in a list: its addr-spec in two parts,
// and where the addr-spec lies in the parsed text (start:end), so that it
// can be replaced without touching the rest of the field.
type mailbox struct {
	local  string // local part, quotes kept
	domain string // "" for a local part alone
	start  int
	end    int
}

// addr is the addr-spec: local@domain, or the local part alone.
func (mb mailbox) addr() string {
	if mb.domain == "" {
		return mb.local
	}
	return mb.local + "@" + mb.domain
}

// parseAddressList parses s, a folded or unfolded address list: CR and LF
// count as white space, so spans can point into a raw header field.
func parseAddressList(s string) ([]mailbox, error) {
	p := &addrParser{s: s}
	mbs, err := p.list()
	if err != nil {
		return nil, err
	}
	for _, mb := range mbs {
		if !utf8.ValidString(mb.local) || !utf8.ValidString(mb.domain) {
			return nil, fmt.Errorf("address %s is not valid UTF-8", snippet(mb.addr()))
		}
		if hasControl(strings.ReplaceAll(mb.addr(), "\t", " ")) {
			return nil, fmt.Errorf("address %s has a control character", snippet(mb.addr()))
		}
	}
	return mbs, nil
}

// addrParser is a recursive-descent parser for RFC 5322 §3.4 address
// lists with the obsolete syntax of §4.4. pos indexes s; errors name the
// offset.
type addrParser struct {
	s   string
	pos int
}

// token kinds of a word sequence (phrase or local part).
const (
	tokAtom   = iota // atext run, encoded word
	tokQuoted        // quoted-string, quotes included
	tokDot           // "."
)

type token struct {
	kind       int
	start, end int
}

func (p *addrParser) errorf(format string, args ...any) error {
	return fmt.Errorf(format+" at offset %d", append(args, p.pos)...)
}

func (p *addrParser) eof() bool { return p.pos >= len(p.s) }

func (p *addrParser) peek() byte {
	if p.pos >= len(p.s) {
		return 0
	}
	return p.s[p.pos]
}

// unexpected describes the byte at pos for an error message.
func (p *addrParser) unexpected() error {
	if p.eof() {
		return p.errorf("unexpected end")
	}
	return p.errorf("unexpected %q", p.s[p.pos])
}

// list parses address-list / obs-addr-list.
func (p *addrParser) list() ([]mailbox, error) {
	var out []mailbox
	for {
		if err := p.cfws(); err != nil {
			return nil, err
		}
		if p.eof() {
			return out, nil
		}
		if p.peek() == ',' { // obs-addr-list: empty element
			p.pos++
			continue
		}
		mbs, err := p.address(true)
		if err != nil {
			return nil, err
		}
		out = append(out, mbs...)
		if err := p.cfws(); err != nil {
			return nil, err
		}
		if p.eof() {
			return out, nil
		}
		if p.peek() != ',' {
			return nil, p.unexpected()
		}
		p.pos++
	}
}

// address parses a mailbox, or also a group when allowGroup is true.
// p.pos is at a byte that is neither CFWS nor ",".
func (p *addrParser) address(allowGroup bool) ([]mailbox, error) {
	if p.peek() == '<' {
		mb, err := p.angleAddr()
		if err != nil {
			return nil, err
		}
		return []mailbox{mb}, nil
	}
	words, err := p.words()
	if err != nil {
		return nil, err
	}
	if len(words) == 0 {
		return nil, p.unexpected()
	}
	switch p.peek() {
	case '<': // display-name angle-addr
		mb, err := p.angleAddr()
		if err != nil {
			return nil, err
		}
		return []mailbox{mb}, nil
	case ':':
		if !allowGroup {
			return nil, p.errorf("group inside a group")
		}
		p.pos++
		return p.groupList()
	case '@':
		mb, err := p.addrSpecAfterLocal(words)
		if err != nil {
			return nil, err
		}
		// "a@b <a@b>": an unquoted address written as display name.
		if err := p.cfws(); err != nil {
			return nil, err
		}
		if p.peek() == '<' {
			mb, err = p.angleAddr()
			if err != nil {
				return nil, err
			}
		}
		return []mailbox{mb}, nil
	case ',', ';', 0:
		if p.peek() == 0 && !p.eof() {
			return nil, p.unexpected()
		}
		// A local part alone: "root", "root (Cron Daemon)".
		mb, err := p.localOnly(words)
		if err != nil {
			return nil, err
		}
		return []mailbox{mb}, nil
	}
	return nil, p.unexpected()
}

// groupList parses the members of a group after its ":" up to and
// including the ";". A missing ";" at the end of the input is accepted.
func (p *addrParser) groupList() ([]mailbox, error) {
	var out []mailbox
	for {
		if err := p.cfws(); err != nil {
			return nil, err
		}
		switch {
		case p.eof():
			return out, nil
		case p.peek() == ';':
			p.pos++
			return out, nil
		case p.peek() == ',':
			p.pos++
			continue
		}
		mbs, err := p.address(false)
		if err != nil {
			return nil, err
		}
		out = append(out, mbs...)
		if err := p.cfws(); err != nil {
			return nil, err
		}
		switch {
		case p.eof():
			return out, nil
		case p.peek() == ';':
			p.pos++
			return out, nil
		case p.peek() == ',':
			p.pos++
		default:
			return nil, p.unexpected()
		}
	}
}

// angleAddr parses "<" [obs-route] addr-spec ">" with p.pos at "<". The
// addr-spec may lack "@domain" ("<root>").
func (p *addrParser) angleAddr() (mailbox, error) {
	p.pos++ // "<"
	if err := p.cfws(); err != nil {
		return mailbox{}, err
	}
	if p.peek() == '@' { // obs-route: "@a,@b:"
		for {
			if p.peek() == '@' {
				p.pos++
				if _, _, err := p.domain(); err != nil {
					return mailbox{}, err
				}
			}
			if err := p.cfws(); err != nil {
				return mailbox{}, err
			}
			if p.peek() == ',' {
				p.pos++
				if err := p.cfws(); err != nil {
					return mailbox{}, err
				}
				continue
			}
			if p.peek() == ':' {
				p.pos++
				break
			}
			return mailbox{}, p.unexpected()
		}
		if err := p.cfws(); err != nil {
			return mailbox{}, err
		}
	}
	if p.peek() == '>' {
		return mailbox{}, p.errorf("empty address <>")
	}
	words, err := p.words()
	if err != nil {
		return mailbox{}, err
	}
	if len(words) == 0 {
		return mailbox{}, p.unexpected()
	}
	var mb mailbox
	switch p.peek() {
	case '@':
		mb, err = p.addrSpecAfterLocal(words)
		if err != nil {
			return mailbox{}, err
		}
		if err := p.cfws(); err != nil {
			return mailbox{}, err
		}
	case '>':
		mb, err = p.localOnly(words)
		if err != nil {
			return mailbox{}, err
		}
	default:
		return mailbox{}, p.unexpected()
	}
	if p.peek() != '>' {
		if p.eof() {
			return mailbox{}, p.errorf("unclosed angle-addr")
		}
		return mailbox{}, p.unexpected()
	}
	p.pos++
	return mb, nil
}

// addrSpecAfterLocal finishes an addr-spec whose local part is words, with
// p.pos at "@".
func (p *addrParser) addrSpecAfterLocal(words []token) (mailbox, error) {
	local, err := p.localPart(words)
	if err != nil {
		return mailbox{}, err
	}
	p.pos++ // "@"
	domain, end, err := p.domain()
	if err != nil {
		return mailbox{}, err
	}
	return mailbox{local: local, domain: domain, start: words[0].start, end: end}, nil
}

// localOnly makes a mailbox of a local part without a domain.
func (p *addrParser) localOnly(words []token) (mailbox, error) {
	local, err := p.localPart(words)
	if err != nil {
		return mailbox{}, err
	}
	return mailbox{local: local, start: words[0].start, end: words[len(words)-1].end}, nil
}

// localPart joins words into a local part: words separated by dots
// (obs-local-part). Leading, trailing and repeated dots are tolerated,
// since some providers hand out such addresses; two words in a row are
// a display name, not a local part.
func (p *addrParser) localPart(words []token) (string, error) {
	var b strings.Builder
	prevWord := false
	hasWord := false
	for _, t := range words {
		isWord := t.kind != tokDot
		if isWord && prevWord {
			return "", fmt.Errorf("display name %s without <addr-spec> at offset %d", snippet(p.s[words[0].start:words[len(words)-1].end]), words[0].start)
		}
		prevWord = isWord
		hasWord = hasWord || isWord
		b.WriteString(stripCRLF(p.s[t.start:t.end]))
	}
	if !hasWord {
		return "", fmt.Errorf("local part without a word at offset %d", words[0].start)
	}
	return b.String(), nil
}

// domain parses a domain (dot-atom, obs-domain or domain-literal) after
// the "@", skipping CFWS in front. It returns the domain and the offset
// just after it.
func (p *addrParser) domain() (string, int, error) {
	if err := p.cfws(); err != nil {
		return "", 0, err
	}
	if p.peek() == '[' {
		start := p.pos
		p.pos++
		for {
			if p.eof() {
				return "", 0, p.errorf("unclosed domain literal")
			}
			c := p.s[p.pos]
			if c == ']' {
				p.pos++
				break
			}
			if c == '[' {
				return "", 0, p.unexpected()
			}
			if c == '\\' && p.pos+1 < len(p.s) {
				p.pos++
			}
			p.pos++
		}
		end := p.pos
		return stripCRLF(p.s[start:end]), end, nil
	}
	var b strings.Builder
	end := -1
	for {
		switch {
		case p.peek() == '.':
			b.WriteByte('.')
			p.pos++
			end = p.pos
		case !p.eof() && isAtext(p.s[p.pos]):
			start := p.pos
			p.atom()
			b.WriteString(p.s[start:p.pos])
			end = p.pos
		default:
			if b.Len() == 0 || strings.Trim(b.String(), ".") == "" {
				return "", 0, p.errorf("missing domain")
			}
			return b.String(), end, nil
		}
		// obs-domain: CFWS around the dots. Only skip it when a dot
		// follows, so the CFWS after the domain stays unread.
		save := p.pos
		if err := p.cfws(); err != nil {
			return "", 0, err
		}
		if p.peek() != '.' && (b.String()[b.Len()-1] != '.' || p.eof() || !isAtext(p.s[p.pos])) {
			p.pos = save
		}
	}
}

// words reads a sequence of atoms, quoted strings and dots separated by
// CFWS, and the CFWS after it. It stops at any other byte.
func (p *addrParser) words() ([]token, error) {
	var ws []token
	for {
		if err := p.cfws(); err != nil {
			return nil, err
		}
		if p.eof() {
			return ws, nil
		}
		start := p.pos
		switch c := p.s[p.pos]; {
		case c == '"':
			if err := p.quoted(); err != nil {
				return nil, err
			}
			ws = append(ws, token{tokQuoted, start, p.pos})
		case c == '.':
			p.pos++
			ws = append(ws, token{tokDot, start, p.pos})
		case isAtext(c):
			if !p.encodedWord() {
				p.atom()
			}
			ws = append(ws, token{tokAtom, start, p.pos})
		default:
			return ws, nil
		}
	}
}

// atom reads a run of atext.
func (p *addrParser) atom() {
	for p.pos < len(p.s) && isAtext(p.s[p.pos]) {
		p.pos++
	}
}

// encodedWord reads an RFC 2047 encoded word "=?charset?Q?text?=" as one
// atom even when its text holds specials such as "," or "(" that RFC 2047
// §5 forbids in a phrase but that broken encoders write.
func (p *addrParser) encodedWord() bool {
	s := p.s[p.pos:]
	if !strings.HasPrefix(s, "=?") {
		return false
	}
	i := 2
	// charset, then encoding: tokens without "?" or white space
	for part := 0; part < 2; part++ {
		j := i
		for j < len(s) && s[j] != '?' && s[j] > ' ' && s[j] < 0x7f {
			j++
		}
		if j == i || j >= len(s) || s[j] != '?' {
			return false
		}
		if part == 1 && (j-i != 1 || !strings.ContainsRune("bBqQ", rune(s[i]))) {
			return false
		}
		i = j + 1
	}
	// encoded text: printable ASCII except "?" and space, then "?="
	j := i
	for j < len(s) && s[j] != '?' && s[j] > ' ' && s[j] < 0x7f {
		j++
	}
	if !strings.HasPrefix(s[j:], "?=") {
		return false
	}
	p.pos += j + 2
	return true
}

// quoted reads a quoted-string with p.pos at the opening quote.
func (p *addrParser) quoted() error {
	start := p.pos
	p.pos++
	for p.pos < len(p.s) {
		switch p.s[p.pos] {
		case '"':
			p.pos++
			return nil
		case '\\':
			p.pos++
		}
		p.pos++
	}
	p.pos = start
	return p.errorf("unclosed quoted string")
}

// cfws skips white space (CR and LF included) and comments.
func (p *addrParser) cfws() error {
	for p.pos < len(p.s) {
		switch p.s[p.pos] {
		case ' ', '\t', '\r', '\n':
			p.pos++
		case '(':
			if err := p.comment(); err != nil {
				return err
			}
		default:
			return nil
		}
	}
	return nil
}

// comment skips a comment, nested comments and quoted pairs included.
func (p *addrParser) comment() error {
	start := p.pos
	depth := 0
	for p.pos < len(p.s) {
		switch p.s[p.pos] {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				p.pos++
				return nil
			}
		case '\\':
			p.pos++
		}
		p.pos++
	}
	p.pos = start
	return p.errorf("unclosed comment")
}

// isAtext reports whether c is atext (RFC 5322 §3.2.3), with every octet
// over 127 allowed as part of UTF-8 (RFC 6532 §3.2; validity is checked
// on the final addresses).
func isAtext(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c >= 0x80:
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// stripCRLF removes the CR and LF that folding left in a token.
func stripCRLF(s string) string {
	if strings.IndexAny(s, "\r\n") < 0 {
		return s
	}
	return strings.NewReplacer("\r", "", "\n", "").Replace(s)
}

// snippet quotes s for an error message, cut to 40 octets.
func snippet(s string) string {
	if len(s) > 40 {
		return fmt.Sprintf("%q...", s[:40])
	}
	return fmt.Sprintf("%q", s)
}
