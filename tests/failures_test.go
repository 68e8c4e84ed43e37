package tests

import (
	"encoding/base64"
	"regexp"
	"strings"
	"testing"

	"github.com/handoff-mta/handoff/internal/realserver"
)

// failCase is a message the real Postfix refuses, or cannot be given.
type failCase struct {
	name string
	argv []string
	// sender is the envelope sender (-f); "" means root's address.
	sender string
	// config returns the HANDOFF_CONFIG to use; nil means the relay's.
	config func(t *testing.T, e *relayEnv) string
	// exit is the sysexits status internal/cli/exit.go gives the
	// failure.
	exit int
	// failed are the recipients that must each get one line on stderr
	// holding reply (the server's refusal or the connection error).
	failed []string
	reply  string
	// delivered are the users that got the message anyway; with none,
	// the whole message must be in dead.letter.
	delivered []string
	// postfixLog is a line Postfix must have logged (its refusal).
	postfixLog []string
	// secret must appear nowhere in the output.
	secret string
}

// failMessage is what the failure cases send: no Date, Message-ID or
// From, so dead.letter shows them added, and a lone dot kept by -i.
func failMessage(marker string) string {
	return "To: someone\nSubject: " + marker + "\n\nfirst line\n.\nFrom here on, an mbox From_ quote\nlast line\n"
}

// TestFailures makes the real Postfix refuse messages in each way a relay
// does, and checks the exit status (internal/cli/exit.go's mapping), one
// line on stderr per failed recipient (and one saying where the message
// was saved), no stack trace, and ~/dead.letter holding the whole
// message.
func TestFailures(t *testing.T) {
	e := startRelay(t)
	cases := []failCase{
		{
			// 554 5.7.1 at MAIL FROM: permanent, not a "no such user":
			// EX_UNAVAILABLE. Both recipients fail with the same reply.
			name:       "blocked_sender",
			argv:       []string{"/usr/sbin/sendmail", "-i", "-f", realserver.BlockedSender, "--", "bob@example.test", "alice@example.test"},
			sender:     realserver.BlockedSender,
			exit:       69,
			failed:     []string{"bob@example.test", "alice@example.test"},
			reply:      "554 5.7.1 <blocked@example.test>: Sender address rejected: sender blocked",
			postfixLog: []string{"NOQUEUE: reject: MAIL from", "554 5.7.1 <blocked@example.test>"},
		},
		{
			// 450 at RCPT TO: temporary, nothing queued (queue.mode
			// "never"): EX_TEMPFAIL, and the message is kept.
			name:       "tempfail_recipient",
			argv:       []string{"/usr/sbin/sendmail", "-i", realserver.TempfailRecipient},
			exit:       75,
			failed:     []string{realserver.TempfailRecipient},
			reply:      "450 4.2.0 <tempfail@example.test>: Recipient address rejected: try later",
			postfixLog: []string{"NOQUEUE: reject: RCPT from", "450 4.2.0 <tempfail@example.test>"},
		},
		{
			// 550 5.1.1: EX_NOUSER.
			name:       "unknown_user",
			argv:       []string{"/usr/sbin/sendmail", "-i", "nosuchuser@example.test"},
			exit:       67,
			failed:     []string{"nosuchuser@example.test"},
			reply:      "550 5.1.1 <nosuchuser@example.test>",
			postfixLog: []string{"NOQUEUE: reject: RCPT from", "550 5.1.1 <nosuchuser@example.test>"},
		},
		{
			// One good recipient, one unknown: bob gets the message,
			// the other gets one line and EX_NOUSER; no dead.letter,
			// since the message was delivered.
			name:       "unknown_user_and_bob",
			argv:       []string{"/usr/sbin/sendmail", "-i", "nosuchuser@example.test", "bob@example.test"},
			exit:       67,
			failed:     []string{"nosuchuser@example.test"},
			reply:      "550 5.1.1 <nosuchuser@example.test>",
			delivered:  []string{"bob"},
			postfixLog: []string{"NOQUEUE: reject: RCPT from", "550 5.1.1 <nosuchuser@example.test>"},
		},
		{
			// 535 for the relay's password: EX_NOPERM, and the password
			// is never shown.
			name: "wrong_password",
			argv: []string{"/usr/sbin/sendmail", "-i", "bob@example.test"},
			config: func(t *testing.T, e *relayEnv) string {
				return e.writeConfig(t, "wrong-password.toml", "smtp://"+e.p.Addr, "wrong-secret-pass")
			},
			exit:       77,
			failed:     []string{"bob@example.test"},
			reply:      "535 5.7.8",
			postfixLog: []string{"authentication failed"},
			secret:     "wrong-secret-pass",
		},
		{
			// The certificate does not name the server the config
			// expects: STARTTLS is required, so nothing is sent in the
			// clear and the failure is temporary (as Postfix defers).
			name: "tls_name_mismatch",
			argv: []string{"/usr/sbin/sendmail", "-i", "bob@example.test"},
			config: func(t *testing.T, e *relayEnv) string {
				return writeConfigWith(t, e.dir, "tls-mismatch.toml", "smtp://"+e.p.Addr, "alicepass", e.p.CA.CertFile,
					map[string]string{`tls_server_name = "mail.example.test"`: `tls_server_name = "wrong.example.test"`})
			},
			exit:   75,
			failed: []string{"bob@example.test"},
			reply:  "TLS handshake: tls: failed to verify certificate",
		},
		{
			// Nothing listens: temporary, EX_TEMPFAIL.
			name: "relay_down",
			argv: []string{"/usr/sbin/sendmail", "-i", "bob@example.test"},
			config: func(t *testing.T, e *relayEnv) string {
				return e.writeConfig(t, "relay-down.toml", "smtp://"+closedAddr(t), "alicepass")
			},
			exit:   75,
			failed: []string{"bob@example.test"},
			reply:  "connection refused",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			needPrivateHome(t)
			t.Parallel()
			cfg := e.config
			if c.config != nil {
				cfg = c.config(t, e)
			}
			marker := newMarker(c.name)
			r := run(t, call{argv: c.argv, config: cfg, stdin: failMessage(marker)})
			r.wantExit(t, c.exit)
			t.Logf("stderr:\n%s", r.stderr)
			if r.stdout != "" {
				t.Errorf("stdout: %q", r.stdout)
			}
			checkFailureStderr(t, r, c.failed, c.reply, len(c.delivered) == 0)
			if c.secret != "" {
				checkNoSecret(t, r.stderr, c.secret)
			}
			if c.postfixLog != nil {
				e.p.WaitLog(t, c.postfixLog...)
			}
			sender := "root@example.test"
			if c.sender != "" {
				sender = c.sender
			}
			wantFields := []string{"To: someone@example.test", "Subject: " + marker,
				"Date: " + anyDate, "Message-ID: " + anyMsgID, "From: root <" + sender + ">"}
			wantBody := "first line\n.\nFrom here on, an mbox From_ quote\nlast line\n"
			if len(c.delivered) > 0 {
				got := e.delivered(t, marker, c.delivered...)
				for u, s := range got {
					s.check(t, u, sender, "", wantFields, wantBody)
				}
				if _, _, ok := r.deadLetter(t); ok {
					t.Error("dead.letter written although the message was delivered")
				}
				return
			}
			checkDeadLetter(t, r, sender, wantFields, wantBody)
		})
	}

	t.Run("cron_oem_unknown_user", func(t *testing.T) {
		// Debian cron to a MAILTO that does not exist: -oem mails the
		// error back to the envelope sender (root, aliased to bob),
		// from the null sender, and the message is kept in dead.letter.
		needPrivateHome(t)
		t.Parallel()
		marker := newMarker("cron-oem")
		r := run(t, call{
			argv:   []string{"/usr/sbin/sendmail", "-FCronDaemon", "-i", "-B8BITMIME", "-oem", "nosuchuser"},
			config: e.config,
			stdin:  "From: root (Cron Daemon)\nTo: nosuchuser\nSubject: Cron <root@client> job " + marker + "\n\noutput\n",
		})
		r.wantExit(t, 67)
		checkFailureStderr(t, r, []string{"nosuchuser@example.test"}, "550 5.1.1 <nosuchuser@example.test>", true)
		got := e.delivered(t, marker, "bob")
		s := got["bob"]
		if rp := s.get("Return-Path"); rp != "<>" {
			t.Errorf("the error report has Return-Path %q, want <>", rp)
		}
		for _, want := range []string{"nosuchuser@example.test", "550 5.1.1", "Subject: Cron <root@client> job " + marker} {
			if !strings.Contains(s.body, want) {
				t.Errorf("the error report lacks %q:\n%s", want, s.raw)
			}
		}
		if to := s.get("To"); to != "root@example.test" && to != "bob@example.test" {
			t.Errorf("the error report is addressed To: %q", to)
		}
		if _, _, ok := r.deadLetter(t); !ok {
			t.Error("no dead.letter")
		}
	})

	t.Run("symfony_bs_refusals", func(t *testing.T) {
		needPrivateHome(t) // a dead.letter would be a bug, but must not be the real one
		t.Parallel()
		testSMTPModeFailures(t, e)
	})

	t.Run("verbose", func(t *testing.T) {
		// -v: the SMTP dialogue on stderr, AUTH payloads redacted, the
		// password nowhere; the message is delivered.
		t.Parallel()
		marker := newMarker("verbose")
		r := run(t, call{argv: []string{"/usr/sbin/sendmail", "-v", "-i", "bob@example.test"}, config: e.config,
			stdin: "Subject: " + marker + "\n\nverbose\n"})
		r.wantExit(t, 0)
		t.Logf("stderr:\n%s", r.stderr)
		checkNoSecret(t, r.stderr, "alicepass")
		checkDialogue(t, r.stderr)
		got := e.delivered(t, marker, "bob")
		got["bob"].check(t, "bob", "root@example.test", "bob@example.test",
			[]string{"Subject: " + marker, "Date: " + anyDate, "Message-ID: " + anyMsgID, "From: root <root@example.test>"},
			"verbose\n")
	})

	t.Run("verbose_dsn", func(t *testing.T) {
		// mutt's DSN options reach the relay (Postfix offers DSN); s-nail
		// passes -v to the MTA when it is verbose itself.
		t.Parallel()
		marker := newMarker("verbose-dsn")
		r := run(t, call{argv: []string{"/usr/sbin/sendmail", "-oem", "-oi", "-v", "-N", "failure,delay", "-R", "hdrs", "--", "bob@example.test"},
			config: e.config, stdin: "Subject: " + marker + "\n\nverbose\n"})
		r.wantExit(t, 0)
		for _, want := range []*regexp.Regexp{
			regexp.MustCompile(`(?m)^send: MAIL FROM:<root@example\.test> .*\bRET=HDRS\b`),
			regexp.MustCompile(`(?m)^send: RCPT TO:<bob@example\.test> NOTIFY=FAILURE,DELAY$`),
		} {
			if !want.MatchString(r.stderr) {
				t.Errorf("transcript lacks %v:\n%s", want, r.stderr)
			}
		}
		e.delivered(t, marker, "bob")
	})

	t.Run("verbose_wrong_password", func(t *testing.T) {
		needPrivateHome(t)
		t.Parallel()
		cfg := e.writeConfig(t, "verbose-wrong-password.toml", "smtp://"+e.p.Addr, "wrong-secret-pass")
		r := run(t, call{argv: []string{"/usr/sbin/sendmail", "-v", "-i", "bob@example.test"}, config: cfg,
			stdin: "Subject: " + newMarker("verbose-wrong") + "\n\nverbose\n"})
		r.wantExit(t, 77)
		t.Logf("stderr:\n%s", r.stderr)
		checkNoSecret(t, r.stderr, "wrong-secret-pass")
		if !strings.Contains(r.stderr, "send: AUTH ") || !strings.Contains(r.stderr, "535 5.7.8") {
			t.Errorf("stderr lacks the AUTH exchange:\n%s", r.stderr)
		}
	})
}

// checkFailureStderr checks that stderr has exactly one line per failed
// recipient ("sendmail: RCPT: ... REPLY"), plus, when saved, one line
// saying the message went to dead.letter, and nothing else.
func checkFailureStderr(t *testing.T, r result, failed []string, reply string, saved bool) {
	t.Helper()
	lines := stderrLines(r.stderr)
	want := len(failed)
	if saved {
		want++
	}
	if len(lines) != want {
		t.Errorf("%d lines on stderr, want %d:\n%s", len(lines), want, r.stderr)
	}
	for i, rcpt := range failed {
		if i >= len(lines) {
			break
		}
		l := lines[i]
		if !strings.HasPrefix(l, "sendmail: "+rcpt+": ") || !strings.Contains(l, reply) {
			t.Errorf("stderr line %d is %q, want \"sendmail: %s: ...%s...\"", i+1, l, rcpt, reply)
		}
	}
	if saved && len(lines) == want {
		wantLine := "sendmail: message saved in " + passwdHome + "/dead.letter"
		if lines[len(lines)-1] != wantLine {
			t.Errorf("last stderr line %q, want %q", lines[len(lines)-1], wantLine)
		}
	}
	for _, bad := range []string{"goroutine ", "panic", ".go:"} {
		if strings.Contains(r.stderr, bad) {
			t.Errorf("stderr has %q:\n%s", bad, r.stderr)
		}
	}
}

// mboxFromLine is the separator handoff writes in front of a message in
// dead.letter: "From SENDER Www Mmm dd hh:mm:ss yyyy".
var mboxFromLine = regexp.MustCompile(`^From (\S+) [A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} [0-9]{4}$`)

// checkDeadLetter checks that dead.letter holds the whole prepared
// message in mboxrd form, mode 0600.
func checkDeadLetter(t *testing.T, r result, sender string, fields []string, body string) {
	t.Helper()
	dl, fi, ok := r.deadLetter(t)
	if !ok {
		t.Fatalf("no dead.letter in the home directory; stderr:\n%s", r.stderr)
	}
	t.Logf("dead.letter:\n%s", dl)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("dead.letter has mode %v, want 0600", fi.Mode().Perm())
	}
	first, rest, _ := strings.Cut(dl, "\n")
	m := mboxFromLine.FindStringSubmatch(first)
	if m == nil || m[1] != sender {
		t.Errorf("dead.letter starts with %q, want a From_ line for %s", first, sender)
	}
	// The message ends with the empty line that ends an mbox entry.
	msg, ok := strings.CutSuffix(rest, "\n\n")
	if !ok {
		t.Errorf("dead.letter does not end with an empty line: %q", dl)
	}
	s := parseStored(t, []byte(msg+"\n"))
	if len(s.trace) != 0 {
		t.Errorf("dead.letter has trace fields: %q", s.trace)
	}
	if len(s.fields) != len(fields) {
		t.Errorf("dead.letter: %d header fields, want %d:\n%s", len(s.fields), len(fields), dl)
	}
	for i := 0; i < len(s.fields) && i < len(fields); i++ {
		if err := matchField(s.fields[i], fields[i]); err != nil {
			t.Errorf("dead.letter: header field %d: %v", i+1, err)
		}
	}
	// mboxrd: a body line starting with "From " gets a '>'.
	wantBody := strings.ReplaceAll(body, "\nFrom ", "\n>From ")
	if s.body != wantBody {
		t.Errorf("dead.letter body\n%q\nwant\n%q", s.body, wantBody)
	}
}

// checkNoSecret checks that the password shows neither as it is nor in
// base64 (as AUTH PLAIN or LOGIN would carry it).
func checkNoSecret(t *testing.T, out, secret string) {
	t.Helper()
	for _, form := range []string{
		secret,
		base64.StdEncoding.EncodeToString([]byte(secret)),
		base64.StdEncoding.EncodeToString([]byte("\x00alice@example.test\x00" + secret)),
	} {
		if strings.Contains(out, form) {
			t.Errorf("the password shows in the output as %q:\n%s", form, out)
		}
	}
}

// checkDialogue checks the -v transcript: the whole session in order,
// and every line the client sent during AUTH redacted.
func checkDialogue(t *testing.T, stderr string) {
	t.Helper()
	order := []string{
		"reply: 220 mail.example.test ESMTP",
		"send: EHLO client.example.test",
		"send: STARTTLS",
		"reply: 220 2.0.0",
		"send: EHLO client.example.test",
		"send: AUTH SCRAM-SHA-256 <redacted>",
		"reply: 235 2.7.0",
		"send: MAIL FROM:<root@example.test>",
		"send: RCPT TO:<bob@example.test>",
		"send: DATA",
		"reply: 354",
		"reply: 250 2.0.0 Ok: queued as",
		"send: QUIT",
	}
	rest := stderr
	for _, w := range order {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Errorf("transcript lacks %q after the lines before it:\n%s", w, stderr)
			return
		}
		rest = rest[i+len(w):]
	}
	inAuth := false
	for _, l := range stderrLines(stderr) {
		switch {
		case strings.HasPrefix(l, "send: AUTH "):
			inAuth = true
		case strings.HasPrefix(l, "reply: 235"):
			inAuth = false
		case inAuth && strings.HasPrefix(l, "send: ") && l != "send: <redacted>":
			t.Errorf("a line sent during AUTH is not redacted: %q", l)
		}
	}
}
