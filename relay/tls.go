package relay

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// TLSOptions is the certificate and version policy for STARTTLS and
// implicit TLS. The zero value verifies the server's certificate against
// the system roots and the host name being dialled, with TLS 1.2 or
// later (RFC 8996 retired 1.0 and 1.1).
type TLSOptions struct {
	// ServerName is the name the certificate must carry and the SNI sent.
	// Default: the host part of Options.Address. Set it when dialling an
	// IP address or a name other than the one on the certificate
	// (RFC 7817 §3: verify the name the user configured).
	ServerName string
	// CAFile is a PEM file of trusted CA certificates used instead of the
	// system roots.
	CAFile string
	// RootCAs, when set, is used instead of the system roots (and of
	// CAFile).
	RootCAs *x509.CertPool
	// CertFile and KeyFile are a PEM client certificate and key.
	CertFile, KeyFile string
	// Certificates are client certificates already loaded.
	Certificates []tls.Certificate
	// PinSHA256 lists accepted SHA-256 digests of the server's
	// SubjectPublicKeyInfo, base64 (as in HPKP and `openssl ... | base64`)
	// or hex. When set, the leaf key must match one of them, in addition
	// to normal verification, or instead of it when InsecureSkipVerify is
	// set (a self-signed server known by its key).
	PinSHA256 []string
	// MinVersion is the lowest TLS version accepted; default TLS 1.2.
	MinVersion uint16
	// InsecureSkipVerify turns certificate and name verification off.
	// Pins are still checked.
	InsecureSkipVerify bool
}

// Config builds the *tls.Config for a connection to host. It reads CAFile
// and the client key pair from disk; errors name the file.
func (o *TLSOptions) Config(host string) (*tls.Config, error) {
	cfg := &tls.Config{
		ServerName:         o.ServerName,
		RootCAs:            o.RootCAs,
		Certificates:       append([]tls.Certificate(nil), o.Certificates...),
		MinVersion:         o.MinVersion,
		InsecureSkipVerify: o.InsecureSkipVerify,
	}
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	if cfg.MinVersion == 0 {
		cfg.MinVersion = tls.VersionTLS12
	}
	if cfg.RootCAs == nil && o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%w: reading CA file: %v", ErrTLS, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: no PEM certificate in CA file %s", ErrTLS, o.CAFile)
		}
		cfg.RootCAs = pool
	}
	if o.CertFile != "" || o.KeyFile != "" {
		kp, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: loading client certificate %s: %v", ErrTLS, o.CertFile, err)
		}
		cfg.Certificates = append(cfg.Certificates, kp)
	}
	if len(o.PinSHA256) > 0 {
		pins, err := decodePins(o.PinSHA256)
		if err != nil {
			return nil, err
		}
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("server sent no certificate")
			}
			sum := sha256.Sum256(cs.PeerCertificates[0].RawSubjectPublicKeyInfo)
			for _, p := range pins {
				if subtle.ConstantTimeCompare(sum[:], p) == 1 {
					return nil
				}
			}
			return fmt.Errorf("server key sha256 %s matches no configured pin", base64.StdEncoding.EncodeToString(sum[:]))
		}
	}
	return cfg, nil
}

// decodePins accepts base64 (standard, with or without padding) or hex
// SHA-256 digests.
func decodePins(in []string) ([][]byte, error) {
	var out [][]byte
	for _, s := range in {
		s = strings.TrimSpace(s)
		s = strings.TrimPrefix(s, "sha256//")
		var b []byte
		var err error
		if len(s) == 64 {
			b, err = hex.DecodeString(s)
		} else {
			b, err = base64.StdEncoding.DecodeString(s)
			if err != nil {
				b, err = base64.RawStdEncoding.DecodeString(s)
			}
		}
		if err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("%w: pin %q is not a base64 or hex SHA-256 digest", ErrInvalidArgument, s)
		}
		out = append(out, b)
	}
	return out, nil
}

// PinOf returns the base64 SHA-256 digest of a certificate's public key,
// the form PinSHA256 takes.
func PinOf(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// TLSDescription returns "TLSv1.3 TLS_AES_128_GCM_SHA256" for a
// connection state, the form handoff logs.
func TLSDescription(cs *tls.ConnectionState) string {
	if cs == nil {
		return ""
	}
	v := tls.VersionName(cs.Version)
	v = strings.Replace(v, "TLS 1", "TLSv1", 1)
	return v + " " + tls.CipherSuiteName(cs.CipherSuite)
}
