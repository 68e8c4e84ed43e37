package relay

import (
	"context"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// Default ports. LMTP has no port of its own (RFC 2033 §5 only forbids
// 25); 24 is what Dovecot and Cyrus use. smtplib's LMTP_PORT is 2003.
const (
	SMTPPort  = 25
	SMTPSPort = 465
	LMTPPort  = 24
)

// TLSMode says how a connection is protected.
type TLSMode int

const (
	// TLSDefault is STARTTLSRequired over TCP and no TLS over a Unix
	// socket, which never leaves the host.
	TLSDefault TLSMode = iota
	// STARTTLSRequired upgrades with STARTTLS (RFC 3207) and fails closed,
	// before any AUTH or MAIL, when the server does not offer it, answers
	// it with an error, or the handshake or certificate check fails.
	STARTTLSRequired
	// STARTTLSOpportunistic upgrades when the server offers STARTTLS and
	// carries on in plain text when it does not. An attacker on the path
	// can strip it; AUTH is still never sent in the clear (see
	// Options.AllowInsecureAuth).
	STARTTLSOpportunistic
	// NoTLS never uses TLS.
	NoTLS
	// ImplicitTLS starts TLS before the greeting: SMTPS on port 465
	// (RFC 8314 §3), smtplib's SMTP_SSL.
	ImplicitTLS
)

var tlsModeNames = [...]string{"default", "required", "opportunistic", "none", "implicit"}

// String returns the mode's name as the config file spells it.
func (m TLSMode) String() string {
	if m >= 0 && int(m) < len(tlsModeNames) {
		return tlsModeNames[m]
	}
	return "TLSMode(" + strconv.Itoa(int(m)) + ")"
}

// Timeouts bound each stage of the dialogue separately (RFC 5321
// §4.5.3.2: "per-command timeouts rather than somehow trying to time the
// entire mail transaction"). A zero field takes the default shown; a
// negative one means no limit. A context deadline, when earlier, wins.
type Timeouts struct {
	Connect   time.Duration // TCP connect: 30s (Postfix smtp_connect_timeout)
	Greeting  time.Duration // the 220 greeting: 5m (RFC 5321 §4.5.3.2.1)
	Hello     time.Duration // EHLO/HELO/LHLO reply: 5m (Postfix smtp_helo_timeout)
	StartTLS  time.Duration // STARTTLS reply and handshake: 5m (Postfix smtp_starttls_timeout)
	Auth      time.Duration // each AUTH round trip: 5m
	Mail      time.Duration // MAIL reply: 5m (RFC 5321 §4.5.3.2.2)
	Rcpt      time.Duration // each RCPT reply: 5m (RFC 5321 §4.5.3.2.3)
	DataInit  time.Duration // the 354 reply to DATA: 2m (RFC 5321 §4.5.3.2.4)
	DataBlock time.Duration // each write of message data: 3m (RFC 5321 §4.5.3.2.5)
	DataDone  time.Duration // the reply after the final dot: 10m (RFC 5321 §4.5.3.2.6)
	Rset      time.Duration // RSET reply: 20s (Postfix smtp_rset_timeout, for reuse probes)
	Command   time.Duration // NOOP, VRFY, EXPN, HELP, raw commands: 5m (RFC 5321 §4.5.3.2.7)
	Quit      time.Duration // QUIT reply: 5m (Postfix smtp_quit_timeout)
}

// DefaultTimeouts holds the defaults listed on Timeouts.
var DefaultTimeouts = Timeouts{
	Connect:   30 * time.Second,
	Greeting:  5 * time.Minute,
	Hello:     5 * time.Minute,
	StartTLS:  5 * time.Minute,
	Auth:      5 * time.Minute,
	Mail:      5 * time.Minute,
	Rcpt:      5 * time.Minute,
	DataInit:  2 * time.Minute,
	DataBlock: 3 * time.Minute,
	DataDone:  10 * time.Minute,
	Rset:      20 * time.Second,
	Command:   5 * time.Minute,
	Quit:      5 * time.Minute,
}

// withDefaults fills zero fields from DefaultTimeouts and turns negative
// ones into 0 (no limit).
func (t Timeouts) withDefaults() Timeouts {
	fill := func(v *time.Duration, d time.Duration) {
		switch {
		case *v == 0:
			*v = d
		case *v < 0:
			*v = 0
		}
	}
	d := DefaultTimeouts
	fill(&t.Connect, d.Connect)
	fill(&t.Greeting, d.Greeting)
	fill(&t.Hello, d.Hello)
	fill(&t.StartTLS, d.StartTLS)
	fill(&t.Auth, d.Auth)
	fill(&t.Mail, d.Mail)
	fill(&t.Rcpt, d.Rcpt)
	fill(&t.DataInit, d.DataInit)
	fill(&t.DataBlock, d.DataBlock)
	fill(&t.DataDone, d.DataDone)
	fill(&t.Rset, d.Rset)
	fill(&t.Command, d.Command)
	fill(&t.Quit, d.Quit)
	return t
}

// Credentials for AUTH. Set Password for the password mechanisms, or
// Token (an OAuth2 access token) for XOAUTH2 and OAUTHBEARER.
type Credentials struct {
	Username string
	Password string
	Token    string
	// Mechanisms restricts and orders the mechanisms tried, by name
	// ("PLAIN", "SCRAM-SHA-256", ...). Empty: the strongest both sides
	// have, SCRAM-SHA-256, CRAM-MD5, PLAIN, LOGIN (with a Token:
	// OAUTHBEARER, XOAUTH2).
	Mechanisms []string
}

// Options configures Dial. The zero value plus an Address dials SMTP on
// port 25 and requires STARTTLS.
type Options struct {
	// Address is where to connect: "host", "host:port", "[v6addr]:port",
	// a bare IPv6 address, or a Unix socket path starting with "/". A
	// missing port is the protocol's default. As in smtplib, a host with
	// exactly one colon is split at it; a non-numeric port is an error.
	Address string
	// Network is "tcp", "tcp4", "tcp6" or "unix"; empty chooses "unix"
	// for a path and "tcp" otherwise.
	Network string
	// LMTP speaks LMTP (RFC 2033): LHLO instead of EHLO, and one reply
	// per accepted recipient after the data.
	LMTP bool
	// TLS chooses STARTTLS, implicit TLS or none (default: STARTTLS
	// required over TCP).
	TLS TLSMode
	// TLSConfig holds the certificate and version policy.
	TLSConfig TLSOptions
	// LocalName is the name sent in EHLO/HELO/LHLO. Default: the host's
	// name when it is fully qualified, else an address literal of the
	// connection's local address ("[192.0.2.1]", RFC 5321 §4.1.3).
	LocalName string
	// SourceAddr is the local address to connect from ("ip" or
	// "ip:port"), smtplib's source_address.
	SourceAddr string
	// Timeouts per stage; zero fields take the defaults.
	Timeouts Timeouts
	// Auth, when set, makes Dial authenticate after the (TLS) hello.
	Auth *Credentials
	// AllowInsecureAuth lets AUTH go over a connection without TLS to a
	// host that is not loopback. Off by default: credentials are sent in
	// the clear only over TLS, a Unix socket, or to 127.0.0.0/8 and ::1.
	AllowInsecureAuth bool
	// Debug, when set, receives a transcript of the session, one line per
	// line on the wire, AUTH payloads redacted (smtplib's set_debuglevel).
	Debug io.Writer
	// DebugLevel 2 prefixes each transcript line with a timestamp.
	DebugLevel int
	// Dialer replaces net.Dialer for tests and custom transports; it
	// receives the resolved network and address.
	Dialer func(ctx context.Context, network, address string) (net.Conn, error)
}

// splitAddress turns Options.Address into a network and a dial address,
// adding the default port. It follows smtplib's connect(): a host with
// exactly one colon is "host:port"; several colons are an IPv6 address
// unless it is in brackets.
func splitAddress(network, address string, defPort int) (netw, addr, host string, err error) {
	if address == "" {
		return "", "", "", invalidArg("no server address")
	}
	if network == "unix" || (network == "" && strings.HasPrefix(address, "/")) {
		return "unix", address, "", nil
	}
	if network == "" {
		network = "tcp"
	}
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return "", "", "", invalidArg("unknown network %q", network)
	}
	host, port := address, ""
	switch {
	case strings.HasPrefix(address, "["):
		h, p, err := net.SplitHostPort(address)
		if err != nil {
			if strings.HasSuffix(address, "]") {
				h = address[1 : len(address)-1]
			} else {
				return "", "", "", invalidArg("bad server address %q", address)
			}
		}
		host, port = h, p
	case strings.Count(address, ":") == 1:
		host, port, _ = strings.Cut(address, ":")
	}
	if port == "" {
		port = strconv.Itoa(defPort)
	}
	n, perr := strconv.Atoi(port)
	if perr != nil || n < 1 || n > 65535 {
		return "", "", "", invalidArg("nonnumeric or out-of-range port %q in %q", port, address)
	}
	if host == "" {
		return "", "", "", invalidArg("no host in %q", address)
	}
	return network, net.JoinHostPort(host, port), host, nil
}

func defaultPort(o *Options) int {
	switch {
	case o.LMTP:
		return LMTPPort
	case o.TLS == ImplicitTLS:
		return SMTPSPort
	}
	return SMTPPort
}

// ParseURL turns a relay URL into Options:
//
//	smtp://host[:port]     SMTP, port 25, STARTTLS required
//	submission://host      SMTP on port 587, STARTTLS required
//	smtps://host[:port]    implicit TLS, port 465
//	lmtp://host[:port]     LMTP over TCP, port 24, STARTTLS required
//	lmtp:///path/to/socket LMTP over a Unix socket, no TLS
//
// An IPv6 host goes in brackets. Query parameters, user information and
// paths on TCP URLs are errors: the rest of the policy is set on Options
// by the caller.
func ParseURL(raw string) (Options, error) {
	var o Options
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return o, invalidArg("relay URL %q has no scheme (smtp://, smtps://, lmtp://)", raw)
	}
	if strings.ContainsAny(rest, "?#@ ") {
		return o, invalidArg("relay URL %q may not contain user information, a query or spaces", raw)
	}
	switch strings.ToLower(scheme) {
	case "smtp":
	case "submission":
		if !strings.HasPrefix(rest, "[") && strings.Count(rest, ":") == 0 || strings.HasSuffix(rest, "]") {
			rest += ":587"
		}
	case "smtps":
		o.TLS = ImplicitTLS
	case "lmtp":
		o.LMTP = true
		if strings.HasPrefix(rest, "/") {
			o.Network, o.Address = "unix", rest
			return o, nil
		}
	default:
		return o, invalidArg("relay URL %q: unknown scheme %q (smtp, submission, smtps, lmtp)", raw, scheme)
	}
	rest = strings.TrimSuffix(rest, "/")
	if rest == "" || strings.Contains(rest, "/") {
		return o, invalidArg("relay URL %q: expected scheme://host[:port]", raw)
	}
	o.Address = rest
	if _, _, _, err := splitAddress("", rest, defaultPort(&o)); err != nil {
		return o, err
	}
	return o, nil
}
