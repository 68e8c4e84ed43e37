package oauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"net/url"
	"strings"
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
	// The secret is read now, so that a missing one fails the login
	// before the person opens the address.
	secret, err := c.secret()
	if err != nil {
		return nil, err
	}
	var rnd [24 + 32]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("oauth2: %w", err)
	}
	f := &AuthCodeFlow{
		RedirectURI: redirectURI,
		c:           c,
		secret:      secret,
		state:       base64.RawURLEncoding.EncodeToString(rnd[:24]),
		// RFC 7636 §4.1: 32 random octets, base64url, 43 characters.
		verifier: base64.RawURLEncoding.EncodeToString(rnd[24:]),
	}
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {c.ClientID},
		"state":                 {f.state},
		"code_challenge":        {s256Challenge(f.verifier)},
		"code_challenge_method": {"S256"},
	}
	if redirectURI != "" {
		q.Set("redirect_uri", redirectURI)
	}
	if len(c.Scopes) > 0 {
		q.Set("scope", strings.Join(c.Scopes, " "))
	}
	for k, v := range c.AuthParams {
		q.Set(k, v)
	}
	sep := "?"
	if strings.Contains(c.AuthURL, "?") {
		sep = "&"
	}
	// Encode sorts the keys: the address is the same for the same
	// parameters.
	f.URL = c.AuthURL + sep + q.Encode()
	return f, nil
}

// s256Challenge is the PKCE challenge of verifier by the method S256
// (RFC 7636 §4.2).
func s256Challenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
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
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"code_verifier": {f.verifier},
	}
	if f.RedirectURI != "" {
		form.Set("redirect_uri", f.RedirectURI)
	}
	t, err := f.c.tokenRequest(ctx, form, f.secret, code, f.verifier)
	if err != nil {
		return nil, endpointError("exchanging the code at "+f.c.TokenURL, err, "")
	}
	if err := f.c.loginToken(ctx, t); err != nil {
		return nil, err
	}
	return t, nil
}

// Redirect answers one request of the browser to the loopback listener,
// given its request target (RFC 9112 §3.2: "/path?query", or the
// absolute form). A request whose state is this flow's gets a short page
// (200, or 400 with the error) and is passed to result, with the code or
// the error of Code; any other request gets 400 (or 404 off the
// redirect's path) and is not passed on, so that a stray request cannot
// end the login. It returns the status, the Content-Type and the body
// of the answer; it knows no HTTP beyond that, the caller serves it.
func (f *AuthCodeFlow) Redirect(target string, result func(code string, err error)) (status int, contentType, body string) {
	const textPlain = "text/plain; charset=utf-8"
	path := "/"
	if u, err := url.Parse(f.RedirectURI); err == nil && u.Path != "" {
		path = u.Path
	}
	u, err := url.ParseRequestURI(target)
	if err != nil || u.Path != path {
		return 404, textPlain, "404 page not found\n"
	}
	code, err := f.Code(target)
	if errors.Is(err, ErrStateMismatch) {
		return 400, textPlain, "handoff: this is not the answer to the login in progress\n"
	}
	status, msg := 200, "handoff received the authorisation; you may close this window."
	if err != nil {
		status, msg = 400, "handoff: "+err.Error()
	}
	result(code, err)
	return status, "text/html; charset=utf-8", fmt.Sprintf("<!DOCTYPE html>\n<title>handoff</title>\n<p>%s</p>\n", html.EscapeString(msg))
}
