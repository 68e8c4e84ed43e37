package oauth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"golang.org/x/oauth2"
)

// AuthCodeFlow is one login by the authorization code grant with PKCE
// (RFC 7636, method S256) and a loopback redirect (RFC 8252 §7.3).
type AuthCodeFlow struct {
	// URL is the address the person opens in a browser.
	URL string
	// RedirectURI is where the provider sends the browser back with the
	// code.
	RedirectURI string

	c        *Client
	cfg      *oauth2.Config
	secret   string
	state    string
	verifier string
}

// ErrStateMismatch: the address given is not the answer to this login
// (an old tab, another login, or a forgery).
var ErrStateMismatch = errors.New("the state in the address does not match this login")

// StartAuthCode begins a login whose browser comes back to redirectURI
// (such as http://127.0.0.1:PORT/, where the caller listens). It makes
// a random state and PKCE verifier and returns the flow with its URL.
func (c *Client) StartAuthCode(redirectURI string) (*AuthCodeFlow, error) {
	if c.AuthURL == "" {
		return nil, errors.New("oauth2: no authorization endpoint (auth_url)")
	}
	cfg, secret, err := c.config(redirectURI)
	if err != nil {
		return nil, err
	}
	var rnd [24]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("oauth2: %w", err)
	}
	f := &AuthCodeFlow{
		RedirectURI: redirectURI,
		c:           c,
		cfg:         cfg,
		secret:      secret,
		state:       base64.RawURLEncoding.EncodeToString(rnd[:]),
		verifier:    oauth2.GenerateVerifier(),
	}
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(f.verifier)}
	for _, k := range slices.Sorted(maps.Keys(c.AuthParams)) {
		opts = append(opts, oauth2.SetAuthURLParam(k, c.AuthParams[k]))
	}
	f.URL = cfg.AuthCodeURL(f.state, opts...)
	return f, nil
}

// Code returns the authorization code in s, which is either the whole
// address the browser was sent back to (pasted, or the request line of
// the redirect), whose state must be this flow's, or the code alone.
//
// Errors: ErrStateMismatch (wrapped); an *Error for an error=...
// answer (access_denied when the person said no); an error for an
// address without a code or a code with spaces or control characters.
func (f *AuthCodeFlow) Code(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("oauth2: no code given")
	}
	if !strings.ContainsAny(s, "?&=") {
		if strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r > '~' }) {
			return "", errors.New("oauth2: that is not an authorization code (it has spaces or other characters codes do not have)")
		}
		return s, nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", errors.New("oauth2: that is not the address the browser was sent to")
	}
	q := u.Query()
	if q.Get("state") != f.state {
		return "", fmt.Errorf("oauth2: %w", ErrStateMismatch)
	}
	if e := q.Get("error"); e != "" {
		oe := &Error{Op: "authorising", Code: clean(e, 64, nil), Description: clean(q.Get("error_description"), 300, nil)}
		if e == errAccessDenied {
			oe.Hint = "the authorisation was refused"
		}
		return "", oe
	}
	code := q.Get("code")
	if code == "" {
		return "", errors.New("oauth2: the address has no code")
	}
	return code, nil
}

// Exchange trades code, with the PKCE verifier, for the tokens and
// writes the token file. A refusal is an *Error (invalid_grant: the code
// was used, expired or is not this login's).
func (f *AuthCodeFlow) Exchange(ctx context.Context, code string) (*Token, error) {
	ot, err := f.cfg.Exchange(f.c.context(ctx), code, oauth2.VerifierOption(f.verifier))
	if err != nil {
		return nil, f.c.endpointError("exchanging the code at "+f.c.TokenURL, err, "", f.secret, code, f.verifier)
	}
	t := f.c.fromOAuth2(ot)
	if err := f.c.loginToken(ctx, t); err != nil {
		return nil, err
	}
	return t, nil
}

// Handler serves the loopback redirect. A request whose state is this
// flow's is answered with a short page and passed to result, with the
// code or the error of Code; any other request gets 400 (or 404 off the
// redirect's path) and is not passed on, so a stray request cannot end
// the login.
func (f *AuthCodeFlow) Handler(result func(code string, err error)) http.Handler {
	path := "/"
	if u, err := url.Parse(f.RedirectURI); err == nil && u.Path != "" {
		path = u.Path
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != path {
			http.NotFound(w, r)
			return
		}
		code, err := f.Code(r.URL.String())
		if errors.Is(err, ErrStateMismatch) {
			http.Error(w, "handoff: this is not the answer to the login in progress", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		msg := "handoff received the authorisation; you may close this window."
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			msg = "handoff: " + err.Error()
		}
		fmt.Fprintf(w, "<!DOCTYPE html>\n<title>handoff</title>\n<p>%s</p>\n", html.EscapeString(msg))
		result(code, err)
	})
}
