package config

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/handoff-mta/handoff/internal/oauth"
	"github.com/handoff-mta/handoff/relay"
)

// password_credential reads $CREDENTIALS_DIRECTORY/NAME each time; a
// missing variable or file is a one-line error naming the credential and
// never showing a secret.
func TestCredentialsPasswordCredential(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "mail-password"), []byte("s3cret\nsecond-line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "empty"), []byte("\nsecret-on-line-two\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	body := func(name string) string {
		return "url = \"smtps://smtp.example.com\"\nusername = \"app\"\npassword_credential = \"" + name + "\"\n"
	}

	t.Setenv("CREDENTIALS_DIRECTORY", dir)
	c, r := relayFrom(t, body("mail-password"))
	o, cred, err := c.RelayOptions(r)
	if err != nil {
		t.Fatal(err)
	}
	if want := (&relay.Credentials{Username: "app", Password: "s3cret"}); !reflect.DeepEqual(cred, want) || o.Auth != cred {
		t.Errorf("cred = %+v", cred)
	}
	// Read at each use: a new value is seen at once.
	if err := os.WriteFile(filepath.Join(dir, "mail-password"), []byte("rotated"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, cred, err := c.RelayOptions(r); err != nil || cred.Password != "rotated" {
		t.Errorf("after a change: %+v, %v", cred, err)
	}

	cases := []struct {
		name, env, want string
	}{
		{"absent", dir, `password_credential "absent": no such credential in CREDENTIALS_DIRECTORY (` + dir + `)`},
		{"empty", dir, `password_credential "empty": the first line of ` + dir + `/empty is empty`},
		{"mail-password", "", `password_credential "mail-password": CREDENTIALS_DIRECTORY is not set; systemd sets it for a service with LoadCredential=mail-password:`},
	}
	for _, tc := range cases {
		t.Setenv("CREDENTIALS_DIRECTORY", tc.env)
		c, r := relayFrom(t, body(tc.name))
		_, _, err := c.RelayOptions(r)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") ||
			strings.Contains(err.Error(), "secret-on-line-two") || !strings.HasPrefix(err.Error(), "config: relay relay1: ") {
			t.Errorf("%s with CREDENTIALS_DIRECTORY=%q: err = %v, want %q", tc.name, tc.env, err, tc.want)
		}
	}
}

// fakeTokenEndpoint answers refresh grants with answer and records the
// forms.
type fakeTokenEndpoint struct {
	srv   *httptest.Server
	mu    sync.Mutex
	forms []url.Values
}

func newFakeTokenEndpoint(t *testing.T, status int, answer map[string]any) *fakeTokenEndpoint {
	t.Helper()
	f := &fakeTokenEndpoint{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			t.Error(err)
		}
		f.mu.Lock()
		f.forms = append(f.forms, r.PostForm)
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(answer)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// writeTokenFile writes a token file that expires in d.
func writeTokenFile(t *testing.T, path string, d time.Duration) {
	t.Helper()
	err := oauth.WriteTokenFile(context.Background(), path, &oauth.Token{AccessToken: "cached-access", RefreshToken: "refresh-r3fr3sh", Expiry: time.Now().Add(d)})
	if err != nil {
		t.Fatal(err)
	}
}

// With [relay.oauth2], RelayOptions puts the access token in
// Credentials.Token with the token mechanisms: the cached one when it is
// fresh, else one refreshed at token_url with the client secret read
// from client_secret_file.
func TestCredentialsOAuth2(t *testing.T) {
	ep := newFakeTokenEndpoint(t, 200, map[string]any{"access_token": "refreshed-access", "expires_in": 3600})
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "client-secret")
	if err := os.WriteFile(secretFile, []byte("client-s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(dir, "oauth2", "gmail.json")
	c, r := relayFrom(t, `name = "gmail"
url = "smtps://smtp.gmail.com"
username = "me@gmail.com"
[relay.oauth2]
client_id = "the-client"
client_secret_file = "`+secretFile+`"
token_url = "`+ep.srv.URL+`/token"
auth_url = "`+ep.srv.URL+`/auth"
token_file = "`+tokenFile+`"
`)
	writeTokenFile(t, tokenFile, time.Hour)
	o, cred, err := c.RelayOptions(r)
	if err != nil {
		t.Fatal(err)
	}
	want := &relay.Credentials{Username: "me@gmail.com", Token: "cached-access", Mechanisms: []string{"XOAUTH2", "OAUTHBEARER"}}
	if !reflect.DeepEqual(cred, want) || o.Auth != cred {
		t.Errorf("cred = %+v, want %+v", cred, want)
	}
	if len(ep.forms) != 0 {
		t.Errorf("%d requests for a fresh token", len(ep.forms))
	}

	writeTokenFile(t, tokenFile, time.Minute)
	_, cred, err = c.RelayOptionsContext(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	if cred.Token != "refreshed-access" || cred.Password != "" {
		t.Errorf("after refresh: %+v", cred)
	}
	if len(ep.forms) != 1 || ep.forms[0].Get("client_secret") != "client-s3cret" || ep.forms[0].Get("client_id") != "the-client" || ep.forms[0].Get("refresh_token") != "refresh-r3fr3sh" {
		t.Errorf("requests %v", ep.forms)
	}
}

// A refused refresh names the relay and the OAuth error, says how to log
// in again, and shows neither the refresh token nor the client secret.
func TestCredentialsOAuth2InvalidGrant(t *testing.T) {
	ep := newFakeTokenEndpoint(t, 400, map[string]any{"error": "invalid_grant", "error_description": "Token has been expired or revoked."})
	tokenFile := filepath.Join(t.TempDir(), "office.json")
	t.Setenv("CREDENTIALS_DIRECTORY", filepath.Dir(tokenFile))
	if err := os.WriteFile(filepath.Join(filepath.Dir(tokenFile), "client"), []byte("client-s3cret"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, r := relayFrom(t, `name = "office"
url = "submission://smtp.office365.com"
username = "me@example.com"
[relay.oauth2]
client_id = "the-client"
client_secret_credential = "client"
token_url = "`+ep.srv.URL+`/token"
device_auth_url = "`+ep.srv.URL+`/device"
token_file = "`+tokenFile+`"
`)
	writeTokenFile(t, tokenFile, 0)
	_, _, err := c.RelayOptions(r)
	var oe *oauth.Error
	if !errors.As(err, &oe) || oe.Code != "invalid_grant" {
		t.Fatalf("err = %v, want an *oauth.Error", err)
	}
	msg := err.Error()
	for _, want := range []string{"config: relay office: oauth2: ", "invalid_grant: Token has been expired or revoked.", "run: handoff oauth2 login office"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	for _, secret := range []string{"client-s3cret", "refresh-r3fr3sh", "cached-access", "\n"} {
		if strings.Contains(msg, secret) {
			t.Errorf("message %q contains %q", msg, secret)
		}
	}
	if len(ep.forms) != 1 || ep.forms[0].Get("client_secret") != "client-s3cret" {
		t.Errorf("requests %v", ep.forms)
	}
}

// No token file yet: the error says to log in.
func TestCredentialsOAuth2NotLoggedIn(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "gmail.json")
	c, r := relayFrom(t, `name = "gmail"
url = "smtps://smtp.gmail.com"
username = "me@gmail.com"
[relay.oauth2]
provider = "google"
client_id = "the-client"
token_file = "`+tokenFile+`"
`)
	_, _, err := c.RelayOptions(r)
	if !errors.Is(err, oauth.ErrNoToken) || !strings.Contains(err.Error(), "run: handoff oauth2 login gmail") {
		t.Fatalf("err = %v", err)
	}
}

// OAuth2Client carries the relay's settings, the provider's extra
// parameters, and the default token file for a relay made by hand.
func TestOAuth2Client(t *testing.T) {
	_, r := relayFrom(t, `name = "gmail"
url = "smtps://smtp.gmail.com"
username = "me@gmail.com"
[relay.oauth2]
provider = "google"
client_id = "the-client"
client_secret = "inline-secret"
`)
	oc := r.OAuth2Client()
	if oc.Relay != "gmail" || oc.ClientID != "the-client" || oc.TokenURL != "https://oauth2.googleapis.com/token" ||
		oc.TokenFile != "/var/lib/handoff/oauth2/gmail.json" || oc.AuthParams["access_type"] != "offline" ||
		!reflect.DeepEqual(oc.Scopes, []string{"https://mail.google.com/"}) {
		t.Errorf("client = %+v", oc)
	}
	if s, err := oc.ClientSecret(); s != "inline-secret" || err != nil {
		t.Errorf("ClientSecret = %q, %v", s, err)
	}
	hand := &Relay{Name: "office", OAuth2: &OAuth2{Provider: "microsoft", ClientID: "x"}}
	oc = hand.OAuth2Client()
	if oc.TokenURL != "https://login.microsoftonline.com/common/oauth2/v2.0/token" || oc.TokenFile != "/var/lib/handoff/oauth2/office.json" || oc.ClientSecret != nil {
		t.Errorf("hand-built client = %+v", oc)
	}
	if (&Relay{}).OAuth2Client() != nil {
		t.Error("a client without [relay.oauth2]")
	}
}

func TestCheckEndpointURL(t *testing.T) {
	for _, ok := range []string{"https://oauth2.example.com/token", "http://127.0.0.1:8080/token", "http://[::1]/t", "http://localhost/t", "https://x.example/t?tenant=a"} {
		if msg := checkEndpointURL(ok); msg != "" {
			t.Errorf("%s: %s", ok, msg)
		}
	}
	for _, bad := range []string{"oauth2.example.com/token", "http://oauth2.example.com/token", "ftp://x/", "https://u:p@x/", "https:///token", "https://x/#f", "mailto:x@y"} {
		if msg := checkEndpointURL(bad); msg == "" {
			t.Errorf("%s accepted", bad)
		}
	}
}
