package tests

import (
	"io"
	"strings"
	"testing"
	"time"
)

// bsSession is an SMTP client on the standard input and output of
// "sendmail -bs", as Symfony Mailer's SendmailTransport is: one command
// at a time, each reply read before the next command.
type bsSession struct {
	t          *testing.T
	p          *proc
	argv       []string
	transcript strings.Builder
}

func startBS(t *testing.T, argv []string, config string) *bsSession {
	t.Helper()
	return &bsSession{t: t, p: start(t, call{argv: argv, config: config}), argv: argv}
}

// reply reads one reply, which must have code, and returns it whole.
func (s *bsSession) reply(code string) string {
	s.t.Helper()
	var reply strings.Builder
	for {
		line, err := s.p.stdout.ReadString('\n')
		s.transcript.WriteString("S: " + line)
		if err != nil {
			s.t.Fatalf("reading the reply: %v\ntranscript:\n%s\nstderr:\n%s", err, s.transcript.String(), s.p.stderr.String())
		}
		if !strings.HasSuffix(line, "\r\n") {
			s.t.Errorf("reply line %q does not end in CRLF", line)
		}
		reply.WriteString(line)
		if len(line) < 4 || line[:3] != code {
			s.t.Fatalf("got %q, want a %s reply\ntranscript:\n%s\nstderr:\n%s", line, code, s.transcript.String(), s.p.stderr.String())
		}
		if line[3] == ' ' {
			return reply.String()
		}
	}
}

// send writes text as it is.
func (s *bsSession) send(text string) {
	s.t.Helper()
	s.transcript.WriteString("C: " + text)
	if _, err := io.WriteString(s.p.stdin, text); err != nil {
		s.t.Fatalf("writing %q: %v", text, err)
	}
}

// cmd sends one command line and reads its reply, which must have code.
func (s *bsSession) cmd(line, code string) string {
	s.t.Helper()
	s.send(line + "\r\n")
	return s.reply(code)
}

// quit ends the session and the process, which must exit 0 with nothing
// more on stdout.
func (s *bsSession) quit() result {
	s.t.Helper()
	s.cmd("QUIT", "221")
	s.p.stdin.Close()
	rest, _ := io.ReadAll(s.p.stdout)
	r := s.p.wait(s.t, string(rest))
	s.t.Logf("%q: exit %d in %v\n%s", s.argv, r.code, r.took.Round(time.Millisecond), s.transcript.String())
	r.wantExit(s.t, 0)
	if r.stdout != "" {
		s.t.Errorf("output after QUIT: %q", r.stdout)
	}
	return r
}

// testSMTPMode sends one message as Symfony does: EHLO, MAIL, RCPT for
// To and Bcc, DATA, the message dot-stuffed with CRLF line ends, ".",
// QUIT; the 250 after the data must come after delivery.
func testSMTPMode(t *testing.T, e *relayEnv, argv []string) {
	marker := newMarker("bs")
	s := startBS(t, argv, e.config)
	s.reply("220")
	ehlo := s.cmd("EHLO [127.0.0.1]", "250")
	for _, ext := range []string{"PIPELINING", "8BITMIME"} {
		if !strings.Contains(ehlo, ext) {
			t.Errorf("EHLO reply lacks %s:\n%s", ext, ehlo)
		}
	}
	s.cmd("MAIL FROM:<alice@example.test>", "250")
	s.cmd("RCPT TO:<bob@example.test>", "250")
	s.cmd("RCPT TO:<carol@example.test>", "250")
	s.cmd("DATA", "354")
	s.send("Message-ID: <" + marker + "@example.test>\r\nDate: Sat, 28 Nov 2026 12:00:00 +0000\r\n" +
		"Subject: Your invoice " + marker + "\r\nFrom: Shop <alice@example.test>\r\nTo: bob@example.test\r\n" +
		"Bcc: carol@example.test\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n" +
		"Content-Transfer-Encoding: quoted-printable\r\n\r\n" +
		"Invoice attached.\r\n..dot-stuffed line\r\n..\r\nTotal: 42 =E2=82=AC\r\n")
	if got := s.cmd(".", "250"); !strings.HasPrefix(got, "250 2.0.0 Ok: delivered") {
		t.Errorf("reply to the data: %q", got)
	}
	r := s.quit()
	if r.stderr != "" {
		t.Errorf("stderr: %q", r.stderr)
	}

	got := e.delivered(t, marker, "bob", "carol")
	fields := []string{"Message-ID: <" + marker + "@example.test>", "Date: Sat, 28 Nov 2026 12:00:00 +0000",
		"Subject: Your invoice " + marker, "From: Shop <alice@example.test>", "To: bob@example.test",
		"MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: quoted-printable"}
	body := "Invoice attached.\n.dot-stuffed line\n.\nTotal: 42 =E2=82=AC\n"
	for u, st := range got {
		st.check(t, u, "alice@example.test", "", fields, body)
		st.checkNoBcc(t, u, "carol@example.test")
	}
}

// testSMTPModeFailures runs one -bs session with three transactions: to
// a recipient Postfix tempfails (451 after the data: the client must
// retry), to an unknown user (554: it must not), and, after RSET, to bob
// (250): a refusal ends the transaction, not the session. Each failed
// recipient gets one line on stderr; the exit status is 0 after QUIT;
// nothing goes to dead.letter, since the client got the replies.
func testSMTPModeFailures(t *testing.T, e *relayEnv) {
	marker := newMarker("bs-fail")
	s := startBS(t, []string{"/usr/sbin/sendmail", "-bs"}, e.config)
	s.reply("220")
	s.cmd("EHLO [127.0.0.1]", "250")
	msg := "Subject: " + marker + "\r\nFrom: alice@example.test\r\n\r\nbody\r\n.\r\n"

	s.cmd("MAIL FROM:<alice@example.test>", "250")
	s.cmd("RCPT TO:<tempfail@example.test>", "250")
	s.cmd("DATA", "354")
	s.send(msg)
	if got := s.reply("451"); !strings.Contains(got, "tempfail@example.test") || !strings.Contains(got, "450 4.2.0") {
		t.Errorf("reply to the data for tempfail: %q", got)
	}

	s.cmd("MAIL FROM:<alice@example.test>", "250")
	s.cmd("RCPT TO:<nosuchuser@example.test>", "250")
	s.cmd("DATA", "354")
	s.send(msg)
	if got := s.reply("554"); !strings.Contains(got, "nosuchuser@example.test") || !strings.Contains(got, "550 5.1.1") {
		t.Errorf("reply to the data for nosuchuser: %q", got)
	}

	s.cmd("RSET", "250")
	s.cmd("MAIL FROM:<alice@example.test>", "250")
	s.cmd("RCPT TO:<bob@example.test>", "250")
	s.cmd("DATA", "354")
	s.send(msg)
	s.reply("250")
	r := s.quit()

	lines := stderrLines(r.stderr)
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "sendmail: tempfail@example.test: ") ||
		!strings.HasPrefix(lines[1], "sendmail: nosuchuser@example.test: ") {
		t.Errorf("stderr, want one line per failed recipient:\n%s", r.stderr)
	}
	if _, _, ok := r.deadLetter(t); ok {
		t.Error("dead.letter written in -bs mode")
	}
	got := e.delivered(t, marker, "bob")
	got["bob"].check(t, "bob", "alice@example.test", "bob@example.test",
		[]string{"Subject: " + marker, "From: alice@example.test", "Date: " + anyDate, "Message-ID: " + anyMsgID}, "body\n")
}
