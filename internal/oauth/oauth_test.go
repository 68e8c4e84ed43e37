package oauth

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	testSecret  = "client-secret-s3cr3t"
	testRefresh = "refresh-token-r3fr3sh"
)

// provider is a fake token endpoint. Each request's form is checked by
// the test's handler, which answers.
type provider struct {
	srv   *httptest.Server
	hits  atomic.Int32
	mu    sync.Mutex
	forms []url.Values
}

// newProvider starts a fake provider whose token endpoint (/token) and
// device endpoint (/device) call the handlers; nil handlers fail the
// test when reached.
func newProvider(t *testing.T, token, device func(form url.Values) (int, any)) *provider {
	t.Helper()
	p := &provider{}
	answer := func(h func(url.Values) (int, any)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			p.hits.Add(1)
			if r.Method != http.MethodPost {
				t.Errorf("%s %s", r.Method, r.URL)
			}
			if err := r.ParseForm(); err != nil {
				t.Errorf("form: %v", err)
			}
			p.mu.Lock()
			p.forms = append(p.forms, r.PostForm)
			p.mu.Unlock()
			if h == nil {
				t.Errorf("unexpected request to %s", r.URL.Path)
				w.WriteHeader(http.StatusInternalServerError)
				return
			}
			status, body := h(r.PostForm)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			json.NewEncoder(w).Encode(body)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/token", answer(token))
	mux.Handle("/device", answer(device))
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

func (p *provider) form(i int) url.Values {
	p.mu.Lock()
	defer p.mu.Unlock()
	if i >= len(p.forms) {
		return nil
	}
	return p.forms[i]
}

// newClient returns a client of p with its token file in a new
// directory.
func newClient(t *testing.T, p *provider) *Client {
	t.Helper()
	c := &Client{
		Relay:        "gmail",
		ClientID:     "client-id",
		ClientSecret: func() (string, error) { return testSecret, nil },
		Scopes:       []string{"https://mail.google.com/"},
		TokenFile:    filepath.Join(t.TempDir(), "gmail.json"),
	}
	if p != nil {
		c.TokenURL = p.srv.URL + "/token"
		c.DeviceAuthURL = p.srv.URL + "/device"
		c.AuthURL = p.srv.URL + "/auth"
	}
	return c
}

// writeToken writes a token file directly, with mode perm.
func writeToken(t *testing.T, path string, tok *Token, perm os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, tok.encode(), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
}

func readToken(t *testing.T, path string) *Token {
	t.Helper()
	tok, err := ReadTokenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// checkMode fails unless path has exactly mode perm.
func checkMode(t *testing.T, path string, perm os.FileMode) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != perm {
		t.Errorf("%s: mode %04o, want %04o", path, st.Mode().Perm(), perm)
	}
}

// noTempFiles fails when a temporary file is left in dir.
func noTempFiles(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}

func TestFreshTokenUsedWithoutHTTP(t *testing.T) {
	p := newProvider(t, nil, nil)
	c := newClient(t, p)
	writeToken(t, c.TokenFile, &Token{AccessToken: "cached", RefreshToken: testRefresh, Expiry: time.Now().Add(10 * time.Minute)}, 0o600)
	got, err := c.AccessToken(context.Background())
	if err != nil || got != "cached" {
		t.Fatalf("AccessToken = %q, %v", got, err)
	}
	if n := p.hits.Load(); n != 0 {
		t.Errorf("%d requests for a fresh token", n)
	}
}

// A token valid for less than MinValidity is refreshed: the request is
// a refresh_token grant with the client's credentials, and the file is
// replaced, mode 0600, with the new token and the old refresh token.
func TestExpiringTokenRefreshed(t *testing.T) {
	p := newProvider(t, func(f url.Values) (int, any) {
		return 200, map[string]any{"access_token": "new-access", "token_type": "Bearer", "expires_in": 3599}
	}, nil)
	c := newClient(t, p)
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	c.Now = func() time.Time { return now }
	writeToken(t, c.TokenFile, &Token{AccessToken: "old-access", RefreshToken: testRefresh, Expiry: now.Add(MinValidity - time.Second)}, 0o600)
	got, err := c.AccessToken(context.Background())
	if err != nil || got != "new-access" {
		t.Fatalf("AccessToken = %q, %v", got, err)
	}
	if n := p.hits.Load(); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
	f := p.form(0)
	for k, want := range map[string]string{"grant_type": "refresh_token", "refresh_token": testRefresh, "client_id": "client-id", "client_secret": testSecret} {
		if f.Get(k) != want {
			t.Errorf("form %s = %q, want %q", k, f.Get(k), want)
		}
	}
	tok := readToken(t, c.TokenFile)
	want := Token{AccessToken: "new-access", TokenType: "Bearer", RefreshToken: testRefresh, Expiry: now.Add(3599 * time.Second)}
	if tok.AccessToken != want.AccessToken || tok.RefreshToken != want.RefreshToken || tok.TokenType != want.TokenType || !tok.Expiry.Equal(want.Expiry) {
		t.Errorf("token file = %+v, want %+v", tok, want)
	}
	checkMode(t, c.TokenFile, 0o600)
	noTempFiles(t, filepath.Dir(c.TokenFile))

	// Now fresh: no second request.
	if got, err := c.AccessToken(context.Background()); err != nil || got != "new-access" {
		t.Errorf("second AccessToken = %q, %v", got, err)
	}
	if n := p.hits.Load(); n != 1 {
		t.Errorf("%d requests after the second call, want 1", n)
	}
}

// A token without an expiry is never trusted: it is refreshed.
func TestTokenWithoutExpiryRefreshed(t *testing.T) {
	p := newProvider(t, func(f url.Values) (int, any) {
		return 200, map[string]any{"access_token": "new-access", "expires_in": 3600}
	}, nil)
	c := newClient(t, p)
	writeToken(t, c.TokenFile, &Token{AccessToken: "old", RefreshToken: testRefresh}, 0o600)
	if got, err := c.AccessToken(context.Background()); err != nil || got != "new-access" {
		t.Fatalf("AccessToken = %q, %v", got, err)
	}
}

func TestRotatedRefreshTokenStored(t *testing.T) {
	n := 0
	p := newProvider(t, func(f url.Values) (int, any) {
		n++
		return 200, map[string]any{"access_token": fmt.Sprintf("access-%d", n), "refresh_token": fmt.Sprintf("rotated-%d", n), "expires_in": 60}
	}, nil)
	c := newClient(t, p)
	writeToken(t, c.TokenFile, &Token{AccessToken: "old", RefreshToken: testRefresh, Expiry: time.Now()}, 0o600)
	if _, err := c.AccessToken(context.Background()); err != nil {
		t.Fatal(err)
	}
	if tok := readToken(t, c.TokenFile); tok.RefreshToken != "rotated-1" || tok.AccessToken != "access-1" {
		t.Errorf("after the first refresh: %+v", tok)
	}
	// expires_in 60 is under MinValidity: the next call refreshes
	// again, with the rotated token.
	if got, err := c.AccessToken(context.Background()); err != nil || got != "access-2" {
		t.Fatalf("AccessToken = %q, %v", got, err)
	}
	if rt := p.form(1).Get("refresh_token"); rt != "rotated-1" {
		t.Errorf("second refresh sent refresh_token %q, want rotated-1", rt)
	}
	if tok := readToken(t, c.TokenFile); tok.RefreshToken != "rotated-2" {
		t.Errorf("after the second refresh: %+v", tok)
	}
}

// A refused refresh is one line with the OAuth code and description and
// the login hint, without the refresh token or the client secret, even
// when the server echoes them; the token file is left alone.
func TestInvalidGrant(t *testing.T) {
	for _, desc := range []string{
		"Token has been expired or revoked.",
		"Bad token " + testRefresh + " for client secret " + testSecret + "\nsecond line",
	} {
		p := newProvider(t, func(f url.Values) (int, any) {
			return 400, map[string]any{"error": "invalid_grant", "error_description": desc}
		}, nil)
		c := newClient(t, p)
		old := &Token{AccessToken: "old-access-token", RefreshToken: testRefresh, Expiry: time.Now()}
		writeToken(t, c.TokenFile, old, 0o600)
		_, err := c.AccessToken(context.Background())
		var oe *Error
		if !errors.As(err, &oe) {
			t.Fatalf("error %T %v, want *Error", err, err)
		}
		if oe.Code != "invalid_grant" || oe.Status != 400 || oe.Temporary() {
			t.Errorf("Error = %+v", oe)
		}
		msg := err.Error()
		for _, want := range []string{"invalid_grant: ", "run: handoff oauth2 login gmail", p.srv.URL + "/token"} {
			if !strings.Contains(msg, want) {
				t.Errorf("message %q lacks %q", msg, want)
			}
		}
		if desc == "Token has been expired or revoked." && !strings.Contains(msg, "invalid_grant: Token has been expired or revoked.") {
			t.Errorf("message %q lacks the description", msg)
		}
		for _, secret := range []string{testRefresh, testSecret, "old-access-token", "\n"} {
			if strings.Contains(msg, secret) {
				t.Errorf("message %q contains %q", msg, secret)
			}
		}
		if got := readToken(t, c.TokenFile); got.AccessToken != old.AccessToken || got.RefreshToken != old.RefreshToken {
			t.Errorf("token file changed: %+v", got)
		}
	}
}

// An HTTP error without an OAuth error code is temporary and has no
// login hint.
func TestServerErrorIsTemporary(t *testing.T) {
	p := newProvider(t, func(f url.Values) (int, any) { return 503, "busy" }, nil)
	c := newClient(t, p)
	writeToken(t, c.TokenFile, &Token{AccessToken: "a", RefreshToken: testRefresh, Expiry: time.Now()}, 0o600)
	_, err := c.AccessToken(context.Background())
	var oe *Error
	if !errors.As(err, &oe) || !oe.Temporary() || oe.Status != 503 {
		t.Fatalf("error %v (%+v), want a temporary *Error with status 503", err, oe)
	}
	if strings.Contains(err.Error(), "login") {
		t.Errorf("message %q asks to log in", err)
	}
}

// The endpoint's address is unreachable: a network error, naming the
// endpoint.
func TestRefreshNetworkError(t *testing.T) {
	p := newProvider(t, nil, nil)
	c := newClient(t, p)
	p.srv.Close()
	writeToken(t, c.TokenFile, &Token{AccessToken: "a", RefreshToken: testRefresh, Expiry: time.Now()}, 0o600)
	_, err := c.AccessToken(context.Background())
	var oe *Error
	var ue *url.Error
	if err == nil || errors.As(err, &oe) || !errors.As(err, &ue) || !strings.Contains(err.Error(), "refreshing the access token at "+c.TokenURL) {
		t.Fatalf("error %v", err)
	}
}

// staleTokenProvider makes a token file with a stale token and a
// provider whose token endpoint answers "refreshed" only once stale has
// been marked done n times (each caller that read the stale token), or
// after wait, which is an error naming who did not all come.
func staleTokenProvider(t *testing.T, n int, stale *sync.WaitGroup, wait time.Duration, who string) (*provider, *Client) {
	t.Helper()
	stale.Add(n)
	released := make(chan struct{})
	go func() { stale.Wait(); close(released) }()
	p := newProvider(t, func(f url.Values) (int, any) {
		select {
		case <-released:
		case <-time.After(wait):
			t.Errorf("the %s did not all read the stale token", who)
		}
		return 200, map[string]any{"access_token": "refreshed", "expires_in": 3600}
	}, nil)
	c := newClient(t, p)
	writeToken(t, c.TokenFile, &Token{AccessToken: "old", RefreshToken: testRefresh, Expiry: time.Now()}, 0o600)
	return p, c
}

// Concurrent callers that all found the token stale refresh once: the
// others wait for the lock, read the file again and use the new token.
// The endpoint answers only once every caller has read the stale token,
// so without the lock each would refresh.
func TestConcurrentRefreshOnce(t *testing.T) {
	const n = 8
	var stale sync.WaitGroup
	p, c := staleTokenProvider(t, n, &stale, 10*time.Second, "callers")
	staleHook = stale.Done
	t.Cleanup(func() { staleHook = nil })

	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			got, err := c.AccessToken(context.Background())
			if err == nil && got != "refreshed" {
				err = fmt.Errorf("got %q", got)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if got := p.hits.Load(); got != 1 {
		t.Errorf("%d refreshes, want 1", got)
	}
}

// The same across processes: this test binary, run as a helper (see
// TestMain), calls AccessToken and reports on its standard output.
func TestConcurrentRefreshOnceAcrossProcesses(t *testing.T) {
	const n = 4
	var stale sync.WaitGroup
	p, c := staleTokenProvider(t, n, &stale, 20*time.Second, "helpers")

	var wg sync.WaitGroup
	for i := range n {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "HANDOFF_OAUTH_HELPER="+c.TokenFile, "HANDOFF_OAUTH_URL="+c.TokenURL)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			sc := bufio.NewScanner(out)
			sawStale := false
			var lines []string
			for sc.Scan() {
				if sc.Text() == "stale" && !sawStale {
					sawStale = true
					stale.Done()
					continue
				}
				lines = append(lines, sc.Text())
			}
			if !sawStale {
				stale.Done()
			}
			if err := cmd.Wait(); err != nil {
				t.Errorf("helper %d: %v", i, err)
			}
			if len(lines) != 1 || lines[0] != "token refreshed" {
				t.Errorf("helper %d printed %q", i, lines)
			}
		})
	}
	wg.Wait()
	if got := p.hits.Load(); got != 1 {
		t.Errorf("%d refreshes, want 1", got)
	}
}

// TestMain runs the tests, or, with HANDOFF_OAUTH_HELPER set to a
// token file, is the helper process of
// TestConcurrentRefreshOnceAcrossProcesses.
func TestMain(m *testing.M) {
	path := os.Getenv("HANDOFF_OAUTH_HELPER")
	if path == "" {
		os.Exit(m.Run())
	}
	staleHook = func() { fmt.Println("stale") }
	c := &Client{Relay: "gmail", ClientID: "client-id", TokenURL: os.Getenv("HANDOFF_OAUTH_URL"), TokenFile: path}
	tok, err := c.AccessToken(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("token", tok)
	os.Exit(0)
}

func TestMissingTokenFile(t *testing.T) {
	c := newClient(t, newProvider(t, nil, nil))
	_, err := c.AccessToken(context.Background())
	if !errors.Is(err, ErrNoToken) || !strings.Contains(err.Error(), "run: handoff oauth2 login gmail") || !strings.Contains(err.Error(), c.TokenFile) {
		t.Fatalf("error %v", err)
	}
}

// Token files that another user could read, that belong to another user,
// that are symbolic links or not regular files are refused before they
// are read, and nothing is sent.
func TestUnsafeTokenFileRefused(t *testing.T) {
	good := &Token{AccessToken: "a", RefreshToken: testRefresh, Expiry: time.Now().Add(time.Hour)}
	cases := []struct {
		name  string
		setup func(t *testing.T, path string)
		want  string
	}{
		{"group-readable", func(t *testing.T, path string) { writeToken(t, path, good, 0o640) }, "mode 0640"},
		{"world-readable", func(t *testing.T, path string) { writeToken(t, path, good, 0o644) }, "mode 0644"},
		{"group-writable", func(t *testing.T, path string) { writeToken(t, path, good, 0o620) }, "mode 0620"},
		{"symlink", func(t *testing.T, path string) {
			target := path + ".real"
			writeToken(t, target, good, 0o600)
			if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
		}, "symbolic link"},
		{"directory", func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file"},
		{"other-owner", func(t *testing.T, path string) {
			writeToken(t, path, good, 0o600)
			euid := os.Geteuid() + 1
			geteuid = func() int { return euid }
			t.Cleanup(func() { geteuid = os.Geteuid })
		}, "is owned by uid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newProvider(t, nil, nil)
			c := newClient(t, p)
			tc.setup(t, c.TokenFile)
			_, err := c.AccessToken(context.Background())
			if !errors.Is(err, ErrUnsafe) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want ErrUnsafe with %q", err, tc.want)
			}
			if strings.Contains(err.Error(), testRefresh) {
				t.Errorf("message shows the token: %v", err)
			}
			if p.hits.Load() != 0 {
				t.Error("a request was made")
			}
		})
	}
}

func TestBadTokenFile(t *testing.T) {
	c := newClient(t, nil)
	if err := os.WriteFile(c.TokenFile, []byte(`{"access_token": "x"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := c.AccessToken(context.Background())
	if !errors.Is(err, ErrBadToken) || !strings.Contains(err.Error(), "no refresh_token") || !strings.Contains(err.Error(), "handoff oauth2 login gmail") {
		t.Fatalf("error %v", err)
	}
}

// A caller whose context ends while another process holds the lock
// gives up with the context's error.
func TestLockWaitCancelled(t *testing.T) {
	c := newClient(t, newProvider(t, nil, nil))
	writeToken(t, c.TokenFile, &Token{AccessToken: "a", RefreshToken: testRefresh, Expiry: time.Now()}, 0o600)
	unlock, err := lockFile(context.Background(), c.TokenFile+".lock")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithCancel(context.Background())
	staleHook = cancel
	t.Cleanup(func() { staleHook = nil })
	_, err = c.AccessToken(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
}

// A failed write (fsync, rename) leaves the old file intact and no
// temporary file behind.
func TestWriteTokenFileFailures(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name string
		set  func()
	}{
		{"fsync", func() { fsyncFile = func(*os.File) error { return boom } }},
		{"rename", func() { rename = func(string, string) error { return boom } }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "t.json")
			old := &Token{AccessToken: "old", RefreshToken: testRefresh}
			writeToken(t, path, old, 0o600)
			tc.set()
			t.Cleanup(func() {
				fsyncFile = func(f *os.File) error { return f.Sync() }
				rename = os.Rename
			})
			err := WriteTokenFile(context.Background(), path, &Token{AccessToken: "new", RefreshToken: testRefresh})
			if !errors.Is(err, boom) {
				t.Fatalf("error %v", err)
			}
			if got := readToken(t, path); got.AccessToken != "old" {
				t.Errorf("file changed: %+v", got)
			}
			noTempFiles(t, filepath.Dir(path))
		})
	}
}

// WriteTokenFile creates a missing directory with mode 0700.
func TestWriteTokenFileCreatesDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "oauth2")
	path := filepath.Join(dir, "r.json")
	if err := WriteTokenFile(context.Background(), path, &Token{AccessToken: "a", RefreshToken: testRefresh}); err != nil {
		t.Fatal(err)
	}
	checkMode(t, dir, 0o700)
	checkMode(t, path, 0o600)
	checkMode(t, path+".lock", 0o600)
	if err := WriteTokenFile(context.Background(), path, &Token{AccessToken: "a"}); err == nil {
		t.Error("a token without a refresh token was written")
	}
}

func TestDecodeToken(t *testing.T) {
	good := `{"access_token":"ya29.a0","token_type":"Bearer","refresh_token":"1//0g","expiry":"2026-11-28T23:35:49Z"}`
	tok, err := DecodeToken([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != "ya29.a0" || tok.RefreshToken != "1//0g" || tok.TokenType != "Bearer" || !tok.Expiry.Equal(time.Date(2026, 11, 28, 23, 35, 49, 0, time.UTC)) {
		t.Errorf("DecodeToken = %+v", tok)
	}
	// x/oauth2's own JSON form (expires_in) is accepted too.
	if _, err := DecodeToken([]byte(`{"access_token":"a","refresh_token":"r","expiry":"2026-01-01T00:00:00Z","expires_in":3599}`)); err != nil {
		t.Errorf("oauth2.Token JSON: %v", err)
	}
	for _, bad := range []string{
		``,
		`[]`,
		`null`,
		`{"access_token":"a"}`,
		`{"refresh_token":""}`,
		`{"refresh_token":"has space"}`,
		`{"refresh_token":"r","access_token":"tab\t"}`,
		`{"refresh_token":"r","access_token":1}`,
		`{"refresh_token":"r","expiry":"yesterday"}`,
		`{"refresh_token":"r"} {}`,
		`{"refresh_token":"r",`,
	} {
		if tok, err := DecodeToken([]byte(bad)); !errors.Is(err, ErrBadToken) {
			t.Errorf("DecodeToken(%q) = %+v, %v", bad, tok, err)
		} else if strings.Contains(err.Error(), "has space") {
			t.Errorf("DecodeToken(%q): message quotes the token: %v", bad, err)
		}
	}
}

func TestErrorFormat(t *testing.T) {
	cases := []struct {
		e    Error
		want string
	}{
		{Error{Op: "refreshing", Code: "invalid_grant", Description: "Bad Request", Hint: "run: handoff oauth2 login x"},
			"oauth2: refreshing: invalid_grant: Bad Request; run: handoff oauth2 login x"},
		{Error{Op: "refreshing", Code: "invalid_client"}, "oauth2: refreshing: invalid_client"},
		{Error{Op: "refreshing", Status: 502}, "oauth2: refreshing: HTTP status 502 Bad Gateway"},
	}
	for _, tc := range cases {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
	if got := clean("a\x00b\nc "+testSecret+strings.Repeat("x", 400), 40, []string{testSecret}); got != "ab c <hidden>xxxxxxxxxxxxxxxxxxxxxxxxxxx..." {
		t.Errorf("clean = %q", got)
	}
}

func TestProviderDefaults(t *testing.T) {
	g, ok := Defaults(Google, "ignored")
	if !ok || g.TokenURL != "https://oauth2.googleapis.com/token" || g.DeviceFlow || len(g.Scopes) != 1 || g.AuthParams["access_type"] != "offline" {
		t.Errorf("google = %+v", g)
	}
	m, ok := Defaults(Microsoft, "")
	if !ok || m.TokenURL != "https://login.microsoftonline.com/common/oauth2/v2.0/token" || m.DeviceAuthURL != "https://login.microsoftonline.com/common/oauth2/v2.0/devicecode" || !m.DeviceFlow {
		t.Errorf("microsoft = %+v", m)
	}
	if m, _ := Defaults(Microsoft, "contoso.onmicrosoft.com"); !strings.HasPrefix(m.AuthURL, "https://login.microsoftonline.com/contoso.onmicrosoft.com/") {
		t.Errorf("microsoft tenant = %+v", m)
	}
	if _, ok := Defaults("", ""); ok {
		t.Error(`Defaults("") ok`)
	}
}

// Answers of the token endpoint beyond plain JSON: an error in a 200
// answer (some providers), expires_in as a string, a form-encoded answer,
// and answers that are not tokens.
func TestRefreshAnswers(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name, ctype, body string
		status            int
		check             func(t *testing.T, tok string, err error)
	}{
		{"error with 200", "application/json", `{"error":"invalid_grant","error_description":"revoked"}`, 200, func(t *testing.T, _ string, err error) {
			var oe *Error
			if !errors.As(err, &oe) || oe.Code != "invalid_grant" || oe.Status != 200 || !strings.Contains(err.Error(), "run: handoff oauth2 login gmail") {
				t.Errorf("error %v", err)
			}
		}},
		{"temporarily_unavailable", "application/json", `{"error":"temporarily_unavailable"}`, 503, func(t *testing.T, _ string, err error) {
			var oe *Error
			if !errors.As(err, &oe) || !oe.Temporary() || oe.Hint != "" {
				t.Errorf("error %v", err)
			}
		}},
		{"expires_in string", "application/json", `{"access_token":"a1","expires_in":"3600"}`, 200, func(t *testing.T, tok string, err error) {
			if err != nil || tok != "a1" {
				t.Errorf("AccessToken = %q, %v", tok, err)
			}
		}},
		{"form", "application/x-www-form-urlencoded; charset=utf-8", `access_token=f1&token_type=bearer&expires_in=3600&refresh_token=rotated`, 200, func(t *testing.T, tok string, err error) {
			if err != nil || tok != "f1" {
				t.Errorf("AccessToken = %q, %v", tok, err)
			}
		}},
		{"form error", "text/plain", `error=bad_verification_code&error_description=The+code+is+wrong`, 200, func(t *testing.T, _ string, err error) {
			var oe *Error
			if !errors.As(err, &oe) || oe.Code != "bad_verification_code" || oe.Description != "The code is wrong" {
				t.Errorf("error %v", err)
			}
		}},
		{"html", "text/html", `<html>captive portal</html>`, 200, func(t *testing.T, _ string, err error) {
			var oe *Error
			if err == nil || errors.As(err, &oe) || !strings.Contains(err.Error(), "not JSON") || strings.Contains(err.Error(), "portal") {
				t.Errorf("error %v", err)
			}
		}},
		{"no access_token", "application/json", `{"token_type":"Bearer"}`, 200, func(t *testing.T, _ string, err error) {
			if err == nil || !strings.Contains(err.Error(), "no access_token") {
				t.Errorf("error %v", err)
			}
		}},
		{"html error", "text/html", `<html>oops</html>`, 502, func(t *testing.T, _ string, err error) {
			var oe *Error
			if !errors.As(err, &oe) || oe.Status != 502 || oe.Code != "" || !oe.Temporary() || !strings.Contains(err.Error(), "HTTP status 502 Bad Gateway") {
				t.Errorf("error %v", err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.ctype)
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			c := newClient(t, nil)
			c.TokenURL = srv.URL + "/token"
			c.Now = func() time.Time { return now }
			writeToken(t, c.TokenFile, &Token{AccessToken: "old", RefreshToken: testRefresh, Expiry: now}, 0o600)
			tok, err := c.AccessToken(context.Background())
			tc.check(t, tok, err)
			if err != nil {
				return
			}
			got := readToken(t, c.TokenFile)
			if !got.Expiry.Equal(now.Add(time.Hour)) {
				t.Errorf("expiry %v", got.Expiry)
			}
			if want := map[bool]string{true: "rotated", false: testRefresh}[tc.name == "form"]; got.RefreshToken != want {
				t.Errorf("refresh token %q, want %q", got.RefreshToken, want)
			}
		})
	}
}

// An https token endpoint, trusted through TLSConfig; the system's roots
// refuse the test certificate, a network failure (*url.Error).
func TestRefreshHTTPS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"tls-access","expires_in":3600}`)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	c := newClient(t, nil)
	c.TokenURL = srv.URL + "/token"
	writeToken(t, c.TokenFile, &Token{AccessToken: "old", RefreshToken: testRefresh, Expiry: time.Now()}, 0o600)
	_, err := c.AccessToken(context.Background())
	var ue *url.Error
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("with the system's roots: %v", err)
	}
	c.TLSConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig
	if got, err := c.AccessToken(context.Background()); err != nil || got != "tls-access" {
		t.Fatalf("AccessToken = %q, %v", got, err)
	}
}

// A token endpoint that closes the connection without an answer, or
// does not answer in time: a *url.Error (which handoff counts as a
// temporary failure), naming the endpoint.
func TestRefreshNoAnswer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	stall := make(chan struct{})
	defer close(stall)
	go func() {
		for n := 0; ; n++ {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			if n == 0 {
				conn.Close() // closes early
				continue
			}
			go func() { <-stall; conn.Close() }() // silent
		}
	}()
	c := newClient(t, nil)
	c.TokenURL = "http://" + ln.Addr().String() + "/token"
	writeToken(t, c.TokenFile, &Token{AccessToken: "old", RefreshToken: testRefresh, Expiry: time.Now()}, 0o600)
	_, err = c.AccessToken(context.Background())
	var ue *url.Error
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "refreshing the access token at "+c.TokenURL) {
		t.Fatalf("closed early: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = c.AccessToken(ctx)
	if !errors.As(err, &ue) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("silent: %v", err)
	}
}
