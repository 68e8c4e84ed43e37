package realserver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// CA is a throwaway certificate authority made in the test with crypto/x509
// (ECDSA P-256, valid for one hour). Its certificates are for test servers
// only.
type CA struct {
	CertPEM  []byte            // the CA certificate, PEM
	CertFile string            // CertPEM in a file
	Cert     *x509.Certificate // the CA certificate
	Pool     *x509.CertPool    // a pool holding only the CA certificate

	key *ecdsa.PrivateKey
	dir string

	mu sync.Mutex
	n  int // leaves issued, for file names
}

// NewCA makes a CA whose files live in a temporary directory of t.
func NewCA(t testing.TB) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("realserver: CA key: %v", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(t),
		Subject:               pkix.Name{CommonName: "handoff realserver test CA", Organization: []string{"handoff tests"}},
		NotBefore:             now.Add(-5 * time.Minute),
		NotAfter:              now.Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("realserver: CA certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("realserver: CA certificate: %v", err)
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatalf("realserver: %v", err)
	}
	ca := &CA{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		Cert:    cert,
		Pool:    x509.NewCertPool(),
		key:     key,
		dir:     dir,
	}
	ca.Pool.AddCert(cert)
	ca.CertFile = filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca.CertFile, ca.CertPEM, 0o644); err != nil {
		t.Fatalf("realserver: %v", err)
	}
	return ca
}

// Issue makes a server (and client) certificate for the given DNS names and
// IP addresses (such as "localhost", "mail.example.test", "127.0.0.1"),
// signed by the CA and valid for one hour, and writes it and its key as PEM
// files. The first name is also the subject's common name. The key file
// holds a PKCS #8 "PRIVATE KEY" and has mode 0600.
func (ca *CA) Issue(t testing.TB, names ...string) (certFile, keyFile string) {
	t.Helper()
	if len(names) == 0 {
		t.Fatalf("realserver: CA.Issue needs at least one name")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("realserver: leaf key: %v", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(t),
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    now.Add(-5 * time.Minute),
		NotAfter:     now.Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatalf("realserver: leaf certificate: %v", err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("realserver: leaf key: %v", err)
	}
	ca.mu.Lock()
	ca.n++
	n := ca.n
	ca.mu.Unlock()
	certFile = filepath.Join(ca.dir, "leaf"+strconv.Itoa(n)+".pem")
	keyFile = filepath.Join(ca.dir, "leaf"+strconv.Itoa(n)+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatalf("realserver: %v", err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), 0o600); err != nil {
		t.Fatalf("realserver: %v", err)
	}
	return certFile, keyFile
}

// TLSConfig returns a client configuration that trusts only the CA and
// expects the server to present serverName.
func (ca *CA) TLSConfig(serverName string) *tls.Config {
	return &tls.Config{RootCAs: ca.Pool, ServerName: serverName, MinVersion: tls.VersionTLS12}
}

func randomSerial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		t.Fatalf("realserver: serial number: %v", err)
	}
	return n.Add(n, big.NewInt(1))
}
