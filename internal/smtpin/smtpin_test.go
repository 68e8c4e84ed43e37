package smtpin

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/handoff-mta/handoff/relay"
)

const host = "mx.test"

// delivery is one call of Deliver: what the handler saw.
type delivery struct {
	env  Envelope
	data []byte
	err  error // from reading data; nil when it ended with io.EOF
}

// testHandler records every Deliver call. It reads the data to the end
// and answers 250 only when that ended with io.EOF, as a real handler
// must.
type testHandler struct {
	mu         sync.Mutex
	calls      []delivery
	refuseFrom map[string]*Reply
	refuseTo   map[string]*Reply
	reply      *Reply // instead of the default 250
	noRead     bool   // read nothing and answer reply (or 250)
}

func (h *testHandler) CheckSender(from string) *Reply { return h.refuseFrom[from] }
func (h *testHandler) CheckRecipient(to string) *Reply {
	return h.refuseTo[to]
}

func (h *testHandler) Deliver(env Envelope, data io.Reader) Reply {
	var b []byte
	var err error
	if !h.noRead {
		b, err = io.ReadAll(data)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, delivery{env: env, data: b, err: err})
	if err != nil {
		return Reply{451, "4.3.0 Error: " + err.Error()}
	}
	if h.reply != nil {
		return *h.reply
	}
	return Reply{250, fmt.Sprintf("2.0.0 Ok: queued as Q%d", len(h.calls))}
}

func (h *testHandler) deliveries() []delivery {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]delivery(nil), h.calls...)
}

// lines joins reply lines, each ended with CRLF.
func lines(ls ...string) string { return strings.Join(ls, "\r\n") + "\r\n" }

// ehlo is the EHLO reply for a server without a size limit.
var ehlo = []string{
	"250-mx.test",
	"250-PIPELINING",
	"250-8BITMIME",
	"250-SMTPUTF8",
	"250-ENHANCEDSTATUSCODES",
	"250 SIZE",
}

func with(a []string, b ...string) []string {
	return append(append([]string(nil), a...), b...)
}

const greeting = "220 mx.test ESMTP handoff"

// serve runs one session on in and returns the whole output.
func serve(t *testing.T, srv *Server, in string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := srv.Serve(strings.NewReader(in), &out)
	return out.String(), err
}

func TestTranscripts(t *testing.T) {
	long := "NOOP " + strings.Repeat("x", MaxLine-len("NOOP ")-2)
	tests := []struct {
		name    string
		srv     func(*Server)
		h       *testHandler
		in      string
		out     []string
		wantErr error // nil: Serve must return nil
	}{
		{
			name: "ehlo quit",
			in:   "EHLO client.test\r\nQUIT\r\n",
			out:  with([]string{greeting}, with(ehlo, "221 2.0.0 Bye")...),
		},
		{
			name: "ehlo with size limit",
			srv:  func(s *Server) { s.MaxMessageSize = 10485760 },
			in:   "ehlo client.test\r\nquit\r\n",
			out: []string{greeting, "250-mx.test", "250-PIPELINING", "250-8BITMIME", "250-SMTPUTF8",
				"250-ENHANCEDSTATUSCODES", "250 SIZE 10485760", "221 2.0.0 Bye"},
		},
		{
			name: "helo and the small commands",
			in:   "HELO client\r\nNOOP\r\nNOOP anything\r\nVRFY root\r\nVRFY\r\nHELP\r\nRSET\r\nRSET x\r\nQUIT\r\nNOOP\r\n",
			out: []string{greeting, "250 mx.test", "250 2.0.0 Ok", "250 2.0.0 Ok",
				"252 2.5.2 Cannot VRFY user, but will accept message and attempt delivery",
				"501 5.5.4 Syntax: VRFY address",
				"214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP VRFY HELP QUIT",
				"250 2.0.0 Ok", "501 5.5.4 Syntax: RSET", "221 2.0.0 Bye"},
		},
		{
			name: "hello needs a name",
			in:   "EHLO\r\nHELO \r\nEHLO a\tb\r\nQUIT\r\n",
			out: []string{greeting, "501 5.5.4 Syntax: EHLO hostname", "501 5.5.4 Syntax: HELO hostname",
				"501 5.5.4 Syntax: EHLO hostname", "221 2.0.0 Bye"},
		},
		{
			name: "unknown and unimplemented commands",
			in:   "FOO bar\r\n\r\nSTARTTLS\r\nAUTH PLAIN AGFAYg==\r\nBDAT 10 LAST\r\nEXPN staff\r\nETRN example.com\r\nTURN\r\nQUIT\r\n",
			out: []string{greeting, "500 5.5.2 Error: command not recognized", "500 5.5.2 Error: command not recognized",
				"502 5.5.1 Error: command not implemented", "502 5.5.1 Error: command not implemented",
				"502 5.5.1 Error: command not implemented", "502 5.5.1 Error: command not implemented",
				"502 5.5.1 Error: command not implemented", "502 5.5.1 Error: command not implemented",
				"221 2.0.0 Bye"},
		},
		{
			name: "commands out of order",
			in: "EHLO c\r\nRCPT TO:<a@x>\r\nDATA\r\nMAIL FROM:<a@x>\r\nMAIL FROM:<b@x>\r\nDATA\r\n" +
				"RCPT TO:<b@x>\r\nEHLO c\r\nDATA\r\nQUIT\r\n",
			out: with(with(with(with([]string{greeting}, ehlo...), "503 5.5.1 Error: need MAIL command", "503 5.5.1 Error: need MAIL command",
				"250 2.1.0 Ok", "503 5.5.1 Error: nested MAIL command", "503 5.5.1 Error: need RCPT command",
				"250 2.1.5 Ok"), ehlo...), // EHLO resets the transaction
				"503 5.5.1 Error: need MAIL command", "221 2.0.0 Bye"),
		},
		{
			name: "MAIL and RCPT syntax",
			in: "EHLO c\r\nMAIL <a@x>\r\nMAIL FROM:<a@x\r\nMAIL FROM:<a@x>SIZE=1\r\nMAIL FROM:<a@x> SIZE=abc\r\n" +
				"MAIL FROM:<a@x> SIZE=1 SIZE=2\r\nMAIL FROM:<a@x> BODY=BINARYMIME\r\nMAIL FROM:<a@x> FOO=bar\r\n" +
				"MAIL FROM:<a@x> SMTPUTF8=yes\r\nMAIL FROM:<a@x> =x\r\nMAIL FROM:<a\x00b@x>\r\nMAIL FROM:<a@x\rb>\r\n" +
				"MAIL FROM:<jö@x>\r\nMAIL FROM:<a@-bad..domain>\r\n" +
				"MAIL FROM: <a@x> RET=HDRS ENVID=QQ314159 AUTH=<>\r\nRCPT TO:<>\r\nRCPT <b@x>\r\n" +
				"RCPT TO:<b@x> FOO\r\nRCPT TO:<ü@x>\r\nRCPT TO:<b@x> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@x\r\nQUIT\r\n",
			out: with(with([]string{greeting}, ehlo...),
				"501 5.5.4 Syntax: MAIL FROM:<address>",
				"501 5.5.4 Syntax: MAIL FROM:<address>",
				"501 5.5.4 Syntax: MAIL FROM:<address>",
				"501 5.5.4 Error: bad SIZE value",
				"501 5.5.4 Error: SIZE given twice",
				"555 5.5.4 Error: unsupported BODY type",
				"555 5.5.4 Error: unsupported parameter FOO",
				"501 5.5.4 Error: SMTPUTF8 takes no value",
				"501 5.5.4 Error: bad parameter keyword",
				"501 5.1.7 Bad sender address syntax: control character in address",
				"501 5.1.7 Bad sender address syntax: control character in address",
				"553 5.6.7 Error: non-ASCII sender address needs SMTPUTF8",
				"501 5.1.7 Bad sender address syntax: bad domain",
				"250 2.1.0 Ok",
				"501 5.1.3 Bad recipient address syntax: empty address",
				"501 5.5.4 Syntax: RCPT TO:<address>",
				"555 5.5.4 Error: unsupported parameter FOO",
				"553 5.6.7 Error: non-ASCII recipient address needs SMTPUTF8",
				"250 2.1.5 Ok",
				"221 2.0.0 Bye"),
		},
		{
			name:    "end of input between transactions",
			in:      "EHLO c\r\nNOOP\r\nNOO",
			out:     with(with([]string{greeting}, ehlo...), "250 2.0.0 Ok"),
			wantErr: nil,
		},
		{
			name:    "end of input inside a transaction",
			in:      "EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\n",
			out:     with(with([]string{greeting}, ehlo...), "250 2.1.0 Ok", "250 2.1.5 Ok"),
			wantErr: io.ErrUnexpectedEOF,
		},
		{
			name:    "end of input inside DATA",
			in:      "EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\nSubject: x\r\n\r\npartial",
			out:     with(with([]string{greeting}, ehlo...), "250 2.1.0 Ok", "250 2.1.5 Ok", "354 End data with <CR><LF>.<CR><LF>"),
			wantErr: io.ErrUnexpectedEOF,
		},
		{
			name: "line too long",
			in:   long + "\r\n" + long + "x\r\n" + strings.Repeat("y", 1<<20) + "\nQUIT\r\n",
			out:  []string{greeting, "250 2.0.0 Ok", "500 5.5.2 Error: line too long", "500 5.5.2 Error: line too long", "221 2.0.0 Bye"},
		},
		{
			name: "line too long with bare LF",
			in:   long + "\n" + long + "xx\nQUIT\n",
			out:  []string{greeting, "250 2.0.0 Ok", "500 5.5.2 Error: line too long", "221 2.0.0 Bye"},
		},
		{
			name:    "too many errors",
			in:      strings.Repeat("FOO\r\n", 25) + "QUIT\r\n",
			out:     with(with([]string{greeting}, slicesRepeat("500 5.5.2 Error: command not recognized", 20)...), "421 4.7.0 mx.test Error: too many errors"),
			wantErr: ErrTooManyErrors,
		},
		{
			name: "too many recipients",
			srv:  func(s *Server) { s.MaxRecipients = 2 },
			in:   "HELO c\r\nMAIL FROM:<>\r\nRCPT TO:<a@x>\r\nRCPT TO:<b@x>\r\nRCPT TO:<c@x>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n",
			out: []string{greeting, "250 mx.test", "250 2.1.0 Ok", "250 2.1.5 Ok", "250 2.1.5 Ok", "452 4.5.3 Error: too many recipients",
				"354 End data with <CR><LF>.<CR><LF>", "250 2.0.0 Ok: queued as Q1", "221 2.0.0 Bye"},
		},
		{
			name: "refusals from the handler",
			h: &testHandler{
				refuseFrom: map[string]*Reply{"spammer@x": {553, "5.7.1 <spammer@x>: Sender address rejected"}},
				refuseTo: map[string]*Reply{
					"bad@x":    {550, "5.1.1 <bad@x>: Recipient address rejected"},
					"busy@x":   {450, "mailbox busy"},
					"multi@x":  {554, "5.7.1 no\nreally\r not\n4.1.1 wrong class"},
					"silly@x":  {250, "2.1.5 this is not a refusal"},
					"zero@x":   {0, ""},
					"nocode@x": {550, "4.1.1 wrong class"},
				},
			},
			in: "EHLO c\r\nMAIL FROM:<spammer@x>\r\nMAIL FROM:<a@x>\r\nRCPT TO:<bad@x>\r\nRCPT TO:<busy@x>\r\nRCPT TO:<multi@x>\r\n" +
				"RCPT TO:<silly@x>\r\nRCPT TO:<zero@x>\r\nRCPT TO:<nocode@x>\r\nDATA\r\nRSET\r\nQUIT\r\n",
			out: with(with([]string{greeting}, ehlo...),
				"553 5.7.1 <spammer@x>: Sender address rejected",
				"250 2.1.0 Ok",
				"550 5.1.1 <bad@x>: Recipient address rejected",
				"450 4.0.0 mailbox busy",
				"554-5.7.1 no", "554-5.7.1 really? not", "554 5.7.1 4.1.1 wrong class",
				"451 4.3.0 Error: internal error (bad reply from the handler)",
				"451 4.3.0 Error: internal error (bad reply from the handler)",
				"550 5.0.0 wrong class",
				"554 5.5.1 Error: no valid recipients",
				"250 2.0.0 Ok",
				"221 2.0.0 Bye"),
		},
		{
			name: "hostname cleaned",
			srv:  func(s *Server) { s.Hostname = "evil\r\n250 x" },
			in:   "QUIT\r\n",
			out:  []string{"220 evil??250 x ESMTP handoff", "221 2.0.0 Bye"},
		},
		{
			name: "default hostname",
			srv:  func(s *Server) { s.Hostname = "" },
			in:   "HELO x\r\n",
			out:  []string{"220 localhost ESMTP handoff", "250 localhost"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.h
			if h == nil {
				h = &testHandler{}
			}
			srv := &Server{Hostname: host, Handler: h}
			if tt.srv != nil {
				tt.srv(srv)
			}
			out, err := serve(t, srv, tt.in)
			want := lines(tt.out...)
			if out != want {
				t.Errorf("output:\n%s\nwant:\n%s", out, want)
			}
			switch {
			case tt.wantErr == nil && err != nil:
				t.Errorf("Serve: %v, want nil", err)
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Errorf("Serve: %v, want %v", err, tt.wantErr)
			}
			for _, d := range h.deliveries() {
				if tt.wantErr != nil && d.err == nil {
					t.Errorf("a message was delivered in a failed session: %+v", d)
				}
			}
		})
	}
}

func slicesRepeat(s string, n int) []string {
	r := make([]string, n)
	for i := range r {
		r[i] = s
	}
	return r
}

// TestSymfonySession replays what Symfony Mailer's SmtpTransport writes
// to "sendmail -bs": EHLO, MAIL, RCPT per recipient, DATA, the message
// with "\r\n." stuffed as "\r\n..", then "\r\n.\r\n" and QUIT.
func TestSymfonySession(t *testing.T) {
	body := "From: fabien@example.com\r\nTo: a@example.com\r\nSubject: Hi\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n\r\n" +
		"..leading dot\r\n" +
		"bare LF one\nbare LF two\n" +
		"...two dots\r\n" +
		". dot space\r\n" +
		"Grüße\r\n" +
		"last line"
	in := "EHLO [127.0.0.1]\r\n" +
		"MAIL FROM:<fabien@example.com> BODY=8BITMIME SIZE=200\r\n" +
		"RCPT TO:<a@example.com>\r\n" +
		"RCPT TO:<\"b c\"@example.org>\r\n" +
		"DATA\r\n" + body + "\r\n.\r\n" +
		"QUIT\r\n"
	h := &testHandler{}
	out, err := serve(t, &Server{Hostname: host, Handler: h}, in)
	if err != nil {
		t.Fatalf("Serve: %v", err)
	}
	want := lines(with(with([]string{greeting}, ehlo...),
		"250 2.1.0 Ok", "250 2.1.5 Ok", "250 2.1.5 Ok",
		"354 End data with <CR><LF>.<CR><LF>",
		"250 2.0.0 Ok: queued as Q1",
		"221 2.0.0 Bye")...)
	if out != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
	ds := h.deliveries()
	if len(ds) != 1 {
		t.Fatalf("%d deliveries, want 1", len(ds))
	}
	wantEnv := Envelope{From: "fabien@example.com", To: []string{"a@example.com", "\"b c\"@example.org"}, Body8Bit: true, Size: 200,
		Rcpts: make([]RcptParams, 2)}
	if !reflect.DeepEqual(ds[0].env, wantEnv) {
		t.Errorf("envelope %+v, want %+v", ds[0].env, wantEnv)
	}
	wantData := "From: fabien@example.com\r\nTo: a@example.com\r\nSubject: Hi\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n\r\n" +
		".leading dot\r\n" +
		"bare LF one\r\nbare LF two\r\n" +
		"..two dots\r\n" +
		" dot space\r\n" +
		"Grüße\r\n" +
		"last line\r\n"
	if string(ds[0].data) != wantData || ds[0].err != nil {
		t.Errorf("data %q (err %v),\nwant %q", ds[0].data, ds[0].err, wantData)
	}
}

// TestBareLFClient: a client that writes bare LF everywhere, as a shell
// script piping printf into "sendmail -bs" does, may end its data with
// "\n.\n".
func TestBareLFClient(t *testing.T) {
	in := "EHLO c\nMAIL FROM:<a@x>\nRCPT TO:<b@x>\nDATA\nline one\n..dot\n\n.\nMAIL FROM:<a@x>\nRCPT TO:<c@x>\nDATA\nsecond\r\n.\r\nQUIT\n"
	h := &testHandler{}
	out, err := serve(t, &Server{Hostname: host, Handler: h}, in)
	if err != nil {
		t.Fatalf("Serve: %v", err)
	}
	want := lines(with(with([]string{greeting}, ehlo...),
		"250 2.1.0 Ok", "250 2.1.5 Ok", "354 End data with <CR><LF>.<CR><LF>", "250 2.0.0 Ok: queued as Q1",
		"250 2.1.0 Ok", "250 2.1.5 Ok", "354 End data with <CR><LF>.<CR><LF>", "250 2.0.0 Ok: queued as Q2",
		"221 2.0.0 Bye")...)
	if out != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
	ds := h.deliveries()
	if len(ds) != 2 || string(ds[0].data) != "line one\r\n.dot\r\n\r\n" || string(ds[1].data) != "second\r\n" {
		t.Errorf("deliveries %+v", ds)
	}
}

// TestNoSmuggling: after "DATA" CRLF only CRLF "." CRLF ends the data, so
// a body whose bare-LF dot lines a client did not stuff cannot end the
// message early and have the rest run as commands (CVE-2023-51764).
func TestNoSmuggling(t *testing.T) {
	body := "one\n.\nMAIL FROM:<evil@x>\r\nRCPT TO:<victim@x>\r\nDATA\r\nsmuggled\n.\r\n" +
		"three\r\n.\nfour\r.\r\n"
	in := "EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n" + body + ".\r\nQUIT\r\n"
	h := &testHandler{}
	out, err := serve(t, &Server{Hostname: host, Handler: h}, in)
	if err != nil {
		t.Fatalf("Serve: %v", err)
	}
	want := lines(with(with([]string{greeting}, ehlo...),
		"250 2.1.0 Ok", "250 2.1.5 Ok", "354 End data with <CR><LF>.<CR><LF>", "250 2.0.0 Ok: queued as Q1",
		"221 2.0.0 Bye")...)
	if out != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
	ds := h.deliveries()
	wantData := "one\r\n\r\nMAIL FROM:<evil@x>\r\nRCPT TO:<victim@x>\r\nDATA\r\nsmuggled\r\n\r\nthree\r\n\r\nfour\r.\r\n"
	if len(ds) != 1 || string(ds[0].data) != wantData {
		t.Errorf("deliveries %+v, want one with %q", ds, wantData)
	}
}

func TestRsetMidTransaction(t *testing.T) {
	in := "EHLO c\r\nMAIL FROM:<first@x>\r\nRCPT TO:<one@x>\r\nRSET\r\n" +
		"MAIL FROM:<second@x> SMTPUTF8\r\nRCPT TO:<zwei@bücher.example>\r\nDATA\r\nhi\r\n.\r\n" +
		"MAIL FROM:<>\r\nRCPT TO:<three@x>\r\nRSET\r\nDATA\r\nQUIT\r\n"
	h := &testHandler{}
	out, err := serve(t, &Server{Hostname: host, Handler: h}, in)
	if err != nil {
		t.Fatalf("Serve: %v", err)
	}
	want := lines(with(with([]string{greeting}, ehlo...),
		"250 2.1.0 Ok", "250 2.1.5 Ok", "250 2.0.0 Ok",
		"250 2.1.0 Ok", "250 2.1.5 Ok", "354 End data with <CR><LF>.<CR><LF>", "250 2.0.0 Ok: queued as Q1",
		"250 2.1.0 Ok", "250 2.1.5 Ok", "250 2.0.0 Ok", "503 5.5.1 Error: need MAIL command",
		"221 2.0.0 Bye")...)
	if out != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
	ds := h.deliveries()
	wantEnv := Envelope{From: "second@x", To: []string{"zwei@bücher.example"}, SMTPUTF8: true, Rcpts: make([]RcptParams, 1)}
	if len(ds) != 1 || !reflect.DeepEqual(ds[0].env, wantEnv) {
		t.Errorf("deliveries %+v, want one with %+v", ds, wantEnv)
	}
}

func TestRefusedRecipient(t *testing.T) {
	h := &testHandler{refuseTo: map[string]*Reply{"bad@x": {550, "5.1.1 <bad@x>: Recipient address rejected: User unknown"}}}
	in := "EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<good@x>\r\nRCPT TO:<bad@x>\r\nRCPT TO:<GOOD2@x>\r\nDATA\r\nx\r\n.\r\nQUIT\r\n"
	out, err := serve(t, &Server{Hostname: host, Handler: h}, in)
	if err != nil {
		t.Fatalf("Serve: %v", err)
	}
	want := lines(with(with([]string{greeting}, ehlo...),
		"250 2.1.0 Ok", "250 2.1.5 Ok", "550 5.1.1 <bad@x>: Recipient address rejected: User unknown", "250 2.1.5 Ok",
		"354 End data with <CR><LF>.<CR><LF>", "250 2.0.0 Ok: queued as Q1", "221 2.0.0 Bye")...)
	if out != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
	ds := h.deliveries()
	if len(ds) != 1 || strings.Join(ds[0].env.To, ",") != "good@x,GOOD2@x" {
		t.Errorf("deliveries %+v", ds)
	}
}

func TestAllRecipientsRefused(t *testing.T) {
	h := &testHandler{refuseTo: map[string]*Reply{"a@x": {550, "5.1.1 no"}, "b@x": {450, "4.2.1 later"}}}
	in := "EHLO c\r\nMAIL FROM:<s@x>\r\nRCPT TO:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\nRSET\r\nQUIT\r\n"
	out, err := serve(t, &Server{Hostname: host, Handler: h}, in)
	if err != nil {
		t.Fatalf("Serve: %v", err)
	}
	want := lines(with(with([]string{greeting}, ehlo...),
		"250 2.1.0 Ok", "550 5.1.1 no", "450 4.2.1 later", "554 5.5.1 Error: no valid recipients",
		"250 2.0.0 Ok", "221 2.0.0 Bye")...)
	if out != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
	if ds := h.deliveries(); len(ds) != 0 {
		t.Errorf("Deliver called: %+v", ds)
	}
}

// TestEOFInData: when the input ends inside DATA the handler sees
// io.ErrUnexpectedEOF, no reply follows the 354, and Serve fails. It
// holds whatever the handler does, even when it reads nothing and says
// 250, and for a "." line the rules say is data.
func TestEOFInData(t *testing.T) {
	prefix := "EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n"
	wantOut := lines(with(with([]string{greeting}, ehlo...), "250 2.1.0 Ok", "250 2.1.5 Ok", "354 End data with <CR><LF>.<CR><LF>")...)
	for _, tail := range []string{"", "Subject: x\r\n", "Subject: x\r\n\r\npartial", "x\r\n.\n", "x\n.\r\n", "x\r\n.", "x\r\n..\r\n", strings.Repeat("y", 100000)} {
		for _, noRead := range []bool{false, true} {
			h := &testHandler{noRead: noRead}
			out, err := serve(t, &Server{Hostname: host, Handler: h}, prefix+tail)
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("%q noRead=%v: Serve returned %v, want io.ErrUnexpectedEOF", tail, noRead, err)
			}
			if out != wantOut {
				t.Errorf("%q noRead=%v: output\n%s\nwant\n%s", tail, noRead, out, wantOut)
			}
			ds := h.deliveries()
			if len(ds) != 1 {
				t.Fatalf("%q: %d Deliver calls", tail, len(ds))
			}
			if !noRead && ds[0].err != io.ErrUnexpectedEOF {
				t.Errorf("%q: data reader ended with %v, want io.ErrUnexpectedEOF", tail, ds[0].err)
			}
		}
	}
}

func TestOversize(t *testing.T) {
	h := &testHandler{}
	big := strings.Repeat("0123456789012345678\r\n", 10) // 210 octets
	in := "EHLO c\r\nMAIL FROM:<a@x> SIZE=101\r\nMAIL FROM:<a@x> SIZE=99999999999999999999\r\n" +
		"MAIL FROM:<a@x> SIZE=100\r\nRCPT TO:<b@x>\r\nDATA\r\n" + big + ".\r\n" +
		"MAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n" + strings.Repeat("x", 98) + "\r\n.\r\n" + // exactly 100
		"MAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n" + strings.Repeat("x", 99) + "\r\n.\r\n" + // 101
		"QUIT\r\n"
	out, err := serve(t, &Server{Hostname: host, Handler: h, MaxMessageSize: 100}, in)
	if err != nil {
		t.Fatalf("Serve: %v", err)
	}
	want := lines(greeting, "250-mx.test", "250-PIPELINING", "250-8BITMIME", "250-SMTPUTF8", "250-ENHANCEDSTATUSCODES", "250 SIZE 100",
		"552 5.3.4 Message size exceeds fixed maximum message size",
		"552 5.3.4 Message size exceeds fixed maximum message size",
		"250 2.1.0 Ok", "250 2.1.5 Ok", "354 End data with <CR><LF>.<CR><LF>",
		"552 5.3.4 Message size exceeds fixed maximum message size",
		"250 2.1.0 Ok", "250 2.1.5 Ok", "354 End data with <CR><LF>.<CR><LF>",
		"250 2.0.0 Ok: queued as Q2",
		"250 2.1.0 Ok", "250 2.1.5 Ok", "354 End data with <CR><LF>.<CR><LF>",
		"552 5.3.4 Message size exceeds fixed maximum message size",
		"221 2.0.0 Bye")
	if out != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
	ds := h.deliveries()
	if len(ds) != 3 || ds[0].err != ErrMessageTooBig || ds[1].err != nil || len(ds[1].data) != 100 || ds[2].err != ErrMessageTooBig {
		t.Errorf("deliveries %+v", ds)
	}

	// A handler that reads nothing and says 250 still gets 552.
	h = &testHandler{noRead: true}
	out, err = serve(t, &Server{Hostname: host, Handler: h, MaxMessageSize: 100},
		"HELO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n"+big+".\r\nQUIT\r\n")
	if err != nil || !strings.Contains(out, "354 End data with <CR><LF>.<CR><LF>\r\n552 5.3.4 ") {
		t.Errorf("handler reading nothing: err %v, output\n%s", err, out)
	}
}

// TestPipelining sends MAIL, RCPT, RCPT and DATA in one write over a
// synchronous pipe and checks that the four replies come back in order
// in one write, while lock-step commands each get their reply at once
// (the test would hang otherwise).
func TestPipelining(t *testing.T) {
	h := &testHandler{}
	sc, cc := net.Pipe()
	defer cc.Close()
	wl := &writeLog{w: sc}
	done := make(chan error, 1)
	go func() {
		done <- (&Server{Hostname: host, Handler: h, Timeout: 10 * time.Second}).Serve(sc, wl)
		sc.Close()
	}()
	cc.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(cc)
	read := func(n int) string {
		t.Helper()
		var b strings.Builder
		for n > 0 {
			l, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("reading replies: %v (so far %q)", err, b.String())
			}
			b.WriteString(l)
			if len(l) > 3 && l[3] == ' ' {
				n--
			}
		}
		return b.String()
	}
	write := func(s string) {
		t.Helper()
		if _, err := cc.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	read(1)
	write("EHLO c\r\n")
	read(1)
	write("MAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nRCPT TO:<c@x>\r\nDATA\r\n")
	group := read(4)
	write("Subject: pipelined\r\n\r\nbody\r\n.\r\n")
	final := read(1)
	write("NOOP\r\n")
	read(1)
	write("QUIT\r\n")
	read(1)
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	wantGroup := "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
	if group != wantGroup || final != "250 2.0.0 Ok: queued as Q1\r\n" {
		t.Errorf("group %q, final %q", group, final)
	}
	writes := wl.get()
	want := []string{
		greeting + "\r\n",
		lines(ehlo...),
		wantGroup,
		final,
		"250 2.0.0 Ok\r\n",
		"221 2.0.0 Bye\r\n",
	}
	if fmt.Sprintf("%q", writes) != fmt.Sprintf("%q", want) {
		t.Errorf("server writes:\n%q\nwant\n%q", writes, want)
	}
	ds := h.deliveries()
	if len(ds) != 1 || string(ds[0].data) != "Subject: pipelined\r\n\r\nbody\r\n" || len(ds[0].env.To) != 2 {
		t.Errorf("deliveries %+v", ds)
	}
}

type writeLog struct {
	mu     sync.Mutex
	w      io.Writer
	writes []string
}

func (l *writeLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.writes = append(l.writes, string(p))
	l.mu.Unlock()
	return l.w.Write(p)
}

func (l *writeLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.writes...)
}

// TestRelayClient drives the server with handoff's own SMTP client over
// a pipe: both sides must agree on pipelining, SIZE, BODY, SMTPUTF8,
// dot-stuffing and line endings.
func TestRelayClient(t *testing.T) {
	h := &testHandler{refuseTo: map[string]*Reply{"bad@example.com": {550, "5.1.1 <bad@example.com>: no such user"}}}
	sc, cc := net.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- (&Server{Hostname: host, Handler: h, MaxMessageSize: 10 << 20}).Serve(sc, sc)
		sc.Close()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var debug bytes.Buffer
	c, err := relay.NewClient(ctx, cc, relay.Options{TLS: relay.NoTLS, LocalName: "client.test", Debug: &debug})
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	defer c.Close()

	msg := "From: a@example.com\nTo: b@example.com\nSubject: interop\n\n" +
		".leading dot\n..two dots\n.\n" +
		"bare CR\rhere\r\n" +
		"Grüße aus Köln\n" +
		"no final newline"
	want := "From: a@example.com\r\nTo: b@example.com\r\nSubject: interop\r\n\r\n" +
		".leading dot\r\n..two dots\r\n.\r\n" +
		"bare CR\r\nhere\r\n" +
		"Grüße aus Köln\r\n" +
		"no final newline\r\n"
	res, err := c.SendMail(ctx, "a@example.com", []string{"b@example.com", "bad@example.com", "ü@example.org"},
		strings.NewReader(msg), &relay.SendOptions{Mail: relay.MailOptions{Body: relay.Body8BitMIME}})
	if err != nil {
		t.Fatalf("SendMail: %v\n%s", err, debug.String())
	}
	if res.Delivered() != 2 || res.Refused()["bad@example.com"] == nil {
		t.Errorf("result: delivered %d, refused %v", res.Delivered(), res.Refused())
	}
	if res.Reply == nil || res.Reply.Code != 250 || res.Reply.Text() != "Ok: queued as Q1" {
		t.Errorf("end-of-data reply %+v", res.Reply)
	}
	if !strings.Contains(debug.String(), "PIPELINING") {
		t.Errorf("transcript lacks PIPELINING:\n%s", debug.String())
	}

	// A second message on the same connection: 2 MiB, streamed.
	var big strings.Builder
	r := rand.New(rand.NewPCG(1, 2))
	for big.Len() < 2<<20 {
		n := r.IntN(200)
		line := make([]byte, n)
		for i := range line {
			const chars = ".abcdefghij \t\x80"
			line[i] = chars[r.IntN(len(chars))]
		}
		big.Write(line)
		big.WriteString([]string{"\r\n", "\n"}[r.IntN(2)])
	}
	bigWant := strings.ReplaceAll(strings.ReplaceAll(big.String(), "\r\n", "\n"), "\n", "\r\n")
	if _, err := c.SendMail(ctx, "", []string{"c@example.com"}, strings.NewReader(big.String()), nil); err != nil {
		t.Fatalf("second SendMail: %v", err)
	}
	if err := c.Quit(ctx); err != nil {
		t.Fatalf("Quit: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}

	ds := h.deliveries()
	if len(ds) != 2 {
		t.Fatalf("%d deliveries", len(ds))
	}
	// SIZE is the client's estimate (RFC 1870); relay's leaves out the
	// CRLF it adds to a last line without one.
	if s := ds[0].env.Size; s < int64(len(want))-2 || s > int64(len(want)) {
		t.Errorf("SIZE=%d, want about %d", s, len(want))
	}
	wantEnv := Envelope{From: "a@example.com", To: []string{"b@example.com", "ü@example.org"},
		Body8Bit: true, SMTPUTF8: true, Size: ds[0].env.Size, Rcpts: make([]RcptParams, 2)}
	if !reflect.DeepEqual(ds[0].env, wantEnv) {
		t.Errorf("envelope %+v, want %+v", ds[0].env, wantEnv)
	}
	if string(ds[0].data) != want {
		t.Errorf("data\n%q\nwant\n%q", ds[0].data, want)
	}
	if !ds[1].env.NullSender || ds[1].env.From != "" {
		t.Errorf("second envelope %+v", ds[1].env)
	}
	if sha256.Sum256(ds[1].data) != sha256.Sum256([]byte(bigWant)) {
		t.Errorf("second message differs: %d octets, want %d", len(ds[1].data), len(bigWant))
	}
}

// TestTimeout: with a reader that has deadlines (a net.Conn) and with
// one that has not (an io.Pipe, like a blocking stdin), a client that
// goes quiet gets 421 and Serve returns os.ErrDeadlineExceeded; in DATA
// the handler sees the error and nothing is delivered.
func TestTimeout(t *testing.T) {
	const d = 50 * time.Millisecond
	want := lines(greeting, "421 4.4.2 mx.test Error: timeout exceeded")
	t.Run("deadlines", func(t *testing.T) {
		sc, cc := net.Pipe()
		defer cc.Close()
		done := make(chan error, 1)
		go func() {
			// Longer than d: the write deadline must not catch a test
			// goroutine that is slow to read the replies.
			done <- (&Server{Hostname: host, Handler: &testHandler{}, Timeout: 4 * d}).Serve(sc, sc)
			sc.Close()
		}()
		cc.SetDeadline(time.Now().Add(10 * time.Second))
		out, _ := io.ReadAll(cc)
		if err := <-done; !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("Serve: %v", err)
		}
		if string(out) != want {
			t.Errorf("output %q", out)
		}
	})
	t.Run("no deadlines", func(t *testing.T) {
		pr, pw := io.Pipe()
		defer pw.Close()
		var out bytes.Buffer
		err := (&Server{Hostname: host, Handler: &testHandler{}, Timeout: d}).Serve(pr, &out)
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("Serve: %v", err)
		}
		if out.String() != want {
			t.Errorf("output %q", out.String())
		}
	})
	t.Run("in DATA", func(t *testing.T) {
		// The input stops after "half a" without ending: no deadlines.
		pr, pw := io.Pipe()
		defer pw.Close()
		in := io.MultiReader(strings.NewReader("HELO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\nSubject: x\r\n\r\nhalf a"), pr)
		h := &testHandler{}
		var out bytes.Buffer
		err := (&Server{Hostname: host, Handler: h, Timeout: d}).Serve(in, &out)
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("Serve: %v", err)
		}
		want := lines(greeting, "250 mx.test", "250 2.1.0 Ok", "250 2.1.5 Ok", "354 End data with <CR><LF>.<CR><LF>",
			"421 4.4.2 mx.test Error: timeout exceeded")
		if out.String() != want {
			t.Errorf("output %q", out.String())
		}
		ds := h.deliveries()
		if len(ds) != 1 || !errors.Is(ds[0].err, os.ErrDeadlineExceeded) {
			t.Errorf("deliveries %+v", ds)
		}
	})
	t.Run("os.Pipe", func(t *testing.T) {
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer pr.Close()
		defer pw.Close()
		pw.WriteString("NOOP\n")
		var out bytes.Buffer
		err = (&Server{Hostname: host, Handler: &testHandler{}, Timeout: d}).Serve(pr, &out)
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("Serve: %v", err)
		}
		if want := lines(greeting, "250 2.0.0 Ok", "421 4.4.2 mx.test Error: timeout exceeded"); out.String() != want {
			t.Errorf("output %q", out.String())
		}
	})
}

var errBoom = errors.New("boom")

type failWriter struct{}

func (failWriter) Write(p []byte) (int, error) { return 0, errBoom }

// failAfter accepts n writes and fails from then on.
type failAfter struct{ n int }

func (f *failAfter) Write(p []byte) (int, error) {
	if f.n == 0 {
		return 0, errBoom
	}
	f.n--
	return len(p), nil
}

type shortWriter struct{}

func (shortWriter) Write(p []byte) (int, error) { return len(p) / 2, nil }

func TestWriteError(t *testing.T) {
	err := (&Server{Handler: &testHandler{}}).Serve(strings.NewReader("EHLO c\r\nQUIT\r\n"), failWriter{})
	if !errors.Is(err, errBoom) {
		t.Errorf("Serve: %v, want errBoom", err)
	}
	err = (&Server{Handler: &testHandler{}}).Serve(strings.NewReader("QUIT\r\n"), shortWriter{})
	if !errors.Is(err, io.ErrShortWrite) {
		t.Errorf("Serve with a short writer: %v, want io.ErrShortWrite", err)
	}
	// The client stops reading replies after the greeting: Serve ends at
	// the next wait for input instead of going on without it.
	h := &testHandler{}
	in := iotest.OneByteReader(strings.NewReader("HELO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\nx\r\n.\r\nQUIT\r\n"))
	err = (&Server{Handler: h}).Serve(in, &failAfter{n: 1})
	if !errors.Is(err, errBoom) || len(h.deliveries()) != 0 {
		t.Errorf("Serve: %v, deliveries %+v", err, h.deliveries())
	}
	if err := (&Server{}).Serve(strings.NewReader(""), io.Discard); err == nil {
		t.Errorf("Serve without a Handler: nil error")
	}
}

func TestParseMailbox(t *testing.T) {
	tests := []struct {
		in, want string
		utf8     bool
		err      bool
	}{
		{in: "user@example.com", want: "user@example.com"},
		{in: "root", want: "root"},
		{in: "Postmaster", want: "Postmaster"},
		{in: `"john"@example.com`, want: "john@example.com"},
		{in: `"john.doe"@example.com`, want: "john.doe@example.com"},
		{in: `"john doe"@example.com`, want: `"john doe"@example.com`},
		{in: `"a\b\"c"@x`, want: `"ab\"c"@x`},
		{in: `"a@b"@x`, want: `"a@b"@x`},
		{in: `""@x`, want: `""@x`},
		{in: `"a>b"@x`, want: `"a>b"@x`},
		{in: "first..last@x", want: "first..last@x"},
		{in: ".dot.@x", want: ".dot.@x"},
		{in: "@a.example,@b.example:u@c.example", want: "u@c.example"},
		{in: "u@[192.0.2.1]", want: "u@[192.0.2.1]"},
		{in: "u@[IPv6:2001:db8::1]", want: "u@[IPv6:2001:db8::1]"},
		{in: "u@under_score.example", want: "u@under_score.example"},
		{in: "jö@bücher.example", want: "jö@bücher.example", utf8: true},
		{in: "jö@x", err: true},
		{in: "j\xff@x", utf8: true, err: true},
		{in: "a b@x", err: true},
		{in: "a@b@x", err: true},
		{in: "a@", err: true},
		{in: "a@.x", err: true},
		{in: "a@x.", err: true},
		{in: "a@x y", err: true},
		{in: "a@[1.2.3.4", err: true},
		{in: "a@[]", err: true},
		{in: "a@[a[b]", err: true},
		{in: `"unterminated@x`, err: true},
		{in: `"a"b@x`, err: true},
		{in: `"a\`, err: true},
		{in: "a\r@x", err: true},
		{in: "a\x00@x", err: true},
		{in: "a\x7f@x", err: true},
		{in: "@a.example:", err: true},
		{in: "@a.example", err: true},
		{in: "@:u@x", err: true},
		{in: "a,b@x", err: true},
		{in: "a(comment)@x", err: true},
		{in: "a@" + strings.Repeat("x", 256), err: true},
	}
	for _, tt := range tests {
		got, err := parseMailbox(tt.in, tt.utf8)
		if tt.err {
			if err == nil {
				t.Errorf("parseMailbox(%q) = %q, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseMailbox(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestCutEnhanced(t *testing.T) {
	tests := []struct{ in, code, rest string }{
		{"2.0.0 Ok", "2.0.0", "Ok"},
		{"5.1.10 x", "5.1.10", "x"},
		{"4.123.456  two spaces", "4.123.456", "two spaces"},
		{"2.0.0", "2.0.0", ""},
		{"2.0.0x", "", "2.0.0x"},
		{"1.0.0 x", "", "1.0.0 x"},
		{"2.1234.0 x", "", "2.1234.0 x"},
		{"2..0 x", "", "2..0 x"},
		{"2.0 x", "", "2.0 x"},
		{"Ok", "", "Ok"},
	}
	for _, tt := range tests {
		code, rest, ok := cutEnhanced(tt.in)
		if code != tt.code || rest != tt.rest || ok != (tt.code != "") {
			t.Errorf("cutEnhanced(%q) = %q, %q, %v", tt.in, code, rest, ok)
		}
	}
}

// refData is the specification of dataReader, written over whole lines:
// the data, what follows the end-of-data line, and whether there was one.
func refData(in string, lfEnd bool) (data, rest string, ok bool) {
	var out strings.Builder
	prevCRLF := true
	for {
		i := strings.IndexByte(in, '\n')
		if i < 0 {
			return out.String(), "", false
		}
		line := in[:i]
		in = in[i+1:]
		lineCRLF := strings.HasSuffix(line, "\r")
		line = strings.TrimSuffix(line, "\r")
		if line == "." && (lfEnd || lineCRLF && prevCRLF) {
			return out.String(), in, true
		}
		out.WriteString(strings.TrimPrefix(line, "."))
		out.WriteString("\r\n")
		prevCRLF = lineCRLF
	}
}

// readData runs a dataReader over in with a bufio buffer of bufSize,
// feeding it one octet at a time when slow, and reading it through
// buffers of readSize.
func readData(in string, lfEnd bool, bufSize, readSize int, slow bool) (data, rest string, err error) {
	var src io.Reader = strings.NewReader(in)
	if slow {
		src = iotest.OneByteReader(src)
	}
	br := bufio.NewReaderSize(src, bufSize)
	d := newDataReader(br, lfEnd, 0)
	var out bytes.Buffer
	buf := make([]byte, readSize)
	for {
		n, err := d.Read(buf)
		out.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			d.drain()
			return out.String(), "", err
		}
	}
	d.drain()
	r, _ := io.ReadAll(br)
	return out.String(), string(r), nil
}

func TestDataReader(t *testing.T) {
	tests := []struct {
		in     string
		lfEnd  bool
		data   string
		rest   string
		broken bool // no end-of-data line
	}{
		{in: ".\r\nQUIT\r\n", data: "", rest: "QUIT\r\n"},
		{in: "a\r\n.\r\n", data: "a\r\n"},
		{in: "a\n.\n", lfEnd: true, data: "a\r\n"},
		{in: "a\r\n.\n", lfEnd: true, data: "a\r\n"},
		{in: "a\n.\r\n", lfEnd: true, data: "a\r\n"},
		{in: "a\n.\n\r\n.\r\n", data: "a\r\n\r\n\r\n"},
		{in: "a\n.\r\n", data: "a\r\n\r\n", broken: true},
		{in: "..\r\n...\r\n.x\r\n.\r\n", data: ".\r\n..\r\nx\r\n"},
		{in: "a\rb\r\r\n.\r\n", data: "a\rb\r\r\n"},
		{in: "\r\n\n\r\n.\r\n", data: "\r\n\r\n\r\n"},
		{in: ". \r\n.\r\n", data: " \r\n"},
		{in: "a\r\n", data: "a\r\n", broken: true},
		{in: "a\r\n.", data: "a\r\n", broken: true},
		{in: "", broken: true},
	}
	for _, tt := range tests {
		for _, bufSize := range []int{16, 4096} {
			for _, slow := range []bool{false, true} {
				data, rest, err := readData(tt.in, tt.lfEnd, bufSize, 3, slow)
				if tt.broken {
					if err != io.ErrUnexpectedEOF || data != tt.data {
						t.Errorf("%q: %q, %v; want %q, io.ErrUnexpectedEOF", tt.in, data, err, tt.data)
					}
					continue
				}
				if err != nil || data != tt.data || rest != tt.rest {
					t.Errorf("%q lfEnd=%v buf=%d slow=%v: %q, rest %q, %v; want %q, rest %q",
						tt.in, tt.lfEnd, bufSize, slow, data, rest, err, tt.data, tt.rest)
				}
			}
		}
	}
}

// TestDataReaderRandom compares dataReader with refData on random input
// made of the octets that matter, with lines longer than the 16-octet
// buffer so that lines, CRs and CRLFs are cut at every place.
func TestDataReaderRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const alphabet = "..\r\r\n\nab"
	for i := 0; i < 5000; i++ {
		b := make([]byte, r.IntN(120))
		for j := range b {
			b[j] = alphabet[r.IntN(len(alphabet))]
		}
		in := string(b) + "\r\n.\r\nQUIT\r\n"
		lfEnd := r.IntN(2) == 0
		wantData, wantRest, ok := refData(in, lfEnd)
		if !ok {
			t.Fatalf("reference found no end in %q", in)
		}
		for _, bufSize := range []int{16, 17, 23, 4096} {
			data, rest, err := readData(in, lfEnd, bufSize, 1+r.IntN(40), r.IntN(2) == 0)
			if err != nil || data != wantData || rest != wantRest {
				t.Fatalf("%q lfEnd=%v buf=%d:\n got %q rest %q err %v\nwant %q rest %q", in, lfEnd, bufSize, data, rest, err, wantData, wantRest)
			}
		}
	}
}

func TestDataReaderClosed(t *testing.T) {
	d := newDataReader(bufio.NewReader(strings.NewReader("a\r\n.\r\n")), false, 0)
	d.drain()
	if n, err := d.Read(make([]byte, 10)); n != 0 || err != errDataClosed {
		t.Errorf("Read after drain: %d, %v", n, err)
	}
}

// fuzzHandler answers 250 to every message, even one whose data failed,
// so the fuzz target can check that the server alone keeps such a reply
// from the client. As an LMTPHandler it answers per recipient: 250, or
// 452 for an address with "tmp", with one reply too few when an address
// has "short" and one too many when one has "long"; queued counts the
// 250s the client must see.
type fuzzHandler struct {
	complete int
	queued   int
	dsn      bool // the server offers DSN
}

func (h *fuzzHandler) CheckSender(from string) *Reply {
	if strings.Contains(from, "bad") {
		return &Reply{553, "5.7.1 no\nnot you"}
	}
	return nil
}

func (h *fuzzHandler) CheckRecipient(to string) *Reply {
	if strings.Contains(to, "bad") {
		return &Reply{550, "5.1.1 unknown"}
	}
	return nil
}

func (h *fuzzHandler) Deliver(env Envelope, data io.Reader) Reply {
	if h.read(env, data) {
		h.queued++
	}
	return Reply{250, "2.0.0 fuzz queued"}
}

func (h *fuzzHandler) DeliverLMTP(env Envelope, data io.Reader) []Reply {
	complete := h.read(env, data)
	var rs []Reply
	short, long := false, false
	for _, to := range env.To {
		if strings.Contains(to, "tmp") {
			rs = append(rs, Reply{452, "4.2.2 fuzz full"})
		} else {
			rs = append(rs, Reply{250, "2.0.0 fuzz queued"})
		}
		short = short || strings.Contains(to, "short")
		long = long || strings.Contains(to, "long")
	}
	if short {
		rs = rs[:len(rs)-1]
	}
	if long {
		rs = append(rs, Reply{250, "2.0.0 fuzz queued"})
	}
	if complete {
		for i := range min(len(rs), len(env.To)) {
			if rs[i].Code == 250 {
				h.queued++
			}
		}
	}
	return rs
}

// read reads the data and checks it and the envelope; it reports whether
// the data arrived whole.
func (h *fuzzHandler) read(env Envelope, data io.Reader) bool {
	b, err := io.ReadAll(data)
	if err != nil {
		return false
	}
	h.complete++
	if len(b) > 2000 || (len(b) > 0 && !bytes.HasSuffix(b, []byte("\r\n"))) ||
		bytes.Count(b, []byte("\n")) != bytes.Count(b, []byte("\r\n")) {
		panic(fmt.Sprintf("bad data %q", b))
	}
	if len(env.To) == 0 || len(env.To) > 5 || len(env.Rcpts) != len(env.To) {
		panic(fmt.Sprintf("bad envelope %+v", env))
	}
	if !h.dsn && (env.Return != "" || env.EnvelopeID != "") {
		panic(fmt.Sprintf("DSN values without DSN: %+v", env))
	}
	if env.Return != "" && env.Return != "FULL" && env.Return != "HDRS" || !isPrintableASCII(env.EnvelopeID) {
		panic(fmt.Sprintf("bad DSN values %+v", env))
	}
	for _, rp := range env.Rcpts {
		if !h.dsn && (rp.Notify != nil || rp.ORcpt != "") {
			panic(fmt.Sprintf("DSN values without DSN: %+v", env))
		}
		for _, n := range rp.Notify {
			if n != "SUCCESS" && n != "FAILURE" && n != "DELAY" && (n != "NEVER" || len(rp.Notify) > 1) {
				panic(fmt.Sprintf("bad NOTIFY %q", rp.Notify))
			}
		}
		if rp.ORcpt != "" && (!strings.Contains(rp.ORcpt, ";") || !isPrintableASCII(rp.ORcpt)) {
			panic(fmt.Sprintf("bad ORCPT %q", rp.ORcpt))
		}
	}
	for k, v := range env.Params {
		if k != "XFUZZ" || hasControl(v) {
			panic(fmt.Sprintf("bad Params %q", env.Params))
		}
	}
	return true
}

var replyLine = regexp.MustCompile(`^[2-5][0-9][0-9]([ -][^\r\n]*)?$`)

// FuzzServe runs each input through an SMTP server as "sendmail -bs"
// configures it, the same with DSN and a declared parameter, and an LMTP
// server with both, as the daemon configures it.
func FuzzServe(f *testing.F) {
	f.Add([]byte("EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n"))
	f.Add([]byte("LHLO c\r\nMAIL FROM:<a@x> RET=HDRS ENVID=a+2Bb XFUZZ=1\r\nRCPT TO:<b@x> NOTIFY=SUCCESS ORCPT=rfc822;b@x\r\n" +
		"RCPT TO:<tmp@x>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, mode := range []struct {
			lmtp, dsn bool
			greeting  string
		}{
			{false, false, "220 fuzz.test ESMTP handoff\r\n"},
			{false, true, "220 fuzz.test ESMTP handoff\r\n"},
			{true, true, "220 fuzz.test LMTP handoff\r\n"},
		} {
			h := &fuzzHandler{dsn: mode.dsn}
			srv := &Server{Hostname: "fuzz.test", Handler: h, MaxMessageSize: 2000, MaxRecipients: 5, LMTP: mode.lmtp, DSN: mode.dsn}
			if mode.dsn {
				srv.Params = []string{"XFUZZ"}
			}
			var out bytes.Buffer
			done := make(chan error, 1)
			go func() { done <- srv.Serve(bytes.NewReader(in), &out) }()
			var err error
			select {
			case err = <-done:
			case <-time.After(20 * time.Second):
				t.Fatalf("LMTP %v DSN %v: Serve did not return", mode.lmtp, mode.dsn)
			}
			o := out.String()
			if !strings.HasPrefix(o, mode.greeting) || !strings.HasSuffix(o, "\r\n") {
				t.Fatalf("LMTP %v DSN %v: output %q", mode.lmtp, mode.dsn, o)
			}
			ls := strings.Split(strings.TrimSuffix(o, "\r\n"), "\r\n")
			queued := 0
			for i, l := range ls {
				if !replyLine.MatchString(l) || len(l) > 512-2 {
					t.Fatalf("LMTP %v DSN %v: bad reply line %q", mode.lmtp, mode.dsn, l)
				}
				if i > 0 && ls[i-1][3] == '-' && l[:3] != ls[i-1][:3] {
					t.Fatalf("LMTP %v DSN %v: multi-line reply changes code: %q then %q", mode.lmtp, mode.dsn, ls[i-1], l)
				}
				if l == "250 2.0.0 fuzz queued" {
					queued++
				}
			}
			if ls[len(ls)-1][3] == '-' {
				t.Fatalf("LMTP %v DSN %v: output ends inside a multi-line reply", mode.lmtp, mode.dsn)
			}
			if queued != h.queued {
				t.Fatalf("LMTP %v DSN %v: %d success replies, want %d (%d complete messages)", mode.lmtp, mode.dsn, queued, h.queued, h.complete)
			}
			if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrTooManyErrors) {
				t.Fatalf("LMTP %v DSN %v: Serve: unexpected error %v", mode.lmtp, mode.dsn, err)
			}
		}
	})
}
