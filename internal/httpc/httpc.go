// Package httpc is a minimal HTTP/1.1 client: one POST of a form per
// connection, over TCP or TLS, directly or through the proxy the
// environment names, with the whole answer read into memory.
//
// It exists because handoff is started once per mail: net/http's package
// initialisation costs every start of the program 0.1 to 0.2 ms, even
// when no request is made, and the only HTTP handoff ever does is the
// occasional request to an OAuth2 token endpoint, which needs none of
// net/http's connection reuse, redirects, compression or HTTP/2.
//
// What it does, in the terms of RFC 9112:
//
//   - the request is "POST target HTTP/1.1" with Host, User-Agent,
//     Accept: application/json, Content-Type, Content-Length and
//     Connection: close; the connection carries no other request;
//   - https:// is TLS 1.2 or later with the system's roots, the server
//     name being the URL's host;
//   - the proxy is chosen as net/http's ProxyFromEnvironment does, from
//     HTTPS_PROXY, HTTP_PROXY and NO_PROXY, never for a loopback address;
//     an https:// URL goes through an http:// or https:// proxy by
//     CONNECT, an http:// URL by sending the absolute URI to the proxy;
//   - the answer's body is delimited by Transfer-Encoding: chunked (whose
//     trailers are ignored), Content-Length, or the end of the connection;
//     interim 1xx answers are skipped; a body over MaxBody is refused.
//
// Every failure to get an answer is a *url.Error (Op "Post"), as with
// net/http, so that callers can tell the network from a refusal.
package httpc

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// MaxBody caps the body of an answer.
const MaxBody = 1 << 20

// maxHead caps the status lines and header fields of an answer, the
// interim ones included; maxInterim caps the number of 1xx answers.
const (
	maxHead    = 64 << 10
	maxInterim = 8
)

// DefaultUserAgent is the User-Agent when Client.UserAgent is "".
const DefaultUserAgent = "handoff"

// Errors of the answer, wrapped with the detail (never with the answer's
// bytes, which may echo a secret).
var (
	// ErrBodyTooLarge: the answer's body is longer than MaxBody.
	ErrBodyTooLarge = errors.New("the answer's body is larger than 1 MiB")
	// ErrMalformed: the answer is not HTTP/1.x.
	ErrMalformed = errors.New("malformed HTTP answer")
)

// Client makes requests. The zero Client is ready for use.
type Client struct {
	// TLSConfig, when not nil, replaces the TLS configuration of https
	// connections (tests: one that trusts a test server's certificate);
	// its ServerName is set from the URL when empty. nil: the system's
	// roots and TLS 1.2 or later.
	TLSConfig *tls.Config
	// Timeout bounds each request, from the dial to the answer's last
	// byte; 0: only the context does.
	Timeout time.Duration
	// UserAgent is the User-Agent field; "": DefaultUserAgent.
	UserAgent string
	// Getenv reads the proxy variables; nil: os.Getenv. They are read at
	// each request, not once per process as net/http does: a process
	// makes at most a few requests.
	Getenv func(string) string
}

// Response is an answer, read whole.
type Response struct {
	// StatusCode is the status of the final (not 1xx) answer.
	StatusCode int
	// Header holds its header fields, by lower-case name; repeated
	// fields are joined with ", ".
	Header Header
	// Body is the body, without the chunked coding.
	Body []byte
}

// Header is the header fields of an answer, by lower-case name.
type Header map[string]string

// Get returns the value of the field name, in any case; "" when absent.
func (h Header) Get(name string) string {
	return h[strings.ToLower(name)]
}

// PostForm posts form, already encoded (url.Values.Encode), to rawURL
// and returns the answer, whatever its status. ctx and Timeout bound the
// whole exchange; when ctx ends first the error wraps ctx's error.
//
// Errors: a URL that is not http:// or https:// with a host, or a bad
// proxy setting, is a plain error; any failure to get a whole answer
// (dial, TLS, proxy, a malformed or too long answer, a connection closed
// early, the deadline) is a *url.Error with Op "Post".
func (c *Client) PostForm(ctx context.Context, rawURL, form string) (*Response, error) {
	u, err := url.Parse(rawURL)
	switch {
	case err != nil:
		return nil, fmt.Errorf("httpc: bad URL: %w", err)
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("httpc: %q is not an http:// or https:// URL", rawURL)
	case u.Host == "" || u.Hostname() == "":
		return nil, fmt.Errorf("httpc: %q has no host", rawURL)
	}
	proxy, err := c.proxy(u)
	if err != nil {
		return nil, err
	}
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	resp, err := c.post(ctx, u, proxy, form)
	if err != nil {
		switch {
		case ctx.Err() != nil:
			// The connection was closed under the exchange: the real
			// reason is the context's.
			err = ctx.Err()
		case errors.Is(err, os.ErrDeadlineExceeded):
			// The connection's deadline is the context's, which has
			// passed, but its timer has not fired yet.
			err = context.DeadlineExceeded
		}
		return nil, &url.Error{Op: "Post", URL: rawURL, Err: err}
	}
	return resp, nil
}

// post makes the exchange: dial (the proxy or the server), CONNECT and
// TLS as needed, the request, the answer.
func (c *Client) post(ctx context.Context, u, proxy *url.URL, form string) (*Response, error) {
	target := hostPort(u)
	addr := target
	if proxy != nil {
		addr = hostPort(proxy)
	}
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer raw.Close()
	if dl, ok := ctx.Deadline(); ok {
		raw.SetDeadline(dl)
	}
	// Closing the connection is what interrupts a read or write in
	// progress when ctx is cancelled (its deadline is the connection's
	// already).
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()

	conn := raw
	requestURI := u.RequestURI()
	var proxyAuth string
	if proxy != nil {
		proxyAuth = basicAuth(proxy.User)
		if proxy.Scheme == "https" {
			if conn, err = c.handshake(ctx, conn, proxy.Hostname()); err != nil {
				return nil, fmt.Errorf("proxy %s: %w", proxy.Host, err)
			}
		}
		if u.Scheme == "https" {
			if err := c.connect(conn, target, proxyAuth); err != nil {
				return nil, fmt.Errorf("proxy %s: %w", proxy.Host, err)
			}
			proxyAuth = "" // for the proxy, not for the server
		} else {
			// absolute-form (RFC 9112 §3.2.2), without the user info.
			requestURI = u.Scheme + "://" + u.Host + u.RequestURI()
		}
	}
	if u.Scheme == "https" {
		if conn, err = c.handshake(ctx, conn, u.Hostname()); err != nil {
			return nil, err
		}
	}

	var b strings.Builder
	b.WriteString("POST " + requestURI + " HTTP/1.1\r\n")
	b.WriteString("Host: " + strings.TrimSuffix(u.Host, ":") + "\r\n")
	b.WriteString("User-Agent: " + c.userAgent() + "\r\n")
	b.WriteString("Accept: application/json\r\n")
	b.WriteString("Content-Type: application/x-www-form-urlencoded\r\n")
	b.WriteString("Content-Length: " + strconv.Itoa(len(form)) + "\r\n")
	b.WriteString("Connection: close\r\n")
	if proxyAuth != "" {
		b.WriteString("Proxy-Authorization: " + proxyAuth + "\r\n")
	}
	b.WriteString("\r\n")
	b.WriteString(form)
	if _, err := conn.Write([]byte(b.String())); err != nil {
		return nil, err
	}
	return ReadResponse(bufio.NewReader(conn), "POST")
}

func (c *Client) userAgent() string {
	if c.UserAgent != "" {
		return c.UserAgent
	}
	return DefaultUserAgent
}

// handshake starts TLS over conn with serverName.
func (c *Client) handshake(ctx context.Context, conn net.Conn, serverName string) (net.Conn, error) {
	var cfg *tls.Config
	if c.TLSConfig != nil {
		cfg = c.TLSConfig.Clone()
	} else {
		cfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if cfg.ServerName == "" {
		cfg.ServerName = serverName
	}
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	return tc, nil
}

// connect asks the proxy on conn for a tunnel to target (RFC 9110
// §9.3.6).
func (c *Client) connect(conn net.Conn, target, proxyAuth string) error {
	req := "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\nUser-Agent: " + c.userAgent() + "\r\n"
	if proxyAuth != "" {
		req += "Proxy-Authorization: " + proxyAuth + "\r\n"
	}
	if _, err := conn.Write([]byte(req + "\r\n")); err != nil {
		return err
	}
	br := bufio.NewReader(conn)
	status, _, err := readHead(br)
	if err != nil {
		return err
	}
	if status < 200 || status > 299 {
		return fmt.Errorf("CONNECT %s refused: %d %s", target, status, StatusText(status))
	}
	// The server speaks only after the ClientHello: anything more is
	// not the tunnel's and would be lost with br.
	if br.Buffered() > 0 {
		return fmt.Errorf("%w: data after the answer to CONNECT", ErrMalformed)
	}
	return nil
}

// basicAuth is the Proxy-Authorization value of the proxy URL's user
// info; "" without.
func basicAuth(u *url.Userinfo) string {
	if u == nil {
		return ""
	}
	pw, _ := u.Password()
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(u.Username()+":"+pw))
}

// hostPort is u's host and port, the scheme's port when none is given.
func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// getenv is Getenv or os.Getenv.
func (c *Client) getenv(k string) string {
	if c.Getenv != nil {
		return c.Getenv(k)
	}
	return os.Getenv(k)
}
