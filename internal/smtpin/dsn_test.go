package smtpin

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

// dsnSession runs one SMTP session against srv and returns the output and
// the envelopes delivered.
func dsnSession(t *testing.T, srv *Server, in string) (string, []Envelope) {
	t.Helper()
	h := &testHandler{refuseTo: map[string]*Reply{"refused@x": {550, "5.1.1 no"}}}
	srv.Hostname, srv.Handler = host, h
	out, err := serve(t, srv, in)
	if err != nil {
		t.Fatalf("Serve: %v", err)
	}
	var envs []Envelope
	for _, d := range h.deliveries() {
		envs = append(envs, d.env)
	}
	return out, envs
}

// TestDSNParameters: with DSN offered, RET, ENVID, NOTIFY and ORCPT are
// checked, decoded and passed on; Rcpts runs parallel to To, refused
// recipients left out.
func TestDSNParameters(t *testing.T) {
	in := "EHLO c\r\n" +
		"MAIL FROM:<a@x> RET=hdrs ENVID=QQ+2B314+3D1+20x~\r\n" +
		"RCPT TO:<b@x> NOTIFY=success,Delay ORCPT=RFC822;b+2Bx@y\r\n" +
		"RCPT TO:<refused@x> NOTIFY=NEVER\r\n" +
		"RCPT TO:<c@x>\r\n" +
		"RCPT TO:<d@x> ORCPT=utf-8;ren\\x{E9}@y NOTIFY=never\r\n" +
		"DATA\r\nhi\r\n.\r\n" +
		"MAIL FROM:<> RET=FULL\r\nRCPT TO:<e@x> NOTIFY=FAILURE,SUCCESS,DELAY\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n"
	out, envs := dsnSession(t, &Server{DSN: true}, in)
	want := lines(with(with([]string{greeting}, with(ehlo[:len(ehlo)-1], "250-SIZE", "250 DSN")...),
		"250 2.1.0 Ok", "250 2.1.5 Ok", "550 5.1.1 no", "250 2.1.5 Ok", "250 2.1.5 Ok",
		"354 End data with <CR><LF>.<CR><LF>", "250 2.0.0 Ok: queued as Q1",
		"250 2.1.0 Ok", "250 2.1.5 Ok", "354 End data with <CR><LF>.<CR><LF>", "250 2.0.0 Ok: queued as Q2",
		"221 2.0.0 Bye")...)
	if out != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
	wantEnvs := []Envelope{
		{
			From: "a@x", To: []string{"b@x", "c@x", "d@x"}, Return: "HDRS", EnvelopeID: "QQ+314=1 x~",
			Rcpts: []RcptParams{
				{Notify: []string{"SUCCESS", "DELAY"}, ORcpt: "rfc822;b+x@y"},
				{},
				{Notify: []string{"NEVER"}, ORcpt: `utf-8;ren\x{E9}@y`},
			},
		},
		{
			NullSender: true, To: []string{"e@x"}, Return: "FULL",
			Rcpts: []RcptParams{{Notify: []string{"FAILURE", "SUCCESS", "DELAY"}}},
		},
	}
	if !reflect.DeepEqual(envs, wantEnvs) {
		t.Errorf("envelopes\n%+v\nwant\n%+v", envs, wantEnvs)
	}
}

// TestDSNMalformed: with DSN offered, every malformed DSN value is 501
// 5.5.4 and changes nothing; the transaction goes on with the good ones.
func TestDSNMalformed(t *testing.T) {
	const (
		badRET    = "501 5.5.4 Error: bad RET value"
		badENVID  = "501 5.5.4 Error: bad ENVID value"
		badNOTIFY = "501 5.5.4 Error: bad NOTIFY value"
		badORCPT  = "501 5.5.4 Error: bad ORCPT value"
	)
	tests := []struct{ cmd, reply string }{
		{"MAIL FROM:<a@x> RET=NONE", badRET},
		{"MAIL FROM:<a@x> RET", badRET},
		{"MAIL FROM:<a@x> RET=FULL RET=HDRS", "501 5.5.4 Error: RET given twice"},
		{"MAIL FROM:<a@x> ENVID", badENVID},
		{"MAIL FROM:<a@x> ENVID=a+2", badENVID},
		{"MAIL FROM:<a@x> ENVID=a+", badENVID},
		{"MAIL FROM:<a@x> ENVID=a+2b", badENVID},     // hex digits are upper case
		{"MAIL FROM:<a@x> ENVID=a+GG", badENVID},     // not hex
		{"MAIL FROM:<a@x> ENVID=a+0D+0Ab", badENVID}, // CR LF once decoded
		{"MAIL FROM:<a@x> ENVID=a+00", badENVID},
		{"MAIL FROM:<a@x> ENVID=a+C3+A9", badENVID}, // not US-ASCII
		{"MAIL FROM:<a@x> ENVID=é", badENVID},
		{"MAIL FROM:<a@x> ENVID=x ENVID=y", "501 5.5.4 Error: ENVID given twice"},
		{"RCPT TO:<b@x> NOTIFY=NEVER,SUCCESS", badNOTIFY},
		{"RCPT TO:<b@x> NOTIFY=FAILURE,NEVER", badNOTIFY},
		{"RCPT TO:<b@x> NOTIFY=SUCCESS,,DELAY", badNOTIFY},
		{"RCPT TO:<b@x> NOTIFY=SUCCESS,", badNOTIFY},
		{"RCPT TO:<b@x> NOTIFY=SOMETIMES", badNOTIFY},
		{"RCPT TO:<b@x> NOTIFY", badNOTIFY},
		{"RCPT TO:<b@x> NOTIFY=SUCCESS NOTIFY=DELAY", "501 5.5.4 Error: NOTIFY given twice"},
		{"RCPT TO:<b@x> ORCPT=b@x", badORCPT}, // no "type;"
		{"RCPT TO:<b@x> ORCPT=;b@x", badORCPT},
		{"RCPT TO:<b@x> ORCPT=rfc822;", badORCPT},
		{"RCPT TO:<b@x> ORCPT=rfc(822;b@x", badORCPT},
		{"RCPT TO:<b@x> ORCPT=rfc822;b+4@x", badORCPT},
		{"RCPT TO:<b@x> ORCPT=rfc822;b+0A@x", badORCPT},
		{"RCPT TO:<b@x> ORCPT=rfc822;bé@x", badORCPT},
		{"RCPT TO:<b@x> ORCPT", badORCPT},
		{"RCPT TO:<b@x> ORCPT=rfc822;a@x ORCPT=rfc822;b@x", "501 5.5.4 Error: ORCPT given twice"},
		{"RCPT TO:<b@x> FOO=bar", "555 5.5.4 Error: unsupported parameter FOO"},
	}
	for _, tt := range tests {
		t.Run(tt.cmd, func(t *testing.T) {
			var in, mid string
			if strings.HasPrefix(tt.cmd, "MAIL") {
				in = "HELO c\r\n" + tt.cmd + "\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n"
				mid = lines(tt.reply, "250 2.1.0 Ok", "250 2.1.5 Ok")
			} else {
				in = "HELO c\r\nMAIL FROM:<a@x>\r\n" + tt.cmd + "\r\nRCPT TO:<b@x>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n"
				mid = lines("250 2.1.0 Ok", tt.reply, "250 2.1.5 Ok")
			}
			out, envs := dsnSession(t, &Server{DSN: true}, in)
			want := lines(greeting, "250 mx.test") + mid +
				lines("354 End data with <CR><LF>.<CR><LF>", "250 2.0.0 Ok: queued as Q1", "221 2.0.0 Bye")
			if out != want {
				t.Errorf("output:\n%s\nwant:\n%s", out, want)
			}
			wantEnvs := []Envelope{{From: "a@x", To: []string{"b@x"}, Rcpts: make([]RcptParams, 1)}}
			if !reflect.DeepEqual(envs, wantEnvs) {
				t.Errorf("envelopes %+v, want %+v", envs, wantEnvs)
			}
		})
	}
}

// TestDSNNotOffered: without DSN the EHLO reply has no DSN line, and the
// DSN parameters, even malformed, are accepted and ignored as they always
// were.
func TestDSNNotOffered(t *testing.T) {
	in := "EHLO c\r\nMAIL FROM:<a@x> RET=NONE ENVID=a+2\r\nRCPT TO:<b@x> NOTIFY=NEVER,SUCCESS ORCPT=b@x\r\n" +
		"DATA\r\nhi\r\n.\r\nQUIT\r\n"
	out, envs := dsnSession(t, &Server{}, in)
	want := lines(with(with([]string{greeting}, ehlo...), "250 2.1.0 Ok", "250 2.1.5 Ok",
		"354 End data with <CR><LF>.<CR><LF>", "250 2.0.0 Ok: queued as Q1", "221 2.0.0 Bye")...)
	if out != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
	wantEnvs := []Envelope{{From: "a@x", To: []string{"b@x"}, Rcpts: make([]RcptParams, 1)}}
	if !reflect.DeepEqual(envs, wantEnvs) {
		t.Errorf("envelopes %+v, want %+v", envs, wantEnvs)
	}
}

// TestParams: declared keywords are advertised after the other
// extensions, accepted on MAIL in any case with their xtext values
// decoded, and land in Envelope.Params; an undeclared one is still 555.
func TestParams(t *testing.T) {
	srv := &Server{Params: []string{"XHANDOFF-MODE", "x-flag"}, DSN: true, MaxMessageSize: 1000}
	in := "EHLO c\r\n" +
		"MAIL FROM:<a@x> XOTHER=1\r\n" +
		"MAIL FROM:<a@x> xhandoff-mode=a+2\r\n" +
		"MAIL FROM:<a@x> XHANDOFF-MODE=a+0Db\r\n" +
		"MAIL FROM:<a@x> XHANDOFF-MODE=q XHANDOFF-MODE=i\r\n" +
		"MAIL FROM:<a@x> xhandoff-mode=q+20x X-Flag RET=FULL\r\nRCPT TO:<b@x>\r\nDATA\r\nhi\r\n.\r\n" +
		"MAIL FROM:<a@x> XHANDOFF-MODE=r+C3+A9\r\nRCPT TO:<b@x>\r\nDATA\r\nhi\r\n.\r\n" +
		"MAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n"
	out, envs := dsnSession(t, srv, in)
	txn := func(n string) []string {
		return []string{"250 2.1.0 Ok", "250 2.1.5 Ok", "354 End data with <CR><LF>.<CR><LF>", "250 2.0.0 Ok: queued as Q" + n}
	}
	want := lines(with(with(with(with(with([]string{greeting,
		"250-mx.test", "250-PIPELINING", "250-8BITMIME", "250-SMTPUTF8", "250-ENHANCEDSTATUSCODES", "250-SIZE 1000", "250-DSN",
		"250-XHANDOFF-MODE", "250 X-FLAG",
		"555 5.5.4 Error: unsupported parameter XOTHER",
		"501 5.5.4 Error: bad XHANDOFF-MODE value",
		"501 5.5.4 Error: bad XHANDOFF-MODE value",
		"501 5.5.4 Error: XHANDOFF-MODE given twice",
	}, txn("1")...), txn("2")...), txn("3")...), "221 2.0.0 Bye"))...)
	if out != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
	rcpts := make([]RcptParams, 1)
	wantEnvs := []Envelope{
		{From: "a@x", To: []string{"b@x"}, Return: "FULL", Rcpts: rcpts, Params: map[string]string{"XHANDOFF-MODE": "q x", "X-FLAG": ""}},
		{From: "a@x", To: []string{"b@x"}, Rcpts: rcpts, Params: map[string]string{"XHANDOFF-MODE": "ré"}},
		{From: "a@x", To: []string{"b@x"}, Rcpts: rcpts},
	}
	if !reflect.DeepEqual(envs, wantEnvs) {
		t.Errorf("envelopes\n%+v\nwant\n%+v", envs, wantEnvs)
	}
}

// TestBadParams: Serve refuses, before writing anything, a Params
// keyword that is malformed, repeated, or one the server handles itself.
func TestBadParams(t *testing.T) {
	for _, ps := range [][]string{{""}, {"X_Y"}, {"-X"}, {"X Y"}, {"X\r\n250 EVIL"}, {"X-A", "x-a"}, {"size"}, {"AUTH"}, {"RET"}} {
		var out bytes.Buffer
		err := (&Server{Handler: &testHandler{}, Params: ps}).Serve(strings.NewReader("EHLO c\r\n"), &out)
		if err == nil || !strings.Contains(err.Error(), "Server.Params") || out.Len() != 0 {
			t.Errorf("Params %q: Serve %v, output %q", ps, err, out.String())
		}
	}
}

func TestDecodeXtext(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"", "", true},
		{"abc", "abc", true},
		{"a+2Bb", "a+b", true},
		{"+3D+20+7E", "= ~", true},
		{"!~", "!~", true},
		{"+C3+A9", "\xc3\xa9", true},
		{"+", "", false},
		{"a+2", "", false},
		{"a+2b", "", false},
		{"a+G0", "", false},
		{"a=b", "", false},
		{"a b", "", false},
		{"a\x7f", "", false},
		{"é", "", false},
		{"a+", "", false},
	}
	for _, tt := range tests {
		got, ok := decodeXtext(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("decodeXtext(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
