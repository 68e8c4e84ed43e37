package message

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"strings"
	"time"
	"unicode/utf8"
)

// field is one header field as read.
type field struct {
	name  string // field name as written, without blanks before the colon
	lower string // name in lower case
	colon int    // index of the colon in raw
	raw   []byte // the whole field, CRLF line endings, ending with CRLF
}

// newField makes a field of its first line, which classifyFieldLine
// accepted.
func newField(line []byte) *field {
	colon := bytes.IndexByte(line, ':')
	name := string(bytes.TrimRight(line[:colon], " \t"))
	raw := make([]byte, 0, len(line)+2)
	raw = append(raw, line...)
	raw = append(raw, '\r', '\n')
	return &field{name: name, lower: strings.ToLower(name), colon: colon, raw: raw}
}

// value is the field body after the colon, still folded (CR LF kept),
// without the final CRLF.
func (f *field) value() string {
	return string(f.raw[f.colon+1 : len(f.raw)-2])
}

// Fields removed from every message, with or without -t (Postfix's
// message_drop_headers, research §7 point 8).
var dropFields = map[string]bool{
	"bcc": true, "resent-bcc": true, "return-path": true, "content-length": true,
}

// Fields whose local addresses go through Options.Qualify.
var addressFields = map[string]bool{
	"from": true, "to": true, "cc": true, "reply-to": true, "sender": true,
	"resent-from": true, "resent-to": true, "resent-cc": true,
	"resent-reply-to": true, "resent-sender": true,
}

// prepareHeader turns the fields read into m.Header and fills in
// m.Recipients, m.NeedsSMTPUTF8 and the header's part of Has8Bit and
// HasNUL.
func (p *parser) prepareHeader(m *Message) error {
	opts := p.opts
	if opts.ExtractRecipients {
		rcpts, err := p.recipients()
		if err != nil {
			return err
		}
		m.Recipients = rcpts
	}

	has := make(map[string]bool)
	resent := false
	kept := make([]*field, 0, len(p.fields)+3)
	for _, f := range p.fields {
		has[f.lower] = true
		if strings.HasPrefix(f.lower, "resent-") {
			resent = true
		}
		if dropFields[f.lower] {
			continue
		}
		switch {
		case f.lower == "from" && opts.RewriteFrom != "":
			// The forced sender replaces every address of From:, display
			// names kept (config rewrite_from).
			if err := p.rewriteField(f, func(mailbox) (string, error) { return opts.RewriteFrom, nil }); err != nil {
				return err
			}
		case addressFields[f.lower] && opts.Qualify != nil:
			if err := p.qualifyField(f); err != nil {
				return err
			}
		}
		kept = append(kept, f)
	}

	now := opts.Now()
	if resent && (!has["resent-date"] || !has["resent-message-id"]) {
		var add []*field
		if !has["resent-date"] {
			add = append(add, genField("Resent-Date: "+now.Format(time.RFC1123Z)))
		}
		if !has["resent-message-id"] {
			id, err := p.messageID(now)
			if err != nil {
				return err
			}
			add = append(add, genField("Resent-Message-ID: "+id))
		}
		at := 0 // in front of the first Resent- field, or at the top
		for i, f := range kept {
			if strings.HasPrefix(f.lower, "resent-") {
				at = i
				break
			}
		}
		kept = append(kept[:at], append(add, kept[at:]...)...)
	}
	if !has["date"] {
		kept = append(kept, genField("Date: "+now.Format(time.RFC1123Z)))
	}
	if !has["message-id"] {
		id, err := p.messageID(now)
		if err != nil {
			return err
		}
		kept = append(kept, genField("Message-ID: "+id))
	}
	if !has["from"] {
		kept = append(kept, genField("From: "+fromValue(opts.FullName, opts.Sender, opts.Hostname)))
	}

	var h []byte
	for _, f := range kept {
		raw := foldLong(f.raw)
		if !m.NeedsSMTPUTF8 && addressFields[f.lower] && !isASCII(raw) && utf8.Valid(raw) {
			// Only a UTF-8 address needs SMTPUTF8; UTF-8 in a display
			// name or a Subject is 8-bit content (BODY=8BITMIME), which
			// every relay takes and which SMTPUTF8 would make bounce at
			// hops without it (PRODUCT.md §3).
			if mbs, err := parseAddressList(f.value()); err == nil {
				for _, mb := range mbs {
					if !isASCII([]byte(mb.addr())) {
						m.NeedsSMTPUTF8 = true
					}
				}
			}
		}
		h = append(h, raw...)
	}
	h = append(h, '\r', '\n')
	m.Header = h
	scan(h, &m.Has8Bit, &m.HasNUL)
	for _, r := range m.Recipients {
		if !isASCII([]byte(r)) {
			m.NeedsSMTPUTF8 = true
		}
	}
	return nil
}

// recipients returns the -t recipients: the addresses of To, Cc and Bcc,
// or of Resent-To, Resent-Cc and Resent-Bcc when the message has any of
// them; qualified and de-duplicated.
func (p *parser) recipients() ([]string, error) {
	names := [3]string{"to", "cc", "bcc"}
	for _, f := range p.fields {
		if f.lower == "resent-to" || f.lower == "resent-cc" || f.lower == "resent-bcc" {
			names = [3]string{"resent-to", "resent-cc", "resent-bcc"}
			break
		}
	}
	var out []string
	seen := make(map[string]bool)
	for _, f := range p.fields {
		if f.lower != names[0] && f.lower != names[1] && f.lower != names[2] {
			continue
		}
		mbs, err := parseAddressList(f.value())
		if err != nil {
			return nil, &Error{Field: f.name, Msg: "cannot parse address list: " + err.Error()}
		}
		for _, mb := range mbs {
			addr, err := p.qualify(mb)
			if err != nil {
				return nil, err
			}
			if k := dedupKey(addr); !seen[k] {
				seen[k] = true
				out = append(out, addr)
			}
		}
	}
	return out, nil
}

// dedupKey is addr with its domain in lower case: local parts may be
// case-sensitive (RFC 5321 §2.4), domains are not.
func dedupKey(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[:i+1] + strings.ToLower(addr[i+1:])
	}
	return addr
}

// qualify returns the address of mb, through Options.Qualify when it is
// local.
func (p *parser) qualify(mb mailbox) (string, error) {
	addr := mb.addr()
	q := p.opts.Qualify
	if q == nil || !(mb.domain == "" || strings.EqualFold(mb.domain, "localhost") || strings.EqualFold(mb.domain, p.opts.Hostname)) {
		return addr, nil
	}
	out := q(addr)
	if out == "" || hasControl(out) {
		return "", fmt.Errorf("message: Options.Qualify(%q) returned %q", addr, out)
	}
	return out, nil
}

// qualifyField replaces the local addresses of an address field with
// their qualified form, leaving every other byte as it was. A field that
// does not parse is left alone.
func (p *parser) qualifyField(f *field) error {
	return p.rewriteField(f, p.qualify)
}

// rewriteField replaces each address of an address field with what
// with returns for it, leaving every other byte as it was. A field that
// does not parse is left alone.
func (p *parser) rewriteField(f *field, with func(mailbox) (string, error)) error {
	v := f.value()
	mbs, err := parseAddressList(v)
	if err != nil {
		return nil
	}
	var raw []byte // the new field, once an address changed
	done := 0      // v[:done] is in raw
	for _, mb := range mbs {
		q, err := with(mb)
		if err != nil {
			return err
		}
		if q == mb.addr() {
			continue
		}
		if raw == nil {
			raw = make([]byte, 0, f.colon+1+len(v)+len(q)+2)
			raw = append(raw, f.raw[:f.colon+1]...)
		}
		raw = append(raw, v[done:mb.start]...)
		raw = append(raw, q...)
		done = mb.end
	}
	if raw == nil {
		return nil
	}
	raw = append(raw, v[done:]...)
	f.raw = append(raw, '\r', '\n')
	return nil
}

// messageID returns a new msg-id: "<20261128T220312.0123456789abcdef@host>",
// the UTC time and 64 random bits.
func (p *parser) messageID(now time.Time) (string, error) {
	var b [8]byte
	if _, err := io.ReadFull(p.opts.Rand, b[:]); err != nil {
		return "", fmt.Errorf("message: reading random source: %w", err)
	}
	return "<" + now.UTC().Format("20060102T150405") + "." + hex.EncodeToString(b[:]) + "@" + p.opts.Hostname + ">", nil
}

// genField makes a generated field of "Name: value", folded at 78 octets
// where white space allows.
func genField(s string) *field {
	raw := foldLine([]byte(s), 78)
	raw = append(raw, '\r', '\n')
	colon := strings.IndexByte(s, ':')
	return &field{name: s[:colon], lower: strings.ToLower(s[:colon]), colon: colon, raw: raw}
}

// fromValue is the value of a generated From: field: `Full Name
// <sender>`, or the sender alone without a name; the null sender is
// MAILER-DAEMON@hostname.
func fromValue(fullName, sender, hostname string) string {
	if sender == "" {
		sender = "MAILER-DAEMON@" + hostname
	}
	name := cleanName(fullName)
	if name == "" {
		return sender
	}
	return displayName(name) + " <" + sender + ">"
}

// cleanName makes a full name fit for a header: valid UTF-8, control
// characters turned into spaces, runs of spaces collapsed, trimmed.
func cleanName(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

// displayName writes a display name (RFC 5322 §3.4): atoms as they are,
// other ASCII as a quoted string, non-ASCII as an RFC 2047 encoded word —
// Q encoding, or B when the name has characters that RFC 2047 §5 does
// not allow in a Q-encoded word of a phrase (as Go's net/mail does).
func displayName(name string) string {
	if !isASCII([]byte(name)) {
		if strings.ContainsAny(name, "\"#$%&'(),.:;<>@[\\]^`{|}~") {
			return mime.BEncoding.Encode("utf-8", name)
		}
		return mime.QEncoding.Encode("utf-8", name)
	}
	atoms := !strings.Contains(name, "=?")
	for i := 0; i < len(name) && atoms; i++ {
		atoms = name[i] == ' ' || isAtext(name[i])
	}
	if atoms {
		return name
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(name); i++ {
		if name[i] == '"' || name[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(name[i])
	}
	b.WriteByte('"')
	return b.String()
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// foldLong returns raw, a header field with CRLF line endings, with every
// line longer than 998 octets folded; raw itself when none is.
func foldLong(raw []byte) []byte {
	long := false
	for rest := raw; len(rest) > 0; {
		i := bytes.Index(rest, []byte("\r\n"))
		if i > maxLine {
			long = true
			break
		}
		rest = rest[i+2:]
	}
	if !long {
		return raw
	}
	out := make([]byte, 0, len(raw)+len(raw)/32)
	for rest := raw; len(rest) > 0; {
		i := bytes.Index(rest, []byte("\r\n"))
		line := rest[:i]
		if len(line) > maxLine {
			line = foldLine(line, 78)
		}
		out = append(out, line...)
		out = append(out, '\r', '\n')
		rest = rest[i+2:]
	}
	return out
}

// foldLine folds one header line (without CRLF) so that no piece is
// longer than 998 octets and, where white space allows, none longer than
// soft. It breaks before a space or tab that has something other than
// white space both before it on its line and after it; with no such
// blank within 998 octets it breaks the line anyway and starts the next
// one with a space (CRLF SPACE, as Postfix does), never inside a UTF-8
// sequence. The pieces are joined with CRLF.
func foldLine(line []byte, soft int) []byte {
	if len(line) <= soft {
		return line
	}
	lastText := len(line) - 1 // last octet that is not white space
	for lastText >= 0 && isWSP(line[lastText]) {
		lastText--
	}
	out := make([]byte, 0, len(line)+len(line)/soft*3+8)
	start := 0 // where the current piece starts in line
	lead := 0  // 1 when the current piece starts with an inserted space
	for {
		if len(line)-start+lead <= soft {
			break
		}
		// First octet of the piece that is not white space; no need to
		// look further than a piece may reach.
		firstText := start
		for firstText < len(line) && firstText <= start+maxLine && isWSP(line[firstText]) {
			firstText++
		}
		// A blank at j is a fold point when firstText < j < lastText+1.
		cut := -1
		for j := min(start+soft-lead, lastText); j > firstText; j-- {
			if isWSP(line[j]) {
				cut = j
				break
			}
		}
		if cut < 0 {
			for j := max(start+soft-lead+1, firstText+1); j <= min(start+maxLine-lead, lastText); j++ {
				if isWSP(line[j]) {
					cut = j
					break
				}
			}
		}
		if cut >= 0 {
			if lead == 1 {
				out = append(out, ' ')
			}
			out = append(out, line[start:cut]...)
			out = append(out, '\r', '\n')
			start, lead = cut, 0
			continue
		}
		if len(line)-start+lead <= maxLine {
			break
		}
		cut = start + maxLine - lead
		for k := 0; k < 3 && cut > start+1 && line[cut]&0xc0 == 0x80; k++ {
			cut--
		}
		if lead == 1 {
			out = append(out, ' ')
		}
		out = append(out, line[start:cut]...)
		out = append(out, '\r', '\n')
		start, lead = cut, 1
	}
	if lead == 1 {
		out = append(out, ' ')
	}
	return append(out, line[start:]...)
}
