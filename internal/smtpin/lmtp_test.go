package smtpin

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/handoff-mta/handoff/relay"
)

const lmtpGreeting = "220 mx.test LMTP handoff"

// lhlo is the LHLO reply of an LMTP server without a size limit, DSN or
// Params: the same extensions as EHLO.
var lhlo = ehlo

// lmtpHandler is a testHandler that also answers DeliverLMTP, with
// replies from perRcpt (a 250 per recipient when nil). Unlike the
// testHandler it answers the same way whether or not the data arrived
// whole, so the tests see that the server alone keeps such replies from
// the client.
type lmtpHandler struct {
	testHandler
	perRcpt func(env Envelope) []Reply
}

func (h *lmtpHandler) DeliverLMTP(env Envelope, data io.Reader) []Reply {
	b, err := io.ReadAll(data)
	h.mu.Lock()
	h.calls = append(h.calls, delivery{env: env, data: b, err: err})
	h.mu.Unlock()
	if h.perRcpt != nil {
		return h.perRcpt(env)
	}
	rs := make([]Reply, len(env.To))
	for i, to := range env.To {
		rs[i] = Reply{250, "2.0.0 <" + to + "> delivered"}
	}
	return rs
}

// byRecipient answers each recipient with the reply its address maps to.
func byRecipient(m map[string]Reply) func(Envelope) []Reply {
	return func(env Envelope) []Reply {
		rs := make([]Reply, len(env.To))
		for i, to := range env.To {
			rs[i] = m[to]
		}
		return rs
	}
}

func TestLMTPTranscripts(t *testing.T) {
	const (
		ok3    = "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok"
		dataGo = "354 End data with <CR><LF>.<CR><LF>"
	)
	tests := []struct {
		name    string
		srv     func(*Server)
		h       *lmtpHandler
		in      string
		out     []string
		wantErr error
		// deliveries is how many DeliverLMTP calls there must be.
		deliveries int
	}{
		{
			name: "LHLO and one reply per recipient",
			in:   "LHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nRCPT TO:<c@x>\r\nRCPT TO:<b@x>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n",
			out: with(with([]string{lmtpGreeting}, lhlo...), ok3, dataGo,
				"250 2.0.0 <b@x> delivered", "250 2.0.0 <c@x> delivered", "250 2.0.0 <b@x> delivered", "221 2.0.0 Bye"),
			deliveries: 1,
		},
		{
			name: "EHLO and HELO refused, HELP names LHLO",
			in:   "EHLO c\r\nHELO c\r\nehlo c\r\nHELP\r\nQUIT\r\n",
			out: []string{lmtpGreeting,
				"500 5.5.1 Error: this is LMTP; use LHLO", "500 5.5.1 Error: this is LMTP; use LHLO", "500 5.5.1 Error: this is LMTP; use LHLO",
				"214 2.0.0 Commands: LHLO MAIL RCPT DATA RSET NOOP VRFY HELP QUIT", "221 2.0.0 Bye"},
		},
		{
			name: "LHLO needs a name",
			in:   "LHLO\r\nlhlo c\r\nQUIT\r\n",
			out:  with(with([]string{lmtpGreeting, "501 5.5.4 Syntax: LHLO hostname"}, lhlo...), "221 2.0.0 Bye"),
		},
		{
			name: "mixed 250, 452 and 550, made safe one by one",
			h: &lmtpHandler{
				testHandler: testHandler{refuseTo: map[string]*Reply{"refused@x": {550, "5.1.1 unknown at RCPT"}}},
				perRcpt: byRecipient(map[string]Reply{
					"ok@x":    {250, "2.0.0 Ok: delivered"},
					"full@x":  {452, "4.2.2 mailbox full"},
					"gone@x":  {550, "no such user\nsecond\rline"},
					"wrong@x": {250, "5.1.1 wrong class"},
					"bad@x":   {354, "3.0.0 not a final reply"},
				}),
			},
			in: "LHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<ok@x>\r\nRCPT TO:<refused@x>\r\nRCPT TO:<full@x>\r\nRCPT TO:<gone@x>\r\n" +
				"RCPT TO:<wrong@x>\r\nRCPT TO:<bad@x>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n",
			out: with(with([]string{lmtpGreeting}, lhlo...),
				"250 2.1.0 Ok", "250 2.1.5 Ok", "550 5.1.1 unknown at RCPT", "250 2.1.5 Ok", "250 2.1.5 Ok", "250 2.1.5 Ok", "250 2.1.5 Ok",
				dataGo,
				"250 2.0.0 Ok: delivered",
				"452 4.2.2 mailbox full",
				"550-5.0.0 no such user", "550 5.0.0 second?line",
				"250 2.0.0 wrong class",
				"451 4.3.0 Error: internal error (bad reply from the handler)",
				"221 2.0.0 Bye"),
			deliveries: 1,
		},
		{
			name: "missing replies from the handler",
			h: &lmtpHandler{perRcpt: func(env Envelope) []Reply {
				return []Reply{{250, "2.0.0 first only"}}
			}},
			in: "LHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nRCPT TO:<c@x>\r\nRCPT TO:<d@x>\r\nDATA\r\nhi\r\n.\r\nNOOP\r\nQUIT\r\n",
			out: with(with([]string{lmtpGreeting}, lhlo...), ok3, dataGo,
				"250 2.0.0 first only",
				"451 4.3.0 Error: internal error (no reply from the handler)",
				"451 4.3.0 Error: internal error (no reply from the handler)",
				"250 2.0.0 Ok", "221 2.0.0 Bye"),
			deliveries: 1,
		},
		{
			name: "no replies at all, and extra replies ignored",
			h: &lmtpHandler{perRcpt: func(env Envelope) []Reply {
				if len(env.To) == 2 {
					return nil
				}
				return []Reply{{250, "2.0.0 one"}, {550, "5.0.0 extra"}, {250, "2.0.0 extra"}}
			}},
			in: "LHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nRCPT TO:<c@x>\r\nDATA\r\nhi\r\n.\r\n" +
				"MAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\nhi\r\n.\r\nNOOP\r\nQUIT\r\n",
			out: with(with([]string{lmtpGreeting}, lhlo...), "250 2.1.0 Ok", "250 2.1.5 Ok", "250 2.1.5 Ok", dataGo,
				"451 4.3.0 Error: internal error (no reply from the handler)",
				"451 4.3.0 Error: internal error (no reply from the handler)",
				"250 2.1.0 Ok", "250 2.1.5 Ok", dataGo, "250 2.0.0 one",
				"250 2.0.0 Ok", "221 2.0.0 Bye"),
			deliveries: 2,
		},
		{
			name: "oversize: one 552 per recipient, whatever the handler says",
			srv:  func(s *Server) { s.MaxMessageSize = 100 },
			in: "LHLO c\r\nMAIL FROM:<a@x> SIZE=101\r\n" +
				"MAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nRCPT TO:<c@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n" + strings.Repeat("x", 99) + "\r\n.\r\n" +
				"MAIL FROM:<a@x>\r\nRCPT TO:<d@x>\r\nDATA\r\n" + strings.Repeat("x", 98) + "\r\n.\r\nQUIT\r\n",
			out: with(with([]string{lmtpGreeting}, with(lhlo[:len(lhlo)-1], "250 SIZE 100")...),
				"552 5.3.4 Message size exceeds fixed maximum message size",
				ok3, dataGo,
				"552 5.3.4 Message size exceeds fixed maximum message size",
				"552 5.3.4 Message size exceeds fixed maximum message size",
				"552 5.3.4 Message size exceeds fixed maximum message size",
				"250 2.1.0 Ok", "250 2.1.5 Ok", dataGo, "250 2.0.0 <d@x> delivered",
				"221 2.0.0 Bye"),
			deliveries: 2,
		},
		{
			name: "DATA after every RCPT was refused is 503 (RFC 2033 §4.2)",
			h:    &lmtpHandler{testHandler: testHandler{refuseTo: map[string]*Reply{"b@x": {550, "5.1.1 no"}}}},
			in:   "LHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\nQUIT\r\n",
			out: with(with([]string{lmtpGreeting}, lhlo...), "250 2.1.0 Ok", "550 5.1.1 no",
				"503 5.5.1 Error: no valid recipients", "221 2.0.0 Bye"),
		},
		{
			name:    "end of input in DATA: no reply at all",
			in:      "LHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nRCPT TO:<c@x>\r\nDATA\r\nhalf\r\n",
			out:     with(with([]string{lmtpGreeting}, lhlo...), "250 2.1.0 Ok", "250 2.1.5 Ok", "250 2.1.5 Ok", dataGo),
			wantErr: io.ErrUnexpectedEOF,

			deliveries: 1,
		},
		{
			name: "hostname in the greeting and LHLO",
			srv:  func(s *Server) { s.Hostname = "lmtp\r\n.test" },
			in:   "LHLO c\r\n",
			out: []string{"220 lmtp??.test LMTP handoff", "250-lmtp??.test", "250-PIPELINING", "250-8BITMIME", "250-SMTPUTF8",
				"250-ENHANCEDSTATUSCODES", "250 SIZE"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.h
			if h == nil {
				h = &lmtpHandler{}
			}
			srv := &Server{Hostname: host, Handler: h, LMTP: true}
			if tt.srv != nil {
				tt.srv(srv)
			}
			out, err := serve(t, srv, tt.in)
			if want := lines(tt.out...); out != want {
				t.Errorf("output:\n%s\nwant:\n%s", out, want)
			}
			switch {
			case tt.wantErr == nil && err != nil:
				t.Errorf("Serve: %v, want nil", err)
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Errorf("Serve: %v, want %v", err, tt.wantErr)
			}
			if ds := h.deliveries(); len(ds) != tt.deliveries {
				t.Errorf("%d DeliverLMTP calls, want %d", len(ds), tt.deliveries)
			}
		})
	}
}

// TestLMTPDeliverySeesErrors: DeliverLMTP gets the same data and the same
// errors as Deliver, and an envelope whose Rcpts run parallel to To.
func TestLMTPDeliverySeesErrors(t *testing.T) {
	h := &lmtpHandler{}
	srv := &Server{Hostname: host, Handler: h, LMTP: true, MaxMessageSize: 100}
	in := "LHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nRCPT TO:<c@x>\r\nDATA\r\n..dot\r\nbare\n\r\n.\r\n" +
		"MAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n" + strings.Repeat("y", 200) + "\r\n.\r\nQUIT\r\n"
	if _, err := serve(t, srv, in); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	ds := h.deliveries()
	if len(ds) != 2 {
		t.Fatalf("%d deliveries", len(ds))
	}
	want := Envelope{From: "a@x", To: []string{"b@x", "c@x"}, Rcpts: make([]RcptParams, 2)}
	if !reflect.DeepEqual(ds[0].env, want) || string(ds[0].data) != ".dot\r\nbare\r\n\r\n" || ds[0].err != nil {
		t.Errorf("first delivery %+v", ds[0])
	}
	if !errors.Is(ds[1].err, ErrMessageTooBig) {
		t.Errorf("second delivery: data error %v, want ErrMessageTooBig", ds[1].err)
	}
}

// TestLMTPNeedsLMTPHandler: Serve refuses at once, writing nothing, to
// run LMTP with a Handler that cannot answer per recipient; and an SMTP
// server does not know LHLO.
func TestLMTPNeedsLMTPHandler(t *testing.T) {
	var out bytes.Buffer
	err := (&Server{Handler: &testHandler{}, LMTP: true}).Serve(strings.NewReader("LHLO c\r\nQUIT\r\n"), &out)
	if err == nil || !strings.Contains(err.Error(), "LMTPHandler") || out.Len() != 0 {
		t.Errorf("Serve: %v, output %q", err, out.String())
	}
	got, err := serve(t, &Server{Hostname: host, Handler: &lmtpHandler{}}, "LHLO c\r\nQUIT\r\n")
	if want := lines(greeting, "500 5.5.2 Error: command not recognized", "221 2.0.0 Bye"); err != nil || got != want {
		t.Errorf("SMTP server given LHLO: %v, output\n%s\nwant\n%s", err, got, want)
	}
}

// TestLMTPRelayClient drives an LMTP server with DSN and a declared
// parameter by handoff's own LMTP client, as the daemon's front end
// does: pipelined commands, DSN parameters, MailOptions.Extra, and a
// per-recipient result.
func TestLMTPRelayClient(t *testing.T) {
	h := &lmtpHandler{perRcpt: byRecipient(map[string]Reply{
		"b@example.com": {250, "2.0.0 queued as Q1"},
		"c@example.com": {452, "4.2.2 over quota"},
	})}
	sc, cc := net.Pipe()
	done := make(chan error, 1)
	go func() {
		srv := &Server{Hostname: host, Handler: h, LMTP: true, DSN: true, Params: []string{"XHANDOFF-MODE"}, MaxMessageSize: 1 << 20}
		done <- srv.Serve(sc, sc)
		sc.Close()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var debug bytes.Buffer
	c, err := relay.NewClient(ctx, cc, relay.Options{TLS: relay.NoTLS, LocalName: "client.test", LMTP: true, Debug: &debug})
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	defer c.Close()
	opts := &relay.SendOptions{
		Mail:               relay.MailOptions{Return: relay.ReturnHeaders, EnvelopeID: "id+1 x", Extra: []string{"XHANDOFF-MODE=q"}},
		Rcpt:               relay.RcptOptions{Notify: []relay.DSNNotify{relay.NotifyFailure, relay.NotifyDelay}},
		OriginalRecipients: map[string]string{"b@example.com": "B+list@example.com"},
	}
	res, err := c.SendMail(ctx, "a@example.com", []string{"b@example.com", "c@example.com"}, strings.NewReader("Subject: x\n\nhi\n"), opts)
	if err != nil {
		t.Fatalf("SendMail: %v\n%s", err, debug.String())
	}
	if res.Delivered() != 1 || res.Refused()["c@example.com"] == nil || !relay.IsTemporary(res.Refused()["c@example.com"]) {
		t.Errorf("result: delivered %d, refused %v", res.Delivered(), res.Refused())
	}
	if err := c.Quit(ctx); err != nil {
		t.Fatalf("Quit: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if !strings.Contains(debug.String(), "send: LHLO client.test") || !strings.Contains(debug.String(), "XHANDOFF-MODE") {
		t.Errorf("transcript:\n%s", debug.String())
	}
	ds := h.deliveries()
	if len(ds) != 1 {
		t.Fatalf("%d deliveries", len(ds))
	}
	want := Envelope{
		From: "a@example.com", To: []string{"b@example.com", "c@example.com"},
		Size: ds[0].env.Size, Return: "HDRS", EnvelopeID: "id+1 x",
		Rcpts: []RcptParams{
			{Notify: []string{"FAILURE", "DELAY"}, ORcpt: "rfc822;B+list@example.com"},
			{Notify: []string{"FAILURE", "DELAY"}},
		},
		Params: map[string]string{"XHANDOFF-MODE": "q"},
	}
	if !reflect.DeepEqual(ds[0].env, want) {
		t.Errorf("envelope\n%+v\nwant\n%+v", ds[0].env, want)
	}
	if string(ds[0].data) != "Subject: x\r\n\r\nhi\r\n" {
		t.Errorf("data %q", ds[0].data)
	}
}
