package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/handoff-mta/handoff/config"
	"github.com/handoff-mta/handoff/internal/httpc"
	"github.com/handoff-mta/handoff/internal/oauth"
)

const oauth2Usage = `usage: handoff oauth2 login [-C FILE] [--device | --auth-code [--port N]] RELAY
  Authorise handoff, once, to send mail through RELAY with OAuth2: a
  person opens an address in a browser and allows access; handoff stores
  the refresh token in the relay's token_file (see [relay.oauth2] in
  handoff.toml(5)) and refreshes access tokens by itself from then on.
  Run it as the user who sends (root, or the queue's owner).
  --device     the device flow: open a short address anywhere and type a
               code (the default, but for provider google)
  --auth-code  the authorization code flow with PKCE: open a long address;
               the browser comes back to http://127.0.0.1:PORT/, or you
               paste the address it shows (the default for google)
  --port N     the loopback port of --auth-code (default: any free one)
`

// oauth2Cmd is "handoff oauth2 login". Exit status: 0 the token file was
// written; 64 usage, or RELAY has no [relay.oauth2]; 78 the
// configuration is invalid or the client secret cannot be read; 77 the
// person refused (access_denied); 75 the code expired, the provider or
// the network failed for now, or the command was interrupted; 73 the
// token file cannot be written; 71 the loopback port cannot be opened;
// 69 any other refusal by the provider.
func oauth2Cmd(args []string, env *Env) int {
	var cfgPath, name string
	var device, authCode bool
	port := 0
	var pos []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-h" || a == "--help":
			fmt.Fprint(env.Stdout, oauth2Usage)
			return exOK
		case a == "-C" && i+1 < len(args) && args[i+1] != "":
			cfgPath = args[i+1]
			i++
		case a == "--device":
			device = true
		case a == "--auth-code":
			authCode = true
		case a == "--port" && i+1 < len(args):
			n, err := strconv.Atoi(args[i+1])
			if err != nil || n < 0 || n > 65535 {
				fmt.Fprintf(env.Stderr, "handoff oauth2: bad --port %q\n%s", args[i+1], oauth2Usage)
				return exUsage
			}
			port = n
			i++
		case len(a) > 1 && a[0] == '-':
			fmt.Fprintf(env.Stderr, "handoff oauth2: unknown option %q\n%s", a, oauth2Usage)
			return exUsage
		default:
			pos = append(pos, a)
		}
	}
	switch {
	case len(pos) == 0 || pos[0] != "login":
		fmt.Fprint(env.Stderr, oauth2Usage)
		return exUsage
	case len(pos) != 2:
		fmt.Fprintf(env.Stderr, "handoff oauth2 login: takes one relay name\n%s", oauth2Usage)
		return exUsage
	case device && authCode:
		fmt.Fprintf(env.Stderr, "handoff oauth2 login: --device and --auth-code are alternatives\n%s", oauth2Usage)
		return exUsage
	case port != 0 && device:
		fmt.Fprintf(env.Stderr, "handoff oauth2 login: --port is for --auth-code\n%s", oauth2Usage)
		return exUsage
	}
	name = pos[1]

	if cfgPath == "" {
		cfgPath = env.Getenv("HANDOFF_CONFIG")
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(env.Stderr, "handoff: %s\n", line)
		}
		return exConfig
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(env.Stderr, "handoff: warning: %s\n", w)
	}
	var r *config.Relay
	var names []string
	for i := range cfg.Relays {
		if cfg.Relays[i].Name == name {
			r = &cfg.Relays[i]
		}
		if cfg.Relays[i].OAuth2 != nil {
			names = append(names, cfg.Relays[i].Name)
		}
	}
	fail := func(code int, format string, args ...any) int {
		fmt.Fprintf(env.Stderr, "handoff oauth2 login: "+format+"\n", args...)
		return code
	}
	relays := "none has"
	if len(names) > 0 {
		relays = "these have: " + strings.Join(names, ", ")
	}
	switch {
	case r == nil:
		return fail(exUsage, "no relay named %q in %s ([relay.oauth2]: %s)", name, cfgName(cfg), relays)
	case r.OAuth2 == nil:
		return fail(exUsage, "relay %s has no [relay.oauth2] table in %s (%s)", name, cfgName(cfg), relays)
	}

	client := r.OAuth2Client()
	client.Now = env.Now
	client.Sleep = env.sleep
	if !device && !authCode {
		p, known := oauth.Defaults(r.OAuth2.Provider, r.OAuth2.Tenant)
		authCode = client.DeviceAuthURL == "" || known && !p.DeviceFlow
	}
	ctx, stop := env.context()
	defer stop()
	if authCode {
		err = authCodeLogin(ctx, env, r, client, port)
	} else {
		err = deviceLogin(ctx, env, r, client)
	}
	if err != nil {
		return fail(oauth2Exit(err), "relay %s: %v", name, err)
	}
	fmt.Fprintf(env.Stdout, "Authorised. The token for relay %s is in %s.\n", name, client.TokenFile)
	return exOK
}

// cfgName names the configuration in messages.
func cfgName(cfg *config.Config) string {
	if cfg.Path == "" {
		return "the built-in configuration"
	}
	return cfg.Path
}

// deviceLogin runs the device flow, printing the code on stdout.
func deviceLogin(ctx context.Context, env *Env, r *config.Relay, client *oauth.Client) error {
	_, err := client.DeviceLogin(ctx, func(dc *oauth.DeviceCode) error {
		var b strings.Builder
		fmt.Fprintf(&b, "To let handoff send mail as %s through relay %s, open\n\n    %s\n\non any device and enter the code\n\n    %s\n\n", r.Username, r.Name, dc.VerificationURI, dc.UserCode)
		if dc.VerificationURIComplete != "" {
			fmt.Fprintf(&b, "(or open %s, which has the code in it)\n", dc.VerificationURIComplete)
		}
		if !dc.Expires.IsZero() {
			fmt.Fprintf(&b, "The code is valid until %s. ", dc.Expires.UTC().Format("15:04:05 MST"))
		}
		b.WriteString("Waiting for the authorisation...\n")
		_, err := io.WriteString(env.Stdout, b.String())
		return err
	})
	return err
}

// loginResult is an answer to the code flow: from the loopback listener
// or pasted on stdin.
type loginResult struct {
	code   string
	err    error
	pasted bool
}

// authCodeLogin runs the code flow: it listens on 127.0.0.1:port,
// prints the address to open, and takes the code from the redirect or
// from a line of stdin (the address the browser shows, or the code).
func authCodeLogin(ctx context.Context, env *Env, r *config.Relay, client *oauth.Client, port int) error {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return &listenError{err}
	}
	defer ln.Close()
	redirect := "http://" + ln.Addr().String() + "/"
	flow, err := client.StartAuthCode(redirect)
	if err != nil {
		return err
	}
	results := make(chan loginResult, 4)
	send := func(res loginResult) {
		select {
		case results <- res:
		default: // the login is over
		}
	}
	go serveRedirect(ln, flow, func(code string, err error) { send(loginResult{code: code, err: err}) })

	fmt.Fprintf(env.Stdout, "To let handoff send mail as %s through relay %s, open this address in a\nbrowser, on any machine, and allow access:\n\n    %s\n\n"+
		"The browser is then sent to %s. On this machine handoff takes\nthe answer by itself. Elsewhere the browser shows an error page: copy the\n"+
		"whole address from its address bar, paste it here and press Enter.\n", r.Username, r.Name, flow.URL, redirect)
	if env.Stdin != nil {
		go func() {
			sc := bufio.NewScanner(env.Stdin)
			sc.Buffer(make([]byte, 0, 4096), 64<<10)
			for sc.Scan() {
				if strings.TrimSpace(sc.Text()) == "" {
					continue
				}
				code, err := flow.Code(sc.Text())
				send(loginResult{code: code, err: err, pasted: true})
			}
		}()
	}
	for {
		var res loginResult
		select {
		case res = <-results:
		case <-ctx.Done():
			return ctx.Err()
		}
		var oe *oauth.Error
		if res.err != nil && res.pasted && !errors.As(res.err, &oe) {
			fmt.Fprintf(env.Stderr, "handoff oauth2 login: %v; paste the whole address again\n", res.err)
			continue
		}
		if res.err != nil {
			return res.err
		}
		_, err := flow.Exchange(ctx, res.code)
		return err
	}
}

// listenError is a failure to open the loopback port.
type listenError struct{ err error }

func (e *listenError) Error() string { return "cannot listen for the browser: " + e.err.Error() }
func (e *listenError) Unwrap() error { return e.err }

// Limits of a request to the loopback listener: the browser sends its
// request line (with a code of a few KiB at Microsoft) and header fields
// (with any cookies of other local servers) at once.
const (
	redirectMaxHead  = 64 << 10
	redirectDeadline = 10 * time.Second
)

// serveRedirect is the loopback listener's HTTP server, until ln is
// closed: one request per connection, each answered by flow.Redirect
// (result gets the outcome). It is its own because net/http's
// initialisation would cost every start of handoff, for the one command
// that listens (see internal/httpc).
func serveRedirect(ln net.Listener, flow *oauth.AuthCodeFlow, result func(code string, err error)) {
	for {
		conn, err := ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			// Out of file descriptors or the like: try again soon.
			time.Sleep(50 * time.Millisecond)
			continue
		}
		go answerRedirect(conn, flow, result)
	}
}

// answerRedirect reads one request from conn and answers it: GET goes to
// flow.Redirect; another method is 405, a malformed request 400, one
// with a head over redirectMaxHead 431. A connection that sends nothing
// within redirectDeadline (a browser's speculative one) is closed.
func answerRedirect(conn net.Conn, flow *oauth.AuthCodeFlow, result func(code string, err error)) {
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(redirectDeadline))
	const textPlain = "text/plain; charset=utf-8"
	var status int
	var ctype, body string
	method, target, err := readRequestHead(bufio.NewReader(io.LimitReader(conn, redirectMaxHead)))
	switch {
	case errors.Is(err, errHeadTooLarge):
		status, ctype, body = 431, textPlain, "request header too large\n"
	case errors.Is(err, errBadRequest):
		status, ctype, body = 400, textPlain, "bad request\n"
	case err != nil:
		return // closed or silent: nobody to answer
	case method != "GET":
		status, ctype, body = 405, textPlain, "method not allowed\n"
	default:
		status, ctype, body = flow.Redirect(target, result)
	}
	fmt.Fprintf(conn, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n%s",
		status, httpc.StatusText(status), ctype, len(body), body)
	// Closing with unread input would reset the connection, and the
	// browser might show that instead of the answer: end the writing
	// side, then read what the client still sends, briefly.
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.CloseWrite()
		conn.SetReadDeadline(time.Now().Add(time.Second))
		io.Copy(io.Discard, io.LimitReader(conn, redirectMaxHead))
	}
}

// Errors of readRequestHead that deserve an answer.
var (
	errBadRequest   = errors.New("malformed request")
	errHeadTooLarge = errors.New("request header too large")
)

// readRequestHead reads a request line, "METHOD TARGET HTTP/1.x", and
// skips the header fields up to the empty line (RFC 9112 §2.2, §3). br
// reads from a reader limited to redirectMaxHead: its end before the
// empty line is errHeadTooLarge when the limit was reached.
func readRequestHead(br *bufio.Reader) (method, target string, err error) {
	n := 0
	for first := true; ; first = false {
		line, err := br.ReadString('\n')
		n += len(line)
		switch {
		case err == io.EOF && n >= redirectMaxHead:
			return "", "", errHeadTooLarge
		case err == io.EOF && n > 0:
			return "", "", errBadRequest // cut short
		case err != nil:
			return "", "", err
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if !first {
			if line == "" {
				return method, target, nil
			}
			continue
		}
		m, rest, ok1 := strings.Cut(line, " ")
		t, proto, ok2 := strings.Cut(rest, " ")
		if !ok1 || !ok2 || m == "" || t == "" || !strings.HasPrefix(proto, "HTTP/1.") {
			return "", "", errBadRequest
		}
		method, target = m, t
	}
}
