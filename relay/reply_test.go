package relay

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// readOne runs readReply on s with the client's buffer size.
func readOne(s string) (*Reply, error) {
	return readReply(bufio.NewReaderSize(strings.NewReader(s), 4096), nil)
}

func TestReadReply(t *testing.T) {
	for _, tc := range []struct {
		in    string
		code  int
		enh   EnhancedCode
		lines []string
	}{
		{"250 ok\r\n", 250, EnhancedCode{}, []string{"ok"}},
		{"250\r\n", 250, EnhancedCode{}, []string{""}},
		{"250 \r\n", 250, EnhancedCode{}, []string{""}},
		{"250 ok\n", 250, EnhancedCode{}, []string{"ok"}},       // bare LF
		{"250 ok  \t\r\n", 250, EnhancedCode{}, []string{"ok"}}, // trailing blanks dropped
		{"250  two spaces\r\n", 250, EnhancedCode{}, []string{" two spaces"}},
		{"220 mx.example ESMTP\r\n", 220, EnhancedCode{}, []string{"mx.example ESMTP"}},
		{"250-mx.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n", 250, EnhancedCode{}, []string{"mx.example", "PIPELINING", "8BITMIME"}},
		{"250-first\n250-\r\n250\r\n", 250, EnhancedCode{}, []string{"first", "", ""}},
		{"550 5.1.1 x\r\n", 550, EnhancedCode{5, 1, 1}, []string{"x"}},
		{"550 5.1.1\tx\r\n", 550, EnhancedCode{5, 1, 1}, []string{"x"}},
		{"550 4.1.1 x\r\n", 550, EnhancedCode{}, []string{"4.1.1 x"}}, // class mismatch: ignored
		{"450 5.1.1 x\r\n", 450, EnhancedCode{}, []string{"5.1.1 x"}},
		{"250 2.0.0\r\n", 250, EnhancedCode{2, 0, 0}, []string{""}},
		{"250 2.0.0 \r\n", 250, EnhancedCode{2, 0, 0}, []string{""}},
		{"550 5.1.1x\r\n", 550, EnhancedCode{}, []string{"5.1.1x"}},
		{"550 5.1.1.1 x\r\n", 550, EnhancedCode{}, []string{"5.1.1.1 x"}},
		{"550 5.123.456 x\r\n", 550, EnhancedCode{5, 123, 456}, []string{"x"}},
		{"550 5.1234.1 x\r\n", 550, EnhancedCode{}, []string{"5.1234.1 x"}},
		{"550 55.1.1 x\r\n", 550, EnhancedCode{}, []string{"55.1.1 x"}},
		{"550 5..1 x\r\n", 550, EnhancedCode{}, []string{"5..1 x"}},
		{"550 5.1. x\r\n", 550, EnhancedCode{}, []string{"5.1. x"}},
		{"550 5.1\r\n", 550, EnhancedCode{}, []string{"5.1"}},
		{"354 5.0.0 go\r\n", 354, EnhancedCode{}, []string{"5.0.0 go"}}, // 3xx: never
		{"354 3.0.0 go\r\n", 354, EnhancedCode{}, []string{"3.0.0 go"}},
		{"354 End data with <CR><LF>.<CR><LF>\r\n", 354, EnhancedCode{}, []string{"End data with <CR><LF>.<CR><LF>"}},
		// Multi-line with enhanced codes: the first line's is the reply's;
		// every line loses its own.
		{"550-5.1.1 The email account that you tried to reach does not exist.\r\n550-5.1.1 Please try double-checking.\r\n550 5.1.1 https://support.google.com/mail/?p=NoSuchUser - gsmtp\r\n",
			550, EnhancedCode{5, 1, 1}, []string{"The email account that you tried to reach does not exist.", "Please try double-checking.", "https://support.google.com/mail/?p=NoSuchUser - gsmtp"}},
		{"452-4.2.2 over quota\r\n452 no code here\r\n", 452, EnhancedCode{4, 2, 2}, []string{"over quota", "no code here"}},
		{"452-no code first\r\n452 4.2.2 then one\r\n", 452, EnhancedCode{}, []string{"no code first", "then one"}},
	} {
		r, err := readOne(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if r.Code != tc.code || r.Enhanced != tc.enh || !slices.Equal(r.Lines, tc.lines) {
			t.Errorf("%q: got %d %v %q, want %d %v %q", tc.in, r.Code, r.Enhanced, r.Lines, tc.code, tc.enh, tc.lines)
		}
	}
}

// A reply ends at its last line: what follows is the next reply.
func TestReadReplySequence(t *testing.T) {
	br := bufio.NewReader(strings.NewReader("250-a\r\n250 b\r\n354 go\r\n221 bye\n"))
	var raw []string
	for _, want := range []string{"250 a b", "354 go", "221 bye"} {
		r, err := readReply(br, func(l string) { raw = append(raw, l) })
		if err != nil || r.String() != want {
			t.Fatalf("got %v %v, want %q", r, err, want)
		}
	}
	if _, err := readReply(br, nil); err != io.EOF {
		t.Errorf("after the last reply: %v, want io.EOF", err)
	}
	if want := []string{"250-a", "250 b", "354 go", "221 bye"}; !slices.Equal(raw, want) {
		t.Errorf("raw lines %q, want %q", raw, want)
	}
}

func TestReadReplyMalformed(t *testing.T) {
	for _, in := range []string{
		"250-a\r\n251 b\r\n", // continuation with another code
		"250-a\r\n550 b\r\n",
		"150 x\r\n", "199\r\n", "650 x\r\n", "099 x\r\n", "000\r\n",
		"abc\r\n", "2x0 ok\r\n", "25\r\n", "\r\n", "\n", " 250 ok\r\n",
		"250x\r\n", "2500\r\n", "250\tok\r\n", "250_ok\r\n",
		"250-a\r\nabc\r\n",
	} {
		r, err := readOne(in)
		if !errors.Is(err, errMalformed) || r != nil {
			t.Errorf("%q: got %v, %v; want errMalformed", in, r, err)
		}
	}
}

// A reply cut off by the end of the stream is an I/O error, not a
// malformed reply.
func TestReadReplyEOF(t *testing.T) {
	for _, in := range []string{"", "250 ok", "250-a\r\n", "250-a\r\n250 b"} {
		r, err := readOne(in)
		if err != io.EOF || r != nil {
			t.Errorf("%q: got %v, %v; want io.EOF", in, r, err)
		}
	}
}

func TestReadReplyLineLimit(t *testing.T) {
	long := func(n int) string { // a line of n bytes, CRLF included
		return "250 " + strings.Repeat("a", n-6) + "\r\n"
	}
	for _, size := range []int{4096, 16, 1 << 16} { // limit independent of the buffer
		read := func(s string) (*Reply, error) {
			return readReply(bufio.NewReaderSize(strings.NewReader(s), size), nil)
		}
		if r, err := read(long(MaxReplyLine)); err != nil || len(r.Lines[0]) != MaxReplyLine-6 {
			t.Errorf("buffer %d: line of exactly %d bytes: %v", size, MaxReplyLine, err)
		}
		if _, err := read(long(MaxReplyLine + 1)); !errors.Is(err, errMalformed) {
			t.Errorf("buffer %d: line of %d bytes: %v", size, MaxReplyLine+1, err)
		}
		// The same limit on a later line, and with a bare LF.
		if _, err := read("250-a\r\n" + long(MaxReplyLine+1)); !errors.Is(err, errMalformed) {
			t.Errorf("buffer %d: long second line: %v", size, err)
		}
		bare := "250 " + strings.Repeat("b", MaxReplyLine-5) + "\n"
		if _, err := read(bare); err != nil || len(bare) != MaxReplyLine {
			t.Errorf("buffer %d: bare-LF line of %d bytes: %v", size, len(bare), err)
		}
		if _, err := read("250 b" + bare[4:]); !errors.Is(err, errMalformed) {
			t.Errorf("buffer %d: bare-LF line of %d bytes accepted", size, len(bare)+1)
		}
	}
}

func TestReadReplyLineCount(t *testing.T) {
	reply := func(n int) string {
		return strings.Repeat("250-x\r\n", n-1) + "250 x\r\n"
	}
	r, err := readOne(reply(MaxReplyLines))
	if err != nil || len(r.Lines) != MaxReplyLines {
		t.Fatalf("%d lines: %v", MaxReplyLines, err)
	}
	if _, err := readOne(reply(MaxReplyLines + 1)); !errors.Is(err, errMalformed) {
		t.Errorf("%d lines: %v", MaxReplyLines+1, err)
	}
}

func TestReadReplyByteLimit(t *testing.T) {
	full := "250-" + strings.Repeat("a", MaxReplyLine-6) + "\r\n" // MaxReplyLine bytes
	// total counts each line with its CRLF: 7 full lines, one of x bytes,
	// and a 5-byte "250" line.
	reply := func(x int) string {
		return strings.Repeat(full, 7) + "250-" + strings.Repeat("b", x-6) + "\r\n" + "250\r\n"
	}
	exact := reply(MaxReplyBytes - 7*MaxReplyLine - 5)
	if len(exact) != MaxReplyBytes {
		t.Fatalf("test reply is %d bytes", len(exact))
	}
	if r, err := readOne(exact); err != nil || len(r.Lines) != 9 {
		t.Errorf("reply of exactly %d bytes: %v", MaxReplyBytes, err)
	}
	if _, err := readOne(reply(MaxReplyBytes - 7*MaxReplyLine - 4)); !errors.Is(err, errMalformed) {
		t.Errorf("reply of %d bytes: %v", MaxReplyBytes+1, err)
	}
	// Many short lines that stay under the line count still hit the byte
	// limit.
	if _, err := readOne(strings.Repeat("250-"+strings.Repeat("c", 100)+"\r\n", 700) + "250\r\n"); !errors.Is(err, errMalformed) {
		t.Errorf("700 lines of 106 bytes: %v", err)
	}
}

func TestParseReplyLine(t *testing.T) {
	for _, tc := range []struct {
		in   string
		code int
		more bool
		text string
		bad  bool
	}{
		{in: "250", code: 250},
		{in: "250 ", code: 250},
		{in: "250-", code: 250, more: true},
		{in: "250-PIPELINING", code: 250, more: true, text: "PIPELINING"},
		{in: "599 x ", code: 599, text: "x"},
		{in: "200 a\tb", code: 200, text: "a\tb"},
		{in: "25", bad: true},
		{in: "", bad: true},
		{in: "2500", bad: true},
		{in: "250x", bad: true},
		{in: "abc", bad: true},
		{in: "a50 x", bad: true},
		{in: "100 x", bad: true},
		{in: "600 x", bad: true},
		{in: "999", bad: true},
	} {
		code, more, text, err := parseReplyLine([]byte(tc.in))
		if tc.bad {
			if !errors.Is(err, errMalformed) {
				t.Errorf("%q: err %v, want errMalformed", tc.in, err)
			}
			continue
		}
		if err != nil || code != tc.code || more != tc.more || text != tc.text {
			t.Errorf("%q: got %d %v %q %v", tc.in, code, more, text, err)
		}
	}
}

func TestParseEnhanced(t *testing.T) {
	for _, tc := range []struct {
		code int
		in   string
		enh  EnhancedCode
		rest string
	}{
		{250, "2.0.0 ok", EnhancedCode{2, 0, 0}, "ok"},
		{250, "2.0.0", EnhancedCode{2, 0, 0}, ""},
		{250, "2.0.0   ok", EnhancedCode{2, 0, 0}, "ok"},
		{550, "5.7.1 blocked", EnhancedCode{5, 7, 1}, "blocked"},
		{550, "5.999.999 x", EnhancedCode{5, 999, 999}, "x"},
		{550, "5.01.001 x", EnhancedCode{5, 1, 1}, "x"},
		{550, "4.7.1 x", EnhancedCode{}, "4.7.1 x"},
		{550, "5.7.1x", EnhancedCode{}, "5.7.1x"},
		{550, "5.7.1.", EnhancedCode{}, "5.7.1."},
		{550, "5.7", EnhancedCode{}, "5.7"},
		{550, "5.7.", EnhancedCode{}, "5.7."},
		{550, ".5.7.1", EnhancedCode{}, ".5.7.1"},
		{550, "5.a.1 x", EnhancedCode{}, "5.a.1 x"},
		{550, "x5.7.1", EnhancedCode{}, "x5.7.1"},
		{550, "", EnhancedCode{}, ""},
		{354, "3.0.0 go", EnhancedCode{}, "3.0.0 go"},
		{354, "5.0.0 go", EnhancedCode{}, "5.0.0 go"},
	} {
		enh, rest := parseEnhanced(tc.code, tc.in)
		if enh != tc.enh || rest != tc.rest {
			t.Errorf("%d %q: got %v %q, want %v %q", tc.code, tc.in, enh, rest, tc.enh, tc.rest)
		}
	}
}

func TestReplyStringText(t *testing.T) {
	r, err := readOne("550-5.1.1 first\r\n550 5.1.1 second\r\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := r.String(); got != "550 5.1.1 first second" {
		t.Errorf("String %q", got)
	}
	if got := r.Text(); got != "first\nsecond" {
		t.Errorf("Text %q", got)
	}
	if r.Positive() {
		t.Error("550 positive")
	}
	for _, tc := range []struct {
		r    Reply
		str  string
		text string
	}{
		{Reply{Code: 250}, "250", ""},
		{Reply{Code: 250, Lines: []string{""}}, "250", ""},
		{Reply{Code: 250, Enhanced: EnhancedCode{2, 0, 0}, Lines: []string{""}}, "250 2.0.0", ""},
		{Reply{Code: 221, Lines: []string{"bye"}}, "221 bye", "bye"},
		{Reply{Code: 250, Lines: []string{"a", "", "b"}}, "250 a  b", "a\n\nb"},
	} {
		if got := tc.r.String(); got != tc.str {
			t.Errorf("%+v: String %q, want %q", tc.r, got, tc.str)
		}
		if got := tc.r.Text(); got != tc.text {
			t.Errorf("%+v: Text %q, want %q", tc.r, got, tc.text)
		}
		if !tc.r.Positive() != (tc.r.Code/100 != 2) {
			t.Errorf("%+v: Positive %v", tc.r, tc.r.Positive())
		}
	}
}

func TestEnhancedCodeString(t *testing.T) {
	for _, tc := range []struct {
		e    EnhancedCode
		want string
	}{
		{EnhancedCode{}, ""},
		{EnhancedCode{5, 1, 1}, "5.1.1"},
		{EnhancedCode{2, 0, 0}, "2.0.0"},
		{EnhancedCode{4, 123, 456}, "4.123.456"},
	} {
		if got := tc.e.String(); got != tc.want {
			t.Errorf("%v: %q, want %q", [3]int(tc.e), got, tc.want)
		}
	}
}

// --- EHLO keywords -------------------------------------------------------

func TestParseExtensions(t *testing.T) {
	ext, auth := parseExtensions([]string{
		"pipelining",
		"Size 10240000",
		"8BITMIME",
		"X-EXPS GSSAPI NTLM",
		"AUTH=LOGIN PLAIN",
		"ENHANCEDSTATUSCODES  ",
		"  DSN",
		"auth plain cram-md5",
		"AUTH XOAUTH2 login",
		"-BAD",
		"BAD_KEYWORD x",
		"",
		"AUTH=",
		"Ünicode x",
		"SMTPUTF8",
	})
	wantExt := map[string]string{
		"PIPELINING":          "",
		"SIZE":                "10240000",
		"8BITMIME":            "",
		"X-EXPS":              "GSSAPI NTLM",
		"AUTH":                "plain cram-md5 XOAUTH2 login",
		"ENHANCEDSTATUSCODES": "",
		"DSN":                 "",
		"SMTPUTF8":            "",
	}
	if len(ext) != len(wantExt) {
		t.Errorf("extensions %q, want %q", ext, wantExt)
	}
	for k, v := range wantExt {
		if got, ok := ext[k]; !ok || got != v {
			t.Errorf("%s: %q %v, want %q", k, got, ok, v)
		}
	}
	if want := []string{"LOGIN", "PLAIN", "CRAM-MD5", "XOAUTH2"}; !slices.Equal(auth, want) {
		t.Errorf("AUTH mechanisms %q, want %q", auth, want)
	}

	// The old form alone, and after the new one.
	ext, auth = parseExtensions([]string{"AUTH=LOGIN PLAIN"})
	if _, ok := ext["AUTH"]; !ok || !slices.Equal(auth, []string{"LOGIN", "PLAIN"}) {
		t.Errorf("old form alone: %q %q", ext, auth)
	}
	ext, auth = parseExtensions([]string{"AUTH PLAIN CRAM-MD5", "AUTH=LOGIN PLAIN"})
	if ext["AUTH"] != "PLAIN CRAM-MD5" || !slices.Equal(auth, []string{"PLAIN", "CRAM-MD5", "LOGIN"}) {
		t.Errorf("new then old: %q %q", ext, auth)
	}
	ext, auth = parseExtensions([]string{"AUTH"})
	if v, ok := ext["AUTH"]; !ok || v != "" || len(auth) != 0 {
		t.Errorf("AUTH without mechanisms: %q %q", ext, auth)
	}
	ext, auth = parseExtensions(nil)
	if ext == nil || len(ext) != 0 || auth != nil {
		t.Errorf("no lines: %v %v", ext, auth)
	}
}

func TestValidKeyword(t *testing.T) {
	for kw, want := range map[string]bool{
		"SIZE": true, "size": true, "8BITMIME": true, "X-EXPS": true, "X-": true, "A": true, "9": true,
		"": false, "-X": false, "X_Y": false, "AUTH=LOGIN": false, "SIZE\t": false, "SI ZE": false,
		"Ü": false, "X.Y": false, "\x00": false,
	} {
		if got := validKeyword(kw); got != want {
			t.Errorf("validKeyword(%q) = %v", kw, got)
		}
	}
}

// SIZE as a Client reads it (RFC 1870 §4: "SIZE 0" or no number means no
// fixed limit).
func TestMaxSize(t *testing.T) {
	for _, tc := range []struct {
		ext  string
		size int64
		ok   bool
	}{
		{"SIZE", 0, false},
		{"SIZE 0", 0, false},
		{"SIZE 1000", 1000, true},
		{"size 35882577", 35882577, true},
		{"SIZE x", 0, false},
		{"SIZE -5", 0, false},
		{"8BITMIME", 0, false}, // no SIZE at all
	} {
		f := startFake(t, func(s *session) {
			if !s.greetEHLO(tc.ext) {
				return
			}
			s.quit()
		})
		c := dialFake(t, f, plainOpts(f))
		size, ok := c.MaxSize()
		if size != tc.size || ok != tc.ok {
			t.Errorf("%q: MaxSize %d %v, want %d %v", tc.ext, size, ok, tc.size, tc.ok)
		}
		_, has := c.Extension("Size")
		if has != strings.HasPrefix(strings.ToUpper(tc.ext), "SIZE") {
			t.Errorf("%q: Extension(Size) %v", tc.ext, has)
		}
		c.Quit(bg)
		f.wait()
	}
}

// --- fuzzing -----------------------------------------------------------------

// Realistic replies, as servers send them.
var replySeeds = []string{
	// Postfix EHLO.
	"250-mail.example.org\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n250-ETRN\r\n250-STARTTLS\r\n250-AUTH PLAIN LOGIN\r\n250-AUTH=PLAIN LOGIN\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n",
	// Dovecot LHLO.
	"250-mail.example.org\r\n250-8BITMIME\r\n250-CHUNKING\r\n250-ENHANCEDSTATUSCODES\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 SMTPUTF8\r\n",
	// Gmail's EHLO, before and after STARTTLS.
	"250-smtp.gmail.com at your service, [203.0.113.5]\r\n250-SIZE 35882577\r\n250-8BITMIME\r\n250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 SMTPUTF8\r\n",
	"250-smtp.gmail.com at your service, [203.0.113.5]\r\n250-SIZE 35882577\r\n250-8BITMIME\r\n250-AUTH LOGIN PLAIN XOAUTH2 PLAIN-CLIENTTOKEN OAUTHBEARER XOAUTH\r\n250-ENHANCEDSTATUSCODES\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 SMTPUTF8\r\n",
	// Gmail's multi-line 550.
	"550-5.1.1 The email account that you tried to reach does not exist. Please try\r\n550-5.1.1 double-checking the recipient's email address for typos or\r\n550-5.1.1 unnecessary spaces. For more information, go to\r\n550 5.1.1  https://support.google.com/mail/?p=NoSuchUser a1si123456qkb.12 - gsmtp\r\n",
	// Greetings, 354, 421, code only, bare LF, pipelined replies.
	"220 mx.google.com ESMTP a1si123456qkb.12 - gsmtp\r\n",
	"354 End data with <CR><LF>.<CR><LF>\r\n",
	"421 4.7.0 Try again later, closing connection.\r\n",
	"250\r\n",
	"250 2.0.0 Ok: queued as 4Y1Z2x3y4z\n",
	"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n554 5.5.1 Error: no valid recipients\r\n354 go\r\n",
	"250-a\r\n251 b\r\n",
}

func FuzzReadReply(f *testing.F) {
	for _, s := range replySeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		br := bufio.NewReaderSize(bytes.NewReader(data), 4096)
		for range 64 {
			var raw []string
			r, err := readReply(br, func(l string) { raw = append(raw, l) })
			if err != nil {
				if r != nil {
					t.Fatalf("reply %+v with error %v", r, err)
				}
				if !errors.Is(err, errMalformed) && err != io.EOF {
					t.Fatalf("error %v neither malformed nor io.EOF", err)
				}
				return
			}
			if r.Code < 200 || r.Code > 599 {
				t.Fatalf("code %d", r.Code)
			}
			if len(r.Lines) == 0 || len(r.Lines) > MaxReplyLines || len(r.Lines) != len(raw) {
				t.Fatalf("%d lines (%d raw)", len(r.Lines), len(raw))
			}
			total := 0
			for i, l := range r.Lines {
				if len(l) > MaxReplyLine {
					t.Fatalf("line %d is %d bytes", i, len(l))
				}
				if strings.Contains(l, "\n") || strings.TrimRight(l, " \t") != l {
					t.Fatalf("line %d %q", i, l)
				}
				if !strings.HasSuffix(strings.TrimRight(raw[i], " \t"), l) {
					t.Fatalf("line %q is not the end of raw %q", l, raw[i])
				}
				total += len(raw[i]) + 2
			}
			if total > MaxReplyBytes {
				t.Fatalf("reply of %d bytes", total)
			}
			if e := r.Enhanced; e != (EnhancedCode{}) {
				if e[0] != r.Code/100 || r.Code/100 == 3 || e[1] > 999 || e[2] > 999 {
					t.Fatalf("enhanced code %v for %d", e, r.Code)
				}
				if !strings.HasPrefix(r.String(), strconv.Itoa(r.Code)+" "+e.String()) {
					t.Fatalf("String %q lacks %v", r.String(), e)
				}
			}
		}
	})
}

// ehloSeeds are EHLO/LHLO replies as text, one line per line, without
// the codes.
var ehloSeeds = []string{
	"mail.example.org\nPIPELINING\nSIZE 10240000\nVRFY\nETRN\nSTARTTLS\nAUTH PLAIN LOGIN\nAUTH=PLAIN LOGIN\nENHANCEDSTATUSCODES\n8BITMIME\nDSN\nSMTPUTF8\nCHUNKING",
	"mail.example.org\n8BITMIME\nCHUNKING\nENHANCEDSTATUSCODES\nPIPELINING\nSTARTTLS\nSMTPUTF8",
	"smtp.gmail.com at your service, [203.0.113.5]\nSIZE 35882577\n8BITMIME\nAUTH LOGIN PLAIN XOAUTH2 PLAIN-CLIENTTOKEN OAUTHBEARER XOAUTH\nENHANCEDSTATUSCODES\nPIPELINING\nCHUNKING\nSMTPUTF8",
	"exchange.example.com Hello [192.0.2.1]\r\nSIZE 37748736\r\nPIPELINING\r\nDSN\r\nENHANCEDSTATUSCODES\r\nSTARTTLS\r\nX-ANONYMOUSTLS\r\nAUTH NTLM\r\nX-EXPS GSSAPI NTLM\r\n8BITMIME\r\nBINARYMIME\r\nCHUNKING\r\nXRDST",
	"old.example\nAUTH=LOGIN\nauth login plain\nsize",
	"x\n-BAD\nBAD_KW\n\nAUTH=\nÜ x",
}

func FuzzParseExtensions(f *testing.F) {
	for _, s := range ehloSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lines := strings.Split(string(data), "\n")
		for i, l := range lines {
			lines[i] = strings.TrimSuffix(l, "\r")
		}
		ext, auth := parseExtensions(lines[1:])
		if ext == nil {
			t.Fatal("nil map")
		}
		for k, v := range ext {
			if !validKeyword(k) || strings.ToUpper(k) != k {
				t.Fatalf("keyword %q", k)
			}
			if strings.TrimSpace(v) != v {
				t.Fatalf("%s: parameters %q not trimmed", k, v)
			}
		}
		seen := map[string]bool{}
		for _, m := range auth {
			if seen[m] {
				t.Fatalf("mechanism %q twice in %q", m, auth)
			}
			seen[m] = true
			if m == "" || len(strings.Fields(m)) != 1 {
				t.Fatalf("mechanism %q", m)
			}
		}
		if len(auth) > 0 {
			if _, ok := ext["AUTH"]; !ok {
				t.Fatalf("mechanisms %q without AUTH", auth)
			}
		}
		// Every line that starts with a valid keyword is listed.
		for _, l := range lines[1:] {
			kw, _, _ := strings.Cut(strings.TrimSpace(l), " ")
			if validKeyword(kw) {
				if _, ok := ext[strings.ToUpper(kw)]; !ok {
					t.Fatalf("line %q: keyword missing from %q", l, ext)
				}
			}
		}
	})
}
