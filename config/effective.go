package config

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/handoff-mta/handoff/internal/oauth"
	"github.com/handoff-mta/handoff/relay"
)

// WriteEffective writes the configuration as TOML, every default filled
// in, for "handoff config check". Secrets are hidden: a password is
// written as `password = <hidden>` and an OAuth2 client secret as
// `client_secret = <hidden>` (deliberately not TOML, so the output
// cannot be loaded with a fake secret), password_command is shown as
// configured but never run, and no token file is read. A relay's
// [relay.oauth2] comes after its other keys. Keys that do not apply to a relay's kind
// (starttls on smtps://, TLS on a Unix socket, all but name, url, senders
// and domains on mbox:) are left out, as are credentials that are not
// set. Aliases are those of [aliases] and aliases_file merged.
func (c *Config) WriteEffective(w io.Writer) error {
	var b strings.Builder
	src := c.Path
	if src == "" {
		src = "built-in defaults (no configuration file)"
	}
	fmt.Fprintf(&b, "# handoff effective configuration from %s\n", src)
	b.WriteString("# every default filled in; secrets hidden\n\n")

	kv := func(k, v string) { fmt.Fprintf(&b, "%s = %s\n", k, v) }
	kv("hostname", tomlQuote(c.Hostname))
	kv("domain", tomlQuote(c.Domain))
	kv("sender", tomlQuote(c.Sender))
	kv("rewrite_from", strconv.FormatBool(c.RewriteFrom))
	kv("aliases_file", tomlQuote(c.AliasesFile))

	b.WriteString("\n[aliases]\n")
	for _, name := range slices.Sorted(maps.Keys(c.Aliases)) {
		targets := c.Aliases[name]
		v := tomlArray(targets)
		if len(targets) == 1 {
			v = tomlQuote(targets[0])
		}
		kv(displayKey(name), v)
	}

	q := &c.Queue
	b.WriteString("\n[queue]\n")
	kv("dir", tomlQuote(q.Dir))
	kv("mode", tomlQuote(q.Mode))
	kv("retry_min", tomlQuote(q.RetryMin.String()))
	kv("retry_max", tomlQuote(q.RetryMax.String()))
	kv("max_age", tomlQuote(q.MaxAge.String()))
	kv("delay_warning", tomlQuote(q.DelayWarning.String()))
	kv("connections_per_relay", strconv.Itoa(q.ConnectionsPerRelay))
	kv("messages_per_connection", strconv.Itoa(q.MessagesPerConnection))

	b.WriteString("\n[log]\n")
	kv("syslog", strconv.FormatBool(c.Log.Syslog))
	kv("format", tomlQuote(c.Log.Format))

	b.WriteString("\n[daemon]\n")
	dm := &c.Daemon
	kv("socket", tomlQuote(dm.Socket))
	kv("trusted_users", tomlArray(dm.TrustedUsers))
	kv("sender_policy", tomlQuote(dm.SenderPolicy))
	kv("max_message_size", strconv.FormatInt(dm.MaxMessageSize, 10))
	kv("max_recipients", strconv.Itoa(dm.MaxRecipients))
	kv("submissions_per_minute", strconv.Itoa(dm.SubmissionsPerMinute))
	kv("max_connections", strconv.Itoa(dm.MaxConnections))
	kv("idle_exit", tomlQuote(dm.IdleExit.String()))
	kv("relay_idle", tomlQuote(dm.RelayIdle.String()))
	if len(dm.Senders) > 0 {
		b.WriteString("\n[daemon.senders]\n")
		for _, u := range slices.Sorted(maps.Keys(dm.Senders)) {
			kv(displayKey(u), tomlArray(dm.Senders[u]))
		}
	}

	if len(c.Relays) == 0 {
		b.WriteString("\n# no [[relay]]: mail for local users goes to " + DefaultMailDir + ", other mail fails\n")
	}
	for i := range c.Relays {
		r := &c.Relays[i]
		b.WriteString("\n[[relay]]")
		if r.Line > 0 {
			fmt.Fprintf(&b, " # line %d", r.Line)
		}
		b.WriteString("\n")
		kind := r.kind()
		kv("name", tomlQuote(r.Name))
		kv("url", tomlQuote(r.URL))
		if kind != urlMbox {
			if kind == urlSTARTTLS || kind == urlBad {
				kv("starttls", tomlQuote(r.StartTLS))
			}
			if r.Username != "" {
				kv("username", tomlQuote(r.Username))
			}
			if r.Password != "" {
				kv("password", "<hidden>")
			}
			if r.PasswordFile != "" {
				kv("password_file", tomlQuote(r.PasswordFile))
			}
			if r.PasswordCommand != "" {
				kv("password_command", tomlQuote(r.PasswordCommand))
			}
			if r.PasswordCredential != "" {
				kv("password_credential", tomlQuote(r.PasswordCredential))
			}
			if r.Username != "" {
				kv("auth", tomlArray(r.Auth))
			}
			if kind != urlUnix {
				kv("tls_ca_file", tomlQuote(r.TLSCAFile))
				kv("tls_cert_file", tomlQuote(r.TLSCertFile))
				kv("tls_key_file", tomlQuote(r.TLSKeyFile))
				kv("tls_pin_sha256", tomlArray(r.TLSPinSHA256))
				kv("tls_min_version", tomlQuote(r.TLSMinVersion))
				kv("tls_server_name", tomlQuote(r.TLSServerName))
				kv("tls_insecure", strconv.FormatBool(r.TLSInsecure))
			}
		}
		kv("senders", tomlArray(orStar(r.Senders)))
		kv("domains", tomlArray(orStar(r.Domains)))
		if kind != urlMbox {
			kv("connect_timeout", tomlQuote(r.ConnectTimeout.String()))
			kv("command_timeout", tomlQuote(r.CommandTimeout.String()))
			kv("data_timeout", tomlQuote(r.DataTimeout.String()))
			kv("pipelining", strconv.FormatBool(r.Pipelining))
		}
		if o := r.OAuth2; o != nil && kind != urlMbox {
			b.WriteString("\n[relay.oauth2]\n")
			kv("provider", tomlQuote(o.Provider))
			kv("client_id", tomlQuote(o.ClientID))
			switch {
			case o.ClientSecret != "":
				kv("client_secret", "<hidden>")
			case o.ClientSecretFile != "":
				kv("client_secret_file", tomlQuote(o.ClientSecretFile))
			case o.ClientSecretCredential != "":
				kv("client_secret_credential", tomlQuote(o.ClientSecretCredential))
			}
			if o.Provider == oauth.Microsoft {
				kv("tenant", tomlQuote(o.Tenant))
			}
			kv("scopes", tomlArray(o.Scopes))
			kv("token_url", tomlQuote(o.TokenURL))
			kv("device_auth_url", tomlQuote(o.DeviceAuthURL))
			kv("auth_url", tomlQuote(o.AuthURL))
			kv("token_file", tomlQuote(o.TokenFile))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func orStar(list []string) []string {
	if len(list) == 0 {
		return []string{"*"}
	}
	return list
}

// kind classifies the relay's URL like Parse does, without messages.
func (r *Relay) kind() int {
	if r.IsMbox() {
		return urlMbox
	}
	o, err := relay.ParseURL(r.URL)
	switch {
	case err != nil:
		return urlBad
	case o.Network == "unix":
		return urlUnix
	case o.TLS == relay.ImplicitTLS:
		return urlImplicit
	}
	return urlSTARTTLS
}

// tomlQuote writes s as a TOML basic string.
func tomlQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r) // utf8.RuneError for invalid bytes: U+FFFD
		}
	}
	b.WriteByte('"')
	return b.String()
}

// tomlArray writes a TOML array of strings.
func tomlArray(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = tomlQuote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
