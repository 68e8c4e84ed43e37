// SASL mechanisms for the AUTH command of SMTP and LMTP (RFC 4954).
//
//   - PLAIN: RFC 4616.
//   - LOGIN: draft-murchison-sasl-login-00 (never an RFC, but universal).
//   - CRAM-MD5: RFC 2195 (HMAC-MD5 is RFC 2104).
//   - SCRAM-SHA-256: RFC 5802 and RFC 7677, without channel binding; the
//     attribute syntax and the escaping of names follow RFC 5802 §5 and
//     §7, PBKDF2 is RFC 8018.
//   - XOAUTH2: Google's and Microsoft's documented format (no RFC).
//   - OAUTHBEARER: RFC 7628, with the GS2 header of RFC 5801.
//
// No mechanism applies SASLprep (RFC 4013) or its successor (RFC 7613):
// names and passwords are sent as the caller gives them.

package relay

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Mechanism is one SASL mechanism as the AUTH command uses it (RFC 4954).
//
// Start returns the initial response. A nil slice means the mechanism has
// none and the client sends "AUTH NAME" alone; a non-nil empty slice is
// an empty initial response, sent as "=". Next is called with each decoded
// 334 challenge and returns the response to send. An error from Start or
// Next makes the client cancel the exchange with "*".
//
// The mechanisms in this package are PLAIN, LOGIN, CRAM-MD5,
// SCRAM-SHA-256, XOAUTH2 and OAUTHBEARER.
type Mechanism interface {
	Name() string
	Start() (ir []byte, err error)
	Next(challenge []byte) (response []byte, err error)
}

// ErrorReporter is implemented by the mechanisms returned by XOAUTH2 and
// OAuthBearer. When the server refuses the token it first sends a 334
// challenge carrying a JSON error (for example
// {"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}),
// to which the mechanism answers as its protocol requires, and only then
// fails the exchange with 535. LastError returns the decoded text of that
// challenge, exactly as received, so that it can be reported with the 535;
// it returns "" when the server sent no such challenge since the last
// Start. Find it with a type assertion:
//
//	if r, ok := mech.(ErrorReporter); ok && r.LastError() != "" { ... }
type ErrorReporter interface {
	LastError() string
}

// Errors of the mechanisms. They are unexported: the client wraps whatever
// a mechanism returns in its own authentication error. None of them, nor
// any message built on them, contains a name, password, secret or token.
var (
	// errSASLUnexpectedChallenge: the server sent a challenge the
	// mechanism has no answer for (one too many, or one before Start).
	errSASLUnexpectedChallenge = errors.New("unexpected SASL challenge")
	// errSASLMalformed: a challenge does not follow the mechanism's syntax.
	errSASLMalformed = errors.New("malformed SASL challenge")
	// errSASLServerSignature: the SCRAM server could not prove that it
	// knows the password: it is not the server it claims to be.
	errSASLServerSignature = errors.New("SCRAM server signature does not match: the server is not authentic")
	// errSASLServerError: the SCRAM server sent an e= attribute.
	errSASLServerError = errors.New("SCRAM server reported an error")
	// errSASLInvalidCredential: a credential holds a byte the mechanism
	// uses as a separator, so it cannot be sent.
	errSASLInvalidCredential = errors.New("credential contains a byte the SASL mechanism cannot carry")
)

// saslErr prefixes err with the mechanism name, keeping it for errors.Is.
func saslErr(mech string, err error) error {
	return fmt.Errorf("%s: %w", mech, err)
}

// saslErrf is saslErr with a detail after the error. The detail must
// never contain a credential.
func saslErrf(mech string, err error, format string, a ...any) error {
	return fmt.Errorf("%s: %w: %s", mech, err, fmt.Sprintf(format, a...))
}

// preferredMechanisms returns, strongest first, the mechanisms the client
// tries when it has a user name and a password. Every name is one that
// NewMechanism accepts. The slice is new on each call.
func preferredMechanisms() []string {
	return []string{"SCRAM-SHA-256", "CRAM-MD5", "PLAIN", "LOGIN"}
}

// preferredOAuthMechanisms returns, preferred first, the mechanisms the
// client tries when it has an OAuth 2.0 bearer token. The slice is new on
// each call.
func preferredOAuthMechanisms() []string {
	return []string{"OAUTHBEARER", "XOAUTH2"}
}

// NewMechanism returns the password mechanism called name, compared
// without regard to case: PLAIN (with an empty authorization identity),
// LOGIN, CRAM-MD5 or SCRAM-SHA-256. For any other name it returns a nil
// Mechanism and an error naming the mechanism (the credentials are never
// in it). The OAuth mechanisms need more than a password and are made with
// XOAUTH2 and OAuthBearer.
func NewMechanism(name, username, password string) (Mechanism, error) {
	switch strings.ToUpper(name) {
	case "PLAIN":
		return Plain("", username, password), nil
	case "LOGIN":
		return Login(username, password), nil
	case "CRAM-MD5":
		return CRAMMD5(username, password), nil
	case "SCRAM-SHA-256":
		return ScramSHA256(username, password), nil
	}
	return nil, fmt.Errorf("unsupported SASL mechanism %q", name)
}

// ---------------------------------------------------------------- PLAIN

type saslPlain struct {
	identity, username, password string
	resent                       bool
}

// Plain returns the PLAIN mechanism of RFC 4616. identity is the
// authorization identity, usually "" (act as username). Start returns
// identity NUL username NUL password, the bytes of the strings unchanged
// (UTF-8 is sent as is, without SASLprep); it returns an error if one of
// the three holds a NUL byte. PLAIN has no challenges: Next returns an
// error, except that the first empty challenge (a "334 " sent by a server
// that did not take the initial response) is answered with that same
// response once. Use PLAIN only over TLS.
func Plain(identity, username, password string) Mechanism {
	return &saslPlain{identity: identity, username: username, password: password}
}

func (m *saslPlain) Name() string { return "PLAIN" }

func (m *saslPlain) response() ([]byte, error) {
	if strings.ContainsRune(m.identity, 0) || strings.ContainsRune(m.username, 0) || strings.ContainsRune(m.password, 0) {
		return nil, saslErr(m.Name(), errSASLInvalidCredential)
	}
	b := make([]byte, 0, len(m.identity)+len(m.username)+len(m.password)+2)
	b = append(b, m.identity...)
	b = append(b, 0)
	b = append(b, m.username...)
	b = append(b, 0)
	b = append(b, m.password...)
	return b, nil
}

func (m *saslPlain) Start() ([]byte, error) {
	m.resent = false
	return m.response()
}

func (m *saslPlain) Next(challenge []byte) ([]byte, error) {
	if len(challenge) != 0 || m.resent {
		return nil, saslErr(m.Name(), errSASLUnexpectedChallenge)
	}
	m.resent = true
	return m.response()
}

// ---------------------------------------------------------------- LOGIN

type saslLogin struct {
	username, password string
	ir                 bool // the user name goes in the initial response
	step               int  // challenges answered since Start
}

// Login returns the LOGIN mechanism (draft-murchison-sasl-login). Start
// returns nil: no initial response. Next answers the first challenge with
// the user name and the second with the password, whatever the challenges
// say (usually "Username:" and "Password:"); a third challenge is an
// error. Use LOGIN only over TLS.
func Login(username, password string) Mechanism {
	return &saslLogin{username: username, password: password}
}

// LoginWithInitialResponse returns the LOGIN mechanism with the user name
// sent as the initial response, as Python's smtplib does with
// initial_response_ok=True: Start returns the user name and Next answers
// the first challenge with the password; a second challenge is an error.
// An empty user name is an empty initial response ("=").
func LoginWithInitialResponse(username, password string) Mechanism {
	return &saslLogin{username: username, password: password, ir: true}
}

func (m *saslLogin) Name() string { return "LOGIN" }

func (m *saslLogin) Start() ([]byte, error) {
	m.step = 0
	if m.ir {
		m.step = 1
		return append([]byte{}, m.username...), nil
	}
	return nil, nil
}

func (m *saslLogin) Next(challenge []byte) ([]byte, error) {
	m.step++
	switch m.step {
	case 1:
		return append([]byte{}, m.username...), nil
	case 2:
		return append([]byte{}, m.password...), nil
	}
	return nil, saslErr(m.Name(), errSASLUnexpectedChallenge)
}

// ------------------------------------------------------------- CRAM-MD5

type saslCRAMMD5 struct {
	username, secret string
	done             bool
}

// CRAMMD5 returns the CRAM-MD5 mechanism of RFC 2195. Start returns nil
// (no initial response). Next answers the server's challenge with the
// user name, a space and the lowercase hex HMAC-MD5 of the challenge keyed
// with secret. An empty challenge or a second challenge is an error.
// CRAM-MD5 hides the password from an eavesdropper but not from an
// offline dictionary attack; prefer SCRAM-SHA-256.
func CRAMMD5(username, secret string) Mechanism {
	return &saslCRAMMD5{username: username, secret: secret}
}

func (m *saslCRAMMD5) Name() string { return "CRAM-MD5" }

func (m *saslCRAMMD5) Start() ([]byte, error) {
	m.done = false
	return nil, nil
}

func (m *saslCRAMMD5) Next(challenge []byte) ([]byte, error) {
	if m.done {
		return nil, saslErr(m.Name(), errSASLUnexpectedChallenge)
	}
	m.done = true
	if len(challenge) == 0 {
		return nil, saslErrf(m.Name(), errSASLMalformed, "empty challenge")
	}
	h := hmac.New(md5.New, []byte(m.secret))
	h.Write(challenge)
	sum := h.Sum(nil)
	b := make([]byte, 0, len(m.username)+1+hex.EncodedLen(len(sum)))
	b = append(b, m.username...)
	b = append(b, ' ')
	b = hex.AppendEncode(b, sum)
	return b, nil
}

// -------------------------------------------------------- SCRAM-SHA-256

// scramMinIterations is the least iteration count RFC 7677 §4 allows.
const scramMinIterations = 4096

// scramMaxIterations bounds the iteration count a server may ask for, so
// that a hostile server cannot make the client spend minutes of CPU.
// Ten million is 2500 times the usual 4096 and takes a few seconds.
const scramMaxIterations = 10_000_000

// scramNonceBytes is the number of random bytes in the client nonce.
const scramNonceBytes = 24

type saslScram struct {
	username, password string

	// fixedNonce, if not "", is used as the client nonce instead of a
	// random one. Only tests set it.
	fixedNonce string
	// maxIterations is scramMaxIterations; tests may lower it.
	maxIterations int

	step            int // 0 before Start, 1 after, 2 after server-first, 3 verified
	clientNonce     string
	clientFirstBare string
	serverSignature []byte
}

// ScramSHA256 returns the SCRAM-SHA-256 mechanism (RFC 5802, RFC 7677)
// without channel binding (GS2 header "n,,"). The user name is escaped
// as RFC 5802 requires ("=" as "=3D", "," as "=2C").
//
// Start returns the client-first-message with a new nonce of 24 bytes
// from crypto/rand (base64); it returns an error only if the random
// source fails. The first Next takes the server-first-message and returns
// the client-final-message with the client proof; it returns an error if
// the message is malformed, announces a mandatory extension (m=), carries
// an error (e=), if its nonce does not extend the client nonce or holds a
// byte outside printable ASCII, if the salt is not base64 or empty, or if
// the iteration count is below 4096 (RFC 7677 §4) or above ten million.
// The second Next takes the server-final-message and returns a non-nil
// empty response once the server signature has been checked; it returns
// an error if the server sent an e= attribute or a signature that does not
// match (the server does not know the password: it is not authentic). Any
// further challenge is an error.
//
// SASLprep (RFC 4013) is not applied: the password is used as its UTF-8
// bytes. A server stores the SASLprep'ed form, so only passwords of
// printable ASCII without a special space character, which SASLprep
// leaves unchanged, are certain to work with every server; a non-ASCII
// password works only if the caller gives it already normalised (NFKC) in
// the form the server used.
func ScramSHA256(username, password string) Mechanism {
	return &saslScram{username: username, password: password, maxIterations: scramMaxIterations}
}

// scramSHA256WithNonce is ScramSHA256 with a fixed client nonce, for
// tests against known vectors.
func scramSHA256WithNonce(username, password, nonce string) *saslScram {
	return &saslScram{username: username, password: password, fixedNonce: nonce, maxIterations: scramMaxIterations}
}

// saslNameEscaper escapes a saslname (RFC 5802 §5.1, RFC 5801 §4).
var saslNameEscaper = strings.NewReplacer("=", "=3D", ",", "=2C")

func (m *saslScram) Name() string { return "SCRAM-SHA-256" }

// serverVerified reports whether the server-final-message was received and
// its signature matched. A server that answers 235 to the
// client-final-message without sending it has not proved it is authentic.
func (m *saslScram) serverVerified() bool { return m.step == 3 }

func (m *saslScram) Start() ([]byte, error) {
	m.step = 0
	m.serverSignature = nil
	m.clientNonce = m.fixedNonce
	if m.clientNonce == "" {
		var b [scramNonceBytes]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, saslErrf(m.Name(), err, "reading random nonce")
		}
		m.clientNonce = base64.StdEncoding.EncodeToString(b[:])
	}
	m.clientFirstBare = "n=" + saslNameEscaper.Replace(m.username) + ",r=" + m.clientNonce
	m.step = 1
	return []byte("n,," + m.clientFirstBare), nil
}

func (m *saslScram) Next(challenge []byte) ([]byte, error) {
	switch m.step {
	case 1:
		resp, err := m.serverFirst(challenge)
		if err != nil {
			m.step = 4 // failed: no more challenges
			return nil, err
		}
		m.step = 2
		return resp, nil
	case 2:
		if err := m.serverFinal(challenge); err != nil {
			m.step = 4
			return nil, err
		}
		m.step = 3
		return []byte{}, nil
	}
	return nil, saslErr(m.Name(), errSASLUnexpectedChallenge)
}

// scramAttrs splits a SCRAM message into its attributes, each a letter, "="
// and a value without a comma. It returns false if one is malformed.
func scramAttrs(msg string) ([]string, bool) {
	attrs := strings.Split(msg, ",")
	for _, a := range attrs {
		if len(a) < 2 || a[1] != '=' || !('a' <= a[0] && a[0] <= 'z' || 'A' <= a[0] && a[0] <= 'Z') {
			return nil, false
		}
	}
	return attrs, true
}

// scramPrintable reports whether s is a non-empty "printable" of RFC 5802
// §7: ASCII 0x21 to 0x7E except the comma.
func scramPrintable(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == ',' {
			return false
		}
	}
	return true
}

// scramServerErrorText quotes the value of an e= attribute for an error
// message, cut to a sensible length.
func scramServerErrorText(v string) string {
	const limit = 64
	if len(v) > limit {
		v = v[:limit] + "..."
	}
	return strconv.Quote(v)
}

func (m *saslScram) serverFirst(challenge []byte) ([]byte, error) {
	name := m.Name()
	attrs, ok := scramAttrs(string(challenge))
	if !ok {
		return nil, saslErrf(name, errSASLMalformed, "server-first-message")
	}
	switch attrs[0][0] {
	case 'e':
		return nil, saslErrf(name, errSASLServerError, "%s", scramServerErrorText(attrs[0][2:]))
	case 'm':
		return nil, saslErrf(name, errSASLMalformed, "server requires an unsupported extension")
	}
	if len(attrs) < 3 || attrs[0][0] != 'r' || attrs[1][0] != 's' || attrs[2][0] != 'i' {
		return nil, saslErrf(name, errSASLMalformed, "server-first-message lacks r=, s= or i=")
	}
	nonce, salt64, iter64 := attrs[0][2:], attrs[1][2:], attrs[2][2:]

	if !strings.HasPrefix(nonce, m.clientNonce) || len(nonce) == len(m.clientNonce) {
		return nil, saslErrf(name, errSASLMalformed, "server nonce does not extend the client nonce")
	}
	if !scramPrintable(nonce) {
		return nil, saslErrf(name, errSASLMalformed, "server nonce is not printable ASCII")
	}
	salt, err := base64.StdEncoding.Strict().DecodeString(salt64)
	if err != nil || len(salt) == 0 {
		return nil, saslErrf(name, errSASLMalformed, "salt is not base64")
	}
	iter, err := strconv.ParseUint(iter64, 10, 31)
	if err != nil {
		return nil, saslErrf(name, errSASLMalformed, "iteration count is not a number")
	}
	if iter < scramMinIterations {
		return nil, saslErrf(name, errSASLMalformed, "iteration count %d is below %d", iter, scramMinIterations)
	}
	if iter > uint64(m.maxIterations) {
		return nil, saslErrf(name, errSASLMalformed, "iteration count %d is above %d", iter, m.maxIterations)
	}

	salted, err := pbkdf2.Key(sha256.New, m.password, salt, int(iter), sha256.Size)
	if err != nil {
		// Only possible in FIPS 140-only mode; the error does not hold
		// the password.
		return nil, saslErrf(name, err, "deriving the key")
	}
	clientKey := scramHMAC(salted, []byte("Client Key"))
	storedKey := sha256.Sum256(clientKey)
	serverKey := scramHMAC(salted, []byte("Server Key"))

	// c=biws is base64("n,,"), the GS2 header without channel binding.
	finalNoProof := "c=biws,r=" + nonce
	authMessage := []byte(m.clientFirstBare + "," + string(challenge) + "," + finalNoProof)

	proof := scramHMAC(storedKey[:], authMessage) // ClientSignature
	for i := range proof {
		proof[i] ^= clientKey[i]
	}
	m.serverSignature = scramHMAC(serverKey, authMessage)

	b := make([]byte, 0, len(finalNoProof)+3+base64.StdEncoding.EncodedLen(len(proof)))
	b = append(b, finalNoProof...)
	b = append(b, ",p="...)
	b = base64.StdEncoding.AppendEncode(b, proof)
	return b, nil
}

func (m *saslScram) serverFinal(challenge []byte) error {
	name := m.Name()
	attrs, ok := scramAttrs(string(challenge))
	if !ok {
		return saslErrf(name, errSASLMalformed, "server-final-message")
	}
	switch attrs[0][0] {
	case 'e':
		return saslErrf(name, errSASLServerError, "%s", scramServerErrorText(attrs[0][2:]))
	case 'v':
	default:
		return saslErrf(name, errSASLMalformed, "server-final-message lacks v=")
	}
	sig, err := base64.StdEncoding.Strict().DecodeString(attrs[0][2:])
	if err != nil {
		return saslErrf(name, errSASLMalformed, "server signature is not base64")
	}
	if !hmac.Equal(sig, m.serverSignature) {
		return saslErr(name, errSASLServerSignature)
	}
	return nil
}

func scramHMAC(key, msg []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(msg)
	return h.Sum(nil)
}

// -------------------------------------------------------------- XOAUTH2

type saslXOAUTH2 struct {
	username, token string
	step            int
	lastError       string
}

// XOAUTH2 returns the XOAUTH2 mechanism of Google and Microsoft for an
// OAuth 2.0 access token. Start returns "user=" username "\x01auth=Bearer "
// token "\x01\x01"; it returns an error if username or token holds a
// \x01 byte. If the server refuses the token it sends a 334 challenge with
// a JSON error: Next answers it with an empty (non-nil) response, as the
// server wants before it replies 535, and keeps the JSON text, which the
// mechanism's LastError method (see ErrorReporter) returns. A second
// challenge is an error.
func XOAUTH2(username, token string) Mechanism {
	return &saslXOAUTH2{username: username, token: token}
}

func (m *saslXOAUTH2) Name() string { return "XOAUTH2" }

// LastError returns the JSON error the server sent in a challenge since
// the last Start, or "".
func (m *saslXOAUTH2) LastError() string { return m.lastError }

func (m *saslXOAUTH2) Start() ([]byte, error) {
	m.step, m.lastError = 0, ""
	if strings.ContainsRune(m.username, 1) || strings.ContainsRune(m.token, 1) {
		return nil, saslErr(m.Name(), errSASLInvalidCredential)
	}
	return []byte("user=" + m.username + "\x01auth=Bearer " + m.token + "\x01\x01"), nil
}

func (m *saslXOAUTH2) Next(challenge []byte) ([]byte, error) {
	m.step++
	if m.step > 1 {
		return nil, saslErr(m.Name(), errSASLUnexpectedChallenge)
	}
	m.lastError = string(challenge)
	return []byte{}, nil
}

// ---------------------------------------------------------- OAUTHBEARER

type saslOAuthBearer struct {
	username, host string
	port           int
	token          string
	step           int
	lastError      string
}

// OAuthBearer returns the OAUTHBEARER mechanism of RFC 7628 for an OAuth
// 2.0 bearer token. Start returns the GS2 header "n,a=" username "," (the
// user name escaped as in SCRAM; "n,," if username is "") followed by
// "\x01host=" host "\x01port=" port "\x01auth=Bearer " token "\x01\x01";
// the host pair is left out if host is "" and the port pair if port is 0
// or less. Start returns an error if host or token holds a control
// character or username a \x01 byte. If the server refuses the token it
// sends a 334 challenge with a JSON error: Next answers it with the single
// byte \x01 (RFC 7628 §3.2.3), after which the server replies 535, and
// keeps the JSON text, which the mechanism's LastError method (see
// ErrorReporter) returns. A second challenge is an error.
func OAuthBearer(username, host string, port int, token string) Mechanism {
	return &saslOAuthBearer{username: username, host: host, port: port, token: token}
}

func (m *saslOAuthBearer) Name() string { return "OAUTHBEARER" }

// LastError returns the JSON error the server sent in a challenge since
// the last Start, or "".
func (m *saslOAuthBearer) LastError() string { return m.lastError }

// saslHasControl reports whether s holds an ASCII control character.
func saslHasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}

func (m *saslOAuthBearer) Start() ([]byte, error) {
	m.step, m.lastError = 0, ""
	if strings.ContainsRune(m.username, 1) || saslHasControl(m.host) || saslHasControl(m.token) {
		return nil, saslErr(m.Name(), errSASLInvalidCredential)
	}
	var b bytes.Buffer
	b.WriteString("n,")
	if m.username != "" {
		b.WriteString("a=")
		b.WriteString(saslNameEscaper.Replace(m.username))
	}
	b.WriteString(",")
	if m.host != "" {
		b.WriteString("\x01host=")
		b.WriteString(m.host)
	}
	if m.port > 0 {
		b.WriteString("\x01port=")
		b.WriteString(strconv.Itoa(m.port))
	}
	b.WriteString("\x01auth=Bearer ")
	b.WriteString(m.token)
	b.WriteString("\x01\x01")
	return b.Bytes(), nil
}

func (m *saslOAuthBearer) Next(challenge []byte) ([]byte, error) {
	m.step++
	if m.step > 1 {
		return nil, saslErr(m.Name(), errSASLUnexpectedChallenge)
	}
	m.lastError = string(challenge)
	return []byte{0x01}, nil
}
