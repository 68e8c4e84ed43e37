package relay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/handoff-mta/handoff/internal/realserver"
)

// Interoperability with a real Postfix smtpd (STARTTLS, SMTPS, AUTH via
// Dovecot SASL, policy refusals) and a real Dovecot LMTP (Unix socket and
// TCP), each a private instance started by internal/realserver. The tests
// read back what the servers stored.

var interopSeq atomic.Int64

// testMessage returns a unique message with CRLF or LF line endings, and
// the marker that identifies it in a mailbox.
func testMessage(from, to, body string) (msg, marker string) {
	marker = fmt.Sprintf("handoff-interop-%d-%d", time.Now().UnixNano(), interopSeq.Add(1))
	msg = "From: " + from + "\n" +
		"To: " + to + "\n" +
		"Subject: " + marker + "\n" +
		"Message-ID: <" + marker + "@client.test>\n" +
		"Date: Sat, 28 Nov 2026 12:00:00 +0000\n" +
		"\n" + body
	return msg, marker
}

// storedAs turns a message as sent into what Dovecot stores: LF line
// endings, and a final newline.
func storedAs(msg string) string {
	s := strings.ReplaceAll(msg, "\r\n", "\n")
	if !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	return s
}

// findDelivered waits for a message with marker in user's mailbox and
// returns it.
func findDelivered(t *testing.T, d *realserver.Dovecot, user, marker string) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for n := 1; ; n++ {
		for _, m := range d.Messages(t, user) {
			if bytes.Contains(m, []byte(marker)) {
				return string(m)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no message %s for %s; Dovecot log:\n%s", marker, user, d.Log())
		}
		d.WaitMessages(t, user, n)
	}
}

// assertStored checks that the stored message ends with exactly the
// headers and body that were sent (Dovecot prepends its own trace
// headers).
func assertStored(t *testing.T, stored, sent string) {
	t.Helper()
	want := storedAs(sent)
	if !strings.HasSuffix(stored, want) {
		t.Errorf("stored message does not end with what was sent:\n--- stored\n%s\n--- sent\n%s", stored, want)
	}
}

func postfixOpts(p *realserver.Postfix, addr string, mode TLSMode) Options {
	return Options{
		Address:   addr,
		TLS:       mode,
		LocalName: "client.test",
		TLSConfig: TLSOptions{RootCAs: p.CA.Pool, ServerName: realserver.PostfixHostname},
	}
}

func TestInteropPostfix(t *testing.T) {
	realserver.Require(t, "postfix", "dovecot")
	p := realserver.StartPostfix(t, realserver.PostfixOptions{MessageSizeLimit: 200_000})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	alice := Credentials{Username: "alice@example.test", Password: "alicepass"}

	t.Run("STARTTLS and each AUTH mechanism", func(t *testing.T) {
		for _, mech := range []string{"", "SCRAM-SHA-256", "CRAM-MD5", "PLAIN", "LOGIN"} {
			cred := alice
			if mech != "" {
				cred.Mechanisms = []string{mech}
			}
			o := postfixOpts(p, p.Addr, STARTTLSRequired)
			o.Auth = &cred
			c, err := Dial(ctx, o)
			if err != nil {
				t.Fatalf("%q: %v\n%s", mech, err, p.Log())
			}
			if !c.Authenticated() || !strings.HasPrefix(c.TLS(), "TLSv1.") {
				t.Errorf("%q: authenticated=%v tls=%q", mech, c.Authenticated(), c.TLS())
			}
			msg, marker := testMessage("alice@example.test", "bob@example.test", "Mechanism "+mech+"\r\n.leading dot\r\nend\r\n")
			res, err := c.SendMail(ctx, "alice@example.test", []string{"bob@example.test"}, strings.NewReader(msg), nil)
			if err != nil || res.Delivered() != 1 {
				t.Fatalf("%q: SendMail: %v %+v", mech, err, res)
			}
			if err := c.Quit(ctx); err != nil {
				t.Errorf("QUIT: %v", err)
			}
			assertStored(t, findDelivered(t, p.Dovecot, "bob", marker), msg)
		}
	})

	t.Run("next envelope sent ahead", func(t *testing.T) {
		// Three messages on one connection, each one's MAIL, RCPT and
		// DATA pipelined behind the previous one's dot (RFC 2920):
		// Postfix takes all three, and the transcript shows the
		// commands went ahead.
		var tr bytes.Buffer
		o := postfixOpts(p, p.Addr, STARTTLSRequired)
		o.Auth = &alice
		o.Debug = &tr
		c, err := Dial(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		var msgs, markers []string
		for i := range 3 {
			msg, marker := testMessage("alice@example.test", "bob@example.test", fmt.Sprintf("ahead %d\r\n", i))
			msgs, markers = append(msgs, msg), append(markers, marker)
		}
		for i, msg := range msgs {
			so := &SendOptions{Mail: MailOptions{Size: int64(len(msg))}}
			if i+1 < len(msgs) {
				so.Next = &NextMessage{From: "alice@example.test", To: []string{"bob@example.test"}, Options: &SendOptions{Mail: MailOptions{Size: int64(len(msgs[i+1]))}}}
			}
			res, err := c.SendMail(ctx, "alice@example.test", []string{"bob@example.test"}, strings.NewReader(msg), so)
			if err != nil || res.Delivered() != 1 {
				t.Fatalf("message %d: %v %+v\n%s", i, err, res, p.Log())
			}
		}
		if err := c.Quit(ctx); err != nil {
			t.Errorf("QUIT: %v", err)
		}
		if n := strings.Count(tr.String(), "octets\nsend: MAIL FROM:"); n != 2 {
			t.Errorf("%d envelopes went ahead, want 2:\n%s", n, tr.String())
		}
		for i, msg := range msgs {
			assertStored(t, findDelivered(t, p.Dovecot, "bob", markers[i]), msg)
		}
	})

	t.Run("default mechanism is SCRAM-SHA-256", func(t *testing.T) {
		var tr bytes.Buffer
		o := postfixOpts(p, p.Addr, STARTTLSRequired)
		o.Auth = &alice
		o.Debug = &tr
		c, err := Dial(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		c.Quit(ctx)
		if !strings.Contains(tr.String(), "send: AUTH SCRAM-SHA-256") {
			t.Errorf("transcript:\n%s", tr.String())
		}
		if strings.Contains(tr.String(), "alicepass") {
			t.Error("password in transcript")
		}
	})

	t.Run("SMTPS", func(t *testing.T) {
		o := postfixOpts(p, p.SMTPSAddr, ImplicitTLS)
		o.Auth = &alice
		c, err := Dial(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Quit(ctx)
		msg, marker := testMessage("alice@example.test", "bob@example.test", "over SMTPS, no final newline")
		if _, err := c.SendMail(ctx, "alice@example.test", []string{"bob@example.test"}, strings.NewReader(msg), nil); err != nil {
			t.Fatal(err)
		}
		assertStored(t, findDelivered(t, p.Dovecot, "bob", marker), msg)
	})

	t.Run("wrong password", func(t *testing.T) {
		o := postfixOpts(p, p.Addr, STARTTLSRequired)
		o.Auth = &Credentials{Username: "alice@example.test", Password: "wrong", Mechanisms: []string{"PLAIN"}}
		_, err := Dial(ctx, o)
		var se *Error
		if !errors.Is(err, ErrAuthentication) || !errors.As(err, &se) || se.Code != 535 || IsTemporary(err) {
			t.Fatalf("err %v", err)
		}
	})

	t.Run("wrong certificate name", func(t *testing.T) {
		o := postfixOpts(p, p.Addr, STARTTLSRequired)
		o.TLSConfig.ServerName = "other.example.test"
		_, err := Dial(ctx, o)
		if !errors.Is(err, ErrTLS) || !IsTemporary(err) {
			t.Fatalf("err %v", err)
		}
	})

	t.Run("no AUTH before TLS", func(t *testing.T) {
		c, err := Dial(ctx, postfixOpts(p, p.Addr, NoTLS))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Quit(ctx)
		if _, ok := c.Extension("AUTH"); ok {
			t.Error("Postfix offered AUTH in the clear; the harness is not what the test assumes")
		}
		if _, ok := c.Extension("STARTTLS"); !ok {
			t.Error("no STARTTLS")
		}
		// Unauthenticated relaying is refused, as a permanent error.
		_, err = c.SendMail(ctx, "alice@example.test", []string{"someone@elsewhere.test"}, strings.NewReader("x"), nil)
		if !errors.Is(err, ErrRecipientsRefused) || IsTemporary(err) {
			t.Errorf("relay attempt: %v", err)
		}
	})

	t.Run("policy refusals on one connection", func(t *testing.T) {
		o := postfixOpts(p, p.Addr, STARTTLSRequired)
		o.Auth = &alice
		c, err := Dial(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Quit(ctx)

		// A blocked sender: permanent, 554 5.7.1; the connection stays usable.
		_, err = c.SendMail(ctx, realserver.BlockedSender, []string{"bob@example.test"}, strings.NewReader("x"), nil)
		var se *Error
		if !errors.Is(err, ErrSenderRefused) || !errors.As(err, &se) || se.Code/100 != 5 || se.Enhanced != (EnhancedCode{5, 7, 1}) || IsTemporary(err) {
			t.Fatalf("blocked sender: %v", err)
		}

		// A recipient that is deferred, one unknown, one good.
		msg, marker := testMessage("alice@example.test", "bob@example.test", "partial\n")
		res, err := c.SendMail(ctx, "alice@example.test",
			[]string{realserver.TempfailRecipient, "nobody@example.test", "bob@example.test"},
			strings.NewReader(msg), nil)
		if err != nil {
			t.Fatalf("partial: %v", err)
		}
		tf, nb, bob := res.Recipients[0], res.Recipients[1], res.Recipients[2]
		if tf.Err == nil || !IsTemporary(tf.Err) || tf.Reply.Code != 450 {
			t.Errorf("tempfail recipient: %+v", tf)
		}
		if nb.Err == nil || IsTemporary(nb.Err) || nb.Reply.Code != 550 || nb.Reply.Enhanced != (EnhancedCode{5, 1, 1}) {
			t.Errorf("unknown recipient: %+v", nb)
		}
		if bob.Err != nil || !bob.Reply.Positive() {
			t.Errorf("bob: %+v", bob)
		}
		assertStored(t, findDelivered(t, p.Dovecot, "bob", marker), msg)
	})

	t.Run("SIZE, DSN, 8BITMIME, CHUNKING, pipelining", func(t *testing.T) {
		o := postfixOpts(p, p.Addr, STARTTLSRequired)
		o.Auth = &alice
		c, err := Dial(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Quit(ctx)
		for _, ext := range []string{"PIPELINING", "SIZE", "DSN", "8BITMIME", "CHUNKING", "ENHANCEDSTATUSCODES"} {
			if _, ok := c.Extension(ext); !ok {
				t.Errorf("Postfix does not offer %s", ext)
			}
		}
		if n, ok := c.MaxSize(); !ok || n != 200_000 {
			t.Errorf("MaxSize %d %v", n, ok)
		}
		// Too big for the advertised SIZE: refused locally, permanently.
		big := strings.Repeat("0123456789abcdef\n", 20_000)
		_, err = c.SendMail(ctx, "alice@example.test", []string{"bob@example.test"}, strings.NewReader(big), nil)
		var re *Reply
		if re = ReplyOf(err); re == nil || re.Code != 552 || re.Enhanced != (EnhancedCode{5, 3, 4}) || IsTemporary(err) {
			t.Errorf("oversized: %v", err)
		}
		// 8-bit body with DSN parameters, to two recipients, pipelined.
		msg, marker := testMessage("alice@example.test", "alice@example.test, bob@example.test",
			"Grüße aus Köln\r\nline two\r\n")
		res, err := c.SendMail(ctx, "alice@example.test", []string{"alice@example.test", "bob@example.test"}, strings.NewReader(msg),
			&SendOptions{
				Mail:               MailOptions{Body: Body8BitMIME, Return: ReturnHeaders, EnvelopeID: "env+1"},
				Rcpt:               RcptOptions{Notify: []DSNNotify{NotifyFailure, NotifyDelay}},
				OriginalRecipients: map[string]string{"bob@example.test": "Bob@Example.test"},
			})
		if err != nil || res.Delivered() != 2 {
			t.Fatalf("8bit: %v %+v", err, res)
		}
		assertStored(t, findDelivered(t, p.Dovecot, "alice", marker), msg)
		assertStored(t, findDelivered(t, p.Dovecot, "bob", marker), msg)
		// The same over BDAT.
		msg, marker = testMessage("alice@example.test", "bob@example.test", "chunked\n.dot\nlast line")
		if _, err := c.SendMail(ctx, "alice@example.test", []string{"bob@example.test"}, strings.NewReader(msg),
			&SendOptions{Chunking: true, ChunkSize: 64}); err != nil {
			t.Fatalf("BDAT: %v", err)
		}
		assertStored(t, findDelivered(t, p.Dovecot, "bob", marker), msg)
	})
}

func TestInteropDovecotLMTP(t *testing.T) {
	realserver.Require(t, "dovecot")
	d := realserver.StartDovecot(t, realserver.DovecotOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"unix socket", Options{Address: d.LMTPSocket, LMTP: true, LocalName: "client.test"}},
		{"tcp", Options{Address: d.LMTPAddr, LMTP: true, TLS: NoTLS, LocalName: "client.test"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tr bytes.Buffer
			tc.opts.Debug = &tr
			c, err := Dial(ctx, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Quit(ctx)
			if !c.IsLMTP() || !strings.Contains(tr.String(), "send: LHLO client.test") || strings.Contains(tr.String(), "EHLO") {
				t.Errorf("not LHLO:\n%s", tr.String())
			}
			// Two transactions on one connection, each with a refused
			// recipient in the middle.
			for round := 0; round < 2; round++ {
				msg, marker := testMessage("sender@example.org", "alice@example.test, bob@example.test",
					fmt.Sprintf("round %d\n..two dots\n.\nend", round))
				res, err := c.SendMail(ctx, "sender@example.org",
					[]string{"alice@example.test", "nobody@example.test", "bob@example.test"}, strings.NewReader(msg), nil)
				if err != nil {
					t.Fatalf("round %d: %v\n%s", round, err, d.Log())
				}
				if res.Delivered() != 2 || res.Recipients[1].Err == nil || IsTemporary(res.Recipients[1].Err) {
					t.Fatalf("round %d: %+v", round, res.Recipients)
				}
				for _, i := range []int{0, 2} {
					if r := res.Recipients[i].Reply; r == nil || r.Code != 250 {
						t.Errorf("round %d %s: %+v", round, res.Recipients[i].Address, r)
					}
				}
				assertStored(t, findDelivered(t, d, "alice", marker), msg)
				assertStored(t, findDelivered(t, d, "bob", marker), msg)
			}
			// BDAT with LMTP: one reply per recipient after BDAT LAST.
			if _, ok := c.Extension("CHUNKING"); ok {
				msg, marker := testMessage("sender@example.org", "alice@example.test", "chunked lmtp\n")
				res, err := c.SendMail(ctx, "sender@example.org", []string{"alice@example.test", "bob@example.test"},
					strings.NewReader(msg), &SendOptions{Chunking: true, ChunkSize: 16})
				if err != nil || res.Delivered() != 2 {
					t.Fatalf("BDAT: %v %+v", err, res)
				}
				assertStored(t, findDelivered(t, d, "alice", marker), msg)
				assertStored(t, findDelivered(t, d, "bob", marker), msg)
			} else {
				t.Errorf("Dovecot %s LMTP does not offer CHUNKING", d.Version)
			}
		})
	}
}
