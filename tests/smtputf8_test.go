package tests

import (
	"strings"
	"testing"

	"github.com/handoff-mta/handoff/internal/realserver"
)

// TestRelayWithoutSMTPUTF8 sends through a Postfix that does not offer
// SMTPUTF8 (smtputf8_enable = no, Debian's setting before Postfix 3.6's
// compatibility level, and the state of many smarthosts). PRODUCT.md §3:
// "8-bit content → BODY=8BITMIME when offered; non-ASCII addresses →
// SMTPUTF8 when offered, else a permanent error naming the address."
func TestRelayWithoutSMTPUTF8(t *testing.T) {
	realserver.Require(t, "postfix", "dovecot")
	dv := realserver.StartDovecot(t, realserver.DovecotOptions{})
	p := realserver.StartPostfix(t, realserver.PostfixOptions{Dovecot: dv, MainCF: map[string]string{"smtputf8_enable": "no"}})
	e := &relayEnv{p: p, dir: t.TempDir()}
	e.config = e.writeConfig(t, "handoff.toml", "smtp://"+p.Addr, "alicepass")

	t.Run("php_mail_utf8_subject", func(t *testing.T) {
		// A raw UTF-8 Subject and display name, ASCII addresses: 8-bit
		// content, which this relay takes with BODY=8BITMIME.
		needPrivateHome(t) // today it fails, and keeps the message
		t.Parallel()
		marker := newMarker("utf8-no-smtputf8")
		input := "To: Bob <bob@example.test>\r\nSubject: Bestellung bestätigt – " + marker + "\r\n" +
			"From: Bäckerei Müller <alice@example.test>\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nGrüße\n\r\n"
		r := run(t, call{argv: []string{"/usr/sbin/sendmail", "-t", "-i"}, config: e.config, stdin: input})
		r.wantExit(t, 0)
		r.wantQuiet(t)
		got := e.delivered(t, marker, "bob")
		got["bob"].check(t, "bob", "root@example.test", "bob@example.test",
			[]string{"To: Bob <bob@example.test>", "Subject: Bestellung bestätigt – " + marker,
				"From: Bäckerei Müller <alice@example.test>", "Content-Type: text/plain; charset=UTF-8",
				"Date: " + anyDate, "Message-ID: " + anyMsgID}, "Grüße\n\n")
	})

	t.Run("utf8_address", func(t *testing.T) {
		// A non-ASCII address cannot go to this relay: a permanent
		// error that names the address, EX_UNAVAILABLE, dead.letter.
		needPrivateHome(t)
		t.Parallel()
		marker := newMarker("utf8-address")
		r := run(t, call{argv: []string{"/usr/sbin/sendmail", "-i", "jösé@example.test"}, config: e.config,
			stdin: "Subject: " + marker + "\n\nhola\n"})
		r.wantExit(t, 69)
		t.Logf("stderr:\n%s", r.stderr)
		checkFailureStderr(t, r, []string{"jösé@example.test"}, "SMTPUTF8", true)
		checkDeadLetter(t, r, "root@example.test",
			[]string{"Subject: " + marker, "Date: " + anyDate, "Message-ID: " + anyMsgID, "From: root <root@example.test>"},
			"hola\n")
		if strings.Contains(p.Log(), "jösé") {
			t.Errorf("the address reached Postfix:\n%s", p.Log())
		}
	})
}
