package oauth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/url"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock that Sleep moves forward, recording each wait.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sleeps = append(f.sleeps, d)
	f.now = f.now.Add(d)
	return ctx.Err()
}

// deviceAnswer is the device endpoint's answer of the tests.
func deviceAnswer(expiresIn int) func(url.Values) (int, any) {
	return func(f url.Values) (int, any) {
		return 200, map[string]any{
			"device_code":      "device-code-d3v1c3",
			"user_code":        "WDJB-MJHT",
			"verification_uri": "https://example.com/device",
			"expires_in":       expiresIn,
			"interval":         5,
		}
	}
}

// script answers the token endpoint's polls in turn.
func script(answers ...func() (int, any)) func(url.Values) (int, any) {
	var mu sync.Mutex
	i := 0
	return func(url.Values) (int, any) {
		mu.Lock()
		defer mu.Unlock()
		if i >= len(answers) {
			return 500, "no more answers"
		}
		i++
		return answers[i-1]()
	}
}

func oauthError(code string) func() (int, any) {
	return func() (int, any) { return 400, map[string]any{"error": code, "error_description": "said the server"} }
}

func granted() (int, any) {
	return 200, map[string]any{"access_token": "device-access", "refresh_token": "device-refresh", "token_type": "Bearer", "expires_in": 3600}
}

// The device grant: the code is shown once, authorization_pending polls
// again after the interval, slow_down adds 5 seconds, success writes the
// token file (creating its directory 0700). Each poll sends the device
// code grant with the client's credentials.
func TestDeviceLogin(t *testing.T) {
	p := newProvider(t, script(oauthError("authorization_pending"), oauthError("slow_down"), granted), deviceAnswer(600))
	c := newClient(t, p)
	c.TokenFile = filepath.Join(t.TempDir(), "new", "dir", "gmail.json")
	clk := &fakeClock{now: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)}
	c.Now, c.Sleep = clk.Now, clk.Sleep
	var shown []*DeviceCode
	tok, err := c.DeviceLogin(context.Background(), func(dc *DeviceCode) error {
		shown = append(shown, dc)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(shown) != 1 || shown[0].UserCode != "WDJB-MJHT" || shown[0].VerificationURI != "https://example.com/device" {
		t.Errorf("shown %+v", shown)
	}
	if want := time.Date(2026, 11, 28, 12, 10, 0, 0, time.UTC); shown[0].Expires.Sub(want).Abs() > 2*time.Second {
		t.Errorf("Expires %v, want about %v", shown[0].Expires, want)
	}
	if want := []time.Duration{5 * time.Second, 5 * time.Second, 10 * time.Second}; !reflect.DeepEqual(clk.sleeps, want) {
		t.Errorf("waits %v, want %v", clk.sleeps, want)
	}
	if tok.AccessToken != "device-access" {
		t.Errorf("token %+v", tok)
	}
	dev := p.form(0)
	if dev.Get("client_id") != "client-id" || dev.Get("scope") != "https://mail.google.com/" {
		t.Errorf("device request %v", dev)
	}
	for i := 1; i <= 3; i++ {
		f := p.form(i)
		if f.Get("grant_type") != "urn:ietf:params:oauth:grant-type:device_code" || f.Get("device_code") != "device-code-d3v1c3" || f.Get("client_id") != "client-id" || f.Get("client_secret") != testSecret {
			t.Errorf("poll %d: %v", i, f)
		}
	}
	got := readToken(t, c.TokenFile)
	if got.AccessToken != "device-access" || got.RefreshToken != "device-refresh" || !got.Expiry.Equal(clk.Now().Add(time.Hour)) {
		t.Errorf("token file %+v", got)
	}
	checkMode(t, c.TokenFile, 0o600)
	checkMode(t, filepath.Dir(c.TokenFile), 0o700)
}

// expired_token and access_denied end the grant with an *Error naming
// the code, and the code's own expiry ends it without another poll.
func TestDeviceLoginFailures(t *testing.T) {
	cases := []struct {
		name      string
		polls     []func() (int, any)
		expiresIn int
		code      string
		hint      string
		requests  int32
	}{
		{"expired_token", []func() (int, any){oauthError("authorization_pending"), oauthError("expired_token")}, 600, "expired_token", "not used in time", 3},
		{"access_denied", []func() (int, any){oauthError("access_denied")}, 600, "access_denied", "refused", 2},
		{"authorization_declined", []func() (int, any){oauthError("authorization_declined")}, 600, "authorization_declined", "refused", 2},
		{"invalid_client", []func() (int, any){oauthError("invalid_client")}, 600, "invalid_client", "", 2},
		// expires_in 12 with interval 5: polls at 5s and 10s, then the
		// code has expired at 15s.
		{"code expiry", []func() (int, any){oauthError("authorization_pending"), oauthError("authorization_pending"), granted}, 12, "expired_token", "run the login again", 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newProvider(t, script(tc.polls...), deviceAnswer(tc.expiresIn))
			c := newClient(t, p)
			clk := &fakeClock{now: time.Now()}
			c.Now, c.Sleep = clk.Now, clk.Sleep
			_, err := c.DeviceLogin(context.Background(), func(*DeviceCode) error { return nil })
			var oe *Error
			if !errors.As(err, &oe) || oe.Code != tc.code {
				t.Fatalf("error %v, want an *Error with code %s", err, tc.code)
			}
			if !strings.Contains(oe.Hint, tc.hint) || (tc.hint == "" && oe.Hint != "") {
				t.Errorf("hint %q, want %q", oe.Hint, tc.hint)
			}
			if got := p.hits.Load(); got != tc.requests {
				t.Errorf("%d requests, want %d", got, tc.requests)
			}
			if strings.Contains(err.Error(), "device-code-d3v1c3") || strings.Contains(err.Error(), testSecret) {
				t.Errorf("message shows a secret: %v", err)
			}
			if _, err := ReadTokenFile(c.TokenFile); !errors.Is(err, ErrNoToken) {
				t.Errorf("token file written: %v", err)
			}
		})
	}
}

// Google refuses Gmail's scope in its device flow with invalid_scope; the
// message says to use the code grant.
func TestDeviceLoginInvalidScope(t *testing.T) {
	p := newProvider(t, nil, func(url.Values) (int, any) {
		return 400, map[string]any{"error": "invalid_scope", "error_description": "Invalid device flow scope: https://mail.google.com/"}
	})
	c := newClient(t, p)
	_, err := c.DeviceLogin(context.Background(), func(*DeviceCode) error {
		t.Error("code shown")
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "invalid_scope: Invalid device flow scope") || !strings.Contains(err.Error(), "--auth-code") {
		t.Fatalf("error %v", err)
	}
}

// A successful poll without a refresh token is an error: the login
// would not last.
func TestDeviceLoginNoRefreshToken(t *testing.T) {
	p := newProvider(t, script(func() (int, any) { return 200, map[string]any{"access_token": "a", "expires_in": 3600} }), deviceAnswer(600))
	c := newClient(t, p)
	clk := &fakeClock{now: time.Now()}
	c.Now, c.Sleep = clk.Now, clk.Sleep
	_, err := c.DeviceLogin(context.Background(), func(*DeviceCode) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "no refresh token") {
		t.Fatalf("error %v", err)
	}
}

// A cancelled context ends the polling.
func TestDeviceLoginCancelled(t *testing.T) {
	p := newProvider(t, script(oauthError("authorization_pending")), deviceAnswer(600))
	c := newClient(t, p)
	ctx, cancel := context.WithCancel(context.Background())
	_, err := c.DeviceLogin(ctx, func(*DeviceCode) error { cancel(); return nil })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v", err)
	}
}

// The code grant: the URL carries the client, the redirect, the state,
// an S256 challenge and the provider's parameters; the code comes back
// in the redirect; the exchange sends the verifier that matches the
// challenge, and the token file is written.
func TestAuthCodeLogin(t *testing.T) {
	var challenge string
	p := newProvider(t, func(f url.Values) (int, any) {
		if f.Get("grant_type") != "authorization_code" || f.Get("code") != "the-code" || f.Get("redirect_uri") != "http://127.0.0.1:5555/" || f.Get("client_secret") != testSecret {
			return 400, map[string]any{"error": "invalid_request", "error_description": "bad form"}
		}
		if sum := sha256.Sum256([]byte(f.Get("code_verifier"))); base64.RawURLEncoding.EncodeToString(sum[:]) != challenge {
			return 400, map[string]any{"error": "invalid_grant", "error_description": "PKCE verification failed"}
		}
		return 200, map[string]any{"access_token": "code-access", "refresh_token": "code-refresh", "expires_in": 3600}
	}, nil)
	c := newClient(t, p)
	c.AuthParams = map[string]string{"access_type": "offline", "prompt": "consent"}
	f, err := c.StartAuthCode("http://127.0.0.1:5555/")
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(f.URL)
	if err != nil || !strings.HasPrefix(f.URL, p.srv.URL+"/auth?") {
		t.Fatalf("URL %q: %v", f.URL, err)
	}
	q := u.Query()
	challenge = q.Get("code_challenge")
	for k, want := range map[string]string{"client_id": "client-id", "redirect_uri": "http://127.0.0.1:5555/", "response_type": "code",
		"code_challenge_method": "S256", "access_type": "offline", "prompt": "consent", "scope": "https://mail.google.com/"} {
		if q.Get(k) != want {
			t.Errorf("URL %s = %q, want %q", k, q.Get(k), want)
		}
	}
	if len(q.Get("state")) < 20 || len(challenge) != 43 {
		t.Errorf("state %q challenge %q", q.Get("state"), challenge)
	}
	code, err := f.Code("http://127.0.0.1:5555/?state=" + url.QueryEscape(q.Get("state")) + "&code=the-code&scope=x")
	if err != nil || code != "the-code" {
		t.Fatalf("Code = %q, %v", code, err)
	}
	if _, err := f.Exchange(context.Background(), code); err != nil {
		t.Fatal(err)
	}
	if got := readToken(t, c.TokenFile); got.AccessToken != "code-access" || got.RefreshToken != "code-refresh" {
		t.Errorf("token file %+v", got)
	}
	checkMode(t, c.TokenFile, 0o600)

	// A second flow has another state and verifier: the first one's
	// code does not pass PKCE.
	f2, err := c.StartAuthCode("http://127.0.0.1:5555/")
	if err != nil {
		t.Fatal(err)
	}
	if f2.state == f.state || f2.verifier == f.verifier {
		t.Error("state or verifier reused")
	}
	_, err = f2.Exchange(context.Background(), "the-code")
	var oe *Error
	if !errors.As(err, &oe) || oe.Code != "invalid_grant" || strings.Contains(err.Error(), "the-code") {
		t.Errorf("exchange with the wrong verifier: %v", err)
	}
}

func TestAuthCodeCode(t *testing.T) {
	c := newClient(t, newProvider(t, nil, nil))
	f, err := c.StartAuthCode("http://127.0.0.1:5555/")
	if err != nil {
		t.Fatal(err)
	}
	st := url.QueryEscape(f.state)
	cases := []struct {
		in, code string
		check    func(error) bool
	}{
		{"4/0AfJohXn-abc_DEF", "4/0AfJohXn-abc_DEF", nil},
		{"  4/0AfJohXn  \n", "4/0AfJohXn", nil},
		{"http://127.0.0.1:5555/?code=c1&state=" + st, "c1", nil},
		{"/?state=" + st + "&code=c%2F2", "c/2", nil},
		{"http://127.0.0.1:5555/?code=c1&state=other", "", func(err error) bool { return errors.Is(err, ErrStateMismatch) }},
		{"http://127.0.0.1:5555/?code=c1", "", func(err error) bool { return errors.Is(err, ErrStateMismatch) }},
		{"http://127.0.0.1:5555/?error=access_denied&state=" + st, "", func(err error) bool {
			var oe *Error
			return errors.As(err, &oe) && oe.Code == "access_denied" && strings.Contains(err.Error(), "refused")
		}},
		{"http://127.0.0.1:5555/?state=" + st, "", func(err error) bool { return strings.Contains(err.Error(), "no code") }},
		{"two words", "", func(err error) bool { return err != nil }},
		{"", "", func(err error) bool { return err != nil }},
	}
	for _, tc := range cases {
		code, err := f.Code(tc.in)
		if tc.check == nil {
			if err != nil || code != tc.code {
				t.Errorf("Code(%q) = %q, %v; want %q", tc.in, code, err, tc.code)
			}
			continue
		}
		if err == nil || !tc.check(err) {
			t.Errorf("Code(%q) = %q, %v", tc.in, code, err)
		}
	}
}

// The loopback redirect passes on only requests with this flow's state.
func TestAuthCodeRedirect(t *testing.T) {
	c := newClient(t, newProvider(t, nil, nil))
	f, err := c.StartAuthCode("http://127.0.0.1:5555/cb")
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		code string
		err  error
	}
	var got []result
	get := func(target string) (int, string) {
		status, ctype, body := f.Redirect(target, func(code string, err error) { got = append(got, result{code, err}) })
		// The pages (200, or 400 passed on) are HTML; the refusals of
		// stray requests plain text.
		want := "text/plain; charset=utf-8"
		if strings.Contains(body, "<title>handoff</title>") {
			want = "text/html; charset=utf-8"
		}
		if ctype != want {
			t.Errorf("%s: Content-Type %q for %q", target, ctype, body)
		}
		return status, body
	}
	st := url.QueryEscape(f.state)
	if code, _ := get("/cb?code=x&state=forged"); code != 400 || len(got) != 0 {
		t.Errorf("forged state: %d, results %v", code, got)
	}
	if code, _ := get("/favicon.ico"); code != 404 || len(got) != 0 {
		t.Errorf("favicon: %d, results %v", code, got)
	}
	if code, body := get("/cb?code=the-code&state=" + st); code != 200 || !strings.Contains(body, "you may close this window") {
		t.Errorf("good answer: %d %q", code, body)
	}
	if code, body := get("/cb?error=access_denied&error_description=%3Cb%3Eno%3C/b%3E&state=" + st); code != 400 || strings.Contains(body, "<b>") {
		t.Errorf("refusal: %d %q", code, body)
	}
	if code, _ := get("http://127.0.0.1:5555/cb?code=code-2&state=" + st); code != 200 {
		t.Errorf("absolute form: %d", code)
	}
	if code, _ := get("/cb/x?code=x&state=" + st); code != 404 {
		t.Errorf("below the path: %d", code)
	}
	if code, _ := get("*"); code != 404 {
		t.Errorf("asterisk form: %d", code)
	}
	if len(got) != 3 || got[0].code != "the-code" || got[0].err != nil || got[1].err == nil || got[2].code != "code-2" {
		t.Errorf("results %+v", got)
	}
}
