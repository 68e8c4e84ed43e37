// Package oauth keeps the OAuth2 access tokens of handoff's relays fresh,
// so that a relay such as Gmail or Microsoft 365, which takes XOAUTH2 or
// OAUTHBEARER with an access token that lives an hour, needs no helper
// script (password_command) and no cron job.
//
// It exists because the long-lived secret, the refresh token, must be
// handled like the queue's files (one owner, mode 0600, opened with
// O_NOFOLLOW, written atomically) and because several handoff processes
// (a queue run, a few sendmail calls) may find the access token expired
// at the same moment: without coordination each would refresh, and a
// provider that rotates refresh tokens would invalidate all but one.
// The requests are made by internal/httpc, a small HTTP/1.1 client, not
// by net/http (see there why).
//
// # The token file
//
// One JSON object per relay (TokenFile; DecodeToken reads it):
//
//	{"access_token": "...", "token_type": "Bearer",
//	 "refresh_token": "...", "expiry": "2026-11-28T23:35:49Z"}
//
// It must be a regular file owned by the user running handoff with no
// permission bits for group or others; anything else is refused with
// ErrUnsafe, before a byte is read.
//
// # Getting an access token (Client.AccessToken)
//
//  1. Read the token file. If its access token expires more than
//     MinValidity (2 minutes) from now, return it: no lock, no HTTP.
//  2. Otherwise take an exclusive flock(2) on TokenFile+".lock" and read
//     the file again: another process may have refreshed it while this
//     one waited, and then its token is returned.
//  3. Otherwise refresh (RFC 6749 §6: grant_type=refresh_token) at
//     TokenURL, and replace the file atomically (temporary file, fsync,
//     rename, fsync of the directory) with the new access token, its
//     expiry, and the new refresh token when the server rotated it (else
//     the old one). Then release the lock.
//
// # Logging in
//
// The refresh token comes from a one-time authorisation by a person
// ("handoff oauth2 login"), by one of two grants:
//
//   - the device authorization grant (RFC 8628, Client.DeviceLogin): the
//     person opens a URL on any device and types a short code; handoff
//     polls the token endpoint, honouring interval, slow_down,
//     authorization_pending, expired_token and access_denied;
//   - the authorization code grant with PKCE (RFC 7636) and a loopback
//     redirect (RFC 8252 §7.3, Client.StartAuthCode): the person opens a
//     URL, the provider redirects the browser to http://127.0.0.1:PORT/
//     with a code, which handoff takes from its listener or from the
//     pasted address, and exchanges.
//
// Google allows https://mail.google.com/ only with the second (its device
// flow takes a short list of scopes, not Gmail's); Microsoft allows both.
//
// # Errors
//
// A refusal by the provider is an *Error: the OAuth error code and
// description on one line, and for a refused refresh the hint to log in
// again. No message ever contains a token or the client secret; a
// description that echoes one has it replaced by <hidden>. Every request
// is bounded by HTTPTimeout (30s) and by the caller's context.
//
// Limitations: one token file per relay (several relays may share one);
// a token without an expiry is refreshed on every use.
package oauth

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/handoff-mta/handoff/internal/httpc"
)

// ErrClientSecret: the client secret could not be read (wrapped with
// the reason).
var ErrClientSecret = errors.New("oauth2: cannot read the client secret")

// MinValidity is how long a cached access token must still be valid to
// be used without a refresh: enough for a connection, AUTH included.
const MinValidity = 2 * time.Minute

// HTTPTimeout bounds each request to the provider.
const HTTPTimeout = 30 * time.Second

// Client is one relay's OAuth2 client registration and token file.
type Client struct {
	// Relay names the relay in messages and in the hint
	// "run: handoff oauth2 login RELAY".
	Relay string
	// ClientID is the application's client_id at the provider.
	ClientID string
	// ClientSecret returns the client secret; nil for a public client,
	// which sends none. Called only when a request is made.
	ClientSecret func() (string, error)
	// Scopes are requested at login.
	Scopes []string
	// TokenURL is the token endpoint; DeviceAuthURL the device
	// authorization endpoint (RFC 8628); AuthURL the authorization
	// endpoint of the code grant.
	TokenURL, DeviceAuthURL, AuthURL string
	// AuthParams are extra parameters of the authorization request
	// (Google: access_type=offline, prompt=consent).
	AuthParams map[string]string
	// TokenFile is the path of the token file; its lock is
	// TokenFile+".lock".
	TokenFile string

	// TLSConfig, when set, replaces the TLS configuration of the
	// requests to https endpoints (tests: one that trusts a test
	// server); nil: the system's roots, TLS 1.2 or later.
	TLSConfig *tls.Config
	// Now is the clock; nil: time.Now.
	Now func() time.Time
	// Sleep waits d or until ctx is done (then returning its error),
	// between the polls of the device grant; nil: a timer.
	Sleep func(ctx context.Context, d time.Duration) error
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Client) sleep(ctx context.Context, d time.Duration) error {
	if c.Sleep != nil {
		return c.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// secret returns the client secret, "" for a public client.
func (c *Client) secret() (string, error) {
	if c.ClientSecret == nil {
		return "", nil
	}
	s, err := c.ClientSecret()
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrClientSecret, err)
	}
	return s, nil
}

// fresh reports whether t's access token may be used now.
func (c *Client) fresh(t *Token) bool {
	return t.AccessToken != "" && !t.Expiry.IsZero() && t.Expiry.Sub(c.now()) > MinValidity
}

// loginHint is the advice for a token that cannot be refreshed.
func (c *Client) loginHint() string {
	return "run: handoff oauth2 login " + c.Relay
}

// staleHook, when set, runs when AccessToken has found the token stale,
// before it waits for the lock (tests).
var staleHook func()

// AccessToken returns an access token valid for at least MinValidity,
// from the token file or, when that one is about to expire, refreshed
// (see the package documentation for the algorithm and the lock).
//
// Errors: ErrNoToken (wrapped) when the token file does not exist;
// ErrUnsafe (wrapped) when it has the wrong owner, mode or type; an
// *Error when the provider refuses the refresh (invalid_grant: the
// person must log in again); a network error or ctx's error; an error
// from writing the file. None contains a token or the client secret.
func (c *Client) AccessToken(ctx context.Context) (string, error) {
	t, err := c.load()
	if err != nil {
		return "", err
	}
	if c.fresh(t) {
		return t.AccessToken, nil
	}
	if staleHook != nil {
		staleHook()
	}
	unlock, err := lockFile(ctx, c.TokenFile+".lock")
	if err != nil {
		return "", err
	}
	defer unlock()
	if t, err = c.load(); err != nil {
		return "", err
	}
	if c.fresh(t) {
		return t.AccessToken, nil // refreshed by another process
	}
	nt, err := c.refresh(ctx, t)
	if err != nil {
		return "", err
	}
	if err := writeTokenFile(c.TokenFile, nt); err != nil {
		return "", err
	}
	return nt.AccessToken, nil
}

// load reads the token file, adding the login hint to a missing file.
func (c *Client) load() (*Token, error) {
	t, err := ReadTokenFile(c.TokenFile)
	if errors.Is(err, ErrNoToken) {
		return nil, fmt.Errorf("%w; %s", err, c.loginHint())
	}
	if errors.Is(err, ErrBadToken) {
		return nil, fmt.Errorf("%w; %s", err, c.loginHint())
	}
	return t, err
}

// refresh runs the refresh-token grant (RFC 6749 §6). A new refresh
// token in the answer replaces the old one (rotation); without one the
// old one stays.
func (c *Client) refresh(ctx context.Context, old *Token) (*Token, error) {
	secret, err := c.secret()
	if err != nil {
		return nil, err
	}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {old.RefreshToken}}
	nt, err := c.tokenRequest(ctx, form, secret, old.RefreshToken, old.AccessToken)
	if err != nil {
		return nil, endpointError("refreshing the access token at "+c.TokenURL, err, c.loginHint())
	}
	if nt.RefreshToken == "" {
		nt.RefreshToken = old.RefreshToken
	}
	if err := nt.check(); err != nil {
		return nil, fmt.Errorf("oauth2: the answer of %s: %v", c.TokenURL, err)
	}
	return nt, nil
}

// Error is a refusal by the provider: an OAuth2 error response (RFC 6749
// §5.2, RFC 8628 §3.5), or an HTTP error status without one.
type Error struct {
	// Op says what was being done, with the endpoint:
	// "refreshing the access token at https://...".
	Op string
	// Code is the OAuth error code ("invalid_grant"); "" when the
	// answer had none.
	Code string
	// Description is error_description, cleaned of control characters
	// and secrets and shortened.
	Description string
	// Status is the HTTP status code.
	Status int
	// Hint is advice for the reader ("run: handoff oauth2 login gmail"),
	// or "".
	Hint string
}

// Error returns one line: "oauth2: OP: CODE: DESCRIPTION; HINT".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("oauth2: ")
	b.WriteString(e.Op)
	b.WriteString(": ")
	switch {
	case e.Code != "":
		b.WriteString(e.Code)
		if e.Description != "" {
			b.WriteString(": ")
			b.WriteString(e.Description)
		}
	default:
		fmt.Fprintf(&b, "HTTP status %d %s", e.Status, httpc.StatusText(e.Status))
	}
	if e.Hint != "" {
		b.WriteString("; ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

// Temporary reports a refusal that may go away by itself: an HTTP 5xx or
// 429 without an OAuth error code, or temporarily_unavailable.
func (e *Error) Temporary() bool {
	if e.Code == "temporarily_unavailable" || e.Code == "server_error" {
		return true
	}
	return e.Code == "" && (e.Status >= 500 || e.Status == 429)
}

// endpointError names op in err: an *Error gets it as its Op, with hint
// unless the refusal is temporary; another error (the network, a
// malformed answer) is wrapped.
func endpointError(op string, err error, hint string) error {
	var e *Error
	if errors.As(err, &e) {
		e.Op = op
		e.Hint = hint
		if e.Temporary() {
			e.Hint = ""
		}
		return e
	}
	// Neither httpc's errors nor tokenRequest's quote a request or an
	// answer.
	return fmt.Errorf("oauth2: %s: %w", op, err)
}

// clean makes s fit for a one-line message: secrets replaced by
// <hidden>, control characters and invalid UTF-8 dropped, at most max
// bytes.
func clean(s string, max int, secrets []string) string {
	for _, sec := range secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, "<hidden>")
		}
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == utf8.RuneError, r < 0x20, r == 0x7f, r >= 0x80 && r < 0xa0:
			if r == '\n' || r == '\t' || r == '\r' {
				b.WriteByte(' ')
			}
			continue
		}
		if b.Len()+utf8.RuneLen(r) > max {
			b.WriteString("...")
			break
		}
		b.WriteRune(r)
	}
	return strings.TrimSpace(b.String())
}
