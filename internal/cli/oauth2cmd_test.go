package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/handoff-mta/handoff/internal/oauth"
	"github.com/handoff-mta/handoff/queue"
)

// lockedBuffer is a bytes.Buffer safe for a writer and a reader in
// different goroutines; notify, when set, is called after each write.
type lockedBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	notify func(string)
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	n, err := l.b.Write(p)
	s := l.b.String()
	l.mu.Unlock()
	if l.notify != nil {
		l.notify(s)
	}
	return n, err
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// oauthProvider is a fake provider: /device answers the device
// authorization request, /token the polls and the code exchange, in the
// order of tokenAnswers.
type oauthProvider struct {
	srv          *httptest.Server
	mu           sync.Mutex
	tokenAnswers []func(form url.Values) (int, any)
	tokenForms   []url.Values
}

func newOAuthProvider(t *testing.T, tokenAnswers ...func(url.Values) (int, any)) *oauthProvider {
	t.Helper()
	p := &oauthProvider{tokenAnswers: tokenAnswers}
	reply := func(w http.ResponseWriter, status int, body any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(body)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/device", func(w http.ResponseWriter, r *http.Request) {
		reply(w, 200, map[string]any{"device_code": "dev-code", "user_code": "WDJB-MJHT",
			"verification_uri": "https://login.example.com/device", "expires_in": 900, "interval": 5})
	})
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		p.mu.Lock()
		p.tokenForms = append(p.tokenForms, r.PostForm)
		var answer func(url.Values) (int, any)
		if len(p.tokenAnswers) > 0 {
			answer, p.tokenAnswers = p.tokenAnswers[0], p.tokenAnswers[1:]
		}
		p.mu.Unlock()
		if answer == nil {
			t.Errorf("unexpected token request %v", r.PostForm)
			reply(w, 500, map[string]any{})
			return
		}
		status, body := answer(r.PostForm)
		reply(w, status, body)
	})
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

func oauthRefusal(code string) func(url.Values) (int, any) {
	return func(url.Values) (int, any) {
		return 400, map[string]any{"error": code, "error_description": "said the provider"}
	}
}

func oauthGrant(url.Values) (int, any) {
	return 200, map[string]any{"access_token": "access-t0ken", "refresh_token": "refresh-t0ken", "token_type": "Bearer", "expires_in": 3600}
}

// oauthTest is one run of "handoff oauth2 ...".
type oauthTest struct {
	env            *Env
	stdout, stderr *lockedBuffer
	cfgPath        string
	tokenFile      string
	sleeps         []time.Duration
}

// newOAuthTest writes a configuration with the relays "office" (no
// provider, the fake's endpoints, a client secret in the file) and
// "plain" (a password), plus extra, where {{TOKEN_FILE}} is office's
// token file, and returns an Env for it.
func newOAuthTest(t *testing.T, p *oauthProvider, extra string, stdin io.Reader) *oauthTest {
	t.Helper()
	tmp := t.TempDir()
	ot := &oauthTest{
		cfgPath:   filepath.Join(tmp, "handoff.toml"),
		tokenFile: filepath.Join(tmp, "oauth2", "office.json"),
		stdout:    &lockedBuffer{},
		stderr:    &lockedBuffer{},
	}
	cfg := `hostname = "h.example.org"
[[relay]]
name = "plain"
url = "smtps://smtp.example.com"
username = "app"
password = "hunter2"

[[relay]]
name = "office"
url = "submission://smtp.example.com"
username = "me@example.com"
[relay.oauth2]
client_id = "the-client"
client_secret = "client-s3cret"
token_url = "` + p.srv.URL + `/token"
device_auth_url = "` + p.srv.URL + `/device"
auth_url = "` + p.srv.URL + `/auth"
token_file = "` + ot.tokenFile + `"
` + strings.ReplaceAll(extra, "{{TOKEN_FILE}}", ot.tokenFile)
	if err := os.WriteFile(ot.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	ot.env = &Env{
		Stdin: stdin, Stdout: ot.stdout, Stderr: ot.stderr,
		Getenv: func(k string) string {
			if k == "HANDOFF_CONFIG" {
				return ot.cfgPath
			}
			return ""
		},
		Now: func() time.Time {
			mu.Lock()
			defer mu.Unlock()
			return now
		},
		Sleep: func(ctx context.Context, d time.Duration) error {
			mu.Lock()
			defer mu.Unlock()
			ot.sleeps = append(ot.sleeps, d)
			now = now.Add(d)
			return ctx.Err()
		},
	}
	return ot
}

func (ot *oauthTest) run(args ...string) int {
	return RunEnv(append([]string{"handoff", "oauth2"}, args...), ot.env)
}

// checkToken fails unless the token file holds the fake's tokens, with
// mode 0600 in a directory of mode 0700.
func (ot *oauthTest) checkToken(t *testing.T) {
	t.Helper()
	tok, err := oauth.ReadTokenFile(ot.tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != "access-t0ken" || tok.RefreshToken != "refresh-t0ken" {
		t.Errorf("token file %+v", tok)
	}
	for path, want := range map[string]os.FileMode{ot.tokenFile: 0o600, filepath.Dir(ot.tokenFile): 0o700} {
		if st, err := os.Stat(path); err != nil || st.Mode().Perm() != want {
			t.Errorf("%s: %v, %v; want mode %04o", path, st.Mode(), err, want)
		}
	}
}

// The device flow, the default without a provider: the address and the
// code on stdout, authorization_pending and slow_down honoured with the
// Env's clock, the token file written.
func TestOAuth2LoginDevice(t *testing.T) {
	p := newOAuthProvider(t, oauthRefusal("authorization_pending"), oauthRefusal("slow_down"), oauthGrant)
	ot := newOAuthTest(t, p, "", nil)
	if code := ot.run("login", "office"); code != exOK {
		t.Fatalf("exit %d, stderr %q", code, ot.stderr)
	}
	out := ot.stdout.String()
	for _, want := range []string{"me@example.com", "https://login.example.com/device", "WDJB-MJHT", "valid until 12:15:00 UTC", "Authorised. The token for relay office is in " + ot.tokenFile} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if want := []time.Duration{5 * time.Second, 5 * time.Second, 10 * time.Second}; !reflect.DeepEqual(ot.sleeps, want) {
		t.Errorf("waits %v, want %v", ot.sleeps, want)
	}
	if ot.stderr.String() != "" {
		t.Errorf("stderr %q", ot.stderr)
	}
	if f := p.tokenForms[2]; f.Get("device_code") != "dev-code" || f.Get("client_secret") != "client-s3cret" {
		t.Errorf("poll %v", f)
	}
	ot.checkToken(t)
}

// Each failure is one line on stderr, with the OAuth code, without the
// client secret or the device code, and its exit status.
func TestOAuth2LoginDeviceFailures(t *testing.T) {
	cases := []struct {
		name   string
		answer func(url.Values) (int, any)
		exit   int
		want   string
	}{
		{"access_denied", oauthRefusal("access_denied"), exNoPerm, "access_denied: said the provider; the authorisation was refused"},
		{"expired_token", oauthRefusal("expired_token"), exTempFail, "expired_token: said the provider; the code was not used in time"},
		{"invalid_client", oauthRefusal("invalid_client"), exUnavailable, "invalid_client: said the provider"},
		{"server error", func(url.Values) (int, any) { return 503, "down" }, exTempFail, "HTTP status 503"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newOAuthProvider(t, tc.answer)
			ot := newOAuthTest(t, p, "", nil)
			if code := ot.run("login", "office", "-C", ot.cfgPath); code != tc.exit {
				t.Errorf("exit %d, want %d; stderr %q", code, tc.exit, ot.stderr)
			}
			msg := ot.stderr.String()
			if !strings.HasPrefix(msg, "handoff oauth2 login: relay office: oauth2: ") || strings.Count(msg, "\n") != 1 || !strings.Contains(msg, tc.want) {
				t.Errorf("stderr %q, want one line with %q", msg, tc.want)
			}
			for _, secret := range []string{"client-s3cret", "dev-code"} {
				if strings.Contains(msg+ot.stdout.String(), secret) {
					t.Errorf("output shows %q", secret)
				}
			}
			if _, err := os.Stat(ot.tokenFile); !os.IsNotExist(err) {
				t.Errorf("token file: %v", err)
			}
		})
	}
}

// codeExchange answers a code exchange when the code is the-code and the
// verifier matches the challenge in the address printed on stdout.
func codeExchange(stdout *lockedBuffer) func(url.Values) (int, any) {
	return func(f url.Values) (int, any) {
		m := regexp.MustCompile(`code_challenge=([A-Za-z0-9_-]+)`).FindStringSubmatch(stdout.String())
		if m == nil || f.Get("grant_type") != "authorization_code" || f.Get("code") != "the-code" ||
			s256(f.Get("code_verifier")) != m[1] || !strings.HasPrefix(f.Get("redirect_uri"), "http://127.0.0.1:") {
			return 400, map[string]any{"error": "invalid_grant", "error_description": "bad exchange"}
		}
		return oauthGrant(f)
	}
}

// s256 is the PKCE challenge of verifier by the method S256 (RFC 7636
// §4.2), computed here independently of package oauth.
func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// --auth-code with the answer pasted: a wrong address is reported and
// another line read; the code is exchanged with the PKCE verifier.
func TestOAuth2LoginAuthCodePasted(t *testing.T) {
	p := newOAuthProvider(t)
	stdin := strings.NewReader("\nhttp://127.0.0.1:1/?code=x&state=not-this-login\nthe-code\n")
	ot := newOAuthTest(t, p, "", stdin)
	p.tokenAnswers = append(p.tokenAnswers, codeExchange(ot.stdout))
	if code := ot.run("login", "--auth-code", "office"); code != exOK {
		t.Fatalf("exit %d, stderr %q", code, ot.stderr)
	}
	if !strings.Contains(ot.stdout.String(), p.srv.URL+"/auth?") {
		t.Errorf("stdout lacks the address:\n%s", ot.stdout)
	}
	if msg := ot.stderr.String(); !strings.Contains(msg, "does not match this login; paste the whole address again") || strings.Count(msg, "\n") != 1 {
		t.Errorf("stderr %q", msg)
	}
	ot.checkToken(t)
}

// --auth-code with the browser coming back to the loopback listener: a
// request with another state is turned away, the right one ends the
// login.
func TestOAuth2LoginAuthCodeLoopback(t *testing.T) {
	p := newOAuthProvider(t)
	stdin, stdinW := io.Pipe()
	defer stdinW.Close()
	ot := newOAuthTest(t, p, "", stdin)
	p.tokenAnswers = append(p.tokenAnswers, codeExchange(ot.stdout))
	printed := make(chan string, 1)
	var once sync.Once
	ot.stdout.notify = func(s string) {
		if m := regexp.MustCompile(`\n    (http\S+)\n`).FindStringSubmatch(s); m != nil {
			once.Do(func() { printed <- m[1] })
		}
	}
	browser := make(chan error, 1)
	go func() {
		u, err := url.Parse(<-printed)
		if err != nil {
			browser <- err
			return
		}
		q := u.Query()
		redirect := q.Get("redirect_uri")
		resp, err := http.Get(redirect + "?code=forged&state=other")
		if err != nil {
			browser <- err
			return
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("forged answer: status %d", resp.StatusCode)
		}
		resp, err = http.Get(redirect + "?code=the-code&state=" + url.QueryEscape(q.Get("state")))
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(body), "you may close this window") {
				t.Errorf("answer: %d %q", resp.StatusCode, body)
			}
		}
		browser <- err
	}()
	if code := ot.run("login", "-C", ot.cfgPath, "--auth-code", "--port", "0", "office"); code != exOK {
		t.Fatalf("exit %d, stderr %q", code, ot.stderr)
	}
	if err := <-browser; err != nil {
		t.Fatal(err)
	}
	ot.checkToken(t)
}

// With provider google the default is the code flow (Google's device
// flow refuses Gmail's scope), with Google's parameters for a refresh
// token.
func TestOAuth2LoginGoogleDefaultsToAuthCode(t *testing.T) {
	p := newOAuthProvider(t)
	ot := newOAuthTest(t, p, `
[[relay]]
name = "gmail"
url = "smtps://smtp.gmail.com"
username = "me@gmail.com"
[relay.oauth2]
provider = "google"
client_id = "the-client"
client_secret = "client-s3cret"
token_url = "`+p.srv.URL+`/token"
token_file = "{{TOKEN_FILE}}"
`, strings.NewReader("the-code\n"))
	p.tokenAnswers = append(p.tokenAnswers, codeExchange(ot.stdout))
	if code := ot.run("login", "gmail"); code != exOK {
		t.Fatalf("exit %d, stderr %q", code, ot.stderr)
	}
	out := ot.stdout.String()
	for _, want := range []string{"https://accounts.google.com/o/oauth2/v2/auth?", "access_type=offline", "prompt=consent", "scope=https%3A%2F%2Fmail.google.com%2F", "code_challenge_method=S256"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	ot.checkToken(t)
}

func TestOAuth2LoginUsage(t *testing.T) {
	p := newOAuthProvider(t)
	cases := []struct {
		args []string
		exit int
		want string
	}{
		{nil, exUsage, "usage: handoff oauth2 login"},
		{[]string{"logout", "office"}, exUsage, "usage:"},
		{[]string{"login"}, exUsage, "takes one relay name"},
		{[]string{"login", "a", "b"}, exUsage, "takes one relay name"},
		{[]string{"login", "nosuch"}, exUsage, `no relay named "nosuch"`},
		{[]string{"login", "plain"}, exUsage, "relay plain has no [relay.oauth2] table"},
		{[]string{"login", "--device", "--auth-code", "office"}, exUsage, "alternatives"},
		{[]string{"login", "--device", "--port", "8080", "office"}, exUsage, "--port is for --auth-code"},
		{[]string{"login", "--port", "http", "office"}, exUsage, "bad --port"},
		{[]string{"login", "--frob", "office"}, exUsage, "unknown option"},
		{[]string{"login", "-C", "/nonexistent/handoff.toml", "office"}, exConfig, "/nonexistent/handoff.toml"},
	}
	for _, tc := range cases {
		ot := newOAuthTest(t, p, "", nil)
		if code := ot.run(tc.args...); code != tc.exit || !strings.Contains(ot.stderr.String(), tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want %d and %q", tc.args, code, ot.stderr, tc.exit, tc.want)
		}
	}
	ot := newOAuthTest(t, p, "", nil)
	if code := ot.run("-h"); code != exOK || !strings.Contains(ot.stdout.String(), "--auth-code") {
		t.Errorf("-h: exit %d, stdout %q", code, ot.stdout)
	}
	ot = newOAuthTest(t, p, "bogus = 1\n", nil)
	if code := ot.run("login", "office"); code != exConfig || !strings.Contains(ot.stderr.String(), "bogus: unknown key") {
		t.Errorf("bad config: exit %d, stderr %q", code, ot.stderr)
	}
	ot = newOAuthTest(t, p, "", nil)
	var out bytes.Buffer
	RunEnv([]string{"handoff", "help"}, &Env{Stdout: &out, Stderr: &out})
	if !strings.Contains(out.String(), "handoff oauth2 login") {
		t.Errorf("help lacks oauth2:\n%s", out.String())
	}
}

// A token file that cannot be written is exit 73; a client secret that
// cannot be read is a configuration problem, 78.
func TestOAuth2LoginLocalFailures(t *testing.T) {
	p := newOAuthProvider(t, oauthGrant)
	ot := newOAuthTest(t, p, "", nil)
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(ot.cfgPath)
	os.WriteFile(ot.cfgPath, bytes.Replace(data, []byte(ot.tokenFile), []byte(filepath.Join(blocker, "office.json")), 1), 0o600)
	if code := ot.run("login", "office"); code != exCantCreat || !strings.Contains(ot.stderr.String(), "not a directory") {
		t.Errorf("unwritable token file: exit %d, stderr %q", code, ot.stderr)
	}

	ot = newOAuthTest(t, p, "", nil)
	data, _ = os.ReadFile(ot.cfgPath)
	os.WriteFile(ot.cfgPath, bytes.Replace(data, []byte(`client_secret = "client-s3cret"`), []byte(`client_secret_file = "/nonexistent/secret"`), 1), 0o600)
	if code := ot.run("login", "office"); code != exConfig || !strings.Contains(ot.stderr.String(), "client_secret_file /nonexistent/secret") {
		t.Errorf("unreadable client secret: exit %d, stderr %q", code, ot.stderr)
	}
}

// oauthRelayConfig is a config with one relay, "office", at the sink
// addr, whose [relay.oauth2] has the fake provider's endpoints at
// providerURL and tokenFile.
func oauthRelayConfig(addr, providerURL, tokenFile string) string {
	return `hostname = "h.example.org"
domain = "example.org"
[[relay]]
name = "office"
url = "smtp://` + addr + `"
starttls = "none"
username = "me@example.com"
[relay.oauth2]
client_id = "the-client"
token_url = "` + providerURL + `/token"
device_auth_url = "` + providerURL + `/device"
token_file = "` + tokenFile + `"
`
}

// End to end: sendmail through a relay with [relay.oauth2] whose token
// is about to expire refreshes it at the provider and sends the new one
// in AUTH XOAUTH2; a refused refresh fails the message with exit 78 and
// the login hint, without sending anything.
func TestOAuth2RelaySendsRefreshedToken(t *testing.T) {
	p := newOAuthProvider(t, func(url.Values) (int, any) {
		return 200, map[string]any{"access_token": "fresh-access", "expires_in": 3600}
	}, oauthRefusal("invalid_grant"))
	s := startSink(t, "EHLO => 250-sink.test\\n250-AUTH XOAUTH2\\n250 8BITMIME\nAUTH => 235 2.7.0 ok")
	tokenFile := filepath.Join(t.TempDir(), "office.json")
	cfg := oauthRelayConfig(s.addr, p.srv.URL, tokenFile)
	stale := &oauth.Token{AccessToken: "stale-access", RefreshToken: "refresh-t0ken", Expiry: time.Now().Add(time.Minute)}
	if err := oauth.WriteTokenFile(context.Background(), tokenFile, stale); err != nil {
		t.Fatal(err)
	}
	env, _, stderr := testEnv(t, cfg+"[queue]\nmode = \"never\"\ndir = \""+filepath.Join(t.TempDir(), "q")+"\"\n", strings.NewReader("Subject: hi\n\nbody\n"))
	if code := RunEnv([]string{"sendmail", "-i", "bob@example.net"}, env); code != exOK {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	want := "AUTH XOAUTH2 " + base64.StdEncoding.EncodeToString([]byte("user=me@example.com\x01auth=Bearer fresh-access\x01\x01"))
	if rx := s.received(); !strings.Contains(rx, want+"\r\n") || !strings.Contains(rx, "RCPT TO:<bob@example.net>") {
		t.Errorf("the sink did not get %q:\n%s", want, rx)
	}

	// The token expires again; the provider now refuses.
	stale.Expiry = time.Now()
	if err := oauth.WriteTokenFile(context.Background(), tokenFile, stale); err != nil {
		t.Fatal(err)
	}
	s.mark("--- second run\n")
	env, _, stderr = testEnv(t, cfg+"[queue]\nmode = \"never\"\ndir = \""+filepath.Join(t.TempDir(), "q")+"\"\n", strings.NewReader("Subject: hi\n\nbody\n"))
	code := RunEnv([]string{"sendmail", "-i", "bob@example.net"}, env)
	if code != exConfig || !strings.Contains(stderr.String(), "invalid_grant: said the provider; run: handoff oauth2 login office") || strings.Contains(stderr.String(), "refresh-t0ken") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	if _, second, _ := strings.Cut(s.received(), "--- second run\n"); strings.Contains(second, "AUTH") {
		t.Errorf("AUTH sent after a refused refresh:\n%s", second)
	}
}

// A token endpoint that is down (503) or unreachable is a temporary failure: with mode
// never the caller gets 75; with the default fallback the message is
// queued (not lost, not bounced) and nothing reaches the relay.
func TestOAuth2TokenEndpointDown(t *testing.T) {
	down := func(url.Values) (int, any) { return 503, map[string]any{} }
	p := newOAuthProvider(t, down, down)
	s := startSink(t, "EHLO => 250-sink.test\\n250-AUTH XOAUTH2\\n250 8BITMIME\nAUTH => 235 2.7.0 ok")
	tokenFile := filepath.Join(t.TempDir(), "office.json")
	cfg := oauthRelayConfig(s.addr, p.srv.URL, tokenFile)
	stale := &oauth.Token{AccessToken: "stale-access", RefreshToken: "refresh-t0ken", Expiry: time.Now()}
	if err := oauth.WriteTokenFile(context.Background(), tokenFile, stale); err != nil {
		t.Fatal(err)
	}
	qdir := filepath.Join(t.TempDir(), "q")
	env, _, stderr := testEnv(t, cfg+"[queue]\nmode = \"never\"\ndir = \""+qdir+"\"\n", strings.NewReader("Subject: hi\n\nbody\n"))
	if code := RunEnv([]string{"sendmail", "-i", "bob@example.net"}, env); code != exTempFail || !strings.Contains(stderr.String(), "503") {
		t.Errorf("mode never: exit %d, stderr %q; want 75 naming the 503", code, stderr)
	}
	env, _, stderr = testEnv(t, cfg+"[queue]\ndir = \""+qdir+"\"\n", strings.NewReader("Subject: hi\n\nbody\n"))
	if code := RunEnv([]string{"sendmail", "-i", "bob@example.net"}, env); code != exOK {
		t.Errorf("mode fallback: exit %d, stderr %q; want 0 (queued)", code, stderr)
	}
	q, err := queue.Open(qdir)
	if err != nil {
		t.Fatal(err)
	}
	if items, err := q.List(queue.Filter{}); err != nil || len(items) != 1 {
		t.Errorf("queue holds %d items (%v), want the message", len(items), err)
	}
	if strings.Contains(s.received(), "MAIL FROM") {
		t.Errorf("a message went to the relay without a token:\n%s", s.received())
	}
	// A token endpoint nobody listens on is temporary too.
	unreachable := strings.ReplaceAll(cfg, p.srv.URL, "http://"+closedAddr(t))
	env, _, stderr = testEnv(t, unreachable+"[queue]\nmode = \"never\"\ndir = \""+qdir+"\"\n", strings.NewReader("Subject: hi\n\nbody\n"))
	if code := RunEnv([]string{"sendmail", "-i", "bob@example.net"}, env); code != exTempFail {
		t.Errorf("unreachable token endpoint: exit %d, stderr %q; want 75", code, stderr)
	}
}

// The loopback listener's server answers one request per connection:
// 404 off the redirect's path, 400 for another state or a malformed
// request, 405 for a method other than GET, 431 for a head over the
// limit, none of which ends the login; the answer with this login's
// state (here in the absolute form) is 200 and passed on.
func TestRedirectServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	redirect := "http://" + ln.Addr().String() + "/"
	client := &oauth.Client{Relay: "r", ClientID: "c", AuthURL: "https://auth.example/a", TokenURL: "https://token.example/t"}
	flow, err := client.StartAuthCode(redirect)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(flow.URL)
	if err != nil {
		t.Fatal(err)
	}
	state := url.QueryEscape(u.Query().Get("state"))
	results := make(chan string, 10)
	go serveRedirect(ln, flow, func(code string, err error) { results <- fmt.Sprint(code, " ", err) })

	ask := func(req string) (*http.Response, string) {
		t.Helper()
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		go func() {
			io.WriteString(conn, req)
			conn.(*net.TCPConn).CloseWrite()
		}()
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%.40q: %v", req, err)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("%.40q: body: %v", req, err)
		}
		if !resp.Close || resp.ContentLength != int64(len(body)) {
			t.Errorf("%.40q: Connection: close %v, Content-Length %d for %d bytes", req, resp.Close, resp.ContentLength, len(body))
		}
		return resp, string(body)
	}
	for _, tc := range []struct {
		req    string
		status int
	}{
		{"GET /favicon.ico HTTP/1.1\r\nHost: x\r\n\r\n", 404},
		{"GET /?code=forged&state=other HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"POST /?code=the-code&state=" + state + " HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", 405},
		{"GET /?code=the-code&state=" + state + " HTTP/1.1\r\nCookie: " + strings.Repeat("c", 70<<10) + "\r\n\r\n", 431},
		{"hello\r\n\r\n", 400},
		{"GET /?code=the-code&state=" + state + " HTTP/1.1\r\nHost: x\r\n", 400}, // cut short by the end of input
	} {
		if resp, body := ask(tc.req); resp.StatusCode != tc.status {
			t.Errorf("%.60q: status %d %q, want %d", tc.req, resp.StatusCode, body, tc.status)
		}
	}
	// A connection closed without a request gets nothing.
	if conn, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		conn.Close()
	}
	if len(results) != 0 {
		t.Fatalf("a stray request ended the login: %q", <-results)
	}
	resp, body := ask("GET " + redirect + "?code=the-code&state=" + state + " HTTP/1.1\r\nHost: x\r\nAccept: text/html\r\n\r\n")
	if resp.StatusCode != 200 || !strings.Contains(body, "you may close this window") || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Errorf("answer: %d %v %q", resp.StatusCode, resp.Header, body)
	}
	select {
	case got := <-results:
		if got != "the-code <nil>" {
			t.Errorf("result %q", got)
		}
	default:
		t.Error("no result")
	}
}
