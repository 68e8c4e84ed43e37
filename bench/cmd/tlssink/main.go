// Command tlssink is the STARTTLS sink of bench/run.sh, since Postfix's
// smtp-sink speaks no TLS: an SMTP server on loopback that offers
// STARTTLS with a throwaway self-signed certificate made at start-up,
// accepts every command, discards the message data and answers 250.
//
// Usage:
//
//	tlssink [-listen 127.0.0.1:2526] [-cert-out FILE]
//
// It prints "ready" on standard output once it listens, and on SIGTERM or
// SIGINT "sessions=S tls=T messages=M bytes=B" and exits 0, so that the
// caller can check that every message arrived. -cert-out writes the
// certificate (PEM) for clients that verify against a CA file; it is
// valid for 127.0.0.1 and localhost.
package main

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

var sessions, tlsSessions, messages, dataBytes atomic.Int64

func main() {
	listen := flag.String("listen", "127.0.0.1:2526", "address to listen on")
	certOut := flag.String("cert-out", "", "write the certificate (PEM) to this file")
	flag.Parse()

	cert, certPEM, err := selfSigned()
	if err != nil {
		fatal(err)
	}
	if *certOut != "" {
		if err := os.WriteFile(*certOut, certPEM, 0o644); err != nil {
			fatal(err)
		}
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fatal(err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		fmt.Printf("sessions=%d tls=%d messages=%d bytes=%d\n", sessions.Load(), tlsSessions.Load(), messages.Load(), dataBytes.Load())
		os.Exit(0)
	}()
	fmt.Println("ready")
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			fatal(err)
		}
		go serve(c, cfg)
	}
}

// selfSigned makes an ECDSA P-256 certificate for 127.0.0.1 and
// localhost, valid for a day.
func selfSigned() (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "tlssink"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, certPEM, nil
}

// serve speaks just enough SMTP for a client to deliver: EHLO/HELO,
// STARTTLS, MAIL, RCPT, DATA, RSET, NOOP, QUIT, with PIPELINING (replies
// are flushed when no more input is buffered).
func serve(conn net.Conn, cfg *tls.Config) {
	defer conn.Close()
	sessions.Add(1)
	br := bufio.NewReaderSize(conn, 64<<10)
	bw := bufio.NewWriterSize(conn, 4<<10)
	reply := func(lines ...string) {
		for _, l := range lines {
			bw.WriteString(l)
			bw.WriteString("\r\n")
		}
	}
	reply("220 tlssink ESMTP")
	bw.Flush()
	secure := false
	for {
		line, err := readLine(br)
		if err != nil {
			return
		}
		verb, _, _ := strings.Cut(strings.TrimRight(line, "\r\n"), " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			ext := []string{"250-tlssink", "250-PIPELINING", "250-8BITMIME", "250-SIZE 0", "250-ENHANCEDSTATUSCODES"}
			if !secure {
				ext = append(ext, "250-STARTTLS")
			}
			ext = append(ext, "250 SMTPUTF8")
			reply(ext...)
		case "HELO":
			reply("250 tlssink")
		case "STARTTLS":
			if secure {
				reply("503 5.5.1 TLS already active")
				break
			}
			if br.Buffered() > 0 {
				reply("503 5.5.1 no pipelining after STARTTLS")
				bw.Flush()
				return
			}
			reply("220 2.0.0 Ready to start TLS")
			if bw.Flush() != nil {
				return
			}
			tc := tls.Server(conn, cfg)
			if tc.Handshake() != nil {
				return
			}
			conn, secure = tc, true
			tlsSessions.Add(1)
			br.Reset(tc)
			bw.Reset(tc)
			continue
		case "MAIL", "RCPT", "RSET", "NOOP":
			reply("250 2.0.0 Ok")
		case "DATA":
			reply("354 End data with <CR><LF>.<CR><LF>")
			if bw.Flush() != nil {
				return
			}
			n, err := discardData(br)
			if err != nil {
				return
			}
			dataBytes.Add(n)
			messages.Add(1)
			reply("250 2.0.0 Ok: queued")
		case "QUIT":
			reply("221 2.0.0 Bye")
			bw.Flush()
			return
		default:
			reply("502 5.5.2 Error: command not recognized")
		}
		if br.Buffered() == 0 && bw.Flush() != nil {
			return
		}
	}
}

// readLine reads one command line, at most 4 KiB.
func readLine(br *bufio.Reader) (string, error) {
	line, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) || len(line) > 4096 {
		return "", errors.New("line too long")
	}
	return string(line), err
}

// discardData reads message data up to the line ".", returning the octets
// read.
func discardData(br *bufio.Reader) (int64, error) {
	var n int64
	atStart := true
	for {
		chunk, err := br.ReadSlice('\n')
		n += int64(len(chunk))
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return n, err
		}
		complete := err == nil
		if atStart && complete && (bytes.Equal(chunk, []byte(".\r\n")) || bytes.Equal(chunk, []byte(".\n"))) {
			return n, nil
		}
		atStart = complete
	}
}

func fatal(err error) {
	fmt.Fprintf(os.Stderr, "tlssink: %v\n", err)
	os.Exit(1)
}
