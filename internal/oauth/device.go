package oauth

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
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
	secret, err := c.secret()
	if err != nil {
		return nil, err
	}
	// The code's lifetime counts from before the request: the provider
	// started it no earlier.
	start := c.now()
	da, err := c.deviceAuth(ctx)
	if err != nil {
		hint := ""
		var oe *Error
		if errors.As(err, &oe) && oe.Code == "invalid_scope" {
			hint = "the provider does not allow these scopes with the device flow; log in with --auth-code"
		}
		return nil, endpointError("asking "+c.DeviceAuthURL+" for a device code", err, hint)
	}
	dc := &DeviceCode{
		VerificationURI:         clean(cmp.Or(da.VerificationURI, da.VerificationURL), 500, nil),
		VerificationURIComplete: clean(da.VerificationURIComplete, 500, nil),
		UserCode:                clean(da.UserCode, 100, nil),
	}
	if da.DeviceCode == "" || dc.UserCode == "" || dc.VerificationURI == "" {
		return nil, fmt.Errorf("oauth2: %s answered without device_code, user_code or verification_uri", c.DeviceAuthURL)
	}
	if n := jsonSeconds(da.ExpiresIn); n > 0 {
		dc.Expires = start.Add(time.Duration(n) * time.Second)
	}
	if err := show(dc); err != nil {
		return nil, err
	}
	interval := time.Duration(jsonSeconds(da.Interval)) * time.Second
	if interval <= 0 || interval > time.Hour {
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
		t, err := c.pollDevice(ctx, secret, da.DeviceCode)
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

// deviceAuthAnswer is the answer of a device authorization endpoint (RFC
// 8628 §3.2, §3.5).
type deviceAuthAnswer struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURL         string `json:"verification_url"` // Google's spelling
	VerificationURIComplete string `json:"verification_uri_complete"`
	// A number, or a numeric string, of seconds.
	ExpiresIn        json.RawMessage `json:"expires_in"`
	Interval         json.RawMessage `json:"interval"`
	Error            string          `json:"error"`
	ErrorDescription string          `json:"error_description"`
}

// deviceAuth makes the device authorization request (RFC 8628 §3.1):
// client_id and scope, no client secret (public clients use this
// grant). A refusal is an *Error.
func (c *Client) deviceAuth(ctx context.Context) (*deviceAuthAnswer, error) {
	form := url.Values{"client_id": {c.ClientID}}
	if len(c.Scopes) > 0 {
		form.Set("scope", strings.Join(c.Scopes, " "))
	}
	resp, err := c.post(ctx, c.DeviceAuthURL, form)
	if err != nil {
		return nil, err
	}
	var a deviceAuthAnswer
	derr := decodeAnswer(resp, &a)
	if e := refusal(resp, a.Error, a.ErrorDescription, derr == nil, nil); e != nil {
		return nil, e
	}
	if derr != nil {
		return nil, derr
	}
	return &a, nil
}

// pollDevice makes one device access token request (RFC 8628 §3.4). A
// refusal is an *Error (whose Op the caller sets).
func (c *Client) pollDevice(ctx context.Context, secret, deviceCode string) (*Token, error) {
	form := url.Values{
		"grant_type":  {deviceGrantType},
		"device_code": {deviceCode},
	}
	t, err := c.tokenRequest(ctx, form, secret, deviceCode)
	var oe *Error
	switch {
	case errors.As(err, &oe):
		return nil, oe
	case errors.Is(err, errNotJSON):
		return nil, fmt.Errorf("oauth2: %s answered with something that is not JSON", c.TokenURL)
	case errors.Is(err, errNoAccessToken):
		return nil, fmt.Errorf("oauth2: %s answered without access_token", c.TokenURL)
	case err != nil:
		return nil, fmt.Errorf("oauth2: polling %s: %w", c.TokenURL, err)
	}
	return t, nil
}
