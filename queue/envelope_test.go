package queue

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fullEnvelope uses every field.
func fullEnvelope() *Envelope {
	return &Envelope{
		Version: Version,
		ID:      "0JM2Q4ZK8PX7A3BD",
		Sender:  "www-data@example.com",
		Recipients: []Recipient{
			{Addr: "alice@example.org", State: Sent, Attempts: 1, LastAttempt: t0.Add(time.Second), Relay: "primary", LastReply: "250 2.0.0 Ok: queued as 4F2A3B1C9D"},
			{Addr: "bob@example.net", ORCPT: "bob@example.net", Notify: []string{NotifyFailure, NotifyDelay}, State: Deferred, Attempts: 2,
				LastAttempt: t0.Add(5*time.Minute + 12*time.Second), Relay: "primary", LastReply: "451 4.3.0 Mailbox temporarily unavailable", PossibleDuplicate: true},
			{Addr: "\"john doe\"@example.com", Notify: []string{NotifyNever}, State: Failed, Attempts: 1, LastReply: "550 5.1.1 100% unknown", Notified: true},
			{Addr: "jöran@bücher.example", State: Pending},
		},
		Ret:         RetHdrs,
		EnvID:       "QQ314159",
		Body8Bit:    true,
		SMTPUTF8:    true,
		Size:        2048,
		UID:         33,
		User:        "www-data",
		GID:         33,
		PID:         4711,
		Created:     t0,
		NextAttempt: t0.Add(15*time.Minute + 12*time.Second + 250*time.Millisecond),
		Attempts:    2,
		Held:        true,
		DelayWarned: true,
	}
}

const fullEnvelopeText = `handoff-envelope 1
id: 0JM2Q4ZK8PX7A3BD
created: 2025-06-02T10:00:00Z
user: www-data
uid: 33
gid: 33
pid: 4711
sender: www-data@example.com
ret: HDRS
envid: QQ314159
body: 8BITMIME
smtputf8: yes
size: 2048
attempts: 2
next-attempt: 2025-06-02T10:15:12.25Z
held: yes
delay-warned: yes
rcpt: sent alice@example.org attempts=1 last-attempt=2025-06-02T10:00:01Z relay=primary
last-reply: 250 2.0.0 Ok: queued as 4F2A3B1C9D
rcpt: deferred bob@example.net orcpt=bob@example.net notify=FAILURE,DELAY attempts=2 last-attempt=2025-06-02T10:05:12Z relay=primary dup
last-reply: 451 4.3.0 Mailbox temporarily unavailable
rcpt: failed "john%20doe"@example.com notify=NEVER attempts=1 notified
last-reply: 550 5.1.1 100%25 unknown
rcpt: pending jöran@bücher.example
end
`

func TestMarshalEnvelope(t *testing.T) {
	data, err := fullEnvelope().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != fullEnvelopeText {
		t.Errorf("Marshal:\n%s\nwant:\n%s", data, fullEnvelopeText)
	}
	e, err := ParseEnvelope([]byte(fullEnvelopeText))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(e, fullEnvelope()) {
		t.Errorf("ParseEnvelope:\n%+v\nwant\n%+v", e, fullEnvelope())
	}
}

func TestMarshalNullSenderAndEscapes(t *testing.T) {
	e := fullEnvelope()
	e.Sender = ""
	e.User = "100%"
	e.Recipients[0].Addr = "a b=c%@x"
	e.Recipients[0].Relay = "r 1"
	e.Recipients[0].LastReply = "550 bad \xff byte"
	data, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\nsender: <>\n", "\nuser: 100%25\n", "rcpt: sent a%20b=c%25@x ", " relay=r%201\n", "last-reply: 550 bad %FF byte\n"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("%q not in\n%s", want, data)
		}
	}
	back, err := ParseEnvelope(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, e) {
		t.Errorf("round trip:\n%+v\nwant\n%+v", back, e)
	}
}

func TestParseEnvelopeErrors(t *testing.T) {
	valid := fullEnvelopeText
	replace := func(old, new string) string {
		if !strings.Contains(valid, old) {
			t.Fatalf("%q not in the valid envelope", old)
		}
		return strings.Replace(valid, old, new, 1)
	}
	for _, tc := range []struct{ name, data, msg string }{
		{"empty", "", "empty file"},
		{"not an envelope", "From: x\n", "not a handoff envelope"},
		{"version 2", replace("handoff-envelope 1", "handoff-envelope 2"), `unsupported envelope version "2"`},
		{"version 01x", replace("handoff-envelope 1", "handoff-envelope 1x"), "unsupported envelope version"},
		{"unknown key", replace("held: yes\n", "held: yes\npriority: high\n"), `unknown key "priority"`},
		{"pid 0", replace("pid: 4711\n", "pid: 0\n"), "not a pid"},
		{"repeated key", replace("held: yes\n", "held: yes\nheld: no\n"), "held twice"},
		{"missing key", replace("uid: 33\n", ""), "no uid line"},
		{"missing end", strings.TrimSuffix(valid, "end\n"), "no end line"},
		{"no final newline", strings.TrimSuffix(valid, "\n"), "no newline"},
		{"after end", valid + "rcpt: pending x@y\n", "data after the end line"},
		{"CRLF", strings.ReplaceAll(valid, "\n", "\r\n"), ""},
		{"blank line", replace("held: yes\n", "held: yes\n\n"), "not a"},
		{"key after rcpt", replace("end\n", "held: no\nend\n"), "after the recipients"},
		{"no recipients", strings.Join(strings.SplitAfter(valid, "\n")[:17], "") + "end\n", "no recipients"},
		{"orphan last-reply", replace("delay-warned: yes\n", "delay-warned: yes\nlast-reply: 250 ok\n"), "last-reply not right after"},
		{"two last-replies", replace("last-reply: 250 2.0.0 Ok: queued as 4F2A3B1C9D\n", "last-reply: 250 a\nlast-reply: 250 b\n"), "last-reply not right after"},
		{"bad state", replace("rcpt: sent alice", "rcpt: delivered alice"), `unknown recipient state "delivered"`},
		{"unknown field", replace("relay=primary\n", "relay=primary color=red\n"), `unknown field "color"`},
		{"unknown flag", replace(" dup\n", " dup urgent\n"), `unknown flag "urgent"`},
		{"repeated field", replace("relay=primary\n", "relay=primary relay=other\n"), "relay twice"},
		{"double space", replace("rcpt: sent alice", "rcpt: sent  alice"), "empty field"},
		{"empty field value", replace("relay=primary\n", "relay=\n"), "empty value"},
		{"bad escape", replace("100%25", "100%2"), "escape"},
		{"lower-case escape", replace("100%25", "100%2f"), "bad % escape"},
		{"escaped LF", replace("sender: www-data@example.com", "sender: www-data@example.com%0ARCPT TO:<x@y>"), "control character"},
		{"escaped NUL in rcpt", replace("rcpt: pending jöran", "rcpt: pending j%00öran"), "control character"},
		{"raw CR", replace("envid: QQ314159", "envid: QQ\r314159"), "control character"},
		{"bad time", replace("created: 2025-06-02T10:00:00Z", "created: yesterday"), "RFC 3339"},
		{"bad number", replace("size: 2048", "size: -2048"), "want a number"},
		{"huge number", replace("size: 2048", "size: 99999999999999999999"), "want a number"},
		{"bad bool", replace("held: yes", "held: true"), "want yes or no"},
		{"bad body", replace("body: 8BITMIME", "body: BINARYMIME"), "want 7BIT or 8BITMIME"},
		{"empty sender", replace("sender: www-data@example.com", "sender: "), "null sender"},
		{"duplicate recipient", replace("rcpt: pending jöran@bücher.example", "rcpt: pending alice@example.org"), "twice"},
		{"bad notify", replace("notify=NEVER", "notify=NEVER,FAILURE"), "notify"},
		{"bad ret", replace("ret: HDRS", "ret: ALL"), "ret"},
		{"bad id", replace("id: 0JM2Q4ZK8PX7A3BD", "id: ../../etc"), "bad id"},
		{"no key separator", replace("held: yes", "held:yes"), "not a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseEnvelope([]byte(tc.data))
			if err == nil {
				t.Fatal("parsed")
			}
			var pe *ParseError
			if !errors.Is(err, ErrCorrupt) || !errors.As(err, &pe) {
				t.Errorf("err %v does not wrap ErrCorrupt as a *ParseError", err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("err = %v, want it to say %q", err, tc.msg)
			}
		})
	}
}

// TestEnvelopeRoundTripRandom: parse(marshal(e)) == e for many generated
// envelopes (the fuzz target does the same from fuzzer input).
func TestEnvelopeRoundTripRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		seed := make([]byte, 64+r.IntN(512))
		for j := range seed {
			seed[j] = byte(r.Uint32())
		}
		e := genEnvelope(seed)
		data, err := e.Marshal()
		if err != nil {
			t.Fatalf("%d: Marshal(%+v): %v", i, e, err)
		}
		back, err := ParseEnvelope(data)
		if err != nil {
			t.Fatalf("%d: %v\n%s", i, err, data)
		}
		if !reflect.DeepEqual(back, e) {
			t.Fatalf("%d: round trip\n%+v\nwant\n%+v\n%s", i, back, e, data)
		}
	}
}

// genEnvelope builds a valid envelope from arbitrary bytes: every choice
// is read from data, which is recycled as needed.
func genEnvelope(data []byte) *Envelope {
	g := &gen{data: data}
	e := &Envelope{
		Version:     Version,
		ID:          g.id(),
		Sender:      g.str(),
		Ret:         g.pick("", RetFull, RetHdrs),
		EnvID:       g.str(),
		Body8Bit:    g.bool(),
		SMTPUTF8:    g.bool(),
		Size:        int64(g.int(1 << 40)),
		UID:         g.int(1 << 31),
		User:        g.str(),
		PID:         g.int(1 << 22),
		Created:     g.time(),
		NextAttempt: g.maybeTime(),
		Attempts:    g.int(1000),
		Held:        g.bool(),
		DelayWarned: g.bool(),
	}
	if e.Created.IsZero() {
		e.Created = t0
	}
	if e.PID != 0 {
		e.GID = g.int(1 << 31)
	}
	if e.Sender == "<>" {
		e.Sender = "x<>"
	}
	n := 1 + g.int(5)
	seen := map[string]bool{}
	for i := 0; i < n; i++ {
		addr := g.str()
		if addr == "" || seen[addr] {
			addr += "r" + string(rune('a'+i)) + "@example.com"
		}
		seen[addr] = true
		rc := Recipient{
			Addr:              addr,
			ORCPT:             g.str(),
			State:             State(g.int(4)),
			Attempts:          g.int(100),
			LastReply:         g.str(),
			LastAttempt:       g.maybeTime(),
			Relay:             g.str(),
			PossibleDuplicate: g.bool(),
			Notified:          g.bool(),
		}
		switch g.int(4) {
		case 1:
			rc.Notify = []string{NotifyNever}
		case 2:
			rc.Notify = []string{NotifyFailure}
		case 3:
			rc.Notify = []string{NotifySuccess, NotifyFailure, NotifyDelay}
		}
		e.Recipients = append(e.Recipients, rc)
	}
	return e
}

type gen struct {
	data []byte
	i    int
}

func (g *gen) byte() byte {
	if len(g.data) == 0 {
		return 0
	}
	b := g.data[g.i%len(g.data)]
	g.i++
	return b
}

func (g *gen) int(n int) int {
	v := 0
	for range 4 {
		v = v<<8 | int(g.byte())
	}
	return v % n
}

func (g *gen) bool() bool { return g.byte()&1 == 1 }

func (g *gen) pick(s ...string) string { return s[g.int(len(s))] }

// str returns a string without control characters: ASCII including
// space, '%', '=', '<', '>', quotes, and some UTF-8 and invalid bytes.
func (g *gen) str() string {
	n := g.int(24)
	var b []byte
	for range n {
		c := g.byte()
		switch {
		case c < 0x20:
			b = append(b, ' ', '%', '=', ':')[:len(b)+1+int(c%3)]
		case c == 0x7f:
			b = append(b, "é"...)
		default:
			b = append(b, c) // 0x80 and up: often invalid UTF-8
		}
	}
	return string(b)
}

func (g *gen) id() string {
	b := make([]byte, idLen)
	for i := range b {
		b[i] = idAlphabet[g.byte()%32]
	}
	return string(b)
}

func (g *gen) time() time.Time {
	sec := int64(g.int(1<<30)) * 8 // 1970 to about 2242
	nsec := int64(0)
	if g.bool() {
		nsec = int64(g.int(1e9))
	}
	return time.Unix(sec, nsec).UTC()
}

func (g *gen) maybeTime() time.Time {
	if g.bool() {
		return time.Time{}
	}
	return g.time()
}
