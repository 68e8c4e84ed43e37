package realserver

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/smtp"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sentMessage is what the tests send: CRLF line ends, and a line that
// starts with a dot (dot-stuffed on the wire, stored as one dot).
func sentMessage(from, to, subject string) string {
	return "From: <" + from + ">\r\n" +
		"To: <" + to + ">\r\n" +
		"Subject: " + subject + "\r\n" +
		"Date: Mon, 02 Jan 2006 15:04:05 +0000\r\n" +
		"Message-ID: <" + strings.ReplaceAll(subject, " ", "-") + "@client.example.test>\r\n" +
		"\r\n" +
		"Hello " + to + ",\r\n" +
		".a line that starts with a dot\r\n" +
		"\r\n" +
		"bye\r\n"
}

// dotStuff doubles leading dots for the DATA phase.
func dotStuff(msg string) string {
	lines := strings.SplitAfter(msg, "\r\n")
	for i, l := range lines {
		if strings.HasPrefix(l, ".") {
			lines[i] = "." + l
		}
	}
	return strings.Join(lines, "")
}

// stripTrace removes the trace headers that the servers prepend
// (Return-Path, Delivered-To, Received and their continuation lines) and
// returns them and the rest.
func stripTrace(stored []byte) (trace, rest string) {
	s := string(stored)
	for {
		line, after, ok := strings.Cut(s, "\n")
		if !ok {
			break
		}
		isTrace := strings.HasPrefix(line, "Return-Path:") || strings.HasPrefix(line, "Delivered-To:") ||
			strings.HasPrefix(line, "Received:")
		isCont := trace != "" && (strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t"))
		if !isTrace && !isCont {
			break
		}
		trace += line + "\n"
		s = after
	}
	return trace, s
}

func crlfToLF(s string) string { return strings.ReplaceAll(s, "\r\n", "\n") }

// textConn speaks a line protocol (SMTP or LMTP) by hand.
type textConn struct {
	t    *testing.T
	conn net.Conn
	*textproto.Conn
}

func dialText(t *testing.T, network, addr string) *textConn {
	t.Helper()
	conn, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s %s: %v", network, addr, err)
	}
	return wrapText(t, conn)
}

func wrapText(t *testing.T, conn net.Conn) *textConn {
	t.Helper()
	if err := conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	c := &textConn{t: t, conn: conn, Conn: textproto.NewConn(conn)}
	t.Cleanup(func() { c.Close() })
	return c
}

// expect reads one reply and checks that its code starts with want (e.g.
// 250, 4, 55).
func (c *textConn) expect(want int) (int, string) {
	c.t.Helper()
	code, msg, err := c.ReadResponse(want)
	if err != nil {
		c.t.Fatalf("reply %d %q: %v (want %d)", code, msg, err, want)
	}
	return code, msg
}

// cmd sends a command line and checks the reply code as expect does.
func (c *textConn) cmd(want int, format string, args ...any) (int, string) {
	c.t.Helper()
	if err := c.PrintfLine(format, args...); err != nil {
		c.t.Fatalf("sending %q: %v", fmt.Sprintf(format, args...), err)
	}
	return c.expect(want)
}

// data sends the message, dot-stuffed and terminated, as is after DATA.
func (c *textConn) data(msg string) {
	c.t.Helper()
	if _, err := c.W.WriteString(dotStuff(msg) + ".\r\n"); err != nil {
		c.t.Fatal(err)
	}
	if err := c.W.Flush(); err != nil {
		c.t.Fatal(err)
	}
}

func extensions(ehloReply string) map[string]string {
	ext := map[string]string{}
	for _, line := range strings.Split(ehloReply, "\n")[1:] {
		k, v, _ := strings.Cut(line, " ")
		ext[strings.ToUpper(k)] = v
	}
	return ext
}

func TestCA(t *testing.T) {
	t.Parallel()
	ca := NewCA(t)
	certFile, keyFile := ca.Issue(t, "localhost", "mail.example.test", "127.0.0.1")
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"localhost", "mail.example.test", "127.0.0.1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: ca.Pool}); err != nil {
			t.Errorf("verify for %s: %v", name, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "other.example.test", Roots: ca.Pool}); err == nil {
		t.Errorf("leaf verifies for a name it does not have")
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "localhost"}); err == nil {
		t.Errorf("leaf verifies without the CA")
	}
	if got := leaf.NotAfter.Sub(leaf.NotBefore); got > 2*time.Hour {
		t.Errorf("validity %v, want about 1h", got)
	}
}

func TestAvailableUnknown(t *testing.T) {
	if err := Available("sendmail"); err == nil || !strings.Contains(err.Error(), "unknown server") {
		t.Fatalf("Available(sendmail) = %v", err)
	}
}

// lmtpDeliver sends msg to rcpts over LMTP and checks the per-recipient
// replies after DATA.
func lmtpDeliver(t *testing.T, network, addr, from string, rcpts []string, msg string) {
	t.Helper()
	c := dialText(t, network, addr)
	c.expect(220)
	_, lhlo := c.cmd(250, "LHLO client.example.test")
	t.Logf("LHLO reply: %q", lhlo)
	c.cmd(250, "MAIL FROM:<%s>", from)
	for _, r := range rcpts {
		c.cmd(250, "RCPT TO:<%s>", r)
	}
	c.cmd(354, "DATA")
	c.data(msg)
	for range rcpts { // LMTP: one reply per accepted recipient
		c.expect(250)
	}
	c.cmd(221, "QUIT")
}

// checkLMTPStored checks a message that Dovecot stored: its trace headers
// and, after them, exactly the bytes sent (with LF line ends). Dovecot adds
// Delivered-To only when the transaction had a single recipient; pass
// rcpt "" for several.
func checkLMTPStored(t *testing.T, stored []byte, from, rcpt, msg string) {
	t.Helper()
	trace, rest := stripTrace(stored)
	if !strings.HasPrefix(trace, "Return-Path: <"+from+">\n") {
		t.Errorf("stored message does not start with Return-Path <%s>:\n%s", from, stored)
	}
	if !strings.Contains(trace, "Received: from client.example.test") || !strings.Contains(trace, "by lmtp.example.test with LMTP") {
		t.Errorf("no Received header from Dovecot in the trace headers:\n%s", trace)
	}
	if rcpt != "" && !strings.Contains(trace, "Delivered-To: "+rcpt+"\n") {
		t.Errorf("no Delivered-To: %s in the trace headers:\n%s", rcpt, trace)
	}
	if want := crlfToLF(msg); rest != want {
		t.Errorf("stored message after the trace headers:\n%q\nwant exactly what was sent (LF line ends):\n%q", rest, want)
	}
}

func TestDovecotLMTPUnixSocket(t *testing.T) {
	Require(t, "postfix", "dovecot")
	t.Parallel()
	d := StartDovecot(t, DovecotOptions{})
	msg := sentMessage("sender@elsewhere.test", "alice@example.test", "lmtp unix")
	lmtpDeliver(t, "unix", d.LMTPSocket, "sender@elsewhere.test", []string{"alice@example.test"}, msg)
	msgs := d.Messages(t, "alice")
	if len(msgs) != 1 {
		t.Fatalf("alice has %d messages, want 1", len(msgs))
	}
	checkLMTPStored(t, msgs[0], "sender@elsewhere.test", "alice@example.test", msg)

	// Two recipients in one transaction: one reply each after DATA.
	msg2 := sentMessage("sender@elsewhere.test", "alice@example.test", "lmtp unix two")
	lmtpDeliver(t, "unix", d.LMTPSocket, "sender@elsewhere.test", []string{"alice@example.test", "bob@example.test"}, msg2)
	alice := d.WaitMessages(t, "alice@example.test", 2)
	bob := d.Messages(t, "bob")
	if len(alice) != 2 || len(bob) != 1 {
		t.Fatalf("alice has %d messages (want 2), bob %d (want 1)", len(alice), len(bob))
	}
	checkLMTPStored(t, bob[0], "sender@elsewhere.test", "", msg2)
	var found bool
	for _, m := range alice {
		if _, rest := stripTrace(m); rest == crlfToLF(msg2) {
			found = true
		}
	}
	if !found {
		t.Errorf("alice lacks the second message")
	}
}

func TestDovecotLMTPTCP(t *testing.T) {
	Require(t, "postfix", "dovecot")
	t.Parallel()
	d := StartDovecot(t, DovecotOptions{Users: map[string]string{"carol": "carolpass"}})
	if d.Users["alice"] != "alicepass" || d.Users["bob"] != "bobpass" || d.Users["carol"] != "carolpass" {
		t.Fatalf("Users = %v", d.Users)
	}
	if n := len(d.Messages(t, "alice")); n != 0 {
		t.Fatalf("alice has %d messages before delivery", n)
	}
	// An unknown user is refused at RCPT.
	c := dialText(t, "tcp", d.LMTPAddr)
	c.expect(220)
	c.cmd(250, "LHLO client.example.test")
	c.cmd(250, "MAIL FROM:<x@elsewhere.test>")
	c.cmd(550, "RCPT TO:<nobody@example.test>")
	c.cmd(221, "QUIT")

	var sent []string
	for i, user := range []string{"alice", "alice", "carol"} {
		msg := sentMessage("sender@elsewhere.test", user+"@example.test", fmt.Sprintf("lmtp tcp %d", i))
		lmtpDeliver(t, "tcp", d.LMTPAddr, "sender@elsewhere.test", []string{user + "@example.test"}, msg)
		sent = append(sent, msg)
	}
	alice := d.WaitMessages(t, "alice", 2)
	if len(alice) != 2 {
		t.Fatalf("alice has %d messages, want 2", len(alice))
	}
	got := map[string]bool{}
	for _, m := range alice {
		_, rest := stripTrace(m)
		got[rest] = true
	}
	for _, msg := range sent[:2] {
		if !got[crlfToLF(msg)] {
			t.Errorf("alice's Maildir lacks %q", msg)
		}
	}
	carol := d.WaitMessages(t, "carol", 1)
	checkLMTPStored(t, carol[0], "sender@elsewhere.test", "carol@example.test", sent[2])
}

func TestPostfixSTARTTLSAndAUTH(t *testing.T) {
	Require(t, "postfix", "dovecot")
	t.Parallel()
	p := StartPostfix(t, PostfixOptions{})

	// Plain SMTP: STARTTLS and SIZE, no AUTH before TLS.
	c := dialText(t, "tcp", p.Addr)
	_, banner := c.expect(220)
	if !strings.HasPrefix(banner, PostfixHostname+" ESMTP") {
		t.Errorf("banner %q", banner)
	}
	_, ehlo := c.cmd(250, "EHLO client.example.test")
	ext := extensions(ehlo)
	if _, ok := ext["STARTTLS"]; !ok {
		t.Errorf("no STARTTLS before TLS:\n%s", ehlo)
	}
	if _, ok := ext["AUTH"]; ok {
		t.Errorf("AUTH offered before TLS:\n%s", ehlo)
	}
	if ext["SIZE"] != fmt.Sprint(DefaultMessageSizeLimit) {
		t.Errorf("SIZE %q, want %d", ext["SIZE"], DefaultMessageSizeLimit)
	}
	c.cmd(220, "STARTTLS")
	tc := tls.Client(c.conn, p.CA.TLSConfig("localhost"))
	if err := tc.Handshake(); err != nil {
		t.Fatalf("STARTTLS handshake verifying against the CA: %v", err)
	}
	c2 := wrapText(t, tc)
	_, ehlo = c2.cmd(250, "EHLO client.example.test")
	ext = extensions(ehlo)
	mechs := strings.Fields(ext["AUTH"])
	t.Logf("AUTH after STARTTLS: %v", mechs)
	for _, m := range []string{"PLAIN", "LOGIN"} {
		if !strings.Contains(" "+ext["AUTH"]+" ", " "+m+" ") {
			t.Errorf("AUTH after STARTTLS lacks %s:\n%s", m, ehlo)
		}
	}
	if _, ok := ext["STARTTLS"]; ok {
		t.Errorf("STARTTLS offered again under TLS")
	}
	c2.cmd(221, "QUIT")

	// SMTPS: TLS first, verifying every name of the certificate.
	for _, name := range []string{"localhost", PostfixHostname, "127.0.0.1"} {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", p.SMTPSAddr, p.CA.TLSConfig(name))
		if err != nil {
			t.Fatalf("SMTPS handshake as %s: %v", name, err)
		}
		s := wrapText(t, conn)
		s.expect(220)
		_, ehlo := s.cmd(250, "EHLO client.example.test")
		if got := extensions(ehlo)["AUTH"]; !strings.Contains(got, "PLAIN") {
			t.Errorf("SMTPS AUTH = %q", got)
		}
		s.cmd(221, "QUIT")
	}
	// The SMTPS port says nothing before the TLS handshake.
	plain, err := net.DialTimeout("tcp", p.SMTPSAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = plain.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if n, err := plain.Read(make([]byte, 100)); n != 0 || err == nil {
		t.Errorf("SMTPS port sent %d bytes in clear (err %v)", n, err)
	}
	plain.Close()
	// A client that does not trust the CA fails the handshake.
	if conn, err := tls.Dial("tcp", p.SMTPSAddr, &tls.Config{ServerName: "localhost"}); err == nil {
		conn.Close()
		t.Errorf("SMTPS handshake succeeded without the CA")
	}
}

func TestPostfixDeliversToDovecot(t *testing.T) {
	Require(t, "postfix", "dovecot")
	t.Parallel()
	p := StartPostfix(t, PostfixOptions{})

	dial := func() *smtp.Client {
		t.Helper()
		conn, err := net.DialTimeout("tcp", p.Addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		c, err := smtp.NewClient(conn, "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if err := c.Hello("client.example.test"); err != nil {
			t.Fatal(err)
		}
		if err := c.StartTLS(p.CA.TLSConfig("localhost")); err != nil {
			t.Fatal(err)
		}
		return c
	}
	// A wrong password gets 535 (and net/smtp then quits). PlainAuth
	// compares its host with the one given to smtp.NewClient.
	if err := dial().Auth(smtp.PlainAuth("", "alice", "wrongpass", "127.0.0.1")); err == nil || !strings.HasPrefix(err.Error(), "535") {
		t.Errorf("AUTH PLAIN with a wrong password: %v, want 535", err)
	}

	// STARTTLS + AUTH PLAIN as alice, to bob, with net/smtp.
	c := dial()
	if err := c.Auth(smtp.PlainAuth("", "alice", "alicepass", "127.0.0.1")); err != nil {
		t.Fatalf("AUTH PLAIN alice: %v", err)
	}
	msg := sentMessage("alice@example.test", "bob@example.test", "through postfix")
	if err := c.Mail("alice@example.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("bob@example.test"); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(crlfToLF(msg))); err != nil { // net/smtp's DotWriter writes CRLF
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}

	msgs := p.Dovecot.WaitMessages(t, "bob", 1)
	if len(msgs) != 1 {
		t.Fatalf("bob has %d messages, want 1", len(msgs))
	}
	trace, rest := stripTrace(msgs[0])
	if !strings.HasPrefix(trace, "Return-Path: <alice@example.test>\n") ||
		!strings.Contains(trace, "Delivered-To: bob@example.test\n") {
		t.Errorf("trace headers:\n%s", trace)
	}
	// ESMTPSA, or UTF8SMTPSA as net/smtp sends SMTPUTF8 when offered.
	if !strings.Contains(trace, "SMTPSA id ") {
		t.Errorf("Postfix's Received header does not show an authenticated TLS session:\n%s", trace)
	}
	if want := crlfToLF(msg); rest != want {
		t.Errorf("stored message after the trace headers:\n%q\nwant\n%q", rest, want)
	}

	// SMTPS + AUTH CRAM-MD5 as bob, to alice.
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", p.SMTPSAddr, p.CA.TLSConfig("localhost"))
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	c2, err := smtp.NewClient(conn, "localhost")
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := c2.Auth(smtp.CRAMMD5Auth("bob", "bobpass")); err != nil {
		t.Fatalf("AUTH CRAM-MD5 bob: %v", err)
	}
	msg2 := sentMessage("bob@example.test", "alice@example.test", "through smtps")
	if err := c2.Mail("bob@example.test"); err != nil {
		t.Fatal(err)
	}
	if err := c2.Rcpt("alice@example.test"); err != nil {
		t.Fatal(err)
	}
	w, err = c2.Data()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(crlfToLF(msg2))); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c2.Quit(); err != nil {
		t.Fatal(err)
	}
	alice := p.Dovecot.WaitMessages(t, "alice", 1)
	if _, rest := stripTrace(alice[0]); rest != crlfToLF(msg2) {
		t.Errorf("alice's message:\n%q\nwant\n%q", rest, crlfToLF(msg2))
	}
}

func TestPostfixPolicy(t *testing.T) {
	Require(t, "postfix", "dovecot")
	t.Parallel()
	dv := StartDovecot(t, DovecotOptions{})
	p := StartPostfix(t, PostfixOptions{Dovecot: dv, MessageSizeLimit: 1 << 20})
	if p.Dovecot != dv {
		t.Fatalf("Postfix does not use the given Dovecot")
	}

	c := dialText(t, "tcp", p.Addr)
	c.expect(220)
	_, ehlo := c.cmd(250, "EHLO client.example.test")
	if got := extensions(ehlo)["SIZE"]; got != "1048576" {
		t.Errorf("SIZE %q, want 1048576", got)
	}
	_, msg := c.cmd(554, "MAIL FROM:<%s>", BlockedSender)
	if !strings.Contains(msg, "5.7.1") || !strings.Contains(msg, "sender blocked") {
		t.Errorf("blocked sender: %q", msg)
	}
	c.cmd(552, "MAIL FROM:<alice@example.test> SIZE=2000000")
	c.cmd(250, "MAIL FROM:<alice@example.test> SIZE=1000")
	_, msg = c.cmd(450, "RCPT TO:<%s>", TempfailRecipient)
	if !strings.Contains(msg, "4.2.0") || !strings.Contains(msg, "try later") {
		t.Errorf("tempfail recipient: %q", msg)
	}
	_, msg = c.cmd(550, "RCPT TO:<nobody@example.test>")
	if !strings.Contains(msg, "5.1.1") {
		t.Errorf("unknown recipient: %q", msg)
	}
	_, msg = c.cmd(554, "RCPT TO:<someone@elsewhere.test>")
	if !strings.Contains(msg, "Relay access denied") {
		t.Errorf("relay without AUTH: %q", msg)
	}
	c.cmd(250, "RCPT TO:<bob@example.test>")
	c.cmd(354, "DATA")
	sent := sentMessage("alice@example.test", "bob@example.test", "unauthenticated to a local user")
	c.data(sent)
	_, reply := c.expect(250)
	ids := []string{queueID(t, reply)}

	// A bare message: Postfix adds no Date, Message-ID, From or To.
	c.cmd(250, "MAIL FROM:<alice@example.test>")
	c.cmd(250, "RCPT TO:<bob@example.test>")
	c.cmd(354, "DATA")
	bare := "Subject: bare\r\n\r\nno other header\r\n"
	c.data(bare)
	_, reply = c.expect(250)
	ids = append(ids, queueID(t, reply))
	c.cmd(221, "QUIT")

	msgs := dv.WaitMessages(t, "bob", 2)
	got := map[string]bool{}
	for _, m := range msgs {
		_, rest := stripTrace(m)
		got[rest] = true
	}
	for _, m := range []string{sent, bare} {
		if !got[crlfToLF(m)] {
			t.Errorf("bob's Maildir lacks, unchanged,\n%q\nhas:\n%q", crlfToLF(m), msgs)
		}
	}
	// Postfix logs a delivery once Dovecot has answered, that is after
	// the message is in the Maildir, and through postlogd: wait for it.
	for _, id := range ids {
		line := p.WaitLog(t, id+": to=<bob@example.test>", "status=sent")
		if !strings.Contains(line, "["+dv.LMTPSocket+"]") {
			t.Errorf("delivery of %s not over Dovecot's LMTP socket %s: %s", id, dv.LMTPSocket, line)
		}
	}
}

// queueID returns the queue ID of Postfix's reply to the end of DATA,
// "2.0.0 Ok: queued as 4Ab1Cd2Ef3".
func queueID(t *testing.T, reply string) string {
	t.Helper()
	_, id, ok := strings.Cut(reply, "queued as ")
	if id = strings.TrimSpace(id); !ok || id == "" || strings.ContainsAny(id, " :") {
		t.Fatalf("no queue ID in the reply to DATA: %q", reply)
	}
	return id
}

// TestStartRetriesOnBusyPort hands each server a taken port on its first
// start attempt: the server fails to bind, and the harness must start it
// again on fresh ports. Not parallel: it replaces pickPorts.
func TestStartRetriesOnBusyPort(t *testing.T) {
	Require(t, "postfix", "dovecot")
	busy, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyAddr := busy.Addr().String()
	busyPort := busy.Addr().(*net.TCPAddr).Port
	busyNext := true
	pickPorts = func(n int) ([]int, error) {
		ports, err := freePorts(n)
		if err == nil && busyNext {
			ports[n-1] = busyPort
			busyNext = false
		}
		return ports, err
	}
	t.Cleanup(func() { pickPorts = freePorts })

	d := StartDovecot(t, DovecotOptions{})
	if d.LMTPAddr == busyAddr {
		t.Fatalf("Dovecot claims the busy port %s", busyAddr)
	}
	stderr, _ := os.ReadFile(filepath.Join(d.Dir, "dovecot.stderr"))
	if !strings.Contains(d.Log()+string(stderr), "Address already in use") {
		t.Errorf("Dovecot's first attempt did not fail to bind:\n%s\n%s", stderr, d.Log())
	}
	greetLMTP(t, d)

	busyNext = true
	p := StartPostfix(t, PostfixOptions{Dovecot: d})
	if p.SMTPSAddr == busyAddr {
		t.Fatalf("Postfix claims the busy port %s", busyAddr)
	}
	if !strings.Contains(p.Log(), "Address already in use") {
		t.Errorf("Postfix's first attempt did not fail to bind:\n%s", p.Log())
	}
	c := dialText(t, "tcp", p.Addr)
	c.expect(220)
	c.cmd(221, "QUIT")
}

func greetLMTP(t *testing.T, d *Dovecot) {
	t.Helper()
	for _, a := range [][2]string{{"unix", d.LMTPSocket}, {"tcp", d.LMTPAddr}} {
		c := dialText(t, a[0], a[1])
		c.expect(220)
		c.cmd(250, "LHLO client.example.test")
		c.cmd(221, "QUIT")
	}
}
