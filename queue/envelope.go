package queue

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Version is the envelope format this package writes, the number on the
// first line of every envelope file. A file with another number is
// corrupt to this version (moved aside, never guessed at).
const Version = 1

// magic starts the first line of an envelope file.
const magic = "handoff-envelope"

// maxEnvelopeSize caps what is read of an envelope file. 16 MiB is some
// 80,000 recipients; the CLI and the daemon accept far fewer.
const maxEnvelopeSize = 16 << 20

// State is where one recipient stands.
type State uint8

const (
	// Pending: not tried yet.
	Pending State = iota
	// Deferred: tried, failed temporarily (a 4xx, a connection failure,
	// or an outcome unknown after the final dot); tried again at the
	// envelope's NextAttempt.
	Deferred
	// Sent: a server took responsibility for it (2xx). Never sent again.
	Sent
	// Failed: failed for good (a 5xx, or still not delivered after
	// max_age). Never tried again; its sender is told (see Notified).
	Failed
)

var stateNames = [...]string{Pending: "pending", Deferred: "deferred", Sent: "sent", Failed: "failed"}

// String returns the state's name as written in the envelope file:
// "pending", "deferred", "sent" or "failed".
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// MarshalText returns the state's name (for JSON).
func (s State) MarshalText() ([]byte, error) {
	if int(s) >= len(stateNames) {
		return nil, fmt.Errorf("invalid recipient state %d", s)
	}
	return []byte(stateNames[s]), nil
}

// UnmarshalText parses a state's name.
func (s *State) UnmarshalText(b []byte) error {
	for i, n := range stateNames {
		if string(b) == n {
			*s = State(i)
			return nil
		}
	}
	return fmt.Errorf("unknown recipient state %q", b)
}

// DSN NOTIFY values (RFC 3461 §4.1), as stored in Recipient.Notify.
const (
	NotifyNever   = "NEVER"
	NotifySuccess = "SUCCESS"
	NotifyFailure = "FAILURE"
	NotifyDelay   = "DELAY"
)

// DSN RET values (RFC 3461 §4.3), as stored in Envelope.Ret.
const (
	RetFull = "FULL"
	RetHdrs = "HDRS"
)

// Recipient is one recipient of a queued message and where it stands.
type Recipient struct {
	// Addr is the envelope address, as given in RCPT TO (without <>).
	Addr string `json:"address"`
	// ORCPT is the original recipient address of the DSN ORCPT parameter
	// (RFC 3461 §4.2), decoded, without its "rfc822;" type; "" when none.
	ORCPT string `json:"orcpt,omitempty"`
	// Notify is the DSN NOTIFY list: nil (the default: failures and
	// delays are reported), ["NEVER"], or some of "SUCCESS", "FAILURE",
	// "DELAY" in that order.
	Notify []string `json:"notify,omitempty"`
	// State is Pending, Deferred, Sent or Failed.
	State State `json:"state"`
	// Attempts counts the delivery attempts that reached a result for
	// this recipient.
	Attempts int `json:"attempts"`
	// LastReply is the last reply about this recipient, one line:
	// "451 4.3.0 Mailbox busy" from a server, or the error text when
	// there was no reply ("primary: dial tcp 192.0.2.1:465: connection
	// refused"). Control characters are replaced by spaces.
	LastReply string `json:"last_reply,omitempty"`
	// LastAttempt is when that reply came.
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	// Relay is the name of the relay that gave LastReply.
	Relay string `json:"relay,omitempty"`
	// PossibleDuplicate is set when a connection was lost after the final
	// dot: the server may have the message, and the retry may deliver it
	// twice (RFC 5321 §6.1). It stays set once set.
	PossibleDuplicate bool `json:"possible_duplicate,omitempty"`
	// Notified is set on a Failed recipient once its sender has been
	// told (a DSN was queued) or when no DSN is due (null sender,
	// NOTIFY=NEVER or without FAILURE).
	Notified bool `json:"notified,omitempty"`
}

// Envelope is everything the queue knows about an item besides the
// message itself. Its file is the item's commit marker.
type Envelope struct {
	// Version is the format version, Version. Enqueue sets it.
	Version int `json:"version"`
	// ID is the item's id. Enqueue sets it.
	ID string `json:"id"`
	// Sender is the envelope sender (MAIL FROM), "" for the null sender
	// <>.
	Sender string `json:"sender"`
	// Recipients are the envelope recipients, each once.
	Recipients []Recipient `json:"recipients"`
	// Ret is the DSN RET parameter: "", "FULL" or "HDRS".
	Ret string `json:"ret,omitempty"`
	// EnvID is the DSN ENVID parameter (RFC 3461 §4.4), decoded.
	EnvID string `json:"envid,omitempty"`
	// Body8Bit: the message has 8-bit content (BODY=8BITMIME).
	Body8Bit bool `json:"body_8bit,omitempty"`
	// SMTPUTF8: the message needs SMTPUTF8 (RFC 6531).
	SMTPUTF8 bool `json:"smtputf8,omitempty"`
	// Size is the size of the message file in bytes. Enqueue sets it;
	// Lock checks it.
	Size int64 `json:"size"`
	// UID is the submitting user's uid, User the name.
	UID  int    `json:"uid"`
	User string `json:"user,omitempty"`
	// GID and PID are the submitting process's gid and pid when the
	// kernel told them (a submission to the daemon, SO_PEERCRED); PID
	// 0 means unknown, and then GID is not recorded either.
	GID int `json:"gid,omitempty"`
	PID int `json:"pid,omitempty"`
	// Created is when the message arrived. Enqueue sets it when zero.
	Created time.Time `json:"created"`
	// NextAttempt is when the runner may try again. Enqueue sets it to
	// Created when zero (due at once); RecordAttempt moves it on.
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	// Attempts counts the delivery attempts started (RecordAttempt).
	Attempts int `json:"attempts"`
	// Held items are never delivered until released.
	Held bool `json:"held,omitempty"`
	// DelayWarned is set once the delay warning has been queued.
	DelayWarned bool `json:"delay_warned,omitempty"`
}

// Validate checks the rules every stored envelope obeys. The error wraps
// ErrInvalid.
//
//   - Version is Version; ID has the syntax of an item id; Created is set.
//   - No value contains a control character (CR, LF, NUL, TAB, any byte
//     below 0x20, or DEL): values are single lines, and a CR or LF could
//     otherwise reach an SMTP command.
//   - Sender is not "<>" (the null sender is "").
//   - At least one recipient; no address twice; every address non-empty.
//   - Notify is empty, ["NEVER"], or a subset of SUCCESS, FAILURE, DELAY
//     without repetition; Ret is "", "FULL" or "HDRS"; states are known.
//   - Counts, sizes and the uid are not negative.
func (e *Envelope) Validate() error {
	if err := e.validate(); err != nil {
		return fmt.Errorf("%w: %s", ErrInvalid, err)
	}
	return nil
}

func (e *Envelope) validate() error {
	if e.Version != Version {
		return fmt.Errorf("version %d, want %d", e.Version, Version)
	}
	if !ValidID(e.ID) {
		return fmt.Errorf("bad id %q", e.ID)
	}
	if e.Created.IsZero() {
		return fmt.Errorf("no creation time")
	}
	if !timeInRange(e.Created) || !timeInRange(e.NextAttempt) {
		return fmt.Errorf("time outside the years 1 to 9999")
	}
	for _, f := range []struct{ name, v string }{{"sender", e.Sender}, {"envid", e.EnvID}, {"user", e.User}} {
		if err := checkValue(f.name, f.v); err != nil {
			return err
		}
	}
	if e.Sender == "<>" {
		return fmt.Errorf(`sender "<>": the null sender is ""`)
	}
	if e.Ret != "" && e.Ret != RetFull && e.Ret != RetHdrs {
		return fmt.Errorf("ret %q: want FULL or HDRS", e.Ret)
	}
	if e.Size < 0 || e.UID < 0 || e.Attempts < 0 {
		return fmt.Errorf("negative size, uid or attempts")
	}
	if len(e.Recipients) == 0 {
		return fmt.Errorf("no recipients")
	}
	seen := make(map[string]bool, len(e.Recipients))
	for i := range e.Recipients {
		r := &e.Recipients[i]
		if r.Addr == "" {
			return fmt.Errorf("recipient %d: empty address", i+1)
		}
		if seen[r.Addr] {
			return fmt.Errorf("recipient %q twice", r.Addr)
		}
		seen[r.Addr] = true
		for _, f := range []struct{ name, v string }{{"recipient", r.Addr}, {"orcpt", r.ORCPT}, {"relay", r.Relay}, {"last reply", r.LastReply}} {
			if err := checkValue(f.name, f.v); err != nil {
				return err
			}
		}
		if int(r.State) >= len(stateNames) {
			return fmt.Errorf("recipient %q: invalid state %d", r.Addr, r.State)
		}
		if r.Attempts < 0 {
			return fmt.Errorf("recipient %q: negative attempts", r.Addr)
		}
		if !timeInRange(r.LastAttempt) {
			return fmt.Errorf("recipient %q: time outside the years 1 to 9999", r.Addr)
		}
		if err := checkNotify(r.Notify); err != nil {
			return fmt.Errorf("recipient %q: %v", r.Addr, err)
		}
	}
	return nil
}

// timeInRange reports whether t can be written as RFC 3339 (year 1 to
// 9999 in UTC; the zero time is year 1).
func timeInRange(t time.Time) bool {
	y := t.UTC().Year()
	return y >= 1 && y <= 9999
}

// checkValue refuses control characters in a value.
func checkValue(name, v string) error {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c == 0x7f {
			return fmt.Errorf("%s %q: control character %#02x", name, v, c)
		}
	}
	return nil
}

// checkNotify checks a NOTIFY list (RFC 3461 §4.1): NEVER alone, or
// SUCCESS, FAILURE, DELAY each at most once, in that order.
func checkNotify(n []string) error {
	if n == nil {
		return nil
	}
	if len(n) == 0 {
		return fmt.Errorf("empty notify list (use nil)")
	}
	if len(n) == 1 && n[0] == NotifyNever {
		return nil
	}
	order := []string{NotifySuccess, NotifyFailure, NotifyDelay}
	j := 0
	for _, v := range n {
		for j < len(order) && order[j] != v {
			j++
		}
		if j == len(order) {
			return fmt.Errorf("notify %q: want NEVER alone, or SUCCESS, FAILURE, DELAY each once in that order", strings.Join(n, ","))
		}
		j++
	}
	return nil
}

// Marshal returns the envelope file: see the package documentation for
// the format. It validates first, and refuses an envelope larger than
// what is read back (16 MiB); the error wraps ErrInvalid.
func (e *Envelope) Marshal() ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.Grow(256 + 160*len(e.Recipients))
	fmt.Fprintf(&b, "%s %d\n", magic, Version)
	line := func(key, value string) {
		b.WriteString(key)
		b.WriteString(": ")
		escapeTo(&b, value, false)
		b.WriteByte('\n')
	}
	line("id", e.ID)
	line("created", formatTime(e.Created))
	if e.User != "" {
		line("user", e.User)
	}
	line("uid", strconv.Itoa(e.UID))
	if e.PID != 0 {
		line("gid", strconv.Itoa(e.GID))
		line("pid", strconv.Itoa(e.PID))
	}
	if e.Sender == "" {
		b.WriteString("sender: <>\n")
	} else {
		line("sender", e.Sender)
	}
	if e.Ret != "" {
		line("ret", e.Ret)
	}
	if e.EnvID != "" {
		line("envid", e.EnvID)
	}
	if e.Body8Bit {
		b.WriteString("body: 8BITMIME\n")
	} else {
		b.WriteString("body: 7BIT\n")
	}
	line("smtputf8", yesNo(e.SMTPUTF8))
	line("size", strconv.FormatInt(e.Size, 10))
	line("attempts", strconv.Itoa(e.Attempts))
	if !e.NextAttempt.IsZero() {
		line("next-attempt", formatTime(e.NextAttempt))
	}
	line("held", yesNo(e.Held))
	line("delay-warned", yesNo(e.DelayWarned))
	for i := range e.Recipients {
		r := &e.Recipients[i]
		b.WriteString("rcpt: ")
		b.WriteString(r.State.String())
		b.WriteByte(' ')
		escapeTo(&b, r.Addr, true)
		token := func(key, value string) {
			b.WriteByte(' ')
			b.WriteString(key)
			b.WriteByte('=')
			escapeTo(&b, value, true)
		}
		if r.ORCPT != "" {
			token("orcpt", r.ORCPT)
		}
		if r.Notify != nil {
			token("notify", strings.Join(r.Notify, ","))
		}
		if r.Attempts != 0 {
			token("attempts", strconv.Itoa(r.Attempts))
		}
		if !r.LastAttempt.IsZero() {
			token("last-attempt", formatTime(r.LastAttempt))
		}
		if r.Relay != "" {
			token("relay", r.Relay)
		}
		if r.PossibleDuplicate {
			b.WriteString(" dup")
		}
		if r.Notified {
			b.WriteString(" notified")
		}
		b.WriteByte('\n')
		if r.LastReply != "" {
			line("last-reply", r.LastReply)
		}
	}
	b.WriteString("end\n")
	if b.Len() > maxEnvelopeSize {
		// Lock would refuse it, and move the item aside.
		return nil, fmt.Errorf("%w: an envelope of %d bytes, more than %d", ErrInvalid, b.Len(), maxEnvelopeSize)
	}
	return b.Bytes(), nil
}

func yesNo(v bool) string {
	if v {
		return "yes"
	}
	return "no"
}

// formatTime writes a time as RFC 3339 in UTC with as many fractional
// digits as it needs: lossless.
func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// escapeTo writes s with '%', control characters, bytes that are not part
// of valid UTF-8 and (in a token) spaces as %XX, upper-case hex.
func escapeTo(b *bytes.Buffer, s string, token bool) {
	const hexDigits = "0123456789ABCDEF"
	esc := func(c byte) {
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f || c == '%' || (token && c == ' ') {
				esc(c)
			} else {
				b.WriteByte(c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			esc(c)
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
}

// unescape reverses escapeTo: "%XX" with upper-case hex digits; any other
// '%' is an error.
func unescape(s string) (string, error) {
	i := strings.IndexByte(s, '%')
	if i < 0 {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for ; i >= 0; i = strings.IndexByte(s, '%') {
		b.WriteString(s[:i])
		if i+3 > len(s) {
			return "", fmt.Errorf("truncated %% escape")
		}
		hi, ok1 := unhex(s[i+1])
		lo, ok2 := unhex(s[i+2])
		if !ok1 || !ok2 {
			return "", fmt.Errorf("bad %% escape %q", s[i:i+3])
		}
		b.WriteByte(hi<<4 | lo)
		s = s[i+3:]
	}
	b.WriteString(s)
	return b.String(), nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// ParseEnvelope parses an envelope file strictly: any departure from the
// format (an unknown version, an unknown or repeated key, a missing
// required key, a missing end line, anything after it, a bad escape, a
// value that breaks Validate) is an error, a *ParseError wrapping
// ErrCorrupt. It never guesses.
func ParseEnvelope(data []byte) (*Envelope, error) {
	p := parser{data: data}
	e, err := p.parse()
	if err != nil {
		return nil, err
	}
	return e, nil
}

type parser struct {
	data []byte
	line int
}

func (p *parser) errf(format string, a ...any) error {
	return &ParseError{Line: p.line, Msg: fmt.Sprintf(format, a...)}
}

// next returns the next line without its '\n'; ok is false at the end
// of the data. A last line without '\n' is an error.
func (p *parser) next() (line string, ok bool, err error) {
	if len(p.data) == 0 {
		return "", false, nil
	}
	p.line++
	i := bytes.IndexByte(p.data, '\n')
	if i < 0 {
		return "", false, p.errf("no newline at the end of the file")
	}
	line = string(p.data[:i])
	p.data = p.data[i+1:]
	return line, true, nil
}

// Keys of the header lines, in the order Marshal writes them; required
// ones must appear (once).
var envelopeKeyOrder = []struct {
	key      string
	required bool
}{
	{"id", true}, {"created", true}, {"user", false}, {"uid", true}, {"gid", false}, {"pid", false}, {"sender", true},
	{"ret", false}, {"envid", false}, {"body", true}, {"smtputf8", true}, {"size", true},
	{"attempts", true}, {"next-attempt", false}, {"held", true}, {"delay-warned", true},
}

var envelopeKeys = func() map[string]bool {
	m := make(map[string]bool, len(envelopeKeyOrder))
	for _, k := range envelopeKeyOrder {
		m[k.key] = k.required
	}
	return m
}()

func (p *parser) parse() (*Envelope, error) {
	first, ok, err := p.next()
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, p.errf("empty file")
	}
	v, found := strings.CutPrefix(first, magic+" ")
	if !found {
		return nil, p.errf("not a handoff envelope (first line %q)", truncate(first, 40))
	}
	if n, err := parseNumber(v); err != nil || n != Version {
		return nil, p.errf("unsupported envelope version %q (this handoff reads version %d)", truncate(v, 20), Version)
	}
	e := &Envelope{Version: Version}
	seen := make(map[string]bool, len(envelopeKeys))
	var last *Recipient // the recipient a last-reply line belongs to
	ended := false
	for {
		line, ok, err := p.next()
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		if ended {
			return nil, p.errf("data after the end line")
		}
		if line == "end" {
			ended = true
			continue
		}
		key, raw, found := strings.Cut(line, ": ")
		if !found {
			return nil, p.errf("not a %q line", "key: value")
		}
		if key == "last-reply" {
			if last == nil {
				return nil, p.errf("last-reply not right after a rcpt line")
			}
			if last.LastReply, err = unescape(raw); err != nil {
				return nil, p.errf("last-reply: %v", err)
			}
			if last.LastReply == "" {
				return nil, p.errf("empty last-reply")
			}
			last = nil
			continue
		}
		last = nil
		if key == "rcpt" {
			r, err := parseRcpt(raw)
			if err != nil {
				return nil, p.errf("rcpt: %v", err)
			}
			e.Recipients = append(e.Recipients, r)
			last = &e.Recipients[len(e.Recipients)-1]
			continue
		}
		if _, known := envelopeKeys[key]; !known {
			return nil, p.errf("unknown key %q", truncate(key, 40))
		}
		if len(e.Recipients) > 0 {
			return nil, p.errf("%s after the recipients", key)
		}
		if seen[key] {
			return nil, p.errf("%s twice", key)
		}
		seen[key] = true
		value, err := unescape(raw)
		if err != nil {
			return nil, p.errf("%s: %v", key, err)
		}
		if err := e.setField(key, value); err != nil {
			return nil, p.errf("%s: %v", key, err)
		}
	}
	p.line = 0
	if !ended {
		return nil, p.errf("no end line (truncated file)")
	}
	for _, k := range envelopeKeyOrder {
		if k.required && !seen[k.key] {
			return nil, p.errf("no %s line", k.key)
		}
	}
	if err := e.validate(); err != nil {
		return nil, p.errf("%v", err)
	}
	return e, nil
}

func (e *Envelope) setField(key, v string) error {
	var err error
	switch key {
	case "id":
		e.ID = v
	case "created":
		e.Created, err = parseTime(v)
	case "user":
		e.User = v
	case "uid":
		e.UID, err = parseInt(v)
	case "gid":
		e.GID, err = parseInt(v)
	case "pid":
		e.PID, err = parseInt(v)
		if err == nil && e.PID == 0 {
			err = errors.New("0 is not a pid (leave the key out when unknown)")
		}
	case "sender":
		if v == "<>" {
			v = ""
		} else if v == "" {
			return fmt.Errorf(`empty (the null sender is "<>")`)
		}
		e.Sender = v
	case "ret":
		e.Ret = v
	case "envid":
		e.EnvID = v
	case "body":
		switch v {
		case "7BIT":
		case "8BITMIME":
			e.Body8Bit = true
		default:
			return fmt.Errorf("%q: want 7BIT or 8BITMIME", v)
		}
	case "smtputf8":
		e.SMTPUTF8, err = parseYesNo(v)
	case "size":
		e.Size, err = parseNumber(v)
	case "attempts":
		e.Attempts, err = parseInt(v)
	case "next-attempt":
		e.NextAttempt, err = parseTime(v)
	case "held":
		e.Held, err = parseYesNo(v)
	case "delay-warned":
		e.DelayWarned, err = parseYesNo(v)
	}
	return err
}

// parseRcpt parses the value of a rcpt line:
// "STATE ADDRESS [key=value | flag]...", tokens separated by one space.
func parseRcpt(s string) (Recipient, error) {
	var r Recipient
	tokens := strings.Split(s, " ")
	if len(tokens) < 2 {
		return r, fmt.Errorf("want a state and an address")
	}
	for _, t := range tokens {
		if t == "" {
			return r, fmt.Errorf("empty field (two spaces?)")
		}
	}
	if err := r.State.UnmarshalText([]byte(tokens[0])); err != nil {
		return r, err
	}
	var err error
	if r.Addr, err = unescape(tokens[1]); err != nil {
		return r, fmt.Errorf("address: %v", err)
	}
	seen := map[string]bool{}
	for _, t := range tokens[2:] {
		key, raw, isKV := strings.Cut(t, "=")
		if seen[key] {
			return r, fmt.Errorf("%s twice", truncate(key, 40))
		}
		seen[key] = true
		if !isKV {
			switch key {
			case "dup":
				r.PossibleDuplicate = true
			case "notified":
				r.Notified = true
			default:
				return r, fmt.Errorf("unknown flag %q", truncate(key, 40))
			}
			continue
		}
		v, err := unescape(raw)
		if err != nil {
			return r, fmt.Errorf("%s: %v", key, err)
		}
		if v == "" {
			return r, fmt.Errorf("%s: empty value", key)
		}
		switch key {
		case "orcpt":
			r.ORCPT = v
		case "notify":
			r.Notify = strings.Split(v, ",")
		case "attempts":
			r.Attempts, err = parseInt(v)
		case "last-attempt":
			r.LastAttempt, err = parseTime(v)
		case "relay":
			r.Relay = v
		default:
			return r, fmt.Errorf("unknown field %q", truncate(key, 40))
		}
		if err != nil {
			return r, fmt.Errorf("%s: %v", key, err)
		}
	}
	return r, nil
}

// parseInt is parseNumber for the int fields.
func parseInt(s string) (int, error) {
	n, err := parseNumber(s)
	return int(n), err
}

// parseNumber parses a decimal number of at most 15 digits, digits only.
func parseNumber(s string) (int64, error) {
	if s == "" || len(s) > 15 {
		return 0, fmt.Errorf("%q: want a number", truncate(s, 20))
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q: want a number", truncate(s, 20))
		}
		n = n*10 + int64(c-'0')
	}
	return n, nil
}

func parseYesNo(s string) (bool, error) {
	switch s {
	case "yes":
		return true, nil
	case "no":
		return false, nil
	}
	return false, fmt.Errorf("%q: want yes or no", truncate(s, 20))
}

// parseTime parses RFC 3339 (with optional fractional seconds) and
// returns the time in UTC.
func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: want an RFC 3339 time", truncate(s, 40))
	}
	return t.UTC(), nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
