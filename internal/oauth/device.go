package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// DeviceCode is what the person needs to authorise a device grant.
type DeviceCode struct {
	// VerificationURI is where to go; UserCode what to type there.
	VerificationURI, UserCode string
	// VerificationURIComplete, when the provider gives one, carries the
	// code already.
	VerificationURIComplete string
	// Expires is when the code stops working; zero when not said.
	Expires time.Time
}

// Device grant error codes (RFC 8628 §3.5; Microsoft says
// authorization_declined for access_denied).
const (
	errAuthorizationPending = "authorization_pending"
	errSlowDown             = "slow_down"
	errExpiredToken         = "expired_token"
	errAccessDenied         = "access_denied"
	errDeclined             = "authorization_declined"
	deviceGrantType         = "urn:ietf:params:oauth:grant-type:device_code"
)

// defaultInterval is the polling interval when the provider gives none
// (RFC 8628 §3.2); slow_down adds slowDownStep (§3.5).
const (
	defaultInterval = 5 * time.Second
	slowDownStep    = 5 * time.Second
)

// DeviceLogin runs the device authorization grant (RFC 8628): it asks
// DeviceAuthURL for a code, calls show with it (show prints it for the
// person), then polls TokenURL every interval until the person has
// authorised, and writes the token file.
//
// Polling follows §3.5: authorization_pending polls again,
// slow_down adds 5 seconds to the interval for good; expired_token,
// access_denied and any other error end the grant with an *Error, as
// does the code's expiry. A token without a refresh token is an error
// (no offline access among the scopes). ctx bounds the whole grant.
func (c *Client) DeviceLogin(ctx context.Context, show func(*DeviceCode) error) (*Token, error) {
	if c.DeviceAuthURL == "" {
		return nil, errors.New("oauth2: no device authorization endpoint (device_auth_url)")
	}
	cfg, secret, err := c.config("")
	if err != nil {
		return nil, err
	}
	hctx := c.context(ctx)
	da, err := cfg.DeviceAuth(hctx)
	if err != nil {
		hint := ""
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.ErrorCode == "invalid_scope" {
			hint = "the provider does not allow these scopes with the device flow; log in with --auth-code"
		}
		return nil, c.endpointError("asking "+c.DeviceAuthURL+" for a device code", err, hint, secret)
	}
	dc := &DeviceCode{
		VerificationURI:         clean(da.VerificationURI, 500, nil),
		VerificationURIComplete: clean(da.VerificationURIComplete, 500, nil),
		UserCode:                clean(da.UserCode, 100, nil),
	}
	if da.DeviceCode == "" || dc.UserCode == "" || dc.VerificationURI == "" {
		return nil, fmt.Errorf("oauth2: %s answered without device_code, user_code or verification_uri", c.DeviceAuthURL)
	}
	if !da.Expiry.IsZero() {
		dc.Expires = c.now().Add(time.Until(da.Expiry).Round(time.Second))
	}
	if err := show(dc); err != nil {
		return nil, err
	}
	interval := time.Duration(da.Interval) * time.Second
	if da.Interval <= 0 || da.Interval > 3600 {
		interval = defaultInterval
	}
	op := "waiting for the authorisation at " + c.TokenURL
	for {
		if err := c.sleep(ctx, interval); err != nil {
			return nil, err
		}
		if !dc.Expires.IsZero() && !c.now().Before(dc.Expires) {
			return nil, &Error{Op: op, Code: errExpiredToken, Description: "the code was not used in time", Hint: "run the login again"}
		}
		t, err := c.pollDevice(hctx, secret, da.DeviceCode)
		var oe *Error
		if errors.As(err, &oe) {
			oe.Op = op
			switch oe.Code {
			case errAuthorizationPending:
				continue
			case errSlowDown:
				interval += slowDownStep
				continue
			case errExpiredToken:
				oe.Hint = "the code was not used in time; run the login again"
			case errAccessDenied, errDeclined:
				oe.Hint = "the authorisation was refused"
			}
			return nil, oe
		}
		if err != nil {
			return nil, err
		}
		if err := c.loginToken(ctx, t); err != nil {
			return nil, err
		}
		return t, nil
	}
}

// loginToken checks the token of a login and writes the token file.
func (c *Client) loginToken(ctx context.Context, t *Token) error {
	if t.RefreshToken == "" {
		return fmt.Errorf("oauth2: %s gave no refresh token; the scopes must ask for offline access (Microsoft: offline_access)", c.TokenURL)
	}
	if err := t.check(); err != nil {
		return fmt.Errorf("oauth2: the answer of %s: %v", c.TokenURL, err)
	}
	return WriteTokenFile(ctx, c.TokenFile, t)
}

// maxAnswer caps what is read of an answer of the token endpoint.
const maxAnswer = 1 << 20

// tokenAnswer is the JSON of a token endpoint's answer (RFC 6749 §5.1,
// §5.2).
type tokenAnswer struct {
	AccessToken      string          `json:"access_token"`
	TokenType        string          `json:"token_type"`
	RefreshToken     string          `json:"refresh_token"`
	ExpiresIn        json.RawMessage `json:"expires_in"` // a number, or a string at some providers
	Error            string          `json:"error"`
	ErrorDescription string          `json:"error_description"`
}

// pollDevice makes one device access token request (RFC 8628 §3.4). A
// refusal is an *Error (whose Op the caller sets).
func (c *Client) pollDevice(ctx context.Context, secret, deviceCode string) (*Token, error) {
	form := url.Values{
		"grant_type":  {deviceGrantType},
		"device_code": {deviceCode},
		"client_id":   {c.ClientID},
	}
	if secret != "" {
		form.Set("client_secret", secret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("oauth2: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("oauth2: polling %s: %w", c.TokenURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, fmt.Errorf("oauth2: polling %s: %w", c.TokenURL, err)
	}
	var a tokenAnswer
	jerr := json.Unmarshal(body, &a)
	secrets := []string{secret, deviceCode}
	switch {
	case jerr == nil && a.Error != "":
		return nil, &Error{Code: clean(a.Error, 64, secrets), Description: clean(a.ErrorDescription, 300, secrets), Status: resp.StatusCode}
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return nil, &Error{Status: resp.StatusCode}
	case jerr != nil:
		return nil, fmt.Errorf("oauth2: %s answered with something that is not JSON", c.TokenURL)
	case a.AccessToken == "":
		return nil, fmt.Errorf("oauth2: %s answered without access_token", c.TokenURL)
	}
	t := &Token{AccessToken: a.AccessToken, TokenType: a.TokenType, RefreshToken: a.RefreshToken}
	if n := expiresIn(a.ExpiresIn); n > 0 {
		t.Expiry = c.now().Add(time.Duration(n) * time.Second).UTC().Truncate(time.Second)
	}
	return t, nil
}

// expiresIn reads expires_in as a number or a numeric string; 0 when
// absent or bad.
func expiresIn(raw json.RawMessage) int64 {
	s := strings.Trim(string(raw), `"`)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > 10*365*24*3600 {
		return 0
	}
	return n
}
