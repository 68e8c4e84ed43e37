package message

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"mime"
	"os"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/emersion/go-message/textproto"
)

// The fixed clock, random source and host of the tests: Date in the
// local zone of Now, Message-ID in UTC with the first 8 octets of testRand.
var testNow = time.Date(2026, 11, 28, 23, 3, 12, 0, time.FixedZone("CET", 3600))

const (
	genDate   = "Date: Sat, 28 Nov 2026 23:03:12 +0100\r\n"
	genID     = "Message-ID: <20261128T220312.0001020304050607@host.example>\r\n"
	genID2    = "Message-ID: <20261128T220312.08090a0b0c0d0e0f@host.example>\r\n"
	genFrom   = "From: user@example.org\r\n"
	gen       = genDate + genID + genFrom
	genNoFrom = genDate + genID
)

// testRand returns the octets 0, 1, 2, ...
func testRand() io.Reader {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return bytes.NewReader(b)
}

// testQualify maps root to admin@example.org and qualifies every other
// local part with example.org, as the CLI would with
// [aliases] root = "admin@example.org" and domain = "example.org".
func testQualify(addr string) string {
	local := addr
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		local = addr[:i]
	}
	if local == "root" {
		return "admin@example.org"
	}
	return local + "@example.org"
}

// testOptions fills in the fixed clock, random source and host, and the
// sender user@example.org unless Sender is "<>" (the null sender).
func testOptions(o Options) Options {
	o.Hostname = "host.example"
	o.Now = func() time.Time { return testNow }
	o.Rand = testRand()
	switch o.Sender {
	case "":
		o.Sender = "user@example.org"
	case "<>":
		o.Sender = ""
	}
	return o
}

// prepare runs Prepare and checks what must hold for every message: the
// output is Size octets of CRLF lines, Header ends with CRLF CRLF and
// parses with go-message's textproto, no Bcc, no header line over 998
// octets, and Reader gives the same bytes twice.
func prepare(t testing.TB, in string, o Options) (string, *Message) {
	t.Helper()
	m, err := Prepare(strings.NewReader(in), testOptions(o))
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	out := readAll(t, m)
	if again := readAll(t, m); again != out {
		t.Fatalf("second Reader differs")
	}
	checkInvariants(t, m, []byte(out))
	return out, m
}

func readAll(t testing.TB, m *Message) string {
	t.Helper()
	r, err := m.Reader()
	if err != nil {
		t.Fatalf("Reader: %v", err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("reading: %v", err)
	}
	return string(b)
}

func checkInvariants(t testing.TB, m *Message, out []byte) {
	t.Helper()
	if int64(len(out)) != m.Size {
		t.Errorf("Size = %d, output is %d octets", m.Size, len(out))
	}
	if !bytes.HasPrefix(out, m.Header) {
		t.Errorf("output does not start with Header")
	}
	if !bytes.HasSuffix(m.Header, []byte("\r\n\r\n")) && string(m.Header) != "\r\n" {
		t.Errorf("Header does not end with CRLF CRLF: %q", m.Header)
	}
	if bytes.Contains(m.Header[:len(m.Header)-2], []byte("\r\n\r\n")) {
		t.Errorf("Header has an empty line before its end: %q", m.Header)
	}
	for i, c := range out {
		if c == '\n' && (i == 0 || out[i-1] != '\r') {
			t.Fatalf("bare LF at %d", i)
		}
		if c == '\r' && (i+1 == len(out) || out[i+1] != '\n') {
			t.Fatalf("bare CR at %d", i)
		}
	}
	for _, line := range bytes.Split(m.Header, []byte("\r\n")) {
		if len(line) > maxLine {
			t.Errorf("header line of %d octets", len(line))
		}
		if len(line) >= 4 && strings.EqualFold(string(line[:4]), "bcc:") || len(line) >= 11 && strings.EqualFold(string(line[:11]), "resent-bcc:") {
			t.Errorf("Bcc in output: %q", line)
		}
	}
	if _, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(m.Header))); err != nil {
		t.Errorf("go-message cannot read the header: %v", err)
	}
}

// TestPrepare covers research/sendmail-compat.md §2 case by case, with
// the exact output. §2.1 (argv with -t), §2.11 (default sender) and §2.15
// (DSN) are the CLI's and the relay's: here -t gives the header
// recipients that the CLI joins with argv.
func TestPrepare(t *testing.T) {
	long := strings.Repeat("a", 2000)
	tests := []struct {
		name    string
		in      string
		opts    Options
		want    string
		rcpts   []string
		drained int64
	}{
		// §2.7 line endings
		{
			name: "CRLF",
			in:   "Subject: hi\r\nTo: a@example.com\r\n\r\nline 1\r\nline 2\r\n",
			want: "Subject: hi\r\nTo: a@example.com\r\n" + gen + "\r\nline 1\r\nline 2\r\n",
		},
		{
			name: "bare LF",
			in:   "Subject: hi\nTo: a@example.com\n\nline 1\nline 2\n",
			want: "Subject: hi\r\nTo: a@example.com\r\n" + gen + "\r\nline 1\r\nline 2\r\n",
		},
		{
			name:  "PHP 8 mail(): CRLF header, LF body, -t -i",
			in:    "To: alice@example.com\r\nSubject: Order 42\r\nX-PHP-Originating-Script: 33:shop.php\r\nFrom: shop@example.com\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nThank you.\n.\nBye\n",
			opts:  Options{ExtractRecipients: true, IgnoreDots: true},
			want:  "To: alice@example.com\r\nSubject: Order 42\r\nX-PHP-Originating-Script: 33:shop.php\r\nFrom: shop@example.com\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n" + genNoFrom + "\r\nThank you.\r\n.\r\nBye\r\n",
			rcpts: []string{"alice@example.com"},
		},
		{
			name: "mixed endings line by line, the first line decides nothing",
			in:   "Subject: x\nX-A: 1\r\n\r\na\nb\r\nc\rd",
			want: "Subject: x\r\nX-A: 1\r\n" + gen + "\r\na\r\nb\r\nc\r\nd\r\n",
		},
		{
			name: "bare CR ends a body line",
			in:   "Subject: x\n\nl1\rl2\r\nl3\r",
			want: "Subject: x\r\n" + gen + "\r\nl1\r\nl2\r\nl3\r\n",
		},
		{
			name: "bare CR in a header field folds it",
			in:   "Subject: one\rtwo\r three\nX-A: y\n\nb\n",
			want: "Subject: one\r\n two\r\n three\r\nX-A: y\r\n" + gen + "\r\nb\r\n",
		},
		{
			name: "CR before a header line end is dropped",
			in:   "Subject: t3\r\r\nX-A: y\r\r\r\n\r\nb",
			want: "Subject: t3\r\nX-A: y\r\n" + gen + "\r\nb\r\n",
		},
		{
			name: "a line that starts with a bare CR ends the header block",
			in:   "Subject: x\n\rbody\n",
			want: "Subject: x\r\n" + gen + "\r\nbody\r\n",
		},
		{
			name: "double CR between body lines is an empty line",
			in:   "Subject: x\n\na\r\rb\n",
			want: "Subject: x\r\n" + gen + "\r\na\r\n\r\nb\r\n",
		},

		// §2.6 dots
		{
			name:    "lone dot ends the message, the rest is drained",
			in:      "Subject: x\n\nbefore\n.\nafter\nmore\n",
			want:    "Subject: x\r\n" + gen + "\r\nbefore\r\n",
			drained: int64(len("after\nmore\n")),
		},
		{
			name:    "lone dot with CRLF",
			in:      "Subject: x\r\n\r\nbefore\r\n.\r\nafter\r\n",
			want:    "Subject: x\r\n" + gen + "\r\nbefore\r\n",
			drained: 7,
		},
		{
			name:    "lone dot ended by a bare CR",
			in:      "Subject: x\n\na\r.\rb\n",
			want:    "Subject: x\r\n" + gen + "\r\na\r\n",
			drained: 2,
		},
		{
			name: "lone dot is data with -i",
			in:   "Subject: x\n\nbefore\n.\nafter\n",
			opts: Options{IgnoreDots: true},
			want: "Subject: x\r\n" + gen + "\r\nbefore\r\n.\r\nafter\r\n",
		},
		{
			name: "other dots are never stripped",
			in:   "Subject: x\n\n..x\n. \n .\n.x\n..\n",
			want: "Subject: x\r\n" + gen + "\r\n..x\r\n. \r\n .\r\n.x\r\n..\r\n",
		},
		{
			name: "lone dot at the end without a line ending",
			in:   "Subject: x\n\nbody\n.",
			want: "Subject: x\r\n" + gen + "\r\nbody\r\n",
		},
		{
			name:    "lone dot as first line",
			in:      ".\nSubject: x\n",
			want:    gen + "\r\n",
			drained: 11,
		},
		{
			name:    "lone dot in the header block",
			in:      "Subject: x\n.\nrest\n",
			want:    "Subject: x\r\n" + gen + "\r\n",
			drained: 5,
		},

		// §2.9 leading From line
		{
			name: "mbox From line dropped",
			in:   "From user@example.org Sat Nov 28 22:03:12 2026\nSubject: x\n\nb\n",
			want: "Subject: x\r\n" + gen + "\r\nb\r\n",
		},
		{
			name: ">From line dropped",
			in:   ">From user@example.org Sat Nov 28 22:03:12 2026\r\nSubject: x\r\n\r\nb\r\n",
			want: "Subject: x\r\n" + gen + "\r\nb\r\n",
		},
		{
			name: "only the first From line is dropped",
			in:   "From a\nFrom b\nSubject: x\n",
			want: gen + "\r\nFrom b\r\nSubject: x\r\n",
		},
		{
			name: "From: is a header field",
			in:   "From: a@example.com\n\nb\n",
			want: "From: a@example.com\r\n" + genNoFrom + "\r\nb\r\n",
		},

		// §2.10 no header block, §2.14 empty input
		{
			name: "no header block: all body",
			in:   "hello world\nsecond\n",
			want: gen + "\r\nhello world\r\nsecond\r\n",
		},
		{
			name: "a colon after a blank is no field",
			in:   "Dear user: hello\n",
			want: gen + "\r\nDear user: hello\r\n",
		},
		{
			name: "first line indented: no header block",
			in:   " Subject: x\n",
			want: gen + "\r\n Subject: x\r\n",
		},
		{
			name: "non-header line in the header block starts the body",
			in:   "Subject: x\nhello\nworld\n",
			want: "Subject: x\r\n" + gen + "\r\nhello\r\nworld\r\n",
		},
		{
			name: "empty first line: empty header block",
			in:   "\nSubject: x\n",
			want: gen + "\r\nSubject: x\r\n",
		},
		{
			name: "empty input",
			in:   "",
			want: gen + "\r\n",
		},
		{
			name: "header block without empty line or body",
			in:   "Subject: x",
			want: "Subject: x\r\n" + gen + "\r\n",
		},
		{
			name: "continuation lines and obsolete blank before the colon",
			in:   "Subject : a\n b\n\tc\nX-A:no-space\n\n",
			want: "Subject : a\r\n b\r\n\tc\r\nX-A:no-space\r\n" + gen + "\r\n",
		},
		{
			name: "NUL and 8-bit carried",
			in:   "Subject: caf\xe9\n\na\x00b\xff\n",
			want: "Subject: caf\xe9\r\n" + gen + "\r\na\x00b\xff\r\n",
		},

		// §2.3 Bcc removal
		{
			name: "Bcc, Return-Path, Content-Length removed without -t",
			in:   "To: a@x.org\nBcc: b@x.org\nBCC: c@x.org,\n  d@x.org\nReturn-Path: <f@x.org>\ncontent-length: 12\nSubject: s\n\nb\n",
			want: "To: a@x.org\r\nSubject: s\r\n" + gen + "\r\nb\r\n",
		},
		{
			name:  "Bcc removed with -t, its addresses kept as recipients",
			in:    "To: a@x.org\nBcc: b@x.org\nBCC: c@x.org,\n  d@x.org\nCc: e@x.org\nSubject: s\n\nb\n",
			opts:  Options{ExtractRecipients: true},
			want:  "To: a@x.org\r\nCc: e@x.org\r\nSubject: s\r\n" + gen + "\r\nb\r\n",
			rcpts: []string{"a@x.org", "b@x.org", "c@x.org", "d@x.org", "e@x.org"},
		},
		{
			name:  "Bcc as the only recipient field: removed, no To added",
			in:    "Bcc: a@x.org\nSubject: s\n\nb\n",
			opts:  Options{ExtractRecipients: true},
			want:  "Subject: s\r\n" + gen + "\r\nb\r\n",
			rcpts: []string{"a@x.org"},
		},

		// §2.2 Resent-
		{
			name: "Resent- recipients replace To/Cc/Bcc with -t",
			in:   "From: a@x.org\nTo: b@x.org\nResent-From: c@x.org\nResent-To: d@x.org\nResent-Cc: e@x.org, d@X.ORG\nResent-Bcc: f@x.org\nSubject: s\n\nbody\n",
			opts: Options{ExtractRecipients: true},
			want: "From: a@x.org\r\nTo: b@x.org\r\n" +
				"Resent-Date: Sat, 28 Nov 2026 23:03:12 +0100\r\n" +
				"Resent-Message-ID: <20261128T220312.0001020304050607@host.example>\r\n" +
				"Resent-From: c@x.org\r\nResent-To: d@x.org\r\nResent-Cc: e@x.org, d@X.ORG\r\nSubject: s\r\n" +
				genDate + genID2 + "\r\nbody\r\n",
			rcpts: []string{"d@x.org", "e@x.org", "f@x.org"},
		},
		{
			name: "Resent-From alone: recipients from To, Resent-Date and -Message-ID added",
			in:   "To: b@x.org\nResent-From: c@x.org\nDate: d\nMessage-ID: <m@x>\nFrom: a@x.org\n\n",
			opts: Options{ExtractRecipients: true},
			want: "To: b@x.org\r\n" +
				"Resent-Date: Sat, 28 Nov 2026 23:03:12 +0100\r\n" +
				"Resent-Message-ID: <20261128T220312.0001020304050607@host.example>\r\n" +
				"Resent-From: c@x.org\r\nDate: d\r\nMessage-ID: <m@x>\r\nFrom: a@x.org\r\n\r\n",
			rcpts: []string{"b@x.org"},
		},
		{
			name: "Resent-Date present: only Resent-Message-ID added",
			in:   "Resent-Date: Fri, 27 Nov 2026 10:00:00 +0000\nResent-To: d@x.org\nDate: d\nMessage-ID: <m@x>\nFrom: a@x.org\n\n",
			want: "Resent-Message-ID: <20261128T220312.0001020304050607@host.example>\r\n" +
				"Resent-Date: Fri, 27 Nov 2026 10:00:00 +0000\r\nResent-To: d@x.org\r\nDate: d\r\nMessage-ID: <m@x>\r\nFrom: a@x.org\r\n\r\n",
		},
		{
			name: "only Resent-Bcc: removed, the resent block still dated, at the top",
			in:   "Date: d\nMessage-ID: <m@x>\nFrom: a@x.org\nResent-Bcc: f@x.org\n\n",
			want: "Resent-Date: Sat, 28 Nov 2026 23:03:12 +0100\r\n" +
				"Resent-Message-ID: <20261128T220312.0001020304050607@host.example>\r\n" +
				"Date: d\r\nMessage-ID: <m@x>\r\nFrom: a@x.org\r\n\r\n",
		},

		// §2.4 groups; §7 point 7 address syntax
		{
			name:  "groups, undisclosed-recipients, quoted commas, comments, encoded words",
			in:    "To: friends: a@x.org, B <b@x.org>;, undisclosed-recipients:;\nCc: \"Doe, John\" <jd@x.org> (the boss), =?utf-8?q?J=C3=B6rg?= <j@x.org>,\n =?utf-8?q?M=C3=BCller,_Hans?= <hm@x.org>\n\n",
			opts:  Options{ExtractRecipients: true},
			want:  "To: friends: a@x.org, B <b@x.org>;, undisclosed-recipients:;\r\nCc: \"Doe, John\" <jd@x.org> (the boss), =?utf-8?q?J=C3=B6rg?= <j@x.org>,\r\n =?utf-8?q?M=C3=BCller,_Hans?= <hm@x.org>\r\n" + gen + "\r\n",
			rcpts: []string{"a@x.org", "b@x.org", "jd@x.org", "j@x.org", "hm@x.org"},
		},
		{
			name:  "undisclosed-recipients only: no recipient, no To added",
			in:    "To: undisclosed-recipients:;\n\n",
			opts:  Options{ExtractRecipients: true},
			want:  "To: undisclosed-recipients:;\r\n" + gen + "\r\n",
			rcpts: nil,
		},
		{
			name:  "de-duplication: domain without case, local part with case",
			in:    "To: a@Example.COM, A@example.com\nCc: a@example.com, <a@EXAMPLE.com>\nBcc: A@example.com\n\n",
			opts:  Options{ExtractRecipients: true},
			want:  "To: a@Example.COM, A@example.com\r\nCc: a@example.com, <a@EXAMPLE.com>\r\n" + gen + "\r\n",
			rcpts: []string{"a@Example.COM", "A@example.com"},
		},

		// §2.12 headers added when missing, §2.5 and §7 point 9 qualification
		{
			name: "cron's message qualified (Debian cron: -FCronDaemon -i -B8BITMIME -oem root)",
			in: "From: root (Cron Daemon)\nTo: root\nSubject: Cron <root@host> /usr/local/bin/backup\n" +
				"MIME-Version: 1.0\nContent-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: 8bit\n" +
				"X-Cron-Env: <SHELL=/bin/sh>\nX-Cron-Env: <HOME=/root>\nX-Cron-Env: <LOGNAME=root>\n\nbackup done\n",
			opts: Options{IgnoreDots: true, FullName: "CronDaemon", Qualify: testQualify, Sender: "root@example.org"},
			want: "From: admin@example.org (Cron Daemon)\r\nTo: admin@example.org\r\nSubject: Cron <root@host> /usr/local/bin/backup\r\n" +
				"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit\r\n" +
				"X-Cron-Env: <SHELL=/bin/sh>\r\nX-Cron-Env: <HOME=/root>\r\nX-Cron-Env: <LOGNAME=root>\r\n" + genNoFrom + "\r\nbackup done\r\n",
		},
		{
			name: "Qualify: display names, comments, folding and other domains kept",
			in: "From: Logwatch <logwatch>\nTo: \"Root, the\" <root@localhost>, x@other.org,\n  alice (Alice)\n" +
				"Reply-To: www-data@host.example\nSender: <bob@HOST.EXAMPLE>\nResent-From: carol\nSubject: root\nX-To: root\n\n",
			opts: Options{Qualify: testQualify},
			want: "From: Logwatch <logwatch@example.org>\r\nTo: \"Root, the\" <admin@example.org>, x@other.org,\r\n  alice@example.org (Alice)\r\n" +
				"Reply-To: www-data@example.org\r\nSender: <bob@example.org>\r\n" +
				"Resent-Date: Sat, 28 Nov 2026 23:03:12 +0100\r\nResent-Message-ID: <20261128T220312.0001020304050607@host.example>\r\n" +
				"Resent-From: carol@example.org\r\nSubject: root\r\nX-To: root\r\n" + genDate + genID2 + "\r\n",
		},
		{
			name:  "Qualify with -t: recipients qualified, de-duplicated after",
			in:    "To: root, alice\nCc: admin@example.org, alice@localhost\nBcc: bob\n\n",
			opts:  Options{ExtractRecipients: true, Qualify: testQualify},
			want:  "To: admin@example.org, alice@example.org\r\nCc: admin@example.org, alice@example.org\r\n" + gen + "\r\n",
			rcpts: []string{"admin@example.org", "alice@example.org", "bob@example.org"},
		},
		{
			name:  "unparseable non-recipient field left alone with -t",
			in:    "From: <<bad\nReply-To: also (bad\nTo: root\n\n",
			opts:  Options{ExtractRecipients: true, Qualify: testQualify},
			want:  "From: <<bad\r\nReply-To: also (bad\r\nTo: admin@example.org\r\n" + genNoFrom + "\r\n",
			rcpts: []string{"admin@example.org"},
		},
		{
			name: "present Date, Message-ID, From kept, names without case",
			in:   "date: Fri, 27 Nov 2026 10:00:00 +0000\nmessage-id: <a@b>\nFROM: c@d.org\n\n",
			want: "date: Fri, 27 Nov 2026 10:00:00 +0000\r\nmessage-id: <a@b>\r\nFROM: c@d.org\r\n\r\n",
		},

		// §2.13 -F
		{
			name: "full name of atoms",
			in:   "Subject: x\n\n",
			opts: Options{FullName: "Cron Daemon"},
			want: "Subject: x\r\n" + genNoFrom + "From: Cron Daemon <user@example.org>\r\n\r\n",
		},
		{
			name: "full name quoted when needed",
			in:   "Subject: x\n\n",
			opts: Options{FullName: `Bob "the" Q. Builder`},
			want: "Subject: x\r\n" + genNoFrom + "From: \"Bob \\\"the\\\" Q. Builder\" <user@example.org>\r\n\r\n",
		},
		{
			name: "non-ASCII full name Q-encoded",
			in:   "Subject: x\n\n",
			opts: Options{FullName: "Jörg Müller"},
			want: "Subject: x\r\n" + genNoFrom + "From: =?utf-8?q?J=C3=B6rg_M=C3=BCller?= <user@example.org>\r\n\r\n",
		},
		{
			name: "non-ASCII full name with a comma B-encoded",
			in:   "Subject: x\n\n",
			opts: Options{FullName: "Müller, Jörg"},
			want: "Subject: x\r\n" + genNoFrom + "From: =?utf-8?b?TcO8bGxlciwgSsO2cmc=?= <user@example.org>\r\n\r\n",
		},
		{
			name: "control characters in the full name",
			in:   "",
			opts: Options{FullName: "Evil\r\nBcc: x@y.org\x00"},
			want: genNoFrom + "From: \"Evil Bcc: x@y.org\" <user@example.org>\r\n\r\n",
		},
		{
			name: "null sender: MAILER-DAEMON",
			in:   "Subject: x\n\n",
			opts: Options{Sender: "<>"},
			want: "Subject: x\r\n" + genNoFrom + "From: MAILER-DAEMON@host.example\r\n\r\n",
		},

		// §2.8 long lines
		{
			name: "header line without white space hard-broken",
			in:   "X-Long: " + long + "\n\n",
			want: "X-Long:\r\n " + long[:997] + "\r\n " + long[997:1994] + "\r\n " + long[1994:] + "\r\n" + gen + "\r\n",
		},
		{
			name: "long body line left for the relay",
			in:   "Subject: x\n\n" + long + "\n",
			want: "Subject: x\r\n" + gen + "\r\n" + long + "\r\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, m := prepare(t, tt.in, tt.opts)
			if got != tt.want {
				t.Errorf("output\n got %q\nwant %q", got, tt.want)
			}
			if !reflect.DeepEqual(m.Recipients, tt.rcpts) {
				t.Errorf("Recipients = %q, want %q", m.Recipients, tt.rcpts)
			}
			if m.Drained != tt.drained {
				t.Errorf("Drained = %d, want %d", m.Drained, tt.drained)
			}
		})
	}
}

// TestFoldWords checks folding at white space of a field over 998
// octets: pieces of at most 78 octets, broken before a blank.
func TestFoldWords(t *testing.T) {
	var in strings.Builder
	in.WriteString("Subject:")
	var words []string
	for i := 0; i < 200; i++ {
		w := " w" + strings.Repeat(string(rune('0'+i%10)), 4)
		words = append(words, w)
		in.WriteString(w)
	}
	// "Subject:" and 11 words make 74 octets; 12 would make 80. Then 13
	// words of 6 octets make 78.
	want := "Subject:" + strings.Join(words[:11], "")
	for i := 11; i < len(words); i += 13 {
		want += "\r\n" + strings.Join(words[i:min(i+13, len(words))], "")
	}
	got, _ := prepare(t, in.String()+"\n\n", Options{})
	if got != want+"\r\n"+gen+"\r\n" {
		t.Errorf("got %q\nwant %q", got, want+"\r\n"+gen+"\r\n")
	}
}

func TestFoldLine(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Subject: short", "Subject: short"},
		{"Subject: " + strings.Repeat("x", 100), "Subject:\r\n " + strings.Repeat("x", 100)},
		{"Subject: a" + strings.Repeat(" ", 100), "Subject:\r\n a" + strings.Repeat(" ", 100)}, // no text after the blanks
		{"X: " + strings.Repeat("é", 600), "X:\r\n " + strings.Repeat("é", 498) + "\r\n " + strings.Repeat("é", 102)},
		{"X: " + strings.Repeat("b", 996) + "é" + "c", "X:\r\n " + strings.Repeat("b", 996) + "\r\n é" + "c"}, // not inside é
	}
	for _, tt := range tests {
		got := string(foldLine([]byte(tt.in), 78))
		if got != tt.want {
			t.Errorf("foldLine(%.30q...)\n got %q\nwant %q", tt.in, got, tt.want)
		}
		for _, l := range strings.Split(got, "\r\n") {
			if len(l) > maxLine {
				t.Errorf("line of %d octets", len(l))
			}
		}
	}
}

func TestFlags(t *testing.T) {
	tests := []struct {
		name                  string
		in                    string
		t                     bool
		has8Bit, utf8, hasNUL bool
	}{
		{name: "ASCII", in: "Subject: x\n\nbody\n"},
		{name: "Latin-1 subject", in: "Subject: caf\xe9\n\nbody\n", has8Bit: true},
		{name: "UTF-8 subject", in: "Subject: café\n\nbody\n", has8Bit: true},
		{name: "UTF-8 display name", in: "To: Jörg <j@example.org>\n\nbody\n", has8Bit: true},
		{name: "UTF-8 address", in: "To: jörg@example.org\n\nbody\n", has8Bit: true, utf8: true},
		{name: "UTF-8 domain in From", in: "From: a@bücher.example\n\nbody\n", has8Bit: true, utf8: true},
		{name: "encoded-word display name", in: "To: =?utf-8?q?J=C3=B6rg?= <j@example.org>\n\nbody\n"},
		{name: "8-bit body only", in: "Subject: x\n\ncafé\n", has8Bit: true},
		{name: "UTF-8 Bcc recipient, removed", in: "To: a@x.org\nBcc: jörg@example.org\n\nbody\n", t: true, utf8: true},
		{name: "UTF-8 in a dropped field", in: "Return-Path: <jörg@example.org>\n\nbody\n"},
		{name: "NUL in body", in: "Subject: x\n\na\x00b\n", hasNUL: true},
		{name: "NUL in header", in: "Subject: a\x00b\n\n", hasNUL: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, m := prepare(t, tt.in, Options{ExtractRecipients: tt.t})
			if m.Has8Bit != tt.has8Bit || m.NeedsSMTPUTF8 != tt.utf8 || m.HasNUL != tt.hasNUL {
				t.Errorf("Has8Bit, NeedsSMTPUTF8, HasNUL = %v, %v, %v; want %v, %v, %v",
					m.Has8Bit, m.NeedsSMTPUTF8, m.HasNUL, tt.has8Bit, tt.utf8, tt.hasNUL)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		opts  Options
		field string
		msg   string
	}{
		{"display name without address", "To: Foo Bar\n\n", Options{ExtractRecipients: true}, "To",
			`To: cannot parse address list: display name "Foo Bar" without <addr-spec> at offset 1`},
		{"unclosed angle-addr", "cc: a@b.org, <c@d.org\n\n", Options{ExtractRecipients: true}, "cc",
			"cc: cannot parse address list: unclosed angle-addr at offset 18"},
		{"unclosed quote in Bcc", "Bcc: \"a@b.org\n\n", Options{ExtractRecipients: true}, "Bcc",
			"Bcc: cannot parse address list: unclosed quoted string at offset 1"},
		{"Latin-1 address", "To: j\xf6rg@example.org\n\n", Options{ExtractRecipients: true}, "To",
			`To: cannot parse address list: address "j\xf6rg@example.org" is not valid UTF-8`},
		{"Resent-To when resent", "To: ok@x.org\nResent-To: <>\n\n", Options{ExtractRecipients: true}, "Resent-To",
			"Resent-To: cannot parse address list: empty address <> at offset 2"},
		{"header block too long", "Subject: " + strings.Repeat("x", 100) + "\n\n", Options{MaxHeaderBytes: 100}, "",
			"header block is longer than 100 octets"},
		{"header field too long, never ending", "X-Data: " + strings.Repeat("x", 3<<20), Options{}, "",
			"header block is longer than 1048576 octets"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Prepare(strings.NewReader(tt.in), testOptions(tt.opts))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T), want *Error", err, err)
			}
			if e.Field != tt.field || e.Error() != tt.msg {
				t.Errorf("error Field %q, %q; want %q, %q", e.Field, e.Error(), tt.field, tt.msg)
			}
		})
	}

	// Without -t an unparseable To is left alone.
	got, _ := prepare(t, "To: Foo Bar\n\n", Options{})
	if want := "To: Foo Bar\r\n" + gen + "\r\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}

	// A failing reader is an I/O error, not an *Error.
	failing := iotest.TimeoutReader(strings.NewReader(strings.Repeat("x", 100<<10)))
	_, err := Prepare(iotest.OneByteReader(io.MultiReader(strings.NewReader("Subject: x\n\n"), failing)), testOptions(Options{}))
	var e *Error
	if err == nil || errors.As(err, &e) || !errors.Is(err, iotest.ErrTimeout) {
		t.Errorf("read error: got %v, want a wrapped iotest.ErrTimeout", err)
	}

	// Bad Options are plain errors.
	for _, o := range []Options{
		{Sender: "a@b\r\nBcc: c@d"},
		{Hostname: "a b"},
		{Qualify: func(string) string { return "x\n" }},
	} {
		o2 := testOptions(Options{})
		o2.Sender, o2.Qualify = o.Sender, o.Qualify
		if o.Hostname != "" {
			o2.Hostname = o.Hostname
		}
		if o2.Sender == "" {
			o2.Sender = "u@x.org"
		}
		_, err := Prepare(strings.NewReader("To: root\n\n"), o2)
		if err == nil || errors.As(err, &e) {
			t.Errorf("Options %+v: got %v, want a plain error", o, err)
		}
	}
}

func TestParseAddressList(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  string
	}{
		{in: "", want: []string{}},
		{in: " , ,", want: []string{}},
		{in: "root", want: []string{"root"}},
		{in: "a@b.org,c@d.org", want: []string{"a@b.org", "c@d.org"}},
		{in: "word word <a@b.org>", want: []string{"a@b.org"}},
		{in: "Cron Daemon <root>", want: []string{"root"}},
		{in: "root (Cron Daemon)", want: []string{"root"}},
		{in: `"Doe, John" <jd@x.org>, "a\"b" <ab@x.org>`, want: []string{"jd@x.org", "ab@x.org"}},
		{in: `"john doe"@x.org`, want: []string{`"john doe"@x.org`}},
		{in: "john . doe @ x . org", want: []string{"john.doe@x.org"}},
		{in: "a@[192.0.2.1]", want: []string{"a@[192.0.2.1]"}},
		{in: "<@relay.org,@r2.org:a@x.org>", want: []string{"a@x.org"}},
		{in: "friends: a@x.org, b@x.org;, c@x.org", want: []string{"a@x.org", "b@x.org", "c@x.org"}},
		{in: "undisclosed-recipients:;", want: []string{}},
		{in: "undisclosed-recipients:", want: []string{}},
		{in: "=?utf-8?q?J=C3=B6rg?= <j@x.org>", want: []string{"j@x.org"}},
		{in: "=?utf-8?q?M=C3=BCller,_(Hans)?= <hm@x.org>", want: []string{"hm@x.org"}},
		{in: "a@x.org <a@x.org>", want: []string{"a@x.org"}},
		{in: "John Q. Public <jqp@x.org>", want: []string{"jqp@x.org"}},
		{in: "foo..bar.@docomo.ne.jp", want: []string{"foo..bar.@docomo.ne.jp"}},
		{in: "jörg@bücher.example", want: []string{"jörg@bücher.example"}},
		{in: "a@x.org (c (nested) \\) x)", want: []string{"a@x.org"}},
		{in: "Foo Bar", err: `cannot parse address list: display name "Foo Bar" without <addr-spec> at offset 0`},
		{in: "a@", err: "cannot parse address list: missing domain at offset 2"},
		{in: "<a@x.org", err: "cannot parse address list: unclosed angle-addr at offset 8"},
		{in: "a@x.org>", err: `cannot parse address list: unexpected '>' at offset 7`},
		{in: "g: h: a@x;", err: "cannot parse address list: group inside a group at offset 4"},
		{in: "(open", err: "cannot parse address list: unclosed comment at offset 0"},
		{in: "a@x.org\r\nBcc: b@x.org", err: `cannot parse address list: control character '\r' at offset 7`},
		{in: `"a` + "\x01" + `"@x.org`, err: `cannot parse address list: address "\"a\x01\"@x.org" has a control character`},
	}
	for _, tt := range tests {
		got, err := ParseAddressList(tt.in)
		if tt.err != "" {
			var e *Error
			if !errors.As(err, &e) || err.Error() != tt.err {
				t.Errorf("ParseAddressList(%q) error = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseAddressList(%q): %v", tt.in, err)
			continue
		}
		if len(got) != len(tt.want) || (len(got) > 0 && !reflect.DeepEqual(got, tt.want)) {
			t.Errorf("ParseAddressList(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// infiniteReader gives n octets of c without allocating.
type repeatReader struct {
	c byte
	n int64
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.n {
		p = p[:r.n]
	}
	for i := range p {
		p[i] = r.c
	}
	r.n -= int64(len(p))
	return len(p), nil
}

// TestHugeLine sends one 10 MB line without a header block: it is
// streamed to the spill file, memory stays near the buffers' size.
func TestHugeLine(t *testing.T) {
	const n = 10 << 20
	dir := t.TempDir()
	o := testOptions(Options{TempDir: dir})
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	m, err := Prepare(&repeatReader{c: 'a', n: n}, o)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("Prepare allocated %d octets for a %d octet line", alloc, n)
	if alloc > 1<<20 {
		t.Errorf("Prepare allocated %d octets for a %d octet line", alloc, n)
	}
	if m.body.file == nil {
		t.Errorf("body not spilled")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("spill file still linked: %v", entries)
	}
	if want := int64(len(gen)+2) + n + 2; m.Size != want {
		t.Errorf("Size = %d, want %d", m.Size, want)
	}
	r, _ := m.Reader()
	head := make([]byte, len(gen)+2)
	if _, err := io.ReadFull(r, head); err != nil || string(head) != gen+"\r\n" {
		t.Fatalf("header %q, %v", head, err)
	}
	// The body is the line and CRLF.
	br := bufio.NewReader(r)
	var count int64
	for {
		c, err := br.ReadByte()
		if err == io.EOF {
			break
		}
		if count < n && c != 'a' || count == n && c != '\r' || count == n+1 && c != '\n' {
			t.Fatalf("octet %d of the body is %q", count, c)
		}
		count++
	}
	if count != n+2 {
		t.Errorf("body of %d octets", count)
	}
}

// TestSpill checks a body over SpillThreshold: stored in a file, Reader
// gives it twice and can seek, Close removes it.
func TestSpill(t *testing.T) {
	dir := t.TempDir()
	var in, want strings.Builder
	in.WriteString("Subject: big\n\n")
	want.WriteString("Subject: big\r\n" + gen + "\r\n")
	for i := 0; i < 5000; i++ {
		line := strings.Repeat(string(rune('a'+i%26)), i%80)
		in.WriteString(line + "\n")
		want.WriteString(line + "\r\n")
	}
	m, err := Prepare(strings.NewReader(in.String()), testOptions(Options{SpillThreshold: 1024, TempDir: dir}))
	if err != nil {
		t.Fatal(err)
	}
	if m.body.file == nil {
		t.Fatal("body not spilled")
	}
	for i := 0; i < 2; i++ {
		if got := readAll(t, m); got != want.String() {
			t.Fatalf("read %d: output differs (%d octets, want %d)", i, len(got), want.Len())
		}
	}
	checkInvariants(t, m, []byte(want.String()))
	r, _ := m.Reader()
	if _, err := r.Seek(-8, io.SeekEnd); err != nil {
		t.Fatal(err)
	}
	tail, _ := io.ReadAll(r)
	if w := want.String(); string(tail) != w[len(w)-8:] {
		t.Errorf("tail after Seek = %q", tail)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Reader(); !errors.Is(err, ErrClosed) {
		t.Errorf("Reader after Close: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("files left in TempDir: %v", entries)
	}
}

// TestDrainLarge: after a lone dot a large rest is read to the end.
func TestDrainLarge(t *testing.T) {
	r := io.MultiReader(strings.NewReader("Subject: x\n\nbody\n.\n"), &repeatReader{c: 'z', n: 5 << 20})
	m, err := Prepare(r, testOptions(Options{}))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Drained != 5<<20 {
		t.Errorf("Drained = %d", m.Drained)
	}
	if got := readAll(t, m); got != "Subject: x\r\n"+gen+"\r\nbody\r\n" {
		t.Errorf("got %q", got)
	}
}

// TestPieces feeds the input one octet at a time, so every line ending
// and every dot straddles a read.
func TestPieces(t *testing.T) {
	in := "From x\nSubject: a\rb\r\r\nTo: c@d.org\r\n\r\nl1\r.\r\n..\n.x\r\nend\r.\n"
	whole, _ := prepare(t, in, Options{})
	m, err := Prepare(iotest.OneByteReader(strings.NewReader(in)), testOptions(Options{}))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if got := readAll(t, m); got != whole {
		t.Errorf("one octet at a time:\n got %q\nwant %q", got, whole)
	}
	want := "Subject: a\r\n b\r\nTo: c@d.org\r\n" + gen + "\r\nl1\r\n"
	if whole != want {
		t.Errorf("got %q\nwant %q", whole, want)
	}
}

func TestDisplayName(t *testing.T) {
	for _, name := range []string{"Jörg Müller", "Müller, Jörg", "日本語の名前がとても長い場合にはいくつかの符号化語に分けられます", "a\"b(c)é"} {
		v := fromValue(name, "u@x.org", "h")
		var dec mime.WordDecoder
		got, err := dec.DecodeHeader(strings.TrimSuffix(v, " <u@x.org>"))
		if err != nil || got != name {
			t.Errorf("fromValue(%q) = %q, decodes to %q, %v", name, v, got, err)
		}
		if !isASCII([]byte(v)) {
			t.Errorf("fromValue(%q) = %q is not ASCII", name, v)
		}
	}
}

// BenchmarkPrepareTypical prepares a typical 2 KB message of PHP's
// mail() or cron: CRLF headers, LF body, -t -i, Qualify.
func BenchmarkPrepareTypical(b *testing.B) {
	var in strings.Builder
	in.WriteString("To: Alice Example <alice@example.com>, bob\r\nSubject: Your order #4711\r\n" +
		"X-PHP-Originating-Script: 33:shop.php\r\nFrom: Shop <shop@localhost>\r\nReply-To: support\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	for in.Len() < 2048 {
		in.WriteString("Thank you for your order. It will ship within two business days.\n")
	}
	msg := in.String()
	o := Options{ExtractRecipients: true, IgnoreDots: true, Qualify: testQualify,
		Hostname: "host.example", Sender: "www-data@example.org", Now: func() time.Time { return testNow }}
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		m, err := Prepare(strings.NewReader(msg), o)
		if err != nil {
			b.Fatal(err)
		}
		m.Close()
	}
}

// TestLargeHeader runs inputs near MaxHeaderBytes that would take
// minutes with a quadratic step: 100 000 addresses to qualify in one
// field, and a field of blanks to fold.
func TestLargeHeader(t *testing.T) {
	addrs := "To: " + strings.TrimSuffix(strings.Repeat("root, ", 100000), ", ") + "\n"
	blanks := "X-Blank: a" + strings.Repeat(" ", 400000) + "b\n"
	for _, in := range []string{addrs, blanks, addrs + blanks} {
		start := time.Now()
		_, m := prepare(t, in+"\n", Options{ExtractRecipients: true, Qualify: testQualify})
		t.Logf("%d octets of header in %v", len(in), time.Since(start))
		if strings.HasPrefix(in, "To:") && (len(m.Recipients) != 1 || strings.Count(string(m.Header), "admin@example.org") != 100000) {
			t.Errorf("Recipients %q, header not qualified", m.Recipients)
		}
	}
}

// TestSpillFailures: a spill file that cannot be created is an I/O error;
// a read error after spilling leaves no file behind.
func TestSpillFailures(t *testing.T) {
	body := strings.Repeat("line\n", 1000)
	_, err := Prepare(strings.NewReader("Subject: x\n\n"+body), testOptions(Options{SpillThreshold: 100, TempDir: "/nonexistent/handoff"}))
	var e *Error
	var pe *os.PathError
	if err == nil || errors.As(err, &e) || !errors.As(err, &pe) {
		t.Errorf("uncreatable spill file: got %v, want a wrapped *os.PathError", err)
	}

	dir := t.TempDir()
	r := io.MultiReader(strings.NewReader("Subject: x\n\n"+body), iotest.ErrReader(io.ErrUnexpectedEOF))
	_, err = Prepare(r, testOptions(Options{SpillThreshold: 100, TempDir: dir}))
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("read error after spilling: got %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("files left in TempDir: %v", entries)
	}
}

// RewriteFrom replaces the From: addresses and keeps display names and
// everything else; other fields are untouched.
func TestRewriteFrom(t *testing.T) {
	in := "From: \"Web App\" <www-data@web1.example.com>, other@example.net\r\nTo: bob@example.net\r\nReply-To: www-data@web1.example.com\r\nDate: x\r\nMessage-ID: <a@b>\r\n\r\nbody\r\n"
	m, err := Prepare(strings.NewReader(in), Options{Sender: "noreply@example.com", Hostname: "h.example.com", RewriteFrom: "noreply@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	want := "From: \"Web App\" <noreply@example.com>, noreply@example.com\r\nTo: bob@example.net\r\nReply-To: www-data@web1.example.com\r\nDate: x\r\nMessage-ID: <a@b>\r\n\r\n"
	if string(m.Header) != want {
		t.Errorf("header\n%q\nwant\n%q", m.Header, want)
	}
}
