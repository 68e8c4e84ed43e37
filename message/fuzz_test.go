package message

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	gomail "github.com/emersion/go-message/mail"
)

// Seeds shared by the fuzz targets; testdata/fuzz holds more.
var fuzzSeeds = []string{
	"",
	".\n",
	"Subject: hi\r\nTo: root, Foo <a@b.org>\r\nBcc: c@d.org\r\n\r\nbody\n.\nafter\n",
	"From x\nFrom: root (Cron Daemon)\nTo: root\n\nout\r",
	"To: g: a@b.org, <c@d.org>;, undisclosed-recipients:;\nCc: \"x, y\" <e@f.org>\nResent-To: r@s.org\nResent-Bcc: t@u.org\n\n",
	"Subject: a\rb\r\r\nX: " + strings.Repeat("y", 1200) + "\n \n\n",
	"hello\rworld\n\x00\xff\n",
}

// FuzzPrepare: any input, with and without -i, prepares without panic
// into CRLF lines, a header block ending in CRLF CRLF with no Bcc, no
// Return-Path, no Content-Length and no line over 998 octets, Size
// octets long, readable twice.
func FuzzPrepare(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	dir := f.TempDir() // spill files are unlinked when created
	f.Fuzz(func(t *testing.T, data []byte, ignoreDots bool) {
		o := testOptions(Options{IgnoreDots: ignoreDots, Qualify: testQualify, FullName: "Fuzz Ünïcode", TempDir: dir})
		if len(data)%2 == 1 {
			o.SpillThreshold = 16
		}
		m, err := Prepare(bytes.NewReader(data), o)
		if err != nil {
			t.Fatalf("Prepare: %v", err)
		}
		defer m.Close()
		out := readAll(t, m)
		if again := readAll(t, m); again != out {
			t.Fatalf("second Reader differs")
		}
		checkInvariants(t, m, []byte(out))
		for _, line := range strings.Split(string(m.Header), "\r\n") {
			if line == "" || isWSP(line[0]) {
				continue
			}
			name, _, ok := strings.Cut(line, ":")
			if !ok {
				t.Fatalf("header line without colon: %q", line)
			}
			switch strings.ToLower(strings.TrimRight(name, " \t")) {
			case "bcc", "resent-bcc", "return-path", "content-length":
				t.Fatalf("dropped field in output: %q", line)
			}
		}
		var has8Bit, hasNUL bool
		scan([]byte(out), &has8Bit, &hasNUL)
		if has8Bit != m.Has8Bit || hasNUL != m.HasNUL {
			t.Fatalf("Has8Bit, HasNUL = %v, %v; output says %v, %v", m.Has8Bit, m.HasNUL, has8Bit, hasNUL)
		}
		if m.NeedsSMTPUTF8 && !m.Has8Bit {
			t.Fatalf("NeedsSMTPUTF8 without Has8Bit")
		}
		if ignoreDots && m.Drained != 0 || m.Drained > int64(len(data)) {
			t.Fatalf("Drained = %d of %d", m.Drained, len(data))
		}
		if !ignoreDots && m.body.n > 0 {
			body := out[len(m.Header):]
			if strings.HasPrefix(body, ".\r\n") || strings.Contains(body, "\r\n.\r\n") {
				t.Fatalf("lone dot in the body without -i")
			}
		}
	})
}

// FuzzParseAddressList: no panic; a one-line *Error or addresses that
// are non-empty, valid UTF-8, without control characters and that parse
// again to themselves; and every list Go's net/mail (behind go-message's
// mail.ParseAddressList) accepts gives the same addresses here.
func FuzzParseAddressList(f *testing.F) {
	for _, s := range []string{
		"root", "a@b.org, Foo <c@d.org>", `"Doe, John" <jd@x.org> (boss)`,
		"g: a@x.org, b@x.org;, undisclosed-recipients:;", "=?utf-8?q?J=C3=B6rg?= <j@x.org>",
		"<@r.org:a@x.org>", "john . doe @ x . org", "a@[192.0.2.1]", "jörg@bücher.example",
		`"a\"b"@x.org`, "a@x.org <a@x.org>", "(", "<", `"`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		addrs, err := ParseAddressList(s)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Field != "" {
				t.Fatalf("error %v (%T) is not an *Error without Field", err, err)
			}
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("error is not one line: %q", err)
			}
		}
		for _, a := range addrs {
			if a == "" || !utf8.ValidString(a) || hasControl(strings.ReplaceAll(a, "\t", " ")) {
				t.Fatalf("bad address %q from %q", a, s)
			}
			again, err := ParseAddressList(a)
			if err != nil || len(again) != 1 || again[0] != a {
				t.Fatalf("address %q parses again to %q, %v", a, again, err)
			}
		}
		if strings.ContainsAny(s, "\r\n\x00") {
			return
		}
		gm, gerr := gomail.ParseAddressList(s)
		if gerr != nil {
			return
		}
		if err != nil {
			t.Fatalf("net/mail accepts %q (%d addresses), we do not: %v", s, len(gm), err)
		}
		if len(gm) != len(addrs) {
			t.Fatalf("%q: net/mail gives %d addresses, we %d: %q", s, len(gm), len(addrs), addrs)
		}
		for i, a := range gm {
			if got := unquoteLocal(addrs[i]); got != a.Address {
				t.Fatalf("%q: address %d is %q, net/mail says %q", s, i, got, a.Address)
			}
		}
	})
}

// unquoteLocal writes a quoted local part as net/mail returns it: without
// quotes and backslashes.
func unquoteLocal(addr string) string {
	if !strings.HasPrefix(addr, `"`) {
		return addr
	}
	at := strings.LastIndexByte(addr, '@')
	if at < 1 || addr[at-1] != '"' {
		return addr
	}
	var b strings.Builder
	q := addr[1 : at-1]
	for i := 0; i < len(q); i++ {
		if q[i] == '\\' && i+1 < len(q) {
			i++
		}
		b.WriteByte(q[i])
	}
	return b.String() + addr[at:]
}

// FuzzExtractRecipients: -t on any header block either fails with an
// *Error naming a recipient field, or gives qualified, de-duplicated
// recipients that parse again to themselves, and a header block without
// Bcc.
func FuzzExtractRecipients(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Add([]byte("To: a@x.org, A@X.ORG\nCc: a@x.org\nBcc: root\n\n"))
	f.Add([]byte("Resent-Cc: <root@localhost>\nTo: ignored@x.org\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		o := testOptions(Options{ExtractRecipients: true, IgnoreDots: true, Qualify: testQualify})
		m, err := Prepare(bytes.NewReader(data), o)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T) is not an *Error", err, err)
			}
			switch strings.ToLower(e.Field) {
			case "to", "cc", "bcc", "resent-to", "resent-cc", "resent-bcc":
			default:
				t.Fatalf("error names field %q: %v", e.Field, err)
			}
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("error is not one line: %q", err)
			}
			return
		}
		defer m.Close()
		out, err := io.ReadAll(must(m.Reader()))
		if err != nil {
			t.Fatal(err)
		}
		checkInvariants(t, m, out)
		seen := make(map[string]bool)
		for _, r := range m.Recipients {
			if seen[dedupKey(r)] {
				t.Fatalf("duplicate recipient %q in %q", r, m.Recipients)
			}
			seen[dedupKey(r)] = true
			at := strings.LastIndexByte(r, '@')
			if at < 0 || strings.EqualFold(r[at+1:], "localhost") || strings.EqualFold(r[at+1:], "host.example") {
				t.Fatalf("recipient %q not qualified", r)
			}
			again, err := ParseAddressList(r)
			if err != nil || len(again) != 1 || again[0] != r {
				t.Fatalf("recipient %q parses again to %q, %v", r, again, err)
			}
		}
	})
}

func must(r io.ReadSeeker, err error) io.ReadSeeker {
	if err != nil {
		panic(err)
	}
	return r
}
