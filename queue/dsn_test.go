package queue

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/textproto"
	"strings"
	"testing"
	"time"
)

// parsedDSN is a DSN taken apart with the standard library.
type parsedDSN struct {
	header     textproto.MIMEHeader
	reportType string
	text       string               // part 1
	statusType string               // part 2's Content-Type
	perMessage textproto.MIMEHeader // part 2, first group
	perRcpt    []textproto.MIMEHeader
	headerType string // part 3's Content-Type
	headers    string // part 3
}

func parseDSN(t *testing.T, dsn []byte) parsedDSN {
	t.Helper()
	if bytes.Contains(bytes.ReplaceAll(dsn, []byte("\r\n"), nil), []byte("\n")) {
		t.Errorf("a bare LF in the DSN")
	}
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(dsn)))
	h, err := tp.ReadMIMEHeader()
	if err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || mt != "multipart/report" {
		t.Fatalf("Content-Type %q: %v", h.Get("Content-Type"), err)
	}
	d := parsedDSN{header: h, reportType: params["report-type"]}
	mr := multipart.NewReader(tp.R, params["boundary"])
	part := func() (string, []byte) {
		t.Helper()
		p, err := mr.NextPart()
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(p)
		if err != nil {
			t.Fatal(err)
		}
		return p.Header.Get("Content-Type"), body
	}
	ct, body := part()
	if ct != "text/plain; charset=utf-8" {
		t.Errorf("part 1 Content-Type %q", ct)
	}
	d.text = string(body)
	d.statusType, body = part()
	r := textproto.NewReader(bufio.NewReader(bytes.NewReader(body)))
	for i := 0; ; i++ {
		g, err := r.ReadMIMEHeader()
		if len(g) > 0 {
			if i == 0 {
				d.perMessage = g
			} else {
				d.perRcpt = append(d.perRcpt, g)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("delivery-status group %d: %v\n%s", i, err, body)
		}
	}
	d.headerType, body = part()
	d.headers = string(body)
	if _, err := mr.NextPart(); err != io.EOF {
		t.Errorf("a fourth part: %v", err)
	}
	return d
}

func dsnEnvelope() *Envelope {
	e := fullEnvelope()
	e.SMTPUTF8 = false
	e.Recipients = e.Recipients[:3]
	e.Recipients[1].State = Failed
	return e
}

func TestBuildDSNFailure(t *testing.T) {
	e := dsnEnvelope()
	hdr, err := ReadHeader(strings.NewReader(testMessage), 0)
	if err != nil {
		t.Fatal(err)
	}
	rcpts := []Recipient{e.Recipients[1], e.Recipients[2]}
	now := t0.Add(time.Hour)
	dsn, err := BuildDSN(e, rcpts, hdr, "mx.example.com", now, false)
	if err != nil {
		t.Fatal(err)
	}
	d := parseDSN(t, dsn)

	for k, want := range map[string]string{
		"From":           "Mail Delivery System <MAILER-DAEMON@mx.example.com>",
		"To":             "www-data@example.com",
		"Auto-Submitted": "auto-replied",
		"Subject":        "Undelivered Mail Returned to Sender",
		"Mime-Version":   "1.0",
		"Date":           now.Format(time.RFC1123Z),
	} {
		if got := d.header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if id := d.header.Get("Message-Id"); !strings.HasPrefix(id, "<"+e.ID+".") || !strings.HasSuffix(id, "@mx.example.com>") {
		t.Errorf("Message-ID %q", id)
	}
	if d.reportType != "delivery-status" {
		t.Errorf("report-type %q", d.reportType)
	}
	if d.statusType != "message/delivery-status" || d.headerType != "text/rfc822-headers" {
		t.Errorf("part types %q, %q", d.statusType, d.headerType)
	}
	for _, want := range []string{"mx.example.com", "<bob@example.net>: 451 4.3.0 Mailbox temporarily unavailable", "<\"john doe\"@example.com>: 550 5.1.1 100% unknown"} {
		if !strings.Contains(d.text, want) {
			t.Errorf("the text part lacks %q:\n%s", want, d.text)
		}
	}
	for k, want := range map[string]string{
		"Reporting-Mta":        "dns; mx.example.com",
		"Arrival-Date":         t0.Format(time.RFC1123Z),
		"Original-Envelope-Id": "QQ314159",
		"X-Handoff-Queue-Id":   e.ID,
	} {
		if got := d.perMessage.Get(k); got != want {
			t.Errorf("per-message %s: %q, want %q", k, got, want)
		}
	}
	if len(d.perRcpt) != 2 {
		t.Fatalf("%d recipient groups, want 2", len(d.perRcpt))
	}
	for i, want := range []map[string]string{
		{
			"Final-Recipient":    "rfc822; bob@example.net",
			"Original-Recipient": "rfc822; bob@example.net",
			"Action":             "failed",
			"Status":             "4.3.0", // failed after max_age: the last reply's status, as Postfix reports it
			"Diagnostic-Code":    "smtp; 451 4.3.0 Mailbox temporarily unavailable",
			"Last-Attempt-Date":  t0.Add(5*time.Minute + 12*time.Second).Format(time.RFC1123Z),
		},
		{
			"Final-Recipient":    "rfc822; \"john doe\"@example.com",
			"Original-Recipient": "",
			"Action":             "failed",
			"Status":             "5.1.1",
			"Diagnostic-Code":    "smtp; 550 5.1.1 100% unknown",
			"Last-Attempt-Date":  "",
		},
	} {
		for k, v := range want {
			if got := d.perRcpt[i].Get(k); got != v {
				t.Errorf("recipient %d %s: %q, want %q", i+1, k, got, v)
			}
		}
	}
	wantHdr := testMessage[:strings.Index(testMessage, "\r\n\r\n")+2]
	if d.headers != wantHdr {
		t.Errorf("original headers:\n%q\nwant\n%q", d.headers, wantHdr)
	}
	if strings.Contains(string(dsn), "Hello.") {
		t.Error("the DSN carries the message body")
	}
}

func TestBuildDSNDelayed(t *testing.T) {
	e := dsnEnvelope()
	e.EnvID = ""
	rc := Recipient{Addr: "bob@example.net", State: Deferred, LastReply: "dial tcp 192.0.2.1:25: connect: connection refused"}
	dsn, err := BuildDSN(e, []Recipient{rc}, []byte("Subject: hi\nFrom: a@b\n"), "mx.example.com", t0, true)
	if err != nil {
		t.Fatal(err)
	}
	d := parseDSN(t, dsn)
	if d.header.Get("Subject") != "Delayed Mail (still being retried)" || !strings.Contains(d.text, "warning only") {
		t.Errorf("subject %q, text\n%s", d.header.Get("Subject"), d.text)
	}
	g := d.perRcpt[0]
	if g.Get("Action") != "delayed" || g.Get("Status") != "4.0.0" || g.Get("Diagnostic-Code") != "X-Handoff; "+rc.LastReply {
		t.Errorf("recipient group %v", g)
	}
	if d.perMessage.Get("Original-Envelope-Id") != "" {
		t.Error("Original-Envelope-Id without ENVID")
	}
	if d.headers != "Subject: hi\r\nFrom: a@b\r\n" {
		t.Errorf("headers %q (want CRLF line ends)", d.headers)
	}
}

func TestBuildDSNUTF8(t *testing.T) {
	e := dsnEnvelope()
	rc := Recipient{Addr: "jöran@bücher.example", State: Failed, LastReply: "550 5.1.1 unbekannt"}
	dsn, err := BuildDSN(e, []Recipient{rc}, []byte("Subject: grüße\r\n"), "mx.example.com", t0, false)
	if err != nil {
		t.Fatal(err)
	}
	d := parseDSN(t, dsn)
	if d.statusType != "message/global-delivery-status" || d.headerType != "message/global-headers" {
		t.Errorf("types %q %q", d.statusType, d.headerType)
	}
	if got := d.perRcpt[0].Get("Final-Recipient"); got != "utf-8; jöran@bücher.example" {
		t.Errorf("Final-Recipient %q", got)
	}
	de := DSNEnvelope(e, dsn)
	if de.Sender != "" || len(de.Recipients) != 1 || de.Recipients[0].Addr != e.Sender || !de.Body8Bit || de.UID != e.UID {
		t.Errorf("DSNEnvelope = %+v", de)
	}
}

func TestBuildDSNRefusals(t *testing.T) {
	e := dsnEnvelope()
	rcpts := e.Recipients[1:2]
	null := *e
	null.Sender = ""
	if _, err := BuildDSN(&null, rcpts, nil, "mx.example.com", t0, false); !errors.Is(err, ErrNullSender) {
		t.Errorf("to <>: %v, want ErrNullSender", err)
	}
	if _, err := BuildDSN(&null, rcpts, nil, "mx.example.com", t0, true); !errors.Is(err, ErrNullSender) {
		t.Errorf("delay warning to <>: %v, want ErrNullSender", err)
	}
	if _, err := BuildDSN(e, nil, nil, "mx.example.com", t0, false); !errors.Is(err, ErrInvalid) {
		t.Errorf("no recipients: %v", err)
	}
	for _, mta := range []string{"", "mx example", "mx\r\nBcc: x@y", "a@b"} {
		if _, err := BuildDSN(e, rcpts, nil, mta, t0, false); !errors.Is(err, ErrInvalid) {
			t.Errorf("reporting MTA %q: %v", mta, err)
		}
	}
	bad := *e
	bad.Sender = "a@b\r\nBcc: victim@example.com"
	if _, err := BuildDSN(&bad, rcpts, nil, "mx.example.com", t0, false); !errors.Is(err, ErrInvalid) {
		t.Errorf("CRLF in the sender: %v", err)
	}
}

// TestDSNQueued: a DSN goes through the queue like any message, from <>.
func TestDSNQueued(t *testing.T) {
	q := newQueue(t)
	e := dsnEnvelope()
	dsn, err := BuildDSN(e, e.Recipients[1:2], nil, "mx.example.com", t0, false)
	if err != nil {
		t.Fatal(err)
	}
	de := DSNEnvelope(e, dsn)
	id, err := q.Enqueue(de, bytes.NewReader(dsn))
	if err != nil {
		t.Fatal(err)
	}
	it, err := q.Lock(id)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Unlock()
	if it.Env.Sender != "" {
		t.Errorf("sender %q", it.Env.Sender)
	}
	// And it never bounces in turn.
	it.Apply([]Result{{Addr: e.Sender, Reply: "550 5.1.1 gone", Err: errors.New("550")}}, t0, Policy{})
	if len(it.Env.Bounces()) != 0 || !it.Done() {
		t.Errorf("a failed DSN wants a DSN: %+v", it.Env.Recipients)
	}
}

func TestDSNStatus(t *testing.T) {
	for _, tc := range []struct {
		reply   string
		delayed bool
		want    string
	}{
		{"550 5.1.1 No such user", false, "5.1.1"},
		{"554 5.7.1 Relay access denied", false, "5.7.1"},
		{"451 4.3.0 Try later", false, "4.3.0"},
		{"452 4.2.2 Mailbox full", true, "4.2.2"},
		{"550 No such user", false, "5.0.0"},
		{"451", true, "4.0.0"},
		{"550 4.1.1 class mismatch", false, "5.0.0"},
		{"550 5.1.1234 too long", false, "5.0.0"},
		{"550-5.1.1 multi", false, "5.1.1"},
		{"", false, "5.0.0"},
		{"", true, "4.0.0"},
		{"dial tcp: connection refused", true, "4.0.0"},
		{"dial tcp: connection refused", false, "5.0.0"},
		{"999 9.9.9 nonsense", false, "5.0.0"},
	} {
		if got := dsnStatus(tc.reply, tc.delayed); got != tc.want {
			t.Errorf("dsnStatus(%q, %v) = %q, want %q", tc.reply, tc.delayed, got, tc.want)
		}
	}
}

func TestReadHeader(t *testing.T) {
	for _, tc := range []struct {
		name, msg string
		limit     int
		want      string
	}{
		{"CRLF", "A: 1\r\nB: 2\r\n\r\nbody\r\n", 0, "A: 1\r\nB: 2\r\n"},
		{"LF", "A: 1\n\tfolded\nB: 2\n\nbody\n", 0, "A: 1\n\tfolded\nB: 2\n"},
		{"no body", "A: 1\nB: 2", 0, "A: 1\nB: 2"},
		{"empty", "", 0, ""},
		{"no header", "\r\nbody", 0, ""},
		{"limit cuts at a line end", "A: 1\nB: 2\nC: 3\n\n", 10, "A: 1\nB: 2\n"},
		{"long line ends it", "A: 1\nB: " + strings.Repeat("x", 10000) + "\nC: 3\n\n", 0, "A: 1\n"},
	} {
		got, err := ReadHeader(strings.NewReader(tc.msg), tc.limit)
		if err != nil || string(got) != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
	errRead := errors.New("boom")
	if _, err := ReadHeader(io.MultiReader(strings.NewReader("A: 1\n"), iotestErrReader{errRead}), 0); !errors.Is(err, errRead) {
		t.Errorf("read error: %v", err)
	}
}
