package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/handoff-mta/handoff/internal/httpc"
)

// Malformed answers of an endpoint, wrapped by the callers with what was
// being done.
var (
	errNotJSON       = errors.New("the answer is not JSON")
	errNoAccessToken = errors.New("the answer has no access_token")
)

// post sends form to endpoint and returns the answer, whatever its
// status. A failure to get one is a *url.Error.
func (c *Client) post(ctx context.Context, endpoint string, form url.Values) (*httpc.Response, error) {
	hc := httpc.Client{TLSConfig: c.TLSConfig, Timeout: HTTPTimeout}
	return hc.PostForm(ctx, endpoint, form.Encode())
}

// tokenAnswer is the answer of a token endpoint (RFC 6749 §5.1, §5.2).
type tokenAnswer struct {
	AccessToken      string          `json:"access_token"`
	TokenType        string          `json:"token_type"`
	RefreshToken     string          `json:"refresh_token"`
	ExpiresIn        json.RawMessage `json:"expires_in"` // a number, or a string at some providers
	Error            string          `json:"error"`
	ErrorDescription string          `json:"error_description"`
}

// decodeAnswer parses an answer's body into v, a struct of JSON fields:
// as JSON, or, when the answer says it is a form or plain text, as a
// form (GitHub's token endpoint answers so unless asked for JSON),
// whose values go to the fields of the same JSON names as JSON strings.
func decodeAnswer(resp *httpc.Response, v any) error {
	mt, _, _ := strings.Cut(resp.Header.Get("Content-Type"), ";")
	switch strings.ToLower(strings.TrimSpace(mt)) {
	case "application/x-www-form-urlencoded", "text/plain":
		vals, err := url.ParseQuery(string(resp.Body))
		if err != nil {
			return errNotJSON
		}
		obj := make(map[string]string, len(vals))
		for k := range vals {
			obj[k] = vals.Get(k)
		}
		// Re-encoded as JSON so that one set of struct tags serves
		// both; every field is a string or a json.RawMessage.
		data, err := json.Marshal(obj)
		if err != nil {
			return errNotJSON
		}
		if json.Unmarshal(data, v) != nil {
			return errNotJSON
		}
		return nil
	}
	if json.Unmarshal(resp.Body, v) != nil {
		return errNotJSON
	}
	return nil
}

// refusal returns the *Error of an answer that is an OAuth error (its
// error field is set, whatever the status: some providers answer 200) or
// has an error status; nil otherwise. The code and the description are
// cleaned of secrets. The caller sets Op and Hint.
func refusal(resp *httpc.Response, code, description string, decoded bool, secrets []string) *Error {
	ok := resp.StatusCode >= 200 && resp.StatusCode <= 299
	if decoded && code != "" {
		return &Error{Code: clean(code, 64, secrets), Description: clean(description, 300, secrets), Status: resp.StatusCode}
	}
	if !ok {
		return &Error{Status: resp.StatusCode}
	}
	return nil
}

// tokenRequest posts form, with the client's credentials in it
// (client_id, and client_secret unless secret is ""), to the token
// endpoint and returns the token of the answer, its expiry taken from
// expires_in on the client's clock.
//
// Errors: an *Error for a refusal, whose Op the caller sets (secret and
// secrets are hidden in it); a *url.Error when there is no answer;
// errNotJSON or errNoAccessToken for an answer that is not a token.
func (c *Client) tokenRequest(ctx context.Context, form url.Values, secret string, secrets ...string) (*Token, error) {
	if c.ClientID != "" {
		form.Set("client_id", c.ClientID)
	}
	if secret != "" {
		form.Set("client_secret", secret)
	}
	resp, err := c.post(ctx, c.TokenURL, form)
	if err != nil {
		return nil, err
	}
	var a tokenAnswer
	derr := decodeAnswer(resp, &a)
	if e := refusal(resp, a.Error, a.ErrorDescription, derr == nil, append(secrets, secret)); e != nil {
		return nil, e
	}
	switch {
	case derr != nil:
		return nil, derr
	case a.AccessToken == "":
		return nil, errNoAccessToken
	}
	t := &Token{AccessToken: a.AccessToken, TokenType: a.TokenType, RefreshToken: a.RefreshToken}
	if n := jsonSeconds(a.ExpiresIn); n > 0 {
		t.Expiry = c.now().Add(time.Duration(n) * time.Second).UTC().Truncate(time.Second)
	}
	return t, nil
}

// jsonSeconds reads a number of seconds given as a JSON number or a
// numeric string; 0 when absent or bad.
func jsonSeconds(raw json.RawMessage) int64 {
	s := strings.Trim(string(raw), `"`)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > 10*365*24*3600 {
		return 0
	}
	return n
}
