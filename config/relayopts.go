package config

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/handoff-mta/handoff/internal/oauth"
	"github.com/handoff-mta/handoff/relay"
)

// passwordCommandTimeout bounds a password_command run; a variable for
// tests.
var passwordCommandTimeout = 10 * time.Second

// maxCommandOutput is how much of a password_command's output is kept.
const maxCommandOutput = 64 << 10

// RelayOptions maps r onto the relay package: relay.Options for Dial and
// the credentials for AUTH.
//
//   - Address, Network and LMTP come from relay.ParseURL(r.URL).
//   - TLS: smtps:// is relay.ImplicitTLS; an LMTP Unix socket keeps
//     relay.TLSDefault (no TLS); otherwise starttls "required" (or "") is
//     relay.STARTTLSRequired, "opportunistic" relay.STARTTLSOpportunistic,
//     "none" relay.NoTLS.
//   - TLSConfig: the tls_* keys; tls_min_version "1.3" is TLS 1.3, else
//     TLS 1.2.
//   - LocalName is c.Hostname.
//   - Timeouts: Connect is connect_timeout; Greeting, Hello, StartTLS,
//     Auth, Mail, Rcpt, DataInit, Command and Quit are command_timeout;
//     Rset is command_timeout but at most relay's 20s default (it only
//     probes a reused connection); DataBlock and DataDone are
//     data_timeout. A zero Duration leaves the relay package's default.
//
// Credentials are nil when r has no username. Otherwise the secret is
// resolved now, from password, password_file (its first line, without
// the line ending), password_command (run without a shell, at most 10s,
// the first line of its standard output; its standard error is
// discarded), password_credential (the first line of
// $CREDENTIALS_DIRECTORY/NAME) or [relay.oauth2] (an access token from
// the token file, refreshed at the provider when it expires within two
// minutes: see internal/oauth). It is the Token when auth lists only
// XOAUTH2/OAUTHBEARER (always with oauth2), else the Password;
// Mechanisms is auth. Options.Auth is set to the same credentials, so
// Dial authenticates by itself: do not call Login again.
//
// Call it for each connection: a password_file or a token printed by
// password_command may change, and an access token expires. Errors name
// the relay and the file, credential, command or token endpoint, never
// the secret, a token nor the command's output; an OAuth2 refusal says
// "run: handoff oauth2 login RELAY". r must not be an mbox: relay.
//
// RelayOptions is RelayOptionsContext with context.Background(): a
// token refresh is then bounded by internal/oauth's 30s HTTP timeout
// only.
func (c *Config) RelayOptions(r *Relay) (relay.Options, *relay.Credentials, error) {
	return c.RelayOptionsContext(context.Background(), r)
}

// RelayOptionsContext is RelayOptions with a context for the OAuth2
// token refresh (and for the wait for another process refreshing it).
func (c *Config) RelayOptionsContext(ctx context.Context, r *Relay) (relay.Options, *relay.Credentials, error) {
	fail := func(format string, args ...any) (relay.Options, *relay.Credentials, error) {
		return relay.Options{}, nil, fmt.Errorf("config: relay %s: "+format, append([]any{r.Name}, args...)...)
	}
	if r.IsMbox() {
		return fail("%s delivers to local mailboxes; it has no SMTP options", r.URL)
	}
	o, err := relay.ParseURL(r.URL)
	if err != nil {
		return fail("%w", err)
	}
	if o.TLS != relay.ImplicitTLS && o.Network != "unix" {
		switch r.StartTLS {
		case "", StartTLSRequired:
			o.TLS = relay.STARTTLSRequired
		case StartTLSOpportunistic:
			o.TLS = relay.STARTTLSOpportunistic
		case StartTLSNone:
			o.TLS = relay.NoTLS
		default:
			return fail("starttls %q is not one of required, opportunistic, none", r.StartTLS)
		}
	}
	var minVersion uint16
	switch r.TLSMinVersion {
	case "", "1.2":
		minVersion = tls.VersionTLS12
	case "1.3":
		minVersion = tls.VersionTLS13
	default:
		return fail("tls_min_version %q is not 1.2 or 1.3", r.TLSMinVersion)
	}
	o.TLSConfig = relay.TLSOptions{
		ServerName:         r.TLSServerName,
		CAFile:             r.TLSCAFile,
		CertFile:           r.TLSCertFile,
		KeyFile:            r.TLSKeyFile,
		PinSHA256:          append([]string(nil), r.TLSPinSHA256...),
		MinVersion:         minVersion,
		InsecureSkipVerify: r.TLSInsecure,
	}
	o.LocalName = c.Hostname

	cmd := r.CommandTimeout.Duration
	rset := cmd
	if rset <= 0 || rset > relay.DefaultTimeouts.Rset {
		rset = relay.DefaultTimeouts.Rset
	}
	o.Timeouts = relay.Timeouts{
		Connect:   r.ConnectTimeout.Duration,
		Greeting:  cmd,
		Hello:     cmd,
		StartTLS:  cmd,
		Auth:      cmd,
		Mail:      cmd,
		Rcpt:      cmd,
		DataInit:  cmd,
		DataBlock: r.DataTimeout.Duration,
		DataDone:  r.DataTimeout.Duration,
		Rset:      rset,
		Command:   cmd,
		Quit:      cmd,
	}

	if r.Username == "" {
		return o, nil, nil
	}
	cred := &relay.Credentials{Username: r.Username, Mechanisms: append([]string(nil), r.Auth...)}
	if r.OAuth2 != nil {
		token, err := r.OAuth2Client().AccessToken(ctx)
		if err != nil {
			return fail("%w", err)
		}
		cred.Token = token
		if len(cred.Mechanisms) == 0 {
			cred.Mechanisms = append([]string(nil), oauthMechanisms...)
		}
		o.Auth = cred
		return o, cred, nil
	}
	secret, err := r.secret()
	if err != nil {
		return fail("%w", err)
	}
	if r.oauth() {
		cred.Token = secret
	} else {
		cred.Password = secret
	}
	o.Auth = cred
	return o, cred, nil
}

// fillDefaults gives the endpoints and scopes o leaves empty the
// provider's defaults, and returns those; ok is false for a provider
// without defaults (""), which then changes nothing.
func (o *OAuth2) fillDefaults() (def oauth.Provider, ok bool) {
	def, ok = oauth.Defaults(o.Provider, o.Tenant)
	if !ok {
		return def, false
	}
	o.TokenURL = cmp.Or(o.TokenURL, def.TokenURL)
	o.DeviceAuthURL = cmp.Or(o.DeviceAuthURL, def.DeviceAuthURL)
	o.AuthURL = cmp.Or(o.AuthURL, def.AuthURL)
	if o.Scopes == nil {
		o.Scopes = slices.Clone(def.Scopes)
	}
	return def, true
}

// OAuth2Client returns the OAuth2 client of a relay with [relay.oauth2]
// (nil without), for RelayOptions and "handoff oauth2 login". Its client
// secret is read from client_secret_file or client_secret_credential
// only when a request needs it; keys left empty in a Relay not made by
// Parse take the provider's defaults.
func (r *Relay) OAuth2Client() *oauth.Client {
	if r.OAuth2 == nil {
		return nil
	}
	o := *r.OAuth2
	def, _ := o.fillDefaults()
	c := &oauth.Client{
		Relay:         r.Name,
		ClientID:      o.ClientID,
		Scopes:        slices.Clone(o.Scopes),
		TokenURL:      o.TokenURL,
		DeviceAuthURL: o.DeviceAuthURL,
		AuthURL:       o.AuthURL,
		TokenFile:     o.TokenFile,
		AuthParams:    def.AuthParams,
	}
	if c.TokenFile == "" && r.Name != "" {
		c.TokenFile = defaultTokenDir + "/" + r.Name + ".json"
	}
	switch {
	case o.ClientSecret != "":
		secret := o.ClientSecret
		c.ClientSecret = func() (string, error) { return secret, nil }
	case o.ClientSecretFile != "":
		path := o.ClientSecretFile
		c.ClientSecret = func() (string, error) { return readSecretFile("client_secret_file", path) }
	case o.ClientSecretCredential != "":
		name := o.ClientSecretCredential
		c.ClientSecret = func() (string, error) { return readCredential("client_secret_credential", name) }
	}
	return c
}

// oauth reports whether auth lists only OAuth2 mechanisms.
func (r *Relay) oauth() bool {
	if len(r.Auth) == 0 {
		return false
	}
	for _, m := range r.Auth {
		if !isOAuth(m) {
			return false
		}
	}
	return true
}

func isOAuth(m string) bool {
	m = strings.ToUpper(m)
	return m == "XOAUTH2" || m == "OAUTHBEARER"
}

// secret resolves the relay's password or token.
func (r *Relay) secret() (string, error) {
	switch {
	case r.Password != "":
		return r.Password, nil
	case r.PasswordFile != "":
		return readSecretFile("password_file", r.PasswordFile)
	case r.PasswordCommand != "":
		return runPasswordCommand(r.PasswordCommand)
	case r.PasswordCredential != "":
		return readCredential("password_credential", r.PasswordCredential)
	}
	return "", fmt.Errorf("username %q has no password, password_file, password_command or password_credential", r.Username)
}

// readSecretFile returns the first line of the file at path, the value
// of key.
func readSecretFile(key, path string) (string, error) {
	data, err := readFile(path)
	if err != nil {
		return "", fmt.Errorf("reading %s %s: %w", key, path, pathErr(err))
	}
	line := firstLine(data)
	if line == "" {
		return "", fmt.Errorf("%s %s: the first line is empty", key, path)
	}
	return line, nil
}

// readCredential returns the first line of the systemd credential name
// (key is the key that names it): $CREDENTIALS_DIRECTORY/name.
func readCredential(key, name string) (string, error) {
	dir := os.Getenv("CREDENTIALS_DIRECTORY")
	if dir == "" {
		return "", fmt.Errorf("%s %s: CREDENTIALS_DIRECTORY is not set; systemd sets it for a service with LoadCredential=%s:/path/to/secret", key, strconv.Quote(name), name)
	}
	path := filepath.Join(dir, name)
	data, err := readFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("%s %s: no such credential in CREDENTIALS_DIRECTORY (%s); is LoadCredential=%s:... in the service?", key, strconv.Quote(name), dir, name)
	case err != nil:
		return "", fmt.Errorf("reading %s %s: %w", key, path, pathErr(err))
	}
	line := firstLine(data)
	if line == "" {
		return "", fmt.Errorf("%s %s: the first line of %s is empty", key, strconv.Quote(name), path)
	}
	return line, nil
}

// firstLine returns data up to the first LF, without a CR before it.
func firstLine(data []byte) string {
	line, _, _ := bytes.Cut(data, []byte("\n"))
	return string(bytes.TrimSuffix(line, []byte("\r")))
}

// runPasswordCommand runs command as described on RelayOptions and
// returns the first line of its output.
func runPasswordCommand(command string) (string, error) {
	words, err := splitWords(command)
	if err != nil {
		return "", err
	}
	if len(words) == 0 {
		return "", errors.New("password_command is empty")
	}
	ctx, cancel := context.WithTimeout(context.Background(), passwordCommandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, words[0], words[1:]...)
	out := &capBuffer{max: maxCommandOutput}
	cmd.Stdout = out
	cmd.WaitDelay = time.Second
	err = cmd.Run()
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		return "", fmt.Errorf("password_command %s timed out after %v", strconv.Quote(command), passwordCommandTimeout)
	case err != nil:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("password_command %s failed: %s", strconv.Quote(command), ee.ProcessState)
		}
		return "", fmt.Errorf("password_command %s: %w", strconv.Quote(command), err)
	}
	line := firstLine(out.buf.Bytes())
	if line == "" {
		return "", fmt.Errorf("password_command %s printed nothing on its first line", strconv.Quote(command))
	}
	return line, nil
}

// capBuffer keeps the first max bytes written to it and drops the rest.
type capBuffer struct {
	buf bytes.Buffer
	max int
}

func (b *capBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// splitWords splits a command line into words as a POSIX shell would,
// without expanding anything: blanks separate words; '...' is literal;
// in "..." a backslash escapes \ " $ and `; outside quotes a backslash
// escapes any character. Unquoted | & ; < > ( ) $ ` and a leading ~ are
// errors, since without a shell they would not do what they seem to.
func splitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	end := func() {
		if inWord {
			words = append(words, cur.String())
			cur.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			end()
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated ' quote")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				switch {
				case s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\\\"$`", s[i+1]) >= 0:
					i++
				case s[i] == '$' || s[i] == '`':
					return nil, fmt.Errorf("%q inside \"...\" would be expanded by a shell, but the command runs without one; use '...' or a backslash", s[i])
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, errors.New("unterminated \" quote")
			}
			inWord = true
		case c == '\\':
			if i+1 >= len(s) {
				return nil, errors.New("ends with a lone backslash")
			}
			i++
			cur.WriteByte(s[i])
			inWord = true
		case strings.IndexByte("|&;<>()$`", c) >= 0:
			return nil, fmt.Errorf("%q is a shell operator, but the command runs without a shell; quote it, or run a script (sh -c '...')", c)
		case c == '~' && !inWord:
			return nil, errors.New("~ is not expanded: the command runs without a shell; write the full path")
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	end()
	return words, nil
}
