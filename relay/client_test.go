package relay

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

var bg = context.Background()

// A plain lock-step transaction: exact bytes on the wire, SIZE from the
// reader, QUIT.
func TestSendMailLockStepTranscript(t *testing.T) {
	f := startFake(t, func(s *session) {
		if !s.greetEHLO("SIZE 1000", "8BITMIME") {
			return
		}
		s.expect("MAIL FROM:<john@example.org> SIZE=14")
		s.send("250 2.1.0 ok")
		s.expect("RCPT TO:<sally@example.net>")
		s.send("250 2.1.5 ok")
		s.expect("DATA")
		s.send("354 go on")
		s.data()
		s.send("250 2.0.0 queued as ABC")
		s.quit()
	})
	c := dialFake(t, f, plainOpts(f))
	res, err := c.SendMail(bg, "john@example.org", []string{"sally@example.net"}, strings.NewReader("A test message"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(bg); err != nil {
		t.Fatal(err)
	}
	want := "EHLO client.test\r\n" +
		"MAIL FROM:<john@example.org> SIZE=14\r\n" +
		"RCPT TO:<sally@example.net>\r\n" +
		"DATA\r\n" +
		"A test message\r\n.\r\n" +
		"QUIT\r\n"
	if got := f.received(); got != want {
		t.Errorf("wire:\n%q\nwant\n%q", got, want)
	}
	if res.Reply == nil || res.Reply.Text() != "queued as ABC" || res.Reply.Enhanced != (EnhancedCode{2, 0, 0}) {
		t.Errorf("end reply %+v", res.Reply)
	}
	if len(res.Refused()) != 0 || res.Delivered() != 1 || res.Transactions != 1 {
		t.Errorf("result %+v", res)
	}
}

// PIPELINING: MAIL, both RCPTs and DATA go out in one write; one
// recipient refused, the other gets the message (RFC 2920 §3.1).
func TestSendMailPipelinedPartialRefusal(t *testing.T) {
	f := startFake(t, func(s *session) {
		if !s.greetEHLO("PIPELINING") {
			return
		}
		// Read the whole group before answering anything: a client that
		// waited for the MAIL reply would deadlock here and time out.
		s.expect("MAIL FROM:<a@x.test>")
		s.expect("RCPT TO:<b@y.test>")
		s.expect("RCPT TO:<c@y.test>")
		s.expect("DATA")
		s.send("250 ok", "550 5.1.1 no such user", "250 ok", "354 go")
		if got := s.data(); got != "..dot\r\nline\r\n" {
			s.t.Errorf("data %q", got)
		}
		s.send("250 ok")
	})
	c := dialFake(t, f, plainOpts(f))
	res, err := c.SendMail(bg, "a@x.test", []string{"b@y.test", "c@y.test"}, strings.NewReader(".dot\nline"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ref := res.Refused()
	if len(ref) != 1 {
		t.Fatalf("refused %v", ref)
	}
	var se *Error
	if !errors.As(ref["b@y.test"], &se) || se.Code != 550 || se.Enhanced != (EnhancedCode{5, 1, 1}) || se.Text() != "no such user" {
		t.Errorf("refusal %#v", ref["b@y.test"])
	}
	if !errors.Is(ref["b@y.test"], ErrRecipientsRefused) || IsTemporary(ref["b@y.test"]) {
		t.Errorf("classification of %v", ref["b@y.test"])
	}
	f.wait()
}

// Every recipient refused while DATA was pipelined and the server still
// said 354: the client sends a lone dot, then RSET (RFC 2920 §3.1).
func TestPipelinedAllRefusedData354(t *testing.T) {
	f := startFake(t, func(s *session) {
		if !s.greetEHLO("PIPELINING") {
			return
		}
		s.expect("MAIL FROM:<a@x.test>")
		s.expect("RCPT TO:<b@y.test>")
		s.expect("DATA")
		s.send("250 ok", "550 5.1.1 unknown", "354 go (broken server)")
		s.expect(".")
		s.send("554 5.5.1 no valid recipients")
		s.expect("RSET")
		s.send("250 ok")
	})
	c := dialFake(t, f, plainOpts(f))
	res, err := c.SendMail(bg, "a@x.test", []string{"b@y.test"}, strings.NewReader("x"), nil)
	var re *RecipientsError
	if !errors.As(err, &re) || !errors.Is(err, ErrRecipientsRefused) {
		t.Fatalf("err %v", err)
	}
	if IsTemporary(err) {
		t.Error("all-5xx refusal should be permanent")
	}
	if res == nil || res.Delivered() != 0 {
		t.Errorf("res %+v", res)
	}
	f.wait()
}

// Without PIPELINING the client waits for each reply, sends no DATA when
// every recipient was refused, and resets.
func TestLockStepAllRefused(t *testing.T) {
	f := startFake(t, func(s *session) {
		if !s.greetEHLO("8BITMIME") {
			return
		}
		s.expect("MAIL FROM:<a@x.test>")
		s.send("250 ok")
		s.expect("RCPT TO:<b@y.test>")
		s.send("450 4.2.0 later")
		s.expect("RCPT TO:<c@y.test>")
		s.send("550 5.1.1 unknown")
		s.expect("RSET")
		s.send("250 ok")
		s.quit()
	})
	c := dialFake(t, f, plainOpts(f))
	_, err := c.SendMail(bg, "a@x.test", []string{"b@y.test", "c@y.test"}, strings.NewReader("x"), nil)
	var re *RecipientsError
	if !errors.As(err, &re) || len(re.Refused()) != 2 {
		t.Fatalf("err %v", err)
	}
	if !IsTemporary(err) {
		t.Error("a refusal with one 4xx recipient should be temporary")
	}
	c.Quit(bg)
	if got := f.received(); strings.Contains(got, "DATA") {
		t.Errorf("DATA sent with no recipient: %q", got)
	}
}

// EHLO refused with 502: HELO, and no ESMTP parameters afterwards.
func TestHeloFallback(t *testing.T) {
	f := startFake(t, func(s *session) {
		s.send("220 old.test")
		s.expect("EHLO client.test")
		s.send("502 5.5.1 what?")
		s.expect("HELO client.test")
		s.send("250 old.test")
		s.expect("MAIL FROM:<a@x.test>")
		s.send("250 ok")
		s.expect("RCPT TO:<b@y.test>")
		s.send("250 ok")
		s.expect("DATA")
		s.send("354 go")
		s.data()
		s.send("250 ok")
	})
	c := dialFake(t, f, plainOpts(f))
	_, err := c.SendMail(bg, "a@x.test", []string{"b@y.test"}, strings.NewReader("x"), &SendOptions{Mail: MailOptions{Body: Body7Bit, Return: ReturnHeaders}})
	if err != nil {
		t.Fatal(err)
	}
	if c.ESMTP() {
		t.Error("ESMTP after HELO fallback")
	}
	f.wait()
}

// A 421 to EHLO is not a reason to try HELO: it is a temporary ErrHelo
// and the connection is closed.
func TestEhlo421NoFallback(t *testing.T) {
	f := startFake(t, func(s *session) {
		s.send("220 busy.test")
		s.expect("EHLO client.test")
		s.send("421 4.3.2 shutting down")
		s.line() // must be EOF
		if !s.failed {
			s.t.Error("client sent more after 421")
		}
	})
	_, err := Dial(bg, plainOpts(f))
	if !errors.Is(err, ErrHelo) || !IsTemporary(err) {
		t.Fatalf("err %v", err)
	}
	f.wait()
}

func TestGreetingRefused(t *testing.T) {
	for _, tc := range []struct {
		greeting  string
		temporary bool
	}{
		{"554 5.3.2 no service", false},
		{"421 4.3.2 try later", true},
		{"199 no hello for you!", true}, // malformed: protocol error
	} {
		f := startFake(t, func(s *session) { s.send(tc.greeting) })
		_, err := Dial(bg, plainOpts(f))
		if err == nil {
			t.Fatalf("%s: no error", tc.greeting)
		}
		if IsTemporary(err) != tc.temporary {
			t.Errorf("%s: temporary=%v, err %v", tc.greeting, IsTemporary(err), err)
		}
		if tc.greeting[0] != '1' && !errors.Is(err, ErrConnect) {
			t.Errorf("%s: not ErrConnect: %v", tc.greeting, err)
		}
		f.wait()
	}
}

// LMTP: one reply per accepted recipient after the dot, duplicates
// included; a second transaction on the same connection reads exactly
// as many replies as it accepted (gh-76984, go-smtp PR #308).
func TestLMTPPerRecipient(t *testing.T) {
	f := startFake(t, func(s *session) {
		s.send("220 lmtp.test LMTP")
		s.expect("LHLO client.test")
		s.ehloReply("PIPELINING", "ENHANCEDSTATUSCODES")
		s.expect("MAIL FROM:<a@x.test>")
		s.expect("RCPT TO:<b@y.test>")
		s.expect("RCPT TO:<c@y.test>")
		s.expect("RCPT TO:<b@y.test>")
		s.expect("RCPT TO:<d@y.test>")
		s.expect("DATA")
		s.send("250 ok", "250 ok", "250 ok", "250 ok", "550 5.1.1 unknown", "354 go")
		s.data()
		s.send("250 2.1.5 b delivered", "452 4.2.2 c over quota", "250 2.1.5 b again")
		s.expect("RSET")
		s.send("250 ok")
		// Second transaction: one recipient, one reply.
		s.expect("MAIL FROM:<a@x.test>")
		s.expect("RCPT TO:<c@y.test>")
		s.expect("DATA")
		s.send("250 ok", "250 ok", "354 go")
		s.data()
		s.send("250 2.1.5 c delivered")
		s.expect("NOOP")
		s.send("250 ok")
	})
	o := plainOpts(f)
	o.LMTP = true
	c := dialFake(t, f, o)
	res, err := c.SendMail(bg, "a@x.test", []string{"b@y.test", "c@y.test", "b@y.test", "d@y.test"}, strings.NewReader("hi\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := []string{}
	for _, r := range res.Recipients {
		s := r.Address + ":"
		if r.Reply != nil {
			s += r.Reply.String()
		}
		s += ":" + map[bool]string{true: "temp", false: "perm"}[IsTemporary(r.Err)]
		if r.Err == nil {
			s += "-ok"
		}
		got = append(got, s)
	}
	want := []string{
		"b@y.test:250 2.1.5 b delivered:perm-ok",
		"c@y.test:452 4.2.2 c over quota:temp",
		"b@y.test:250 2.1.5 b again:perm-ok",
		"d@y.test:550 5.1.1 unknown:perm",
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got  %v\nwant %v", got, want)
	}
	if !errors.Is(res.Recipients[1].Err, ErrData) {
		t.Errorf("over-quota error should be ErrData: %v", res.Recipients[1].Err)
	}
	res, err = c.SendMail(bg, "a@x.test", []string{"c@y.test"}, strings.NewReader("again\n"), nil)
	if err != nil || res.Delivered() != 1 {
		t.Fatalf("second: %v %+v", err, res)
	}
	if _, err := c.Noop(bg); err != nil {
		t.Fatal(err)
	}
	f.wait()
}

// A server that sends data after its 220 to STARTTLS is injecting
// plaintext into the TLS session (CVE-2021-38371): abort.
func TestStartTLSInjection(t *testing.T) {
	f := startFake(t, func(s *session) {
		if !s.greetEHLO("STARTTLS") {
			return
		}
		s.expect("STARTTLS")
		s.raw("220 go ahead\r\n250 injected\r\n")
		s.line()
	})
	_, err := Dial(bg, Options{Address: f.addr, TLS: STARTTLSRequired})
	if !errors.Is(err, ErrProtocol) || !errors.Is(err, ErrTLS) {
		t.Fatalf("err %v", err)
	}
	f.wait()
}

// STARTTLS required but not offered, or answered 454: nothing else is
// sent (no MAIL, no AUTH) and the error says so.
func TestStartTLSRequiredFailsClosed(t *testing.T) {
	t.Run("not offered", func(t *testing.T) {
		f := startFake(t, func(s *session) {
			if !s.greetEHLO("AUTH PLAIN") {
				return
			}
			s.quit()
		})
		_, err := Dial(bg, Options{Address: f.addr, Auth: &Credentials{Username: "u", Password: "p"}})
		if !errors.Is(err, ErrNotSupported) || IsTemporary(err) {
			t.Fatalf("err %v", err)
		}
		if got := f.received(); strings.Contains(got, "AUTH") {
			t.Errorf("sent AUTH in the clear: %q", got)
		}
	})
	t.Run("454", func(t *testing.T) {
		f := startFake(t, func(s *session) {
			if !s.greetEHLO("STARTTLS", "AUTH PLAIN") {
				return
			}
			s.expect("STARTTLS")
			s.send("454 4.7.0 TLS not available")
			s.quit()
		})
		_, err := Dial(bg, Options{Address: f.addr, Auth: &Credentials{Username: "u", Password: "p"}})
		if !errors.Is(err, ErrTLS) || !IsTemporary(err) {
			t.Fatalf("err %v", err)
		}
		if got := f.received(); strings.Contains(got, "AUTH") || strings.Contains(got, "MAIL") {
			t.Errorf("sent more after a failed STARTTLS: %q", got)
		}
	})
}

// A server that stops answering after the final dot: the error is
// "outcome unknown", temporary, and not a plain disconnect.
func TestTimeoutAfterFinalDot(t *testing.T) {
	release := make(chan struct{})
	f := startFake(t, func(s *session) {
		if !s.greetEHLO() {
			return
		}
		s.expect("MAIL FROM:<a@x.test>")
		s.send("250 ok")
		s.expect("RCPT TO:<b@y.test>")
		s.send("250 ok")
		s.expect("DATA")
		s.send("354 go")
		s.data()
		<-release
	})
	defer close(release)
	o := plainOpts(f)
	o.Timeouts.DataDone = 200 * time.Millisecond
	c := dialFake(t, f, o)
	_, err := c.SendMail(bg, "a@x.test", []string{"b@y.test"}, strings.NewReader("x"), nil)
	if !errors.Is(err, ErrOutcomeUnknown) || !errors.Is(err, ErrServerDisconnected) || !IsTemporary(err) {
		t.Fatalf("err %v", err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("not a timeout: %v", err)
	}
}

// Each stage has its own deadline: a silent server after MAIL trips the
// MAIL timeout, not the (longer) others.
func TestStageTimeout(t *testing.T) {
	release := make(chan struct{})
	f := startFake(t, func(s *session) {
		if !s.greetEHLO() {
			return
		}
		s.expect("MAIL FROM:<a@x.test>")
		<-release
	})
	defer close(release)
	o := plainOpts(f)
	o.Timeouts.Mail = 100 * time.Millisecond
	c := dialFake(t, f, o)
	start := time.Now()
	_, err := c.Mail(bg, "a@x.test", nil)
	if !errors.Is(err, ErrServerDisconnected) || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("err %v", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("took %v", el)
	}
	if _, err := c.Noop(bg); !errors.Is(err, ErrServerDisconnected) {
		t.Errorf("client usable after a timeout: %v", err)
	}
}

// Cancelling the context interrupts a command at once.
func TestContextCancel(t *testing.T) {
	release := make(chan struct{})
	f := startFake(t, func(s *session) {
		if !s.greetEHLO() {
			return
		}
		s.expect("NOOP")
		<-release
	})
	defer close(release)
	c := dialFake(t, f, plainOpts(f))
	ctx, cancel := context.WithCancel(bg)
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := c.Noop(ctx)
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrServerDisconnected) {
		t.Fatalf("err %v", err)
	}
}

// CR or LF in any argument is refused before anything is written
// (bpo-43124).
func TestNoCRLFInjection(t *testing.T) {
	f := startFake(t, func(s *session) {
		if !s.greetEHLO("DSN") {
			return
		}
		s.expect("NOOP")
		s.send("250 ok")
	})
	c := dialFake(t, f, plainOpts(f))
	bad := []func() error{
		func() error { _, err := c.Docmd(bg, "helo\nX-INJECTED"); return err },
		func() error { _, err := c.Mail(bg, "a@x\r\nRCPT TO:<evil>", nil); return err },
		func() error { _, err := c.Rcpt(bg, "b@y\nDATA", nil); return err },
		func() error { _, err := c.Verify(bg, "a\rb"); return err },
		func() error {
			_, err := c.Mail(bg, "a@x", &MailOptions{EnvelopeID: "x\r\ny"})
			return err
		},
		func() error {
			_, err := c.SendMail(bg, "a@x", []string{"b@y"}, strings.NewReader(""), &SendOptions{OriginalRecipients: map[string]string{"b@y": "z\nQUIT"}})
			return err
		},
		func() error { _, err := c.Docmd(bg, "NOOP\x00"); return err },
	}
	for i, fn := range bad {
		if err := fn(); !errors.Is(err, ErrInvalidArgument) || IsTemporary(err) {
			t.Errorf("case %d: err %v", i, err)
		}
	}
	if _, err := c.Noop(bg); err != nil {
		t.Fatal(err)
	}
	c.Close()
	got := f.received()
	for _, w := range []string{"INJECTED", "evil", "DATA", "QUIT", "\x00"} {
		if strings.Contains(got, w) {
			t.Errorf("%q reached the server: %q", w, got)
		}
	}
}

// The debug transcript shows every line both ways, with AUTH payloads
// redacted.
func TestDebugTranscriptRedactsAuth(t *testing.T) {
	f := startFake(t, func(s *session) {
		if !s.greetEHLO("AUTH PLAIN LOGIN") {
			return
		}
		s.expect("AUTH PLAIN AHUAc2VjcmV0cGFzcw==")
		s.send("235 2.7.0 ok")
		s.quit()
	})
	var buf bytes.Buffer
	o := plainOpts(f)
	o.Debug = &buf
	o.Auth = &Credentials{Username: "u", Password: "secretpass", Mechanisms: []string{"PLAIN"}}
	c := dialFake(t, f, o)
	c.Quit(bg)
	f.wait()
	out := buf.String()
	for _, w := range []string{"connect: tcp ", "send: EHLO client.test", "reply: 250-fake.test", "send: AUTH PLAIN <redacted>", "reply: 235 2.7.0 ok", "send: QUIT"} {
		if !strings.Contains(out, w) {
			t.Errorf("transcript lacks %q:\n%s", w, out)
		}
	}
	if strings.Contains(out, "AHUAc2VjcmV0cGFzcw") || strings.Contains(out, "secretpass") {
		t.Errorf("secret in transcript:\n%s", out)
	}
}

// Credentials are not sent over a plain connection to a host that is not
// loopback.
func TestNoAuthInClearToRemote(t *testing.T) {
	f := startFake(t, func(s *session) {
		if !s.greetEHLO("AUTH PLAIN") {
			return
		}
		s.expect("QUIT")
		s.send("221 bye")
	})
	o := plainOpts(f)
	o.Dialer = func(ctx context.Context, n, a string) (net.Conn, error) {
		c, err := net.Dial("tcp", f.addr)
		return remoteConn{c}, err
	}
	c := dialFake(t, f, o)
	err := c.Login(bg, Credentials{Username: "u", Password: "p"})
	if !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("err %v", err)
	}
	c.Quit(bg)
	if strings.Contains(f.received(), "AUTH") {
		t.Error("AUTH sent in the clear")
	}
}

type remoteConn struct{ net.Conn }

func (remoteConn) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 25} }

// io.Reader failing mid-message: the connection is closed without the
// final dot, so a truncated message is never delivered.
func TestReaderErrorNeverEndsData(t *testing.T) {
	f := startFake(t, func(s *session) {
		if !s.greetEHLO() {
			return
		}
		s.expect("MAIL FROM:<a@x.test>")
		s.send("250 ok")
		s.expect("RCPT TO:<b@y.test>")
		s.send("250 ok")
		s.expect("DATA")
		s.send("354 go")
		s.data()
		if !s.failed {
			s.t.Error("client ended the data of a message it could not read")
		}
	})
	c := dialFake(t, f, plainOpts(f))
	r := io.MultiReader(strings.NewReader("partial line\n"), errReader{})
	_, err := c.SendMail(bg, "a@x.test", []string{"b@y.test"}, r, nil)
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("err %v", err)
	}
	f.wait()
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("boom") }

// IPv6: "[::1]:port" and a bare "::1" with the port split off by
// smtplib's rule (one colon only) are handled.
func TestDialIPv6(t *testing.T) {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Fatalf("this machine has no IPv6 loopback: %v", err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.Write([]byte("220 v6.test\r\n"))
		buf := make([]byte, 512)
		c.Read(buf) // EHLO
		c.Write([]byte("250 v6.test\r\n"))
		c.Read(buf) // QUIT
		c.Write([]byte("221 bye\r\n"))
	}()
	c, err := Dial(bg, Options{Address: ln.Addr().String(), TLS: NoTLS})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(c.LocalName(), "[IPv6:") && !strings.Contains(c.LocalName(), ".") {
		t.Errorf("local name %q is neither a FQDN nor an IPv6 literal", c.LocalName())
	}
	if err := c.Quit(bg); err != nil {
		t.Fatal(err)
	}
}

// SourceAddr binds the local side (smtplib's source_address).
func TestDialSourceAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		peer <- c.RemoteAddr().(*net.TCPAddr).IP.String()
		c.Write([]byte("220 x\r\n"))
		buf := make([]byte, 512)
		c.Read(buf)
		c.Write([]byte("250 x\r\n"))
	}()
	c, err := Dial(bg, Options{Address: ln.Addr().String(), TLS: NoTLS, SourceAddr: "127.0.0.2"})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if got := <-peer; got != "127.0.0.2" {
		t.Errorf("server saw %s, want 127.0.0.2", got)
	}
	if _, err := Dial(bg, Options{Address: ln.Addr().String(), TLS: NoTLS, SourceAddr: "not an address"}); !errors.Is(err, ErrConnect) {
		t.Errorf("bad source address: %v", err)
	}
}

// Debug level 2 puts a timestamp before each transcript line.
func TestDebugLevel2Timestamps(t *testing.T) {
	f := startFake(t, func(s *session) {
		if s.greetEHLO() {
			s.quit()
		}
	})
	var buf bytes.Buffer
	o := plainOpts(f)
	o.Debug, o.DebugLevel = &buf, 2
	c := dialFake(t, f, o)
	c.Quit(bg)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) < 5 {
		t.Fatalf("transcript:\n%s", buf.String())
	}
	for _, l := range lines {
		if len(l) < 16 || l[2] != ':' || l[5] != ':' || l[8] != '.' || l[15] != ' ' {
			t.Errorf("line without a timestamp: %q", l)
		}
	}
}

// ParseURL maps relay URLs onto Options.
func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		url     string
		addr    string
		network string
		lmtp    bool
		mode    TLSMode
		bad     bool
	}{
		{url: "smtp://mail.example.com", addr: "mail.example.com"},
		{url: "smtp://mail.example.com:2525/", addr: "mail.example.com:2525"},
		{url: "submission://mail.example.com", addr: "mail.example.com:587"},
		{url: "submission://[2001:db8::1]", addr: "[2001:db8::1]:587"},
		{url: "smtps://mail.example.com", addr: "mail.example.com", mode: ImplicitTLS},
		{url: "SMTPS://[::1]:4650", addr: "[::1]:4650", mode: ImplicitTLS},
		{url: "lmtp://127.0.0.1:24", addr: "127.0.0.1:24", lmtp: true},
		{url: "lmtp:///run/dovecot/lmtp", addr: "/run/dovecot/lmtp", network: "unix", lmtp: true},
		{url: "mail.example.com", bad: true},
		{url: "http://x", bad: true},
		{url: "smtp://user:pw@x", bad: true},
		{url: "smtp://x:bogus", bad: true},
		{url: "smtp://x/path", bad: true},
		{url: "smtp://", bad: true},
	} {
		o, err := ParseURL(tc.url)
		if tc.bad {
			if !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("%s: err %v", tc.url, err)
			}
			continue
		}
		if err != nil || o.Address != tc.addr || o.Network != tc.network || o.LMTP != tc.lmtp || o.TLS != tc.mode {
			t.Errorf("%s: %+v %v", tc.url, o, err)
		}
	}
}

// An OAuth2 token refused: the server's JSON error comes in a 334, the
// client answers with an empty line, and the 535 error carries the JSON.
func TestXOAUTH2RefusedReportsServerError(t *testing.T) {
	const js = `{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}`
	f := startFake(t, func(s *session) {
		if !s.greetEHLO("AUTH XOAUTH2 OAUTHBEARER PLAIN") {
			return
		}
		// With a token, OAUTHBEARER is preferred; it is refused as
		// unknown here so the client moves on to XOAUTH2.
		s.expectPrefix("AUTH OAUTHBEARER ")
		s.send("504 5.5.4 unrecognized mechanism")
		s.expect("AUTH XOAUTH2 dXNlcj1tZUBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB0b2sBAQ==")
		s.send("334 eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIiwic2NvcGUiOiJodHRwczovL21haWwuZ29vZ2xlLmNvbS8ifQ==")
		s.expect("")
		s.send("535 5.7.8 Username and Password not accepted")
	})
	o := plainOpts(f)
	o.Auth = &Credentials{Username: "me@example.com", Token: "tok"}
	_, err := Dial(bg, o)
	var se *Error
	if !errors.Is(err, ErrAuthentication) || !errors.As(err, &se) || se.Code != 535 || IsTemporary(err) {
		t.Fatalf("err %v", err)
	}
	if !strings.Contains(err.Error(), js) {
		t.Errorf("error lacks the server's JSON: %v", err)
	}
	f.wait()
}

// MailOptions.Extra: each parameter goes out as given, in order, after
// the ones MailOptions sends itself, whether or not the server
// advertises it, from SendMail and from Mail alike.
func TestMailExtraParameters(t *testing.T) {
	extra := []string{"XHANDOFF-MODE=queue", "X-FLAG", "MT-PRIORITY=-3", "XID=a+2Bb<c>"}
	const mail = "MAIL FROM:<a@x.test> SIZE=3 BODY=8BITMIME RET=HDRS XHANDOFF-MODE=queue X-FLAG MT-PRIORITY=-3 XID=a+2Bb<c>"
	f := startFake(t, func(s *session) {
		if !s.greetEHLO("SIZE 1000", "8BITMIME", "DSN") {
			return
		}
		slTxn(s, mail, "RCPT TO:<b@y.test>")
		if s.expect("MAIL FROM:<> X-FLAG") {
			s.send("250 2.1.0 ok")
		}
		s.quit()
	})
	c := dialFake(t, f, plainOpts(f))
	opts := &SendOptions{Mail: MailOptions{Body: Body8BitMIME, Return: ReturnHeaders, Extra: extra}}
	if _, err := c.SendMail(bg, "a@x.test", []string{"b@y.test"}, strings.NewReader("x\r\n"), opts); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Mail(bg, "", &MailOptions{Extra: []string{"X-FLAG"}}); err != nil {
		t.Fatal(err)
	}
	c.Quit(bg)
	want := "EHLO client.test\r\n" + mail + "\r\nRCPT TO:<b@y.test>\r\nDATA\r\nx\r\n.\r\nMAIL FROM:<> X-FLAG\r\nQUIT\r\n"
	if got := f.received(); got != want {
		t.Errorf("wire:\n%q\nwant\n%q", got, want)
	}
	if len(opts.Mail.Extra) != len(extra) || opts.Mail.Extra[0] != extra[0] {
		t.Errorf("caller's Extra changed: %q", opts.Mail.Extra)
	}
}

// An Extra "SMTPUTF8" starts an SMTPUTF8 transaction, so Rcpt may send a
// UTF-8 address afterwards; a keyword that only starts with SMTPUTF8
// does not.
func TestMailExtraSMTPUTF8(t *testing.T) {
	f := startFake(t, func(s *session) {
		if !s.greetEHLO("SMTPUTF8") {
			return
		}
		if s.expect("MAIL FROM:<a@x.test> smtputf8") {
			s.send("250 2.1.0 ok")
		}
		if s.expect("RCPT TO:<bé@y.test>") {
			s.send("250 2.1.5 ok")
		}
		if s.expect("RSET") {
			s.send("250 2.0.0 ok")
		}
		if s.expect("MAIL FROM:<a@x.test> SMTPUTF8X") {
			s.send("250 2.1.0 ok")
		}
		s.quit()
	})
	c := dialFake(t, f, plainOpts(f))
	if _, err := c.Mail(bg, "a@x.test", &MailOptions{Extra: []string{"smtputf8"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Rcpt(bg, "bé@y.test", nil); err != nil {
		t.Fatalf("Rcpt after an Extra SMTPUTF8: %v", err)
	}
	if _, err := c.Reset(bg); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Mail(bg, "a@x.test", &MailOptions{Extra: []string{"SMTPUTF8X"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Rcpt(bg, "bé@y.test", nil); !errors.Is(err, ErrNotSupported) {
		t.Errorf("Rcpt of a UTF-8 address without SMTPUTF8: %v, want ErrNotSupported", err)
	}
	c.Quit(bg)
	f.wait()
}

// A malformed Extra parameter is refused with ErrInvalidArgument, by Mail
// and SendMail, before anything is sent; after a HELO fallback any Extra
// is refused with ErrNotSupported rather than dropped.
func TestMailExtraRefused(t *testing.T) {
	bad := []string{
		"",
		"=v",
		"-X",
		"X_Y",
		"KEY WORD",
		"KÉY",
		"K=",
		"K=a b",
		"K=a\rb",
		"K=a\nRCPT TO:<evil@x>",
		"K=a\x00",
		"K=a=b",
		"K=a\tb",
		"K=\x7f",
		"K=é",
	}
	f := startFake(t, func(s *session) {
		if !s.greetEHLO("DSN", "SMTPUTF8") {
			return
		}
		if s.expect("NOOP") {
			s.send("250 2.0.0 ok")
		}
	})
	c := dialFake(t, f, plainOpts(f))
	for _, p := range bad {
		mo := MailOptions{Extra: []string{"X-GOOD", p}}
		_, err := c.Mail(bg, "a@x.test", &mo)
		if !errors.Is(err, ErrInvalidArgument) || IsTemporary(err) {
			t.Errorf("Mail with %q: %v, want a permanent ErrInvalidArgument", p, err)
		}
		_, err = c.SendMail(bg, "a@x.test", []string{"b@y.test"}, strings.NewReader("x\r\n"), &SendOptions{Mail: mo})
		if !errors.Is(err, ErrInvalidArgument) || IsTemporary(err) {
			t.Errorf("SendMail with %q: %v, want a permanent ErrInvalidArgument", p, err)
		}
	}
	if _, err := c.Noop(bg); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if got, want := f.received(), "EHLO client.test\r\nNOOP\r\n"; got != want {
		t.Errorf("wire %q, want %q", got, want)
	}

	f = startFake(t, func(s *session) {
		s.send("220 old.test")
		s.expect("EHLO client.test")
		s.send("502 5.5.1 what?")
		s.expect("HELO client.test")
		s.send("250 old.test")
		s.quit()
	})
	c = dialFake(t, f, plainOpts(f))
	_, err := c.SendMail(bg, "a@x.test", []string{"b@y.test"}, strings.NewReader("x\r\n"), &SendOptions{Mail: MailOptions{Extra: []string{"X-FLAG"}}})
	if !errors.Is(err, ErrNotSupported) || IsTemporary(err) {
		t.Errorf("SendMail with Extra after HELO: %v, want a permanent ErrNotSupported", err)
	}
	_, err = c.Mail(bg, "a@x.test", &MailOptions{Extra: []string{"K=a b"}})
	if !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Mail with a bad Extra after HELO: %v, want ErrInvalidArgument", err)
	}
	c.Quit(bg)
	if got, want := f.received(), "EHLO client.test\r\nHELO client.test\r\nQUIT\r\n"; got != want {
		t.Errorf("wire %q, want %q", got, want)
	}
}

// Hangup sends QUIT and closes without waiting for the 221: a server
// that answers QUIT only after two seconds does not hold the client up,
// and sees QUIT then end of file.
func TestHangupDoesNotWaitForQuitReply(t *testing.T) {
	eof := make(chan bool, 1)
	f := startFake(t, func(s *session) {
		if !s.greetEHLO() {
			return
		}
		s.expect("QUIT")
		time.Sleep(2 * time.Second)
		s.send("221 2.0.0 bye")
		_, err := s.br.ReadByte()
		eof <- err != nil
	})
	c := dialFake(t, f, plainOpts(f))
	start := time.Now()
	c.Hangup(bg)
	if d := time.Since(start); d > time.Second {
		t.Errorf("Hangup took %v: it waited for the reply", d)
	}
	if _, err := c.Noop(bg); !errors.Is(err, ErrServerDisconnected) {
		t.Errorf("after Hangup, NOOP: %v, want ErrServerDisconnected", err)
	}
	f.wait()
	if !<-eof {
		t.Error("the server could still read after QUIT")
	}
	if got, want := f.received(), "EHLO client.test\r\nQUIT\r\n"; got != want {
		t.Errorf("wire %q, want %q", got, want)
	}
	c.Hangup(bg) // a second Hangup is harmless
}
