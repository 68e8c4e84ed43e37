package relay

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Client is one SMTP or LMTP session. It is not safe for concurrent use:
// one goroutine drives the dialogue, as the protocol is a conversation.
// After an error that wraps ErrServerDisconnected the connection is
// closed and every further call fails with that error.
type Client struct {
	conn   net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	server string // the address dialled, for error messages
	host   string // host part, for the TLS server name
	local  bool   // Unix socket or loopback peer: AUTH may go without TLS
	opts   Options
	to     Timeouts
	tlsCfg *tls.Config // nil until first needed

	lmtp      bool
	localName string
	greeting  *Reply
	hello     *Reply // reply to the last EHLO/HELO/LHLO, nil before
	esmtp     bool   // EHLO (or LHLO) succeeded
	ext       map[string]string
	authMechs []string
	authed    bool
	tlsState  *tls.ConnectionState
	utf8      bool // the current transaction uses SMTPUTF8

	// rcpts are the recipients accepted in the current transaction, in
	// order, duplicates kept: LMTP answers once per accepted RCPT.
	rcpts []string
	// pending is a transaction whose commands went out ahead
	// (SendOptions.Next), its replies unread.
	pending *pendingTx

	broken error // the ConnError that closed the connection

	debugMu sync.Mutex
}

// Dial connects as opts says and makes the session ready for a mail
// transaction: greeting, EHLO (or LHLO), STARTTLS and a second EHLO when
// the TLS mode asks for it, then AUTH when opts.Auth is set. On error the
// connection is closed and the error wraps ErrConnect (dial, greeting),
// ErrHelo, ErrTLS, ErrNotSupported (STARTTLS required but not offered),
// ErrAuthentication or ErrServerDisconnected.
func Dial(ctx context.Context, opts Options) (*Client, error) {
	netw, addr, host, err := splitAddress(opts.Network, opts.Address, defaultPort(&opts))
	if err != nil {
		return nil, err
	}
	to := opts.Timeouts.withDefaults()
	c := &Client{server: addr, host: host, opts: opts, to: to, lmtp: opts.LMTP}
	c.debugf("connect: %s %s", netw, addr)
	conn, err := c.dial(ctx, netw, addr)
	if err != nil {
		return nil, &ConnError{Stage: "dial", Server: addr, Err: err, kinds: []error{ErrConnect}}
	}
	c.local = netw == "unix" || isLoopback(conn.RemoteAddr())
	if opts.TLS == ImplicitTLS {
		cfg, err := c.tlsConfig()
		if err != nil {
			conn.Close()
			return nil, err
		}
		tc := tls.Client(conn, cfg)
		if err := c.handshake(ctx, tc); err != nil {
			conn.Close()
			return nil, &ConnError{Stage: "TLS handshake", Server: addr, Err: err, kinds: []error{ErrConnect, ErrTLS}}
		}
		conn = tc
	}
	if err := c.start(ctx, conn); err != nil {
		return nil, err
	}
	if err := c.Hello(ctx); err != nil {
		c.Close()
		return nil, err
	}
	mode := opts.TLS
	if mode == TLSDefault {
		mode = STARTTLSRequired
		if netw == "unix" {
			mode = NoTLS
		}
	}
	switch mode {
	case STARTTLSRequired:
		if err := c.StartTLS(ctx); err != nil {
			c.Close()
			return nil, err
		}
	case STARTTLSOpportunistic:
		if _, ok := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(ctx); err != nil {
				c.Close()
				return nil, err
			}
		}
	}
	if opts.Auth != nil {
		if err := c.Login(ctx, *opts.Auth); err != nil {
			c.Quit(ctx)
			return nil, err
		}
	}
	return c, nil
}

// NewClient starts a session on a connection the caller opened (and, for
// implicit TLS, already wrapped in TLS): it reads the greeting and returns.
// opts.Address, when set, is only used for messages and as the TLS server
// name; opts.TLS and opts.Auth are not acted on. A greeting other than 220
// closes conn and returns an *Error wrapping ErrConnect.
func NewClient(ctx context.Context, conn net.Conn, opts Options) (*Client, error) {
	c := &Client{server: opts.Address, opts: opts, to: opts.Timeouts.withDefaults(), lmtp: opts.LMTP}
	if _, _, host, err := splitAddress(opts.Network, opts.Address, defaultPort(&opts)); err == nil {
		c.host = host
	}
	c.local = isLoopback(conn.RemoteAddr())
	if tc, ok := conn.(*tls.Conn); ok {
		cs := tc.ConnectionState()
		c.tlsState = &cs
	}
	if err := c.start(ctx, conn); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Client) dial(ctx context.Context, netw, addr string) (net.Conn, error) {
	if c.to.Connect > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.to.Connect)
		defer cancel()
	}
	if c.opts.Dialer != nil {
		return c.opts.Dialer(ctx, netw, addr)
	}
	// No TCP keepalive: a session is short, and a silent server is found
	// by the command timeouts; keepalive would only add five system calls
	// to every connection.
	d := net.Dialer{KeepAlive: -1}
	if c.opts.SourceAddr != "" {
		la, err := sourceAddr(netw, c.opts.SourceAddr)
		if err != nil {
			return nil, err
		}
		d.LocalAddr = la
	}
	return d.DialContext(ctx, netw, addr)
}

func sourceAddr(netw, s string) (net.Addr, error) {
	if netw == "unix" {
		return nil, invalidArg("a source address does not apply to a Unix socket")
	}
	host, port := s, "0"
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
	}
	a, err := net.ResolveTCPAddr(netw, net.JoinHostPort(host, port))
	if err != nil {
		return nil, invalidArg("bad source address %q: %v", s, err)
	}
	return a, nil
}

func isLoopback(a net.Addr) bool {
	if a == nil {
		return false
	}
	switch v := a.(type) {
	case *net.TCPAddr:
		return v.IP.IsLoopback()
	case *net.UnixAddr:
		return true
	}
	return false
}

// start reads the greeting on conn (RFC 5321 §3.1, §4.3.2: 220, or 554
// for "no service"; 421 for "try later").
func (c *Client) start(ctx context.Context, conn net.Conn) error {
	c.setConn(conn)
	r, err := c.readReplyStage(ctx, "greeting", c.to.Greeting)
	if err != nil {
		var ce *ConnError
		if errors.As(err, &ce) && !errors.Is(err, ErrConnect) {
			ce.kinds = append(ce.kinds, ErrConnect)
		}
		return err
	}
	c.greeting = r
	if r.Code != 220 {
		c.closeConn()
		return &Error{Reply: *r, Server: c.server, kind: ErrConnect}
	}
	return nil
}

func (c *Client) setConn(conn net.Conn) {
	c.conn = conn
	c.br = bufio.NewReaderSize(conn, 4096)
	c.bw = bufio.NewWriterSize(conn, 4096)
}

// Greeting returns the server's 220 greeting.
func (c *Client) Greeting() *Reply { return c.greeting }

// IsLMTP reports whether the session speaks LMTP.
func (c *Client) IsLMTP() bool { return c.lmtp }

// Server returns the address the client dialled.
func (c *Client) Server() string { return c.server }

// --- deadlines and failure ---------------------------------------------

// aLongTimeAgo is a deadline in the past: setting it interrupts a
// blocked read or write at once.
var aLongTimeAgo = time.Unix(1, 0)

// arm sets the connection deadline for one stage, the earlier of the
// stage timeout and ctx's deadline, and interrupts I/O when ctx is
// cancelled. The returned function must be called when the stage ends;
// it waits for a concurrent cancellation to finish touching the
// connection, so the next stage's deadline is never overwritten.
func (c *Client) arm(ctx context.Context, d time.Duration) func() {
	var deadline time.Time
	if d > 0 {
		deadline = time.Now().Add(d)
	}
	if dl, ok := ctx.Deadline(); ok && (deadline.IsZero() || dl.Before(deadline)) {
		deadline = dl
	}
	c.conn.SetDeadline(deadline)
	if ctx.Done() == nil {
		return func() {}
	}
	done := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		c.conn.SetDeadline(aLongTimeAgo)
		close(done)
	})
	return func() {
		if !stop() {
			<-done
		}
	}
}

// fail closes the connection after an I/O error or a malformed reply and
// returns the error to give the caller. Later calls return the same
// error.
func (c *Client) fail(ctx context.Context, stage string, err error, extra ...error) error {
	if c.broken != nil {
		return c.broken
	}
	kinds := []error{ErrServerDisconnected}
	switch {
	case ctx.Err() != nil:
		err = fmt.Errorf("%w (%v)", context.Cause(ctx), err)
	case errors.Is(err, os.ErrDeadlineExceeded):
		err = fmt.Errorf("timed out: %w", err)
	case errors.Is(err, errMalformed):
		kinds = append(kinds, ErrProtocol)
	case isTLSAlert(err):
		// With TLS 1.3 a server refuses the client's certificate after
		// the client's handshake has returned; the alert arrives on the
		// next read.
		kinds = append(kinds, ErrTLS)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		err = fmt.Errorf("connection closed by server: %w", err)
	}
	kinds = append(kinds, extra...)
	ce := &ConnError{Stage: stage, Server: c.server, Err: err, kinds: kinds}
	c.broken = ce
	c.debugf("error: %v", ce)
	c.closeConn()
	return ce
}

// isTLSAlert reports an alert received from the TLS peer, which
// crypto/tls returns as a *net.OpError with Op "remote error".
func isTLSAlert(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "remote error"
}

func (c *Client) closeConn() {
	if c.conn != nil {
		c.conn.Close()
	}
	if c.broken == nil {
		c.broken = &ConnError{Stage: "closed", Server: c.server, Err: net.ErrClosed, kinds: []error{ErrServerDisconnected}}
	}
}

// Closed reports whether the connection is closed: by Close, Quit or
// Hangup, by the server (a 421, end of file), or after an I/O error.
// A closed Client fails every command.
func (c *Client) Closed() bool { return c.broken != nil }

// Close closes the connection without QUIT. It is idempotent.
func (c *Client) Close() error {
	if c.conn == nil {
		return nil
	}
	c.closeConn()
	return nil
}

// --- sending and receiving ---------------------------------------------

// checkLine refuses CR, LF and NUL in anything that goes on a command
// line (bpo-43124, golang/go#21159): nothing is written.
func checkLine(s string) error {
	if i := strings.IndexAny(s, "\r\n\x00"); i >= 0 {
		return invalidArg("command contains prohibited CR, LF or NUL characters: %q", s)
	}
	return nil
}

// writeLine buffers one command line; redacted is what the transcript
// shows instead (empty: the line itself).
func (c *Client) writeLine(line, redacted string) {
	if redacted == "" {
		redacted = line
	}
	c.debugf("send: %s", redacted)
	c.bw.WriteString(line)
	c.bw.WriteString("\r\n")
}

func (c *Client) readReplyStage(ctx context.Context, stage string, d time.Duration) (*Reply, error) {
	if c.broken != nil {
		return nil, c.broken
	}
	disarm := c.arm(ctx, d)
	r, err := readReply(c.br, c.debugReply)
	disarm()
	if err != nil {
		return nil, c.fail(ctx, stage, err)
	}
	if r.Code == 421 {
		// RFC 5321 §3.8: the server is closing the channel. The reply is
		// still the caller's to see; the connection is finished.
		c.closeConn()
	}
	return r, nil
}

// roundTrip writes one command, flushes, and reads its reply.
func (c *Client) roundTrip(ctx context.Context, stage string, d time.Duration, line, redacted string) (*Reply, error) {
	if c.broken != nil {
		return nil, c.broken
	}
	if err := checkLine(line); err != nil {
		return nil, err
	}
	if c.pending != nil {
		// A transaction sent ahead that this command is not part of.
		c.abandonPending(ctx)
		if c.broken != nil {
			return nil, c.broken
		}
	}
	disarm := c.arm(ctx, d)
	c.writeLine(line, redacted)
	err := c.bw.Flush()
	disarm()
	if err != nil {
		return nil, c.failWrite(ctx, stage, err)
	}
	return c.readReplyStage(ctx, stage, d)
}

// failWrite handles a failed write: the server may have answered and
// closed (an early 421 or 5xx, RFC 5321 §3.8), so a reply already in the
// receive buffer is read first (Postfix does the same).
func (c *Client) failWrite(ctx context.Context, stage string, err error) error {
	if r := c.earlyReply(); r != nil {
		e := &Error{Reply: *r, Command: stage, Server: c.server, kind: ErrResponse}
		c.fail(ctx, stage, err)
		return e
	}
	return c.fail(ctx, stage, err)
}

// earlyReply reads a reply the server sent before the connection broke,
// waiting at most a second for it.
func (c *Client) earlyReply() *Reply {
	if c.broken != nil {
		return nil
	}
	c.conn.SetReadDeadline(time.Now().Add(time.Second))
	r, err := readReply(c.br, c.debugReply)
	if err != nil {
		return nil
	}
	return r
}

// expect turns a reply of the wrong class into an *Error of the given
// kind.
func (c *Client) expect(r *Reply, class int, cmd string, kind error) error {
	if r.Code/100 == class {
		return nil
	}
	return &Error{Reply: *r, Command: cmd, Server: c.server, kind: kind}
}

// Docmd sends one raw command line and returns the reply, whatever its
// code (smtplib's docmd). Only transport failures and a line containing
// CR, LF or NUL are errors. A 421 reply closes the connection.
func (c *Client) Docmd(ctx context.Context, line string) (*Reply, error) {
	return c.roundTrip(ctx, "command", c.to.Command, line, "")
}

// --- hello and extensions ----------------------------------------------

// LocalName returns the name sent in EHLO/HELO/LHLO.
func (c *Client) LocalName() string {
	if c.localName != "" {
		return c.localName
	}
	if c.opts.LocalName != "" {
		c.localName = c.opts.LocalName
		return c.localName
	}
	if h, err := os.Hostname(); err == nil && strings.Contains(h, ".") && checkLine(h) == nil {
		c.localName = h
		return h
	}
	c.localName = "[127.0.0.1]"
	if c.conn != nil {
		if ta, ok := c.conn.LocalAddr().(*net.TCPAddr); ok {
			if ip4 := ta.IP.To4(); ip4 != nil {
				c.localName = "[" + ip4.String() + "]"
			} else {
				c.localName = "[IPv6:" + ta.IP.String() + "]"
			}
		} else {
			c.localName = "localhost"
		}
	}
	return c.localName
}

// Ehlo sends EHLO (LHLO for LMTP) with name (default LocalName) and
// records the extensions. A refusal returns an *Error wrapping ErrHelo;
// the reply is also kept (HelloReply).
func (c *Client) Ehlo(ctx context.Context, name string) (*Reply, error) {
	verb := "EHLO"
	if c.lmtp {
		verb = "LHLO"
	}
	return c.hello1(ctx, verb, name)
}

// Helo sends HELO. LMTP has no HELO (RFC 2033 §4.1): it returns an error
// wrapping ErrNotSupported without sending anything.
func (c *Client) Helo(ctx context.Context, name string) (*Reply, error) {
	if c.lmtp {
		return nil, notSupported(EnhancedCode{5, 5, 1}, "LMTP has no HELO")
	}
	return c.hello1(ctx, "HELO", name)
}

func (c *Client) hello1(ctx context.Context, verb, name string) (*Reply, error) {
	if name == "" {
		name = c.LocalName()
	}
	line := verb + " " + name
	c.ext, c.authMechs, c.esmtp = nil, nil, false
	r, err := c.roundTrip(ctx, verb, c.to.Hello, line, "")
	if err != nil {
		return nil, err
	}
	c.hello = r
	if err := c.expect(r, 2, line, ErrHelo); err != nil {
		return r, err
	}
	if verb != "HELO" {
		c.esmtp = true
		if len(r.Lines) > 1 {
			c.ext, c.authMechs = parseExtensions(r.Lines[1:])
		} else {
			c.ext = map[string]string{}
		}
	}
	return r, nil
}

// Hello is smtplib's ehlo_or_helo_if_needed: when no hello has succeeded
// yet, it sends EHLO and falls back to HELO only when EHLO is answered
// 500 or 502 (command unknown or not implemented). A 421, any other
// refusal, or a refused HELO returns an *Error wrapping ErrHelo. LMTP
// sends LHLO and never falls back.
func (c *Client) Hello(ctx context.Context) error {
	if c.hello != nil && c.hello.Positive() {
		return nil
	}
	r, err := c.Ehlo(ctx, "")
	if err == nil || c.lmtp || r == nil || (r.Code != 500 && r.Code != 502) {
		return err
	}
	_, err = c.Helo(ctx, "")
	return err
}

// HelloReply returns the reply to the last EHLO, HELO or LHLO, or nil.
func (c *Client) HelloReply() *Reply { return c.hello }

// ESMTP reports whether EHLO (or LHLO) succeeded, so extensions may be
// used. After a HELO fallback it is false and no ESMTP parameter is sent.
func (c *Client) ESMTP() bool { return c.esmtp }

// Extension reports whether the server advertised an extension (the
// keyword is case-insensitive) and returns its parameters, smtplib's
// has_extn and esmtp_features.
func (c *Client) Extension(name string) (string, bool) {
	if !c.esmtp {
		return "", false
	}
	p, ok := c.ext[strings.ToUpper(name)]
	return p, ok
}

// Extensions returns a copy of the advertised extensions: upper-case
// keyword to parameters.
func (c *Client) Extensions() map[string]string {
	m := make(map[string]string, len(c.ext))
	for k, v := range c.ext {
		m[k] = v
	}
	return m
}

// MaxSize returns the SIZE limit the server declared (RFC 1870). ok is
// false when it declared none (no SIZE, or SIZE 0 or without a number).
func (c *Client) MaxSize() (size int64, ok bool) {
	p, has := c.Extension("SIZE")
	if !has {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(p), 10, 64)
	if err != nil || n <= 0 {
		return 0, false
	}
	return n, true
}

// AuthMechanisms returns the SASL mechanisms the server offers, upper
// case, in its order.
func (c *Client) AuthMechanisms() []string { return slices.Clone(c.authMechs) }

// --- TLS ---------------------------------------------------------------

func (c *Client) tlsConfig() (*tls.Config, error) {
	if c.tlsCfg == nil {
		cfg, err := c.opts.TLSConfig.Config(c.host)
		if err != nil {
			return nil, err
		}
		c.tlsCfg = cfg
	}
	return c.tlsCfg, nil
}

func (c *Client) handshake(ctx context.Context, tc *tls.Conn) error {
	hctx := ctx
	if c.to.StartTLS > 0 {
		var cancel context.CancelFunc
		hctx, cancel = context.WithTimeout(ctx, c.to.StartTLS)
		defer cancel()
	}
	if err := tc.HandshakeContext(hctx); err != nil {
		return err
	}
	cs := tc.ConnectionState()
	c.tlsState = &cs
	c.debugf("tls: %s, server name %q", TLSDescription(&cs), cs.ServerName)
	return nil
}

// StartTLS upgrades the connection (RFC 3207) with the configured TLS
// policy, then discards everything learnt before (§4.2) and sends EHLO
// again. It fails, and closes the connection, when the server does not
// offer STARTTLS (ErrNotSupported, sent nothing), answers other than 220
// (*Error wrapping ErrTLS; a 454 is temporary), sends anything after its
// 220 before the handshake (ErrProtocol: plaintext injected into the
// encrypted session, CVE-2021-38371), or the handshake or certificate
// check fails (ErrTLS).
func (c *Client) StartTLS(ctx context.Context) error {
	if c.tlsState != nil {
		return invalidArg("TLS is already active")
	}
	if _, ok := c.Extension("STARTTLS"); !ok {
		c.closeQuietly(ctx)
		return notSupported(EnhancedCode{5, 7, 10}, "%s: STARTTLS is required but the server does not offer it", c.server)
	}
	cfg, err := c.tlsConfig()
	if err != nil {
		c.closeQuietly(ctx)
		return err
	}
	r, err := c.roundTrip(ctx, "STARTTLS", c.to.StartTLS, "STARTTLS", "")
	if err != nil {
		return err
	}
	if r.Code != 220 {
		c.closeQuietly(ctx)
		return &Error{Reply: *r, Command: "STARTTLS", Server: c.server, kind: ErrTLS}
	}
	if c.br.Buffered() > 0 {
		return c.fail(ctx, "STARTTLS", fmt.Errorf("%w: server sent %d bytes after its 220 to STARTTLS (possible command injection)", errMalformed, c.br.Buffered()), ErrTLS)
	}
	tc := tls.Client(c.conn, cfg)
	if err := c.handshake(ctx, tc); err != nil {
		return c.fail(ctx, "TLS handshake", err, ErrTLS)
	}
	c.setConn(tc)
	c.hello, c.ext, c.authMechs, c.esmtp = nil, nil, nil, false
	if _, err := c.Ehlo(ctx, ""); err != nil {
		return err
	}
	return nil
}

// closeQuietly sends QUIT without caring about the answer and closes:
// RFC 3207 §4.1 says to QUIT when the security achieved is not enough.
func (c *Client) closeQuietly(ctx context.Context) {
	if c.broken == nil {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		c.roundTrip(qctx, "QUIT", c.to.Quit, "QUIT", "")
		cancel()
	}
	c.closeConn()
}

// TLSConnectionState returns the negotiated TLS state, and false when
// the session is not encrypted.
func (c *Client) TLSConnectionState() (tls.ConnectionState, bool) {
	if c.tlsState == nil {
		return tls.ConnectionState{}, false
	}
	return *c.tlsState, true
}

// TLS returns the negotiated version and cipher ("TLSv1.3
// TLS_AES_128_GCM_SHA256"), or "" without TLS.
func (c *Client) TLS() string { return TLSDescription(c.tlsState) }

// --- AUTH --------------------------------------------------------------

// maxChallenges bounds the 334 round trips of one AUTH exchange, as
// smtplib's _MAXCHALLENGE does.
const maxChallenges = 5

// Auth runs one AUTH exchange with mech (RFC 4954 §4): the initial
// response on the AUTH line when the mechanism has one ("=" when empty),
// each 334 challenge decoded strictly and answered, "*" to cancel when a
// challenge does not decode or the mechanism fails. It returns nil on
// 235; an *Error wrapping ErrAuthentication on a refusal; an error
// wrapping ErrProtocol after more than 5 challenges; ErrNotSupported when
// the server offers no AUTH; ErrInvalidArgument when the connection is
// not encrypted and not local (see Options.AllowInsecureAuth).
func (c *Client) Auth(ctx context.Context, mech Mechanism) error {
	if err := c.Hello(ctx); err != nil {
		return err
	}
	if _, ok := c.Extension("AUTH"); !ok {
		return notSupported(EnhancedCode{5, 5, 1}, "%s: the server does not offer AUTH", c.server)
	}
	if c.tlsState == nil && !c.local && !c.opts.AllowInsecureAuth {
		return invalidArg("refusing to send credentials to %s without TLS", c.server)
	}
	name := strings.ToUpper(mech.Name())
	ir, err := mech.Start()
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrAuthentication, name, err)
	}
	line := "AUTH " + name
	if ir != nil {
		enc := "="
		if len(ir) > 0 {
			enc = base64.StdEncoding.EncodeToString(ir)
		}
		// RFC 4954 §4: no initial response that would make the line
		// longer than 12288 octets; send it after an empty challenge.
		if len(line)+1+len(enc) <= 12288-2 {
			line += " " + enc
			ir = nil
		}
	}
	shown := "AUTH " + name
	if line != shown {
		shown += " <redacted>"
	}
	r, err := c.roundTrip(ctx, "AUTH", c.to.Auth, line, shown)
	for n := 0; err == nil && r.Code == 334; n++ {
		if n >= maxChallenges {
			return c.fail(ctx, "AUTH", fmt.Errorf("%w: server AUTH mechanism infinite loop, more than %d challenges (last: %q)", errMalformed, maxChallenges, r.Text()))
		}
		var resp []byte
		challenge, derr := base64.StdEncoding.Strict().DecodeString(strings.TrimSpace(r.Text()))
		switch {
		case derr != nil:
			err = fmt.Errorf("challenge is not valid base64")
		case ir != nil && len(challenge) == 0:
			resp, ir = ir, nil
		default:
			resp, err = mech.Next(challenge)
		}
		if err != nil {
			// Cancel (RFC 4954 §4); the server answers 501.
			cr, cerr := c.roundTrip(ctx, "AUTH", c.to.Auth, "*", "")
			if cerr != nil {
				return cerr
			}
			e := &Error{Reply: *cr, Command: shown, Server: c.server, kind: ErrAuthentication}
			return fmt.Errorf("%s: %v, cancelled: %w", name, err, e)
		}
		r, err = c.roundTrip(ctx, "AUTH", c.to.Auth, base64.StdEncoding.EncodeToString(resp), "<redacted>")
	}
	if err != nil {
		return err
	}
	if r.Code != 235 {
		e := &Error{Reply: *r, Command: shown, Server: c.server, kind: ErrAuthentication}
		if rep, ok := mech.(ErrorReporter); ok && rep.LastError() != "" {
			// The OAuth2 mechanisms' JSON error says why the token was
			// refused (expired, wrong scope).
			return fmt.Errorf("%w (token refused: %s)", e, rep.LastError())
		}
		return e
	}
	if v, ok := mech.(interface{ serverVerified() bool }); ok && !v.serverVerified() {
		// SCRAM: a 235 without the server's signature means the server
		// never proved it knows the password (RFC 5802 §5).
		return c.fail(ctx, "AUTH", fmt.Errorf("%w: %s succeeded without the server's proof", errMalformed, name), ErrAuthentication)
	}
	c.authed = true
	return nil
}

// Login authenticates with the strongest mechanism both sides have,
// from cred.Mechanisms or the default order (SCRAM-SHA-256, CRAM-MD5,
// PLAIN, LOGIN; OAUTHBEARER, XOAUTH2 with a token). A mechanism the
// server refuses with 504 (unknown) or 534 (too weak) makes it try the
// next; any other refusal, such as 535 (bad credentials), ends the
// attempt, so a wrong password is not tried once per mechanism against
// a server that counts failures. Errors as for Auth, and an error
// wrapping ErrNotSupported when no mechanism is common to both.
func (c *Client) Login(ctx context.Context, cred Credentials) error {
	if err := c.Hello(ctx); err != nil {
		return err
	}
	if _, ok := c.Extension("AUTH"); !ok {
		return notSupported(EnhancedCode{5, 5, 1}, "%s: the server does not offer AUTH", c.server)
	}
	order := cred.Mechanisms
	if len(order) == 0 {
		if cred.Token != "" {
			order = []string{"OAUTHBEARER", "XOAUTH2"}
		} else {
			order = preferredMechanisms()
		}
	}
	var last error
	for _, name := range order {
		name = strings.ToUpper(name)
		if !slices.Contains(c.authMechs, name) {
			continue
		}
		mech, err := c.mechanism(name, cred)
		if err != nil {
			last = err
			continue
		}
		err = c.Auth(ctx, mech)
		if err == nil {
			return nil
		}
		var se *Error
		if errors.As(err, &se) && (se.Code == 504 || se.Code == 534) && c.broken == nil {
			last = err
			continue
		}
		return err
	}
	if last != nil {
		return last
	}
	return notSupported(EnhancedCode{5, 7, 4}, "%s: no common AUTH mechanism (server offers %s; client would use %s)",
		c.server, strings.Join(c.authMechs, " "), strings.Join(order, " "))
}

func (c *Client) mechanism(name string, cred Credentials) (Mechanism, error) {
	switch name {
	case "XOAUTH2":
		return XOAUTH2(cred.Username, cred.Token), nil
	case "OAUTHBEARER":
		port := 0
		if _, p, err := net.SplitHostPort(c.server); err == nil {
			port, _ = strconv.Atoi(p)
		}
		return OAuthBearer(cred.Username, c.host, port, cred.Token), nil
	}
	return NewMechanism(name, cred.Username, cred.Password)
}

// Authenticated reports whether AUTH succeeded in this session.
func (c *Client) Authenticated() bool { return c.authed }

// --- simple commands ---------------------------------------------------

// Noop sends NOOP; a reply other than 2xx is an *Error wrapping
// ErrResponse.
func (c *Client) Noop(ctx context.Context) (*Reply, error) {
	return c.simple(ctx, "NOOP", c.to.Command, "NOOP")
}

// Reset sends RSET (RFC 5321 §4.1.1.5), ending any transaction, with the
// short Rset timeout so it also serves as a liveness probe for a reused
// connection.
func (c *Client) Reset(ctx context.Context) (*Reply, error) {
	c.rcpts, c.utf8 = nil, false
	return c.simple(ctx, "RSET", c.to.Rset, "RSET")
}

// Verify sends VRFY with the bare address (no angle brackets), smtplib's
// verify. 250, 251 and 252 are success; other replies are an *Error
// wrapping ErrResponse.
func (c *Client) Verify(ctx context.Context, addr string) (*Reply, error) {
	return c.simple(ctx, "VRFY", c.to.Command, "VRFY "+addr)
}

// Expand sends EXPN for a mailing list, smtplib's expn.
func (c *Client) Expand(ctx context.Context, list string) (*Reply, error) {
	return c.simple(ctx, "EXPN", c.to.Command, "EXPN "+list)
}

// Help sends HELP, with an optional topic, and returns the reply.
func (c *Client) Help(ctx context.Context, topic string) (*Reply, error) {
	line := "HELP"
	if topic != "" {
		line += " " + topic
	}
	return c.simple(ctx, "HELP", c.to.Command, line)
}

func (c *Client) simple(ctx context.Context, stage string, d time.Duration, line string) (*Reply, error) {
	r, err := c.roundTrip(ctx, stage, d, line, "")
	if err != nil {
		return nil, err
	}
	return r, c.expect(r, 2, line, ErrResponse)
}

// Quit sends QUIT and closes the connection (RFC 5321 §4.1.1.10). A
// missing reply or a connection the server already closed is not an
// error; a reply other than 221 is an *Error wrapping ErrResponse, as
// smtplib raises on leaving a with block.
func (c *Client) Quit(ctx context.Context) error {
	if c.broken != nil {
		c.closeConn()
		return nil
	}
	r, err := c.roundTrip(ctx, "QUIT", c.to.Quit, "QUIT", "")
	c.closeConn()
	if err != nil || r.Code == 221 {
		return nil
	}
	return &Error{Reply: *r, Command: "QUIT", Server: c.server, kind: ErrResponse}
}

// Hangup sends QUIT and closes the connection at once, without waiting
// for the 221: the reply carries nothing a client needs once the last
// transaction is answered, and waiting costs a round trip (Postfix's
// smtp_skip_quit_response does the same). Errors are not reported; a
// broken connection is just closed.
func (c *Client) Hangup(ctx context.Context) {
	if c.pending != nil {
		// A transaction sent ahead may be in its data phase, where QUIT
		// would be message text: closing abandons it.
		c.pending = nil
		c.closeConn()
		return
	}
	if c.broken == nil && c.conn != nil {
		disarm := c.arm(ctx, c.to.Quit)
		c.writeLine("QUIT", "")
		c.bw.Flush()
		disarm()
	}
	c.closeConn()
}

// --- transcript --------------------------------------------------------

func (c *Client) debugf(format string, a ...any) {
	if c.opts.Debug == nil {
		return
	}
	c.debugMu.Lock()
	defer c.debugMu.Unlock()
	line := fmt.Sprintf(format, a...)
	if c.opts.DebugLevel >= 2 {
		line = time.Now().Format("15:04:05.000000") + " " + line
	}
	io.WriteString(c.opts.Debug, line+"\n")
}

func (c *Client) debugReply(line string) { c.debugf("reply: %s", line) }
