package relay

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// --- a throwaway PKI ---------------------------------------------------

// testCA is a certificate authority made for one test: ECDSA P-256, valid
// for an hour either side of now.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool // holds only this CA
	pem  []byte         // the CA certificate, PEM
}

// testLeaf is an end-entity certificate with its key.
type testLeaf struct {
	cert    *x509.Certificate
	tls     tls.Certificate
	certPEM []byte
	keyPEM  []byte
}

func newTestKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newSerial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	return n.Add(n, big.NewInt(1))
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	key := newTestKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          newSerial(t),
		Subject:               pkix.Name{CommonName: "handoff relay test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue makes a leaf certificate for names (DNS names or IP addresses),
// for a server or, with client set, for a client. A nil CA makes it
// self-signed.
func (ca *testCA) issue(t testing.TB, client bool, names ...string) *testLeaf {
	t.Helper()
	key := newTestKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: newSerial(t),
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	parent, signer := tmpl, key
	if ca != nil {
		parent, signer = ca.cert, ca.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return &testLeaf{
		cert:    cert,
		tls:     tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert},
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
	}
}

// selfSigned makes a self-signed server certificate.
func selfSigned(t testing.TB, names ...string) *testLeaf {
	var none *testCA
	return none.issue(t, false, names...)
}

// serverTLS is a server configuration presenting leaf.
func serverTLS(leaf *testLeaf) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{leaf.tls}}
}

// writeTemp writes data to a new file in a test directory.
func writeTemp(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// --- fakes -------------------------------------------------------------

// tlsProbe is a STARTTLS server for handshake tests: greeting, EHLO with
// STARTTLS, the upgrade, and after a successful handshake a second EHLO
// and QUIT. ok reports, once the script has ended, whether the server's
// side of the handshake succeeded; state is the server's view of it.
type tlsProbe struct {
	*fakeServer
	ok    bool
	state tls.ConnectionState
}

func startTLSProbe(t testing.TB, cfg *tls.Config) *tlsProbe {
	t.Helper()
	p := &tlsProbe{}
	p.fakeServer = startFake(t, func(s *session) {
		if !s.greetEHLO("STARTTLS") {
			return
		}
		if !s.startTLS(cfg) {
			return
		}
		p.ok = true
		p.state = s.conn.(*tls.Conn).ConnectionState()
		if !s.expect("EHLO client.test") {
			return
		}
		s.ehloReply("8BITMIME")
		s.quit()
	})
	return p
}

// result waits for the script and returns whether the server completed
// the handshake.
func (p *tlsProbe) result() bool {
	p.wait()
	return p.ok
}

// tlsOpts dials f with STARTTLS required and the given policy.
func tlsOpts(f *fakeServer, to TLSOptions) Options {
	return Options{Address: f.addr, TLS: STARTTLSRequired, LocalName: "client.test", TLSConfig: to}
}

// dialProbe dials p and, when that works, quits cleanly.
func dialProbe(t *testing.T, p *tlsProbe, to TLSOptions) error {
	t.Helper()
	c, err := Dial(bg, tlsOpts(p.fakeServer, to))
	if err != nil {
		return err
	}
	if c.TLS() == "" {
		t.Error("Dial succeeded without TLS")
	}
	if err := c.Quit(bg); err != nil {
		t.Errorf("Quit: %v", err)
	}
	return nil
}

// wantTLSError checks the classification of a TLS failure: ErrTLS,
// temporary (a certificate problem may be fixed by the receiver, RFC 7672
// §2.2 defers such mail), and not a server reply.
func wantTLSError(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	if !errors.Is(err, ErrTLS) {
		t.Errorf("error does not wrap ErrTLS: %v", err)
	}
	if !IsTemporary(err) {
		t.Errorf("TLS failure should be temporary: %v", err)
	}
	if ReplyOf(err) != nil {
		t.Errorf("TLS failure carries a reply: %v", err)
	}
}

// --- (a) verified STARTTLS and a whole transaction ------------------------

// STARTTLS with a private CA, then the second EHLO (whose capabilities,
// AUTH among them, replace the first's), AUTH and a pipelined
// transaction, all inside TLS.
func TestStartTLSVerifiedSendMail(t *testing.T) {
	ca := newTestCA(t)
	leaf := ca.issue(t, false, "mail.example.test", "127.0.0.1")
	f := startFake(t, func(s *session) {
		// No AUTH before TLS, as Postfix with smtpd_tls_auth_only.
		if !s.greetEHLO("PIPELINING", "SIZE 100000", "STARTTLS") {
			return
		}
		if !s.startTLS(serverTLS(leaf)) {
			s.t.Error("server side of the handshake failed")
			return
		}
		if !s.expect("EHLO client.test") {
			return
		}
		s.ehloReply("PIPELINING", "SIZE 100000", "AUTH PLAIN")
		s.expect("AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00user\x00secret")))
		s.send("235 2.7.0 Authentication successful")
		s.expect("MAIL FROM:<a@x.test> SIZE=12")
		s.expect("RCPT TO:<b@y.test>")
		s.expect("DATA")
		s.send("250 2.1.0 ok", "250 2.1.5 ok", "354 go ahead")
		if got := s.data(); got != "Subject: x\r\n" {
			s.t.Errorf("data %q", got)
		}
		s.send("250 2.0.0 queued as TLS1")
		s.quit()
	})
	o := tlsOpts(f, TLSOptions{RootCAs: ca.pool, ServerName: "mail.example.test"})
	o.Auth = &Credentials{Username: "user", Password: "secret"}
	c := dialFake(t, f, o)

	if got := c.TLS(); !strings.HasPrefix(got, "TLSv1.3 TLS_") {
		t.Errorf("TLS() = %q, want TLSv1.3 and a cipher suite", got)
	}
	cs, ok := c.TLSConnectionState()
	if !ok {
		t.Fatal("TLSConnectionState: not encrypted")
	}
	if !cs.HandshakeComplete || cs.Version != tls.VersionTLS13 || cs.ServerName != "mail.example.test" {
		t.Errorf("state: complete=%v version=%x server name %q", cs.HandshakeComplete, cs.Version, cs.ServerName)
	}
	if len(cs.PeerCertificates) == 0 || !cs.PeerCertificates[0].Equal(leaf.cert) {
		t.Error("peer certificate is not the server's leaf")
	}
	if len(cs.VerifiedChains) == 0 || !cs.VerifiedChains[0][len(cs.VerifiedChains[0])-1].Equal(ca.cert) {
		t.Errorf("chain not verified up to the test CA: %d chains", len(cs.VerifiedChains))
	}
	if !c.Authenticated() {
		t.Error("not authenticated")
	}
	if got := c.AuthMechanisms(); !slices.Equal(got, []string{"PLAIN"}) {
		t.Errorf("AuthMechanisms %v", got)
	}
	if _, ok := c.Extension("STARTTLS"); ok {
		t.Error("STARTTLS still listed: capabilities of the first EHLO kept")
	}
	if n, ok := c.MaxSize(); !ok || n != 100000 {
		t.Errorf("MaxSize %d %v", n, ok)
	}

	res, err := c.SendMail(bg, "a@x.test", []string{"b@y.test"}, strings.NewReader("Subject: x\r\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Delivered() != 1 || res.Reply.Text() != "queued as TLS1" {
		t.Errorf("result %+v", res)
	}
	if err := c.Quit(bg); err != nil {
		t.Fatal(err)
	}
	got := f.received()
	if n := strings.Count(got, "EHLO client.test\r\n"); n != 2 {
		t.Errorf("%d EHLOs, want 2 (one after TLS): %q", n, got)
	}
	tlsAt := strings.Index(got, "STARTTLS\r\n")
	if tlsAt < 0 || strings.LastIndex(got, "EHLO ") < tlsAt || strings.Index(got, "AUTH ") < tlsAt {
		t.Errorf("EHLO and AUTH must follow STARTTLS: %q", got)
	}
}

// Without TLSOptions.ServerName the certificate is checked against the
// host part of the address, here an IP address.
func TestStartTLSServerNameDefaultsToHost(t *testing.T) {
	ca := newTestCA(t)
	t.Run("IP SAN matches", func(t *testing.T) {
		p := startTLSProbe(t, serverTLS(ca.issue(t, false, "127.0.0.1")))
		if err := dialProbe(t, p, TLSOptions{RootCAs: ca.pool}); err != nil {
			t.Fatal(err)
		}
		if !p.result() || p.state.ServerName != "" {
			// An IP address is never sent as SNI (RFC 6066 §3).
			t.Errorf("server: ok=%v SNI %q", p.ok, p.state.ServerName)
		}
	})
	t.Run("no IP SAN", func(t *testing.T) {
		p := startTLSProbe(t, serverTLS(ca.issue(t, false, "mail.example.test")))
		err := dialProbe(t, p, TLSOptions{RootCAs: ca.pool})
		wantTLSError(t, err)
		var he x509.HostnameError
		if !errors.As(err, &he) {
			t.Errorf("not a host name error: %v", err)
		}
	})
}

// --- (b) wrong host name -----------------------------------------------

// A certificate for another name fails the connection before anything
// else is sent: no AUTH, no MAIL, even with credentials configured.
func TestStartTLSWrongHostName(t *testing.T) {
	ca := newTestCA(t)
	leaf := ca.issue(t, false, "other.example.test")
	var handshook bool
	f := startFake(t, func(s *session) {
		if !s.greetEHLO("STARTTLS", "AUTH PLAIN") {
			return
		}
		handshook = s.startTLS(serverTLS(leaf))
		s.line() // anything the client still sends is recorded
	})
	o := tlsOpts(f, TLSOptions{RootCAs: ca.pool, ServerName: "mail.example.test"})
	o.Auth = &Credentials{Username: "u", Password: "p"}
	c, err := Dial(bg, o)
	if c != nil {
		t.Fatal("Dial returned a client")
	}
	wantTLSError(t, err)
	var he x509.HostnameError
	if !errors.As(err, &he) || he.Host != "mail.example.test" {
		t.Errorf("not a host name error for mail.example.test: %v", err)
	}
	got := f.received()
	if handshook {
		t.Error("server completed a handshake the client should have refused")
	}
	for _, w := range []string{"AUTH", "MAIL", "RCPT"} {
		if strings.Contains(got, w) {
			t.Errorf("%s sent after a failed certificate check: %q", w, got)
		}
	}
}

// --- (c) self-signed and unknown CAs -------------------------------------

func TestStartTLSUntrustedCertificate(t *testing.T) {
	t.Run("self-signed refused by default", func(t *testing.T) {
		p := startTLSProbe(t, serverTLS(selfSigned(t, "mail.example.test")))
		err := dialProbe(t, p, TLSOptions{ServerName: "mail.example.test"})
		wantTLSError(t, err)
		var ve *tls.CertificateVerificationError
		if !errors.As(err, &ve) {
			t.Errorf("not a certificate verification error: %v", err)
		}
		if p.result() {
			t.Error("server completed the handshake")
		}
	})
	t.Run("unknown CA refused", func(t *testing.T) {
		trusted, other := newTestCA(t), newTestCA(t)
		p := startTLSProbe(t, serverTLS(other.issue(t, false, "mail.example.test")))
		err := dialProbe(t, p, TLSOptions{RootCAs: trusted.pool, ServerName: "mail.example.test"})
		wantTLSError(t, err)
		var ue x509.UnknownAuthorityError
		if !errors.As(err, &ue) {
			t.Errorf("not an unknown-authority error: %v", err)
		}
	})
	t.Run("self-signed with InsecureSkipVerify", func(t *testing.T) {
		p := startTLSProbe(t, serverTLS(selfSigned(t, "whatever.test")))
		if err := dialProbe(t, p, TLSOptions{ServerName: "mail.example.test", InsecureSkipVerify: true}); err != nil {
			t.Fatal(err)
		}
		if !p.result() {
			t.Error("server handshake failed")
		}
	})
}

// --- (d) pinning ---------------------------------------------------------

func spkiSum(c *x509.Certificate) [32]byte { return sha256.Sum256(c.RawSubjectPublicKeyInfo) }

func TestPinOf(t *testing.T) {
	leaf := selfSigned(t, "mail.example.test")
	sum := spkiSum(leaf.cert)
	if got, want := PinOf(leaf.cert), base64.StdEncoding.EncodeToString(sum[:]); got != want {
		t.Errorf("PinOf = %q, want %q", got, want)
	}
	if PinOf(leaf.cert) == PinOf(selfSigned(t, "mail.example.test").cert) {
		t.Error("two keys, one pin")
	}
}

func TestStartTLSPinning(t *testing.T) {
	ca := newTestCA(t)
	leaf := ca.issue(t, false, "mail.example.test")
	sum := spkiSum(leaf.cert)
	wrong := PinOf(ca.issue(t, false, "mail.example.test").cert)
	base := TLSOptions{RootCAs: ca.pool, ServerName: "mail.example.test"}
	with := func(pins ...string) TLSOptions {
		o := base
		o.PinSHA256 = pins
		return o
	}

	for _, tc := range []struct {
		name string
		opts TLSOptions
	}{
		{"base64", with(PinOf(leaf.cert))},
		{"wrong and right", with(wrong, PinOf(leaf.cert))},
		{"hex", with(hex.EncodeToString(sum[:]))},
		{"hex upper case", with(strings.ToUpper(hex.EncodeToString(sum[:])))},
		{"base64 unpadded", with(base64.RawStdEncoding.EncodeToString(sum[:]))},
		{"sha256// prefix", with("sha256//" + PinOf(leaf.cert))},
		{"surrounding space", with(" " + PinOf(leaf.cert) + "\n")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startTLSProbe(t, serverTLS(leaf))
			if err := dialProbe(t, p, tc.opts); err != nil {
				t.Fatalf("pin %q refused: %v", tc.opts.PinSHA256, err)
			}
		})
	}

	t.Run("wrong pin, valid chain", func(t *testing.T) {
		p := startTLSProbe(t, serverTLS(leaf))
		err := dialProbe(t, p, with(wrong))
		wantTLSError(t, err)
		if err != nil && !strings.Contains(err.Error(), "matches no configured pin") {
			t.Errorf("error does not mention the pin: %v", err)
		}
		if p.result() {
			t.Error("server completed the handshake")
		}
	})

	self := selfSigned(t, "mail.example.test")
	t.Run("pinned self-signed with InsecureSkipVerify", func(t *testing.T) {
		p := startTLSProbe(t, serverTLS(self))
		o := TLSOptions{ServerName: "mail.example.test", InsecureSkipVerify: true, PinSHA256: []string{PinOf(self.cert)}}
		if err := dialProbe(t, p, o); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("wrong pin with InsecureSkipVerify", func(t *testing.T) {
		// The pin is still checked when verification is off.
		p := startTLSProbe(t, serverTLS(self))
		o := TLSOptions{ServerName: "mail.example.test", InsecureSkipVerify: true, PinSHA256: []string{wrong}}
		wantTLSError(t, dialProbe(t, p, o))
	})
	t.Run("right pin does not replace verification", func(t *testing.T) {
		// Without InsecureSkipVerify the chain must verify as well.
		p := startTLSProbe(t, serverTLS(self))
		o := TLSOptions{ServerName: "mail.example.test", PinSHA256: []string{PinOf(self.cert)}}
		wantTLSError(t, dialProbe(t, p, o))
	})
}

// A malformed pin is a configuration error, found before STARTTLS is
// sent.
func TestPinMalformed(t *testing.T) {
	leaf := selfSigned(t, "mail.example.test")
	sum := spkiSum(leaf.cert)
	for _, pin := range []string{
		"not a pin",
		"AAAA",                                 // base64 of 3 bytes
		hex.EncodeToString(sum[:])[:63],        // hex, one digit short
		hex.EncodeToString(sum[:])[:62] + "zz", // 64 characters, not hex
		base64.StdEncoding.EncodeToString(sum[:31]),
		"",
	} {
		_, err := (&TLSOptions{PinSHA256: []string{PinOf(leaf.cert), pin}}).Config("mail.example.test")
		if !errors.Is(err, ErrInvalidArgument) || !IsPermanent(err) {
			t.Errorf("pin %q: err %v", pin, err)
		}
	}

	f := startFake(t, func(s *session) {
		if !s.greetEHLO("STARTTLS") {
			return
		}
		s.quit()
	})
	_, err := Dial(bg, tlsOpts(f, TLSOptions{ServerName: "mail.example.test", PinSHA256: []string{"bogus!"}}))
	if !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("err %v", err)
	}
	if got := f.received(); strings.Contains(got, "STARTTLS") || !strings.HasSuffix(got, "QUIT\r\n") {
		t.Errorf("wire %q: want EHLO then QUIT, no STARTTLS", got)
	}
}

// --- (e) client certificates --------------------------------------------

func TestStartTLSClientCertificate(t *testing.T) {
	ca := newTestCA(t)
	leaf := ca.issue(t, false, "mail.example.test")
	client := ca.issue(t, true, "client.example.test")
	certFile := writeTemp(t, "client.crt", client.certPEM)
	keyFile := writeTemp(t, "client.key", client.keyPEM)
	srv := func(maxVersion uint16) *tls.Config {
		cfg := serverTLS(leaf)
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		cfg.ClientCAs = ca.pool
		cfg.MaxVersion = maxVersion
		return cfg
	}
	base := TLSOptions{RootCAs: ca.pool, ServerName: "mail.example.test"}

	for _, v := range []struct {
		name string
		max  uint16
	}{{"TLS1.3", tls.VersionTLS13}, {"TLS1.2", tls.VersionTLS12}} {
		t.Run(v.name+"/CertFile and KeyFile", func(t *testing.T) {
			p := startTLSProbe(t, srv(v.max))
			o := base
			o.CertFile, o.KeyFile = certFile, keyFile
			if err := dialProbe(t, p, o); err != nil {
				t.Fatal(err)
			}
			if !p.result() || len(p.state.PeerCertificates) == 0 || !p.state.PeerCertificates[0].Equal(client.cert) {
				t.Error("server did not get the client certificate")
			}
		})
		t.Run(v.name+"/Certificates", func(t *testing.T) {
			p := startTLSProbe(t, srv(v.max))
			o := base
			o.Certificates = []tls.Certificate{client.tls}
			if err := dialProbe(t, p, o); err != nil {
				t.Fatal(err)
			}
			if !p.result() {
				t.Error("server handshake failed")
			}
		})
		t.Run(v.name+"/without a certificate", func(t *testing.T) {
			p := startTLSProbe(t, srv(v.max))
			err := dialProbe(t, p, base)
			if p.result() {
				t.Error("server accepted a client without a certificate")
			}
			// The server refused the handshake: that is a TLS failure,
			// whichever round trip the client learns it on (with TLS 1.3
			// the client's side of the handshake is over before the
			// server checks its certificate).
			wantTLSError(t, err)
		})
	}

	t.Run("missing key file", func(t *testing.T) {
		o := base
		o.CertFile, o.KeyFile = certFile, filepath.Join(t.TempDir(), "absent.key")
		_, err := o.Config("mail.example.test")
		if !errors.Is(err, ErrTLS) || !strings.Contains(err.Error(), certFile) {
			t.Errorf("err %v", err)
		}
	})
	t.Run("key does not match", func(t *testing.T) {
		o := base
		o.CertFile, o.KeyFile = certFile, writeTemp(t, "other.key", leaf.keyPEM)
		if _, err := o.Config("mail.example.test"); !errors.Is(err, ErrTLS) {
			t.Errorf("err %v", err)
		}
	})
}

// --- (f) protocol versions -----------------------------------------------

func TestStartTLSMinVersion(t *testing.T) {
	ca := newTestCA(t)
	leaf := ca.issue(t, false, "mail.example.test")
	old := func() *tls.Config {
		cfg := serverTLS(leaf)
		cfg.MinVersion = tls.VersionTLS10
		cfg.MaxVersion = tls.VersionTLS11
		return cfg
	}
	base := TLSOptions{RootCAs: ca.pool, ServerName: "mail.example.test"}

	t.Run("default refuses TLS 1.1", func(t *testing.T) {
		p := startTLSProbe(t, old())
		wantTLSError(t, dialProbe(t, p, base))
		if p.result() {
			t.Error("handshake completed with TLS 1.1")
		}
	})
	t.Run("MinVersion 1.3 refuses a 1.2 server", func(t *testing.T) {
		cfg := serverTLS(leaf)
		cfg.MaxVersion = tls.VersionTLS12
		p := startTLSProbe(t, cfg)
		o := base
		o.MinVersion = tls.VersionTLS13
		wantTLSError(t, dialProbe(t, p, o))
	})
	t.Run("TLS 1.2 accepted by default", func(t *testing.T) {
		cfg := serverTLS(leaf)
		cfg.MaxVersion = tls.VersionTLS12
		p := startTLSProbe(t, cfg)
		if err := dialProbe(t, p, base); err != nil {
			t.Fatal(err)
		}
		if !p.result() || p.state.Version != tls.VersionTLS12 {
			t.Errorf("version %x", p.state.Version)
		}
	})
	t.Run("MinVersion 1.1 lets a 1.1 server in", func(t *testing.T) {
		// Go's client still speaks TLS 1.1 when the configuration asks
		// for it explicitly (the 1.2 floor is only a default).
		p := startTLSProbe(t, old())
		o := base
		o.MinVersion = tls.VersionTLS11
		if err := dialProbe(t, p, o); err != nil {
			t.Fatalf("explicit MinVersion TLS 1.1: %v", err)
		}
		if !p.result() || p.state.Version != tls.VersionTLS11 {
			t.Errorf("version %x", p.state.Version)
		}
	})
	t.Run("Config default", func(t *testing.T) {
		cfg, err := (&TLSOptions{}).Config("mx.example.test")
		if err != nil {
			t.Fatal(err)
		}
		if cfg.MinVersion != tls.VersionTLS12 || cfg.ServerName != "mx.example.test" || cfg.InsecureSkipVerify {
			t.Errorf("config %+v", cfg)
		}
	})
}

// --- (g) implicit TLS -------------------------------------------------------

func TestImplicitTLS(t *testing.T) {
	ca := newTestCA(t)
	leaf := ca.issue(t, false, "mail.example.test")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var serverTLSVersion uint16
	f := startFakeListener(t, tls.NewListener(ln, serverTLS(leaf)), func(s *session) {
		tc := s.conn.(*tls.Conn)
		if err := tc.Handshake(); err != nil {
			s.t.Errorf("server handshake: %v", err)
			return
		}
		serverTLSVersion = tc.ConnectionState().Version
		s.send("220 smtps.example.test ESMTP")
		if !s.expect("EHLO client.test") {
			return
		}
		// STARTTLS offered inside TLS (a misconfigured server): the
		// client must not try it.
		s.ehloReply("AUTH PLAIN", "STARTTLS")
		s.expect("AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00u\x00p")))
		s.send("235 ok")
		s.quit()
	})
	var dialled string
	o := Options{
		// No port: 465 for implicit TLS. The Dialer sends it to the fake.
		Address:   "mail.example.test",
		TLS:       ImplicitTLS,
		LocalName: "client.test",
		TLSConfig: TLSOptions{RootCAs: ca.pool},
		Auth:      &Credentials{Username: "u", Password: "p", Mechanisms: []string{"PLAIN"}},
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dialled = network + " " + addr
			var d net.Dialer
			return d.DialContext(ctx, "tcp", f.addr)
		},
	}
	c := dialFake(t, f, o)
	if dialled != "tcp mail.example.test:465" {
		t.Errorf("dialled %q, want tcp mail.example.test:465", dialled)
	}
	if g := c.Greeting(); g == nil || g.Text() != "smtps.example.test ESMTP" {
		t.Errorf("greeting %+v", g)
	}
	cs, ok := c.TLSConnectionState()
	if !ok || cs.ServerName != "mail.example.test" || len(cs.VerifiedChains) == 0 {
		t.Errorf("TLS state ok=%v server name %q", ok, cs.ServerName)
	}
	if !strings.HasPrefix(c.TLS(), "TLSv1.3 ") {
		t.Errorf("TLS() = %q", c.TLS())
	}
	if !c.Authenticated() {
		t.Error("not authenticated")
	}
	if err := c.Quit(bg); err != nil {
		t.Fatal(err)
	}
	got := f.received()
	if strings.Contains(got, "STARTTLS") {
		t.Errorf("STARTTLS sent inside implicit TLS: %q", got)
	}
	if want := "EHLO client.test\r\nAUTH PLAIN AHUAcA==\r\nQUIT\r\n"; got != want {
		t.Errorf("wire %q, want %q", got, want)
	}
	if serverTLSVersion != tls.VersionTLS13 {
		t.Errorf("server version %x", serverTLSVersion)
	}
}

// Implicit TLS with a certificate the client refuses: ErrTLS and
// ErrConnect, the greeting never read.
func TestImplicitTLSBadCertificate(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := startFakeListener(t, tls.NewListener(ln, serverTLS(selfSigned(t, "mail.example.test"))), func(s *session) {
		if err := s.conn.(*tls.Conn).Handshake(); err == nil {
			s.t.Error("server completed the handshake")
		}
	})
	_, err = Dial(bg, Options{Address: f.addr, TLS: ImplicitTLS, TLSConfig: TLSOptions{ServerName: "mail.example.test"}})
	wantTLSError(t, err)
	if !errors.Is(err, ErrConnect) {
		t.Errorf("not ErrConnect: %v", err)
	}
	f.wait()
}

// Implicit TLS 1.3 to a server that requires a client certificate the
// client does not have: the server's refusal arrives as an alert on the
// first read after the client's side of the handshake, the greeting. It
// is a TLS failure all the same.
func TestImplicitTLSClientCertificateRequired(t *testing.T) {
	ca := newTestCA(t)
	cfg := serverTLS(ca.issue(t, false, "mail.example.test"))
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	cfg.ClientCAs = ca.pool
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := startFakeListener(t, tls.NewListener(ln, cfg), func(s *session) {
		if err := s.conn.(*tls.Conn).Handshake(); err == nil {
			s.t.Error("server accepted a client without a certificate")
		}
	})
	_, err = Dial(bg, Options{Address: f.addr, TLS: ImplicitTLS, TLSConfig: TLSOptions{RootCAs: ca.pool, ServerName: "mail.example.test"}})
	wantTLSError(t, err)
	f.wait()
}

// --- (h) opportunistic STARTTLS ------------------------------------------

func TestStartTLSOpportunistic(t *testing.T) {
	t.Run("not offered: plain session", func(t *testing.T) {
		f := startFake(t, func(s *session) {
			if !s.greetEHLO("8BITMIME") {
				return
			}
			s.expect("MAIL FROM:<a@x.test>")
			s.send("250 ok")
			s.expect("RCPT TO:<b@y.test>")
			s.send("250 ok")
			s.expect("DATA")
			s.send("354 go")
			s.data()
			s.send("250 queued")
			s.quit()
		})
		o := plainOpts(f)
		o.TLS = STARTTLSOpportunistic
		c := dialFake(t, f, o)
		if c.TLS() != "" {
			t.Errorf("TLS() = %q on a plain session", c.TLS())
		}
		if _, ok := c.TLSConnectionState(); ok {
			t.Error("TLSConnectionState reports TLS")
		}
		if _, err := c.SendMail(bg, "a@x.test", []string{"b@y.test"}, strings.NewReader("x"), nil); err != nil {
			t.Fatal(err)
		}
		c.Quit(bg)
		if got := f.received(); strings.Contains(got, "STARTTLS") {
			t.Errorf("STARTTLS sent: %q", got)
		}
	})
	t.Run("offered: upgraded", func(t *testing.T) {
		ca := newTestCA(t)
		p := startTLSProbe(t, serverTLS(ca.issue(t, false, "mail.example.test")))
		o := tlsOpts(p.fakeServer, TLSOptions{RootCAs: ca.pool, ServerName: "mail.example.test"})
		o.TLS = STARTTLSOpportunistic
		c := dialFake(t, p.fakeServer, o)
		if _, ok := c.TLSConnectionState(); !ok {
			t.Error("not upgraded")
		}
		if _, ok := c.Extension("8BITMIME"); !ok {
			t.Error("extensions of the EHLO after TLS missing")
		}
		c.Quit(bg)
		if !p.result() {
			t.Error("server handshake failed")
		}
	})
	t.Run("offered, bad certificate: fails, no fallback", func(t *testing.T) {
		p := startTLSProbe(t, serverTLS(selfSigned(t, "mail.example.test")))
		o := tlsOpts(p.fakeServer, TLSOptions{ServerName: "mail.example.test"})
		o.TLS = STARTTLSOpportunistic
		_, err := Dial(bg, o)
		wantTLSError(t, err)
	})
}

// --- (i) default mode ----------------------------------------------------

func TestTLSDefaultRequiresSTARTTLS(t *testing.T) {
	f := startFake(t, func(s *session) {
		if !s.greetEHLO("8BITMIME", "AUTH PLAIN") {
			return
		}
		s.quit()
	})
	_, err := Dial(bg, Options{Address: f.addr, LocalName: "client.test", Auth: &Credentials{Username: "u", Password: "p"}})
	if !errors.Is(err, ErrNotSupported) || !IsPermanent(err) {
		t.Fatalf("err %v", err)
	}
	if got, want := f.received(), "EHLO client.test\r\nQUIT\r\n"; got != want {
		t.Errorf("wire %q, want %q", got, want)
	}
}

// Over a Unix socket the default is no TLS, even when STARTTLS is
// offered (Dovecot's LMTP socket).
func TestTLSDefaultUnixSocket(t *testing.T) {
	dir, err := os.MkdirTemp("", "relay")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "lmtp")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	f := startFakeListener(t, ln, func(s *session) {
		s.send("220 dovecot ready")
		s.expect("LHLO client.test")
		s.ehloReply("STARTTLS", "PIPELINING", "AUTH PLAIN")
		s.expect("AUTH PLAIN AHUAcA==") // a Unix socket counts as local
		s.send("235 ok")
		s.quit()
	})
	c := dialFake(t, f, Options{Address: path, LMTP: true, LocalName: "client.test", Auth: &Credentials{Username: "u", Password: "p", Mechanisms: []string{"PLAIN"}}})
	if c.TLS() != "" {
		t.Errorf("TLS over a Unix socket: %q", c.TLS())
	}
	c.Quit(bg)
	if got := f.received(); strings.Contains(got, "STARTTLS") {
		t.Errorf("STARTTLS sent on a Unix socket: %q", got)
	}
}

// --- (j) CA file -------------------------------------------------------------

func TestCAFile(t *testing.T) {
	ca := newTestCA(t)
	leaf := ca.issue(t, false, "mail.example.test")
	t.Run("loads PEM", func(t *testing.T) {
		// Another certificate before ours: every PEM block counts.
		file := writeTemp(t, "ca.pem", append(newTestCA(t).pem, ca.pem...))
		p := startTLSProbe(t, serverTLS(leaf))
		if err := dialProbe(t, p, TLSOptions{CAFile: file, ServerName: "mail.example.test"}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("other CA in file", func(t *testing.T) {
		file := writeTemp(t, "ca.pem", newTestCA(t).pem)
		p := startTLSProbe(t, serverTLS(leaf))
		wantTLSError(t, dialProbe(t, p, TLSOptions{CAFile: file, ServerName: "mail.example.test"}))
	})
	t.Run("missing file", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "none.pem")
		_, err := (&TLSOptions{CAFile: file}).Config("h")
		if !errors.Is(err, ErrTLS) || !strings.Contains(err.Error(), "none.pem") {
			t.Errorf("err %v", err)
		}
	})
	t.Run("no PEM in file", func(t *testing.T) {
		file := writeTemp(t, "ca.pem", []byte("not a certificate\n"))
		_, err := (&TLSOptions{CAFile: file}).Config("h")
		if !errors.Is(err, ErrTLS) || !strings.Contains(err.Error(), file) {
			t.Errorf("err %v", err)
		}
	})
	t.Run("RootCAs wins over CAFile", func(t *testing.T) {
		cfg, err := (&TLSOptions{RootCAs: ca.pool, CAFile: filepath.Join(t.TempDir(), "none.pem")}).Config("h")
		if err != nil || cfg.RootCAs != ca.pool {
			t.Errorf("cfg %v err %v", cfg, err)
		}
	})
}

// --- addresses ---------------------------------------------------------------

func TestSplitAddress(t *testing.T) {
	for _, tc := range []struct {
		network, address string
		opts             Options // LMTP and TLS choose the default port
		netw, addr, host string  // want; netw "" means an error
	}{
		{"", "host", Options{}, "tcp", "host:25", "host"},
		{"", "host", Options{TLS: ImplicitTLS}, "tcp", "host:465", "host"},
		{"", "host", Options{LMTP: true}, "tcp", "host:24", "host"},
		{"", "host", Options{TLS: STARTTLSRequired}, "tcp", "host:25", "host"},
		{"", "host:2525", Options{}, "tcp", "host:2525", "host"},
		{"", "host:2525", Options{TLS: ImplicitTLS}, "tcp", "host:2525", "host"},
		{"", "192.0.2.1:587", Options{}, "tcp", "192.0.2.1:587", "192.0.2.1"},
		{"", "[::1]:25", Options{}, "tcp", "[::1]:25", "::1"},
		{"", "[::1]:2525", Options{LMTP: true}, "tcp", "[::1]:2525", "::1"},
		{"", "::1", Options{}, "tcp", "[::1]:25", "::1"},
		{"", "::1", Options{TLS: ImplicitTLS}, "tcp", "[::1]:465", "::1"},
		{"", "2001:db8::25", Options{}, "tcp", "[2001:db8::25]:25", "2001:db8::25"}, // several colons: all address
		{"", "[::1]", Options{}, "tcp", "[::1]:25", "::1"},
		{"", "[::1]", Options{LMTP: true}, "tcp", "[::1]:24", "::1"},
		{"", "[2001:db8::1]:65535", Options{}, "tcp", "[2001:db8::1]:65535", "2001:db8::1"},
		{"tcp6", "::1", Options{}, "tcp6", "[::1]:25", "::1"},
		{"tcp6", "[::1]:587", Options{}, "tcp6", "[::1]:587", "::1"},
		{"tcp4", "host", Options{}, "tcp4", "host:25", "host"},
		{"", "/run/dovecot/lmtp", Options{LMTP: true}, "unix", "/run/dovecot/lmtp", ""},
		{"", "host:", Options{}, "tcp", "host:25", "host"}, // empty port: the default, as smtplib
		{"unix", "relative/sock", Options{}, "unix", "relative/sock", ""},
		// Errors.
		{"", "host:bogus", Options{}, "", "", ""},
		{"", "host:0", Options{}, "", "", ""},
		{"", "host:65536", Options{}, "", "", ""},
		{"", "host:-1", Options{}, "", "", ""},
		{"", ":25", Options{}, "", "", ""},
		{"", "", Options{}, "", "", ""},
		{"", "[::1]:x", Options{}, "", "", ""},
		{"", "[::1", Options{}, "", "", ""},
		{"", "[]", Options{}, "", "", ""},
		{"udp", "host", Options{}, "", "", ""},
	} {
		o := tc.opts
		netw, addr, host, err := splitAddress(tc.network, tc.address, defaultPort(&o))
		name := tc.network + " " + tc.address
		if tc.netw == "" {
			if err == nil {
				t.Errorf("%s: no error, got %s %s %s", name, netw, addr, host)
			} else if !errors.Is(err, ErrInvalidArgument) || !IsPermanent(err) {
				t.Errorf("%s: error %v does not wrap ErrInvalidArgument", name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if netw != tc.netw || addr != tc.addr || host != tc.host {
			t.Errorf("%s: got %q %q %q, want %q %q %q", name, netw, addr, host, tc.netw, tc.addr, tc.host)
		}
	}
}

func TestDefaultPort(t *testing.T) {
	for _, tc := range []struct {
		o    Options
		want int
	}{
		{Options{}, 25},
		{Options{TLS: STARTTLSRequired}, 25},
		{Options{TLS: STARTTLSOpportunistic}, 25},
		{Options{TLS: NoTLS}, 25},
		{Options{TLS: ImplicitTLS}, 465},
		{Options{LMTP: true}, 24},
	} {
		if got := defaultPort(&tc.o); got != tc.want {
			t.Errorf("%+v: %d, want %d", tc.o.TLS, got, tc.want)
		}
	}
}

// A bad address is refused by Dial before any connection is attempted.
func TestDialBadAddress(t *testing.T) {
	called := false
	_, err := Dial(bg, Options{Address: "host:bogus", Dialer: func(context.Context, string, string) (net.Conn, error) {
		called = true
		return nil, errors.New("dialled")
	}})
	if !errors.Is(err, ErrInvalidArgument) || called {
		t.Errorf("err %v, dialler called %v", err, called)
	}
}
