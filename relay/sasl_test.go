package relay

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

// saslMustStart calls m.Start and fails the test on error.
func saslMustStart(t *testing.T, m Mechanism) []byte {
	t.Helper()
	ir, err := m.Start()
	if err != nil {
		t.Fatalf("%s Start: %v", m.Name(), err)
	}
	return ir
}

// saslMustNext calls m.Next and fails the test on error.
func saslMustNext(t *testing.T, m Mechanism, challenge string) []byte {
	t.Helper()
	resp, err := m.Next([]byte(challenge))
	if err != nil {
		t.Fatalf("%s Next(%q): %v", m.Name(), challenge, err)
	}
	return resp
}

// saslWantNextErr calls m.Next and fails the test unless it returns an error
// wrapping want (any error if want is nil) and a nil response.
func saslWantNextErr(t *testing.T, m Mechanism, challenge string, want error) error {
	t.Helper()
	resp, err := m.Next([]byte(challenge))
	if err == nil {
		t.Fatalf("%s Next(%q) = %q, want an error", m.Name(), challenge, resp)
	}
	if want != nil && !errors.Is(err, want) {
		t.Fatalf("%s Next(%q) error = %v, want one wrapping %v", m.Name(), challenge, err, want)
	}
	if resp != nil {
		t.Errorf("%s Next(%q) returned %q with its error", m.Name(), challenge, resp)
	}
	return err
}

func TestPlainVectors(t *testing.T) {
	tests := []struct {
		identity, user, pass string
		want                 string // base64 of the initial response
	}{
		{"", "psu", "doesnotexist", "AHBzdQBkb2Vzbm90ZXhpc3Q="},
		{"", "Mr.A@somewhere.com", "somepassword", "AE1yLkFAc29tZXdoZXJlLmNvbQBzb21lcGFzc3dvcmQ="},
	}
	for _, tt := range tests {
		m := Plain(tt.identity, tt.user, tt.pass)
		if m.Name() != "PLAIN" {
			t.Errorf("Name() = %q", m.Name())
		}
		ir := saslMustStart(t, m)
		if got := base64.StdEncoding.EncodeToString(ir); got != tt.want {
			t.Errorf("Plain(%q, %q, ...) initial response = %s, want %s", tt.identity, tt.user, got, tt.want)
		}
	}
}

func TestPlainIdentity(t *testing.T) {
	ir := saslMustStart(t, Plain("admin", "user", "pw"))
	if want := "admin\x00user\x00pw"; string(ir) != want {
		t.Errorf("initial response = %q, want %q", ir, want)
	}
}

func TestPlainUTF8Password(t *testing.T) {
	// No SASLprep: the UTF-8 bytes go through unchanged, even a
	// decomposed "e" + combining acute accent.
	pass := "pässwörd-€-e\u0301"
	ir := saslMustStart(t, Plain("", "jöe", pass))
	want := append([]byte("\x00j\xc3\xb6e\x00"), pass...)
	if !bytes.Equal(ir, want) {
		t.Errorf("initial response = %q, want %q", ir, want)
	}
}

func TestPlainEmptyChallengeResendsOnce(t *testing.T) {
	m := Plain("", "psu", "doesnotexist")
	ir := saslMustStart(t, m)
	resp := saslMustNext(t, m, "")
	if !bytes.Equal(resp, ir) {
		t.Errorf("Next(\"\") = %q, want the initial response %q", resp, ir)
	}
	saslWantNextErr(t, m, "", errSASLUnexpectedChallenge)

	// A new Start allows one resend again.
	saslMustStart(t, m)
	saslMustNext(t, m, "")
}

func TestPlainNonEmptyChallenge(t *testing.T) {
	m := Plain("", "psu", "doesnotexist")
	saslMustStart(t, m)
	saslWantNextErr(t, m, "something", errSASLUnexpectedChallenge)
}

func TestPlainNULInCredential(t *testing.T) {
	for _, m := range []Mechanism{
		Plain("a\x00b", "u", "p"),
		Plain("", "u\x00", "p"),
		Plain("", "u", "p\x00ssword"),
	} {
		ir, err := m.Start()
		if err == nil || !errors.Is(err, errSASLInvalidCredential) {
			t.Errorf("Start() = %q, %v; want errSASLInvalidCredential", ir, err)
		}
		if err != nil && strings.Contains(err.Error(), "ssword") {
			t.Errorf("error %q reveals the password", err)
		}
	}
}

func TestLogin(t *testing.T) {
	m := Login("Mr.A@somewhere.com", "somepassword")
	if m.Name() != "LOGIN" {
		t.Errorf("Name() = %q", m.Name())
	}
	if ir := saslMustStart(t, m); ir != nil {
		t.Fatalf("Start() = %q, want nil (no initial response)", ir)
	}
	if got := saslMustNext(t, m, "Username:"); string(got) != "Mr.A@somewhere.com" {
		t.Errorf("first Next = %q, want the user name", got)
	}
	if got := saslMustNext(t, m, "Password:"); string(got) != "somepassword" {
		t.Errorf("second Next = %q, want the password", got)
	}
	saslWantNextErr(t, m, "Again:", errSASLUnexpectedChallenge)
}

func TestLoginIgnoresChallengeText(t *testing.T) {
	// Some servers send other prompts, or none; the order is all that
	// counts.
	m := Login("user", "pass")
	saslMustStart(t, m)
	if got := saslMustNext(t, m, "Password:"); string(got) != "user" {
		t.Errorf("first Next = %q, want the user name", got)
	}
	if got := saslMustNext(t, m, ""); string(got) != "pass" {
		t.Errorf("second Next = %q, want the password", got)
	}
	saslWantNextErr(t, m, "", errSASLUnexpectedChallenge)

	// Start begins again.
	saslMustStart(t, m)
	if got := saslMustNext(t, m, "VXNlcm5hbWU6"); string(got) != "user" {
		t.Errorf("after a new Start, first Next = %q, want the user name", got)
	}
}

func TestLoginWithInitialResponse(t *testing.T) {
	m := LoginWithInitialResponse("user", "pass")
	if m.Name() != "LOGIN" {
		t.Errorf("Name() = %q", m.Name())
	}
	if ir := saslMustStart(t, m); string(ir) != "user" {
		t.Fatalf("Start() = %q, want the user name", ir)
	}
	if got := saslMustNext(t, m, "Password:"); string(got) != "pass" {
		t.Errorf("Next = %q, want the password", got)
	}
	saslWantNextErr(t, m, "Password:", errSASLUnexpectedChallenge)
}

func TestLoginWithInitialResponseEmptyUser(t *testing.T) {
	ir := saslMustStart(t, LoginWithInitialResponse("", "pass"))
	if ir == nil || len(ir) != 0 {
		t.Errorf("Start() = %#v, want a non-nil empty initial response", ir)
	}
}

func TestCRAMMD5Vectors(t *testing.T) {
	tests := []struct {
		user, secret, challenge, want string
	}{
		{
			"Mr.A@somewhere.com", "somepassword",
			"<CByLEDBhSCgnhMZ+N23F6w@elwood.innosoft.com>",
			"Mr.A@somewhere.com 889d4290dd883f40858104eec2f7f885",
		},
		{ // RFC 2195 §2
			"tim", "tanstaaftanstaaf",
			"<1896.697170952@postoffice.reston.mci.net>",
			"tim b913a602c7eda7a495b4e6e7334d3890",
		},
	}
	for _, tt := range tests {
		m := CRAMMD5(tt.user, tt.secret)
		if m.Name() != "CRAM-MD5" {
			t.Errorf("Name() = %q", m.Name())
		}
		if ir := saslMustStart(t, m); ir != nil {
			t.Errorf("Start() = %q, want nil", ir)
		}
		if got := saslMustNext(t, m, tt.challenge); string(got) != tt.want {
			t.Errorf("Next(%q) = %q, want %q", tt.challenge, got, tt.want)
		}
		saslWantNextErr(t, m, tt.challenge, errSASLUnexpectedChallenge)
	}
}

func TestCRAMMD5EmptyChallenge(t *testing.T) {
	m := CRAMMD5("tim", "tanstaaftanstaaf")
	saslMustStart(t, m)
	err := saslWantNextErr(t, m, "", errSASLMalformed)
	if strings.Contains(err.Error(), "tanstaaf") {
		t.Errorf("error %q reveals the secret", err)
	}
}

// RFC 7677 §3.
const (
	rfc7677User        = "user"
	rfc7677Password    = "pencil"
	rfc7677Nonce       = "rOprNGfwEbeRWgbNEkqO"
	rfc7677ClientFirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
	rfc7677ServerFirst = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
	rfc7677ClientFinal = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
	rfc7677ServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
)

func TestScramSHA256RFC7677(t *testing.T) {
	m := scramSHA256WithNonce(rfc7677User, rfc7677Password, rfc7677Nonce)
	if m.Name() != "SCRAM-SHA-256" {
		t.Errorf("Name() = %q", m.Name())
	}
	if got := saslMustStart(t, m); string(got) != rfc7677ClientFirst {
		t.Fatalf("Start() = %q, want %q", got, rfc7677ClientFirst)
	}
	if got := saslMustNext(t, m, rfc7677ServerFirst); string(got) != rfc7677ClientFinal {
		t.Fatalf("Next(server-first) = %q, want %q", got, rfc7677ClientFinal)
	}
	if m.serverVerified() {
		t.Error("serverVerified() before the server-final-message")
	}
	got := saslMustNext(t, m, rfc7677ServerFinal)
	if got == nil || len(got) != 0 {
		t.Fatalf("Next(server-final) = %#v, want a non-nil empty response", got)
	}
	if !m.serverVerified() {
		t.Error("serverVerified() = false after a good server-final-message")
	}
	saslWantNextErr(t, m, rfc7677ServerFinal, errSASLUnexpectedChallenge)
}

func TestScramSHA256ServerExtensions(t *testing.T) {
	// Optional extensions after i= and v= are ignored (RFC 5802 §7).
	m := scramSHA256WithNonce(rfc7677User, rfc7677Password, rfc7677Nonce)
	saslMustStart(t, m)
	// The extension is part of the AuthMessage, so the proof changes.
	if got := saslMustNext(t, m, rfc7677ServerFirst+",x=ext"); !strings.HasPrefix(string(got), "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=") {
		t.Fatalf("Next(server-first with extension) = %q", got)
	}
	// The server signature differs too, so only the syntax is checked:
	// a v= with an extension but a wrong signature fails on the signature.
	saslWantNextErr(t, m, rfc7677ServerFinal+",x=ext", errSASLServerSignature)
}

func TestScramSHA256Errors(t *testing.T) {
	tests := []struct {
		name        string
		serverFirst string
		serverFinal string // used if serverFirst is the good one
		want        error
	}{
		{
			name:        "bad server signature",
			serverFirst: rfc7677ServerFirst,
			serverFinal: "v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
			want:        errSASLServerSignature,
		},
		{
			name:        "truncated server signature",
			serverFirst: rfc7677ServerFirst,
			serverFinal: "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJR",
			want:        errSASLServerSignature,
		},
		{
			name:        "server signature not base64",
			serverFirst: rfc7677ServerFirst,
			serverFinal: "v=6rriTRBi23WpRR!",
			want:        errSASLMalformed,
		},
		{
			name:        "e= in server-final",
			serverFirst: rfc7677ServerFirst,
			serverFinal: "e=invalid-proof",
			want:        errSASLServerError,
		},
		{
			name:        "server-final without v=",
			serverFirst: rfc7677ServerFirst,
			serverFinal: "x=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
			want:        errSASLMalformed,
		},
		{
			name:        "server-final garbage",
			serverFirst: rfc7677ServerFirst,
			serverFinal: "garbage",
			want:        errSASLMalformed,
		},
		{
			name:        "empty server-final",
			serverFirst: rfc7677ServerFirst,
			serverFinal: "",
			want:        errSASLMalformed,
		},
		{
			name:        "e= in server-first",
			serverFirst: "e=unknown-user",
			want:        errSASLServerError,
		},
		{
			name:        "nonce mismatch",
			serverFirst: "r=XOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
			want:        errSASLMalformed,
		},
		{
			name:        "nonce is a prefix of the client nonce",
			serverFirst: "r=rOprNGfwEbeRWgbNEk,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
			want:        errSASLMalformed,
		},
		{
			name:        "nonce not extended",
			serverFirst: "r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
			want:        errSASLMalformed,
		},
		{
			name:        "nonce with a space",
			serverFirst: "r=rOprNGfwEbeRWgbNEkqO abc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
			want:        errSASLMalformed,
		},
		{
			name:        "nonce with non-ASCII",
			serverFirst: "r=rOprNGfwEbeRWgbNEkqO\xc3\xa9,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
			want:        errSASLMalformed,
		},
		{
			name:        "iteration count below 4096",
			serverFirst: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4095",
			want:        errSASLMalformed,
		},
		{
			name:        "iteration count zero",
			serverFirst: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0",
			want:        errSASLMalformed,
		},
		{
			name:        "iteration count negative",
			serverFirst: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=-4096",
			want:        errSASLMalformed,
		},
		{
			name:        "iteration count with sign",
			serverFirst: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=+4096",
			want:        errSASLMalformed,
		},
		{
			name:        "iteration count too large",
			serverFirst: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=10000001",
			want:        errSASLMalformed,
		},
		{
			name:        "iteration count overflows",
			serverFirst: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=99999999999999999999",
			want:        errSASLMalformed,
		},
		{
			name:        "iteration count not a number",
			serverFirst: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=many",
			want:        errSASLMalformed,
		},
		{
			name:        "salt not base64",
			serverFirst: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7so!,i=4096",
			want:        errSASLMalformed,
		},
		{
			name:        "empty salt",
			serverFirst: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=,i=4096",
			want:        errSASLMalformed,
		},
		{
			name:        "missing iteration count",
			serverFirst: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==",
			want:        errSASLMalformed,
		},
		{
			name:        "attributes out of order",
			serverFirst: "s=W22ZaJ0SNY7soEsUEjb6gQ==,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,i=4096",
			want:        errSASLMalformed,
		},
		{
			name:        "mandatory extension",
			serverFirst: "m=ext," + rfc7677ServerFirst,
			want:        errSASLMalformed,
		},
		{
			name:        "empty attribute",
			serverFirst: rfc7677ServerFirst + ",",
			want:        errSASLMalformed,
		},
		{
			name:        "empty server-first",
			serverFirst: "",
			want:        errSASLMalformed,
		},
		{
			name:        "not SCRAM at all",
			serverFirst: "Password:",
			want:        errSASLMalformed,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := scramSHA256WithNonce(rfc7677User, rfc7677Password, rfc7677Nonce)
			saslMustStart(t, m)
			var err error
			if tt.serverFirst == rfc7677ServerFirst {
				saslMustNext(t, m, tt.serverFirst)
				err = saslWantNextErr(t, m, tt.serverFinal, tt.want)
			} else {
				err = saslWantNextErr(t, m, tt.serverFirst, tt.want)
			}
			if strings.Contains(err.Error(), rfc7677Password) {
				t.Errorf("error %q reveals the password", err)
			}
			if m.serverVerified() {
				t.Error("serverVerified() after an error")
			}
			// After an error the exchange is over.
			saslWantNextErr(t, m, rfc7677ServerFinal, errSASLUnexpectedChallenge)
		})
	}
}

func TestScramSHA256NextBeforeStart(t *testing.T) {
	m := ScramSHA256("user", "pencil")
	saslWantNextErr(t, m, rfc7677ServerFirst, errSASLUnexpectedChallenge)
}

func TestScramSHA256UsernameEscaping(t *testing.T) {
	tests := []struct{ user, want string }{
		{"a,b", "a=2Cb"},
		{"a=b", "a=3Db"},
		{"=2C,=", "=3D2C=2C=3D"},
		{"jöe@example.org", "jöe@example.org"},
	}
	for _, tt := range tests {
		m := scramSHA256WithNonce(tt.user, "pencil", rfc7677Nonce)
		want := "n,,n=" + tt.want + ",r=" + rfc7677Nonce
		if got := saslMustStart(t, m); string(got) != want {
			t.Errorf("ScramSHA256(%q) Start() = %q, want %q", tt.user, got, want)
		}
	}
}

func TestScramSHA256RandomNonce(t *testing.T) {
	seen := map[string]bool{}
	m := ScramSHA256("user", "pencil")
	for range 4 {
		first := string(saslMustStart(t, m))
		nonce, ok := strings.CutPrefix(first, "n,,n=user,r=")
		if !ok {
			t.Fatalf("Start() = %q", first)
		}
		if !scramPrintable(nonce) {
			t.Errorf("nonce %q is not printable without comma", nonce)
		}
		raw, err := base64.StdEncoding.DecodeString(nonce)
		if err != nil || len(raw) < 18 {
			t.Errorf("nonce %q is not base64 of at least 18 bytes (%d, %v)", nonce, len(raw), err)
		}
		if seen[nonce] {
			t.Errorf("nonce %q repeated", nonce)
		}
		seen[nonce] = true
	}
	// A server that echoes the (random) nonce gets the exchange going.
	first := string(saslMustStart(t, m))
	nonce := strings.TrimPrefix(first, "n,,n=user,r=")
	final := saslMustNext(t, m, "r="+nonce+"srv,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
	if !strings.HasPrefix(string(final), "c=biws,r="+nonce+"srv,p=") {
		t.Errorf("client-final = %q", final)
	}
}

func TestXOAUTH2(t *testing.T) {
	m := XOAUTH2("someuser@example.com", "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg")
	if m.Name() != "XOAUTH2" {
		t.Errorf("Name() = %q", m.Name())
	}
	ir := saslMustStart(t, m)
	want := "user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01"
	if string(ir) != want {
		t.Fatalf("Start() = %q, want %q", ir, want)
	}
	// The example of Google's documentation.
	if got, want := base64.StdEncoding.EncodeToString(ir), "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ=="; got != want {
		t.Errorf("base64 initial response = %s, want %s", got, want)
	}

	r, ok := m.(ErrorReporter)
	if !ok {
		t.Fatal("XOAUTH2 does not implement ErrorReporter")
	}
	if r.LastError() != "" {
		t.Errorf("LastError() = %q before any challenge", r.LastError())
	}
	jsonErr := `{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}`
	resp := saslMustNext(t, m, jsonErr)
	if resp == nil || len(resp) != 0 {
		t.Errorf("Next(error) = %#v, want a non-nil empty response", resp)
	}
	if r.LastError() != jsonErr {
		t.Errorf("LastError() = %q, want %q", r.LastError(), jsonErr)
	}
	saslWantNextErr(t, m, jsonErr, errSASLUnexpectedChallenge)

	// Start forgets the previous error.
	saslMustStart(t, m)
	if r.LastError() != "" {
		t.Errorf("LastError() = %q after Start", r.LastError())
	}
}

func TestXOAUTH2InvalidCredential(t *testing.T) {
	for _, m := range []Mechanism{XOAUTH2("a\x01b", "tok"), XOAUTH2("a", "tok\x01secret")} {
		ir, err := m.Start()
		if !errors.Is(err, errSASLInvalidCredential) {
			t.Errorf("Start() = %q, %v; want errSASLInvalidCredential", ir, err)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("error %q reveals the token", err)
		}
	}
}

func TestOAuthBearer(t *testing.T) {
	// RFC 7628 §4.1, with the port given.
	m := OAuthBearer("user@example.com", "server.example.com", 143, "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==")
	if m.Name() != "OAUTHBEARER" {
		t.Errorf("Name() = %q", m.Name())
	}
	ir := saslMustStart(t, m)
	want := "n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01"
	if string(ir) != want {
		t.Fatalf("Start() = %q, want %q", ir, want)
	}
	// The base64 of RFC 7628 §4.1.
	if got, want := base64.StdEncoding.EncodeToString(ir), "bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9MTQzAWF1dGg9QmVhcmVyIHZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB"; got != want {
		t.Errorf("base64 initial response = %s, want %s", got, want)
	}

	r, ok := m.(ErrorReporter)
	if !ok {
		t.Fatal("OAUTHBEARER does not implement ErrorReporter")
	}
	jsonErr := `{"status":"invalid_token","scope":"example_scope","openid-configuration":"https://example.com/.well-known/openid-configuration"}`
	if got := saslMustNext(t, m, jsonErr); string(got) != "\x01" {
		t.Errorf("Next(error) = %q, want \\x01", got)
	}
	if r.LastError() != jsonErr {
		t.Errorf("LastError() = %q, want %q", r.LastError(), jsonErr)
	}
	saslWantNextErr(t, m, jsonErr, errSASLUnexpectedChallenge)

	saslMustStart(t, m)
	if r.LastError() != "" {
		t.Errorf("LastError() = %q after Start", r.LastError())
	}
}

func TestOAuthBearerUsernameEscaping(t *testing.T) {
	ir := saslMustStart(t, OAuthBearer("a,b=c", "mx.example", 587, "tok"))
	want := "n,a=a=2Cb=3Dc,\x01host=mx.example\x01port=587\x01auth=Bearer tok\x01\x01"
	if string(ir) != want {
		t.Errorf("Start() = %q, want %q", ir, want)
	}
}

func TestOAuthBearerOptionalParts(t *testing.T) {
	ir := saslMustStart(t, OAuthBearer("", "", 0, "tok"))
	if want := "n,,\x01auth=Bearer tok\x01\x01"; string(ir) != want {
		t.Errorf("Start() = %q, want %q", ir, want)
	}
}

func TestOAuthBearerInvalidCredential(t *testing.T) {
	for _, m := range []Mechanism{
		OAuthBearer("a\x01b", "h", 25, "tok"),
		OAuthBearer("a", "h\x01port=1", 25, "tok"),
		OAuthBearer("a", "h", 25, "tok\x01secret"),
		OAuthBearer("a", "h", 25, "tok\r\nsecret"),
	} {
		ir, err := m.Start()
		if !errors.Is(err, errSASLInvalidCredential) {
			t.Errorf("Start() = %q, %v; want errSASLInvalidCredential", ir, err)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("error %q reveals the token", err)
		}
	}
}

func TestSASLNewMechanism(t *testing.T) {
	for _, name := range []string{"PLAIN", "plain", "LOGIN", "Login", "CRAM-MD5", "cram-md5", "SCRAM-SHA-256", "scram-sha-256"} {
		m, err := NewMechanism(name, "user", "pencil")
		if err != nil {
			t.Errorf("NewMechanism(%q): %v", name, err)
			continue
		}
		if m.Name() != strings.ToUpper(name) {
			t.Errorf("NewMechanism(%q).Name() = %q", name, m.Name())
		}
	}
	for _, name := range []string{"XOAUTH2", "OAUTHBEARER", "GSSAPI", "SCRAM-SHA-1", "DIGEST-MD5", ""} {
		m, err := NewMechanism(name, "user", "s3cret-pw")
		if err == nil {
			t.Errorf("NewMechanism(%q) = %v, want an error", name, m)
			continue
		}
		if m != nil {
			t.Errorf("NewMechanism(%q) returned %v with its error", name, m)
		}
		if strings.Contains(err.Error(), "s3cret-pw") {
			t.Errorf("error %q reveals the password", err)
		}
	}
	// The PLAIN of NewMechanism has no authorization identity.
	m, _ := NewMechanism("plain", "psu", "doesnotexist")
	if got := base64.StdEncoding.EncodeToString(saslMustStart(t, m)); got != "AHBzdQBkb2Vzbm90ZXhpc3Q=" {
		t.Errorf("NewMechanism(plain) initial response = %s", got)
	}
}

func TestSASLPreferredMechanisms(t *testing.T) {
	want := []string{"SCRAM-SHA-256", "CRAM-MD5", "PLAIN", "LOGIN"}
	got := preferredMechanisms()
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("preferredMechanisms() = %v, want %v", got, want)
	}
	for _, name := range got {
		if _, err := NewMechanism(name, "u", "p"); err != nil {
			t.Errorf("NewMechanism(%q) from preferredMechanisms: %v", name, err)
		}
	}
	got[0] = "changed"
	if preferredMechanisms()[0] != "SCRAM-SHA-256" {
		t.Error("preferredMechanisms returns a shared slice")
	}
	if got := strings.Join(preferredOAuthMechanisms(), " "); got != "OAUTHBEARER XOAUTH2" {
		t.Errorf("preferredOAuthMechanisms() = %v", got)
	}
}

// FuzzScramServerFirst feeds arbitrary server-first and server-final
// messages to the SCRAM-SHA-256 client: it must never panic, and whatever
// it accepts must be well formed.
func FuzzScramServerFirst(f *testing.F) {
	f.Add([]byte(rfc7677ServerFirst), []byte(rfc7677ServerFinal))
	f.Add([]byte(rfc7677ServerFirst), []byte("e=invalid-proof"))
	f.Add([]byte(rfc7677ServerFirst), []byte("v="))
	f.Add([]byte(rfc7677ServerFirst+",x=y"), []byte("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=,x=y"))
	f.Add([]byte("e=other-error"), []byte(""))
	f.Add([]byte("m=ext,r=rOprNGfwEbeRWgbNEkqOx,s=AA==,i=4096"), []byte("v=AA=="))
	f.Add([]byte("r=rOprNGfwEbeRWgbNEkqO,s=,i=4096"), []byte(","))
	f.Add([]byte("r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1"), []byte("="))
	f.Add([]byte(""), []byte(""))
	f.Add([]byte(",,,"), []byte("v"))
	f.Fuzz(func(t *testing.T, serverFirst, serverFinal []byte) {
		m := scramSHA256WithNonce(rfc7677User, rfc7677Password, rfc7677Nonce)
		// Keep each run fast: a fuzzed i= may be large.
		m.maxIterations = 8192
		if _, err := m.Start(); err != nil {
			t.Fatal(err)
		}
		final, err := m.Next(serverFirst)
		if err != nil {
			if final != nil {
				t.Fatalf("response %q with error %v", final, err)
			}
			return
		}
		if !strings.HasPrefix(string(final), "c=biws,r="+rfc7677Nonce) || !strings.Contains(string(final), ",p=") {
			t.Fatalf("malformed client-final %q", final)
		}
		if _, ok := scramAttrs(string(final)); !ok {
			t.Fatalf("client-final %q does not parse", final)
		}
		resp, err := m.Next(serverFinal)
		if err != nil {
			if resp != nil || m.serverVerified() {
				t.Fatalf("response %q / verified with error %v", resp, err)
			}
		} else if resp == nil || len(resp) != 0 || !m.serverVerified() {
			t.Fatalf("accepted server-final %q: response %#v", serverFinal, resp)
		}
		if _, err := m.Next(serverFinal); err == nil {
			t.Fatal("a third challenge was accepted")
		}
	})
}
