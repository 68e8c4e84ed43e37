package config

import (
	"crypto/tls"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/handoff-mta/handoff/relay"
)

// relayFrom parses one [[relay]] table (and hostname) and returns the
// config and its relay.
func relayFrom(t *testing.T, body string) (*Config, *Relay) {
	t.Helper()
	c, err := Parse([]byte("hostname = \"client.example.com\"\n[[relay]]\n"+body), "h.toml")
	if err != nil {
		t.Fatal(err)
	}
	return c, &c.Relays[0]
}

func TestRelayOptionsURLKinds(t *testing.T) {
	cases := []struct {
		body    string
		address string
		network string
		lmtp    bool
		tls     relay.TLSMode
	}{
		{`url = "smtp://mail.example.com"`, "mail.example.com", "", false, relay.STARTTLSRequired},
		{`url = "smtp://mail.example.com:2525"` + "\nstarttls = \"opportunistic\"", "mail.example.com:2525", "", false, relay.STARTTLSOpportunistic},
		{`url = "smtp://127.0.0.1"` + "\nstarttls = \"none\"", "127.0.0.1", "", false, relay.NoTLS},
		{`url = "submission://mail.example.com"`, "mail.example.com:587", "", false, relay.STARTTLSRequired},
		{`url = "smtps://smtp.example.com"`, "smtp.example.com", "", false, relay.ImplicitTLS},
		{`url = "smtps://[2001:db8::1]:4650"`, "[2001:db8::1]:4650", "", false, relay.ImplicitTLS},
		{`url = "lmtp://mda.example.com:24"`, "mda.example.com:24", "", true, relay.STARTTLSRequired},
		{`url = "lmtp://mda.example.com"` + "\nstarttls = \"none\"", "mda.example.com", "", true, relay.NoTLS},
		{`url = "lmtp:///run/dovecot/lmtp"`, "/run/dovecot/lmtp", "unix", true, relay.TLSDefault},
	}
	for _, tc := range cases {
		c, r := relayFrom(t, tc.body)
		o, cred, err := c.RelayOptions(r)
		if err != nil {
			t.Errorf("%s: %v", tc.body, err)
			continue
		}
		if o.Address != tc.address || o.Network != tc.network || o.LMTP != tc.lmtp || o.TLS != tc.tls {
			t.Errorf("%s: address %q network %q lmtp %v tls %v", tc.body, o.Address, o.Network, o.LMTP, o.TLS)
		}
		if o.LocalName != "client.example.com" {
			t.Errorf("%s: LocalName %q", tc.body, o.LocalName)
		}
		if cred != nil || o.Auth != nil {
			t.Errorf("%s: credentials without a username: %+v", tc.body, cred)
		}
		if o.TLSConfig.MinVersion != tls.VersionTLS12 {
			t.Errorf("%s: MinVersion %x", tc.body, o.TLSConfig.MinVersion)
		}
	}
}

func TestRelayOptionsMboxIsAnError(t *testing.T) {
	c, r := relayFrom(t, `url = "mbox:"`)
	if !r.IsMbox() || r.MboxDir() != "/var/mail" {
		t.Errorf("IsMbox %v MboxDir %q", r.IsMbox(), r.MboxDir())
	}
	if _, _, err := c.RelayOptions(r); err == nil {
		t.Error("RelayOptions(mbox:) did not fail")
	}
	_, r = relayFrom(t, `url = "mbox:/srv/mail/"`)
	if r.MboxDir() != "/srv/mail" {
		t.Errorf("MboxDir = %q", r.MboxDir())
	}
	if (&Relay{URL: "smtp://x"}).MboxDir() != "" {
		t.Error("MboxDir of an SMTP relay")
	}
}

func TestRelayOptionsTLSAndTimeouts(t *testing.T) {
	c, r := relayFrom(t, `url = "smtps://smtp.example.com"
tls_ca_file = "/etc/handoff/ca.pem"
tls_cert_file = "/etc/handoff/c.pem"
tls_key_file = "/etc/handoff/c.key"
tls_pin_sha256 = ["47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="]
tls_min_version = "1.3"
tls_server_name = "mx.example.com"
tls_insecure = true
connect_timeout = "7s"
command_timeout = "2m"
data_timeout = "15m"
`)
	o, _, err := c.RelayOptions(r)
	if err != nil {
		t.Fatal(err)
	}
	wantTLS := relay.TLSOptions{
		ServerName:         "mx.example.com",
		CAFile:             "/etc/handoff/ca.pem",
		CertFile:           "/etc/handoff/c.pem",
		KeyFile:            "/etc/handoff/c.key",
		PinSHA256:          []string{"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="},
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true,
	}
	if !reflect.DeepEqual(o.TLSConfig, wantTLS) {
		t.Errorf("TLSConfig = %+v\nwant %+v", o.TLSConfig, wantTLS)
	}
	m2 := 2 * time.Minute
	wantTO := relay.Timeouts{
		Connect: 7 * time.Second, Greeting: m2, Hello: m2, StartTLS: m2, Auth: m2, Mail: m2, Rcpt: m2,
		DataInit: m2, DataBlock: 15 * time.Minute, DataDone: 15 * time.Minute, Rset: 20 * time.Second,
		Command: m2, Quit: m2,
	}
	if o.Timeouts != wantTO {
		t.Errorf("Timeouts = %+v\nwant %+v", o.Timeouts, wantTO)
	}

	// Defaults; a short command_timeout also shortens RSET.
	c, r = relayFrom(t, "url = \"smtp://mail.example.com\"\ncommand_timeout = \"10s\"\n")
	o, _, err = c.RelayOptions(r)
	if err != nil {
		t.Fatal(err)
	}
	if o.Timeouts.Connect != 30*time.Second || o.Timeouts.Mail != 10*time.Second || o.Timeouts.Rset != 10*time.Second ||
		o.Timeouts.DataDone != 10*time.Minute {
		t.Errorf("Timeouts = %+v", o.Timeouts)
	}
	// A hand-built relay with zero durations leaves relay's defaults.
	o, _, err = c.RelayOptions(&Relay{Name: "x", URL: "smtp://mail.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if o.Timeouts != (relay.Timeouts{Rset: 20 * time.Second}) || o.TLS != relay.STARTTLSRequired {
		t.Errorf("zero relay: %+v %v", o.Timeouts, o.TLS)
	}
}

func TestRelayOptionsBadHandBuiltRelay(t *testing.T) {
	c := Default()
	for _, r := range []*Relay{
		{Name: "a", URL: "gopher://x"},
		{Name: "b", URL: "smtp://x", StartTLS: "maybe"},
		{Name: "c", URL: "smtp://x", TLSMinVersion: "1.0"},
		{Name: "d", URL: "smtp://x", Username: "u"},
	} {
		if _, _, err := c.RelayOptions(r); err == nil || !strings.Contains(err.Error(), "relay "+r.Name) {
			t.Errorf("%+v: err = %v", r, err)
		}
	}
}

func TestCredentialsPassword(t *testing.T) {
	c, r := relayFrom(t, "url = \"smtps://smtp.example.com\"\nusername = \"app\"\npassword = \"s3cret\"\nauth = [\"plain\", \"login\"]\n")
	o, cred, err := c.RelayOptions(r)
	if err != nil {
		t.Fatal(err)
	}
	want := &relay.Credentials{Username: "app", Password: "s3cret", Mechanisms: []string{"PLAIN", "LOGIN"}}
	if !reflect.DeepEqual(cred, want) || o.Auth != cred {
		t.Errorf("cred = %+v, Options.Auth = %p (cred %p)", cred, o.Auth, cred)
	}
}

func TestCredentialsPasswordFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct{ content, want string }{
		{"s3cret\n", "s3cret"},
		{"s3cret", "s3cret"},
		{"s3cret\r\nsecond line\n", "s3cret"},
		{" spaced pass \n", " spaced pass "},
	} {
		p := write("secret", tc.content)
		c, r := relayFrom(t, "url = \"smtps://smtp.example.com\"\nusername = \"app\"\npassword_file = \""+p+"\"\n")
		_, cred, err := c.RelayOptions(r)
		if err != nil {
			t.Fatal(err)
		}
		if cred.Password != tc.want || cred.Token != "" {
			t.Errorf("file %q: password %q, token %q", tc.content, cred.Password, cred.Token)
		}
	}

	// Errors name the file and never hold its content.
	empty := write("empty", "\nsecret-on-line-two\n")
	missing := filepath.Join(dir, "missing")
	for _, p := range []string{empty, missing, dir} {
		c, r := relayFrom(t, "url = \"smtps://smtp.example.com\"\nusername = \"app\"\npassword_file = \""+p+"\"\n")
		_, _, err := c.RelayOptions(r)
		if err == nil {
			t.Errorf("%s: no error", p)
			continue
		}
		if !strings.Contains(err.Error(), p) || strings.Contains(err.Error(), "secret-on-line-two") {
			t.Errorf("%s: err = %v", p, err)
		}
	}
}

func needSh(t *testing.T) {
	t.Helper()
	for _, p := range []string{"sh", "sleep"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("no %s: %v", p, err)
		}
	}
}

func TestCredentialsPasswordCommand(t *testing.T) {
	needSh(t)
	c, r := relayFrom(t, `url = "submission://smtp.example.com"
username = "app@example.com"
password_command = "sh -c 'printf \"%s\\n\" \"tok en\"; echo second-line'"
`)
	_, cred, err := c.RelayOptions(r)
	if err != nil {
		t.Fatal(err)
	}
	if cred.Password != "tok en" || cred.Token != "" {
		t.Errorf("cred = %+v", cred)
	}

	// With only OAuth mechanisms the output is a token.
	c, r = relayFrom(t, `url = "submission://smtp.example.com"
username = "app@example.com"
password_command = "sh -c 'echo ya29.token'"
auth = ["XOAUTH2", "oauthbearer"]
`)
	_, cred, err = c.RelayOptions(r)
	if err != nil {
		t.Fatal(err)
	}
	want := &relay.Credentials{Username: "app@example.com", Token: "ya29.token", Mechanisms: []string{"XOAUTH2", "OAUTHBEARER"}}
	if !reflect.DeepEqual(cred, want) {
		t.Errorf("cred = %+v, want %+v", cred, want)
	}
}

func TestCredentialsPasswordCommandFailures(t *testing.T) {
	needSh(t)
	defer func(d time.Duration) { passwordCommandTimeout = d }(passwordCommandTimeout)
	passwordCommandTimeout = 300 * time.Millisecond
	const leaked = "LEAKED-SECRET"
	cases := []struct{ command, want string }{
		{"sh -c 'echo " + leaked + "; echo " + leaked + " >&2; exit 3'", "exit status 3"},
		{"sh -c 'echo " + leaked + "; exec sleep 10'", "timed out after 300ms"},
		// A grandchild keeping stdout open does not hang it either.
		{"sh -c 'echo " + leaked + "; sleep 10 & wait'", "timed out after 300ms"},
		{"sh -c 'echo; echo " + leaked + "'", "printed nothing on its first line"},
		{"sh -c 'true'", "printed nothing on its first line"},
		{"/nonexistent/oauth2-helper --flag", "no such file or directory"},
		{"sh -c 'kill -9 $$'", "signal: killed"},
	}
	for _, tc := range cases {
		r := &Relay{Name: "r", URL: "smtps://smtp.example.com", Username: "app", PasswordCommand: tc.command}
		start := time.Now()
		_, _, err := Default().RelayOptions(r)
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("%s: took %v", tc.command, took)
		}
		if err == nil {
			t.Errorf("%s: no error", tc.command)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, tc.want) || !strings.Contains(msg, "relay r") {
			t.Errorf("%s: err = %v, want %q", tc.command, err, tc.want)
		}
		if strings.Count(msg, leaked) > strings.Count(tc.command, leaked) {
			t.Errorf("%s: the command's output is in the error: %v", tc.command, err)
		}
	}
}

func TestSplitWords(t *testing.T) {
	good := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"   ", nil},
		{"pass show mail", []string{"pass", "show", "mail"}},
		{"  a\t b\nc  ", []string{"a", "b", "c"}},
		{`gpg --decrypt '/etc/handoff/my secret.gpg'`, []string{"gpg", "--decrypt", "/etc/handoff/my secret.gpg"}},
		{`a "b c" d`, []string{"a", "b c", "d"}},
		{`a "say \"hi\" \\ \$x" b`, []string{"a", `say "hi" \ $x`, "b"}},
		{`a "back\slash"`, []string{"a", `back\slash`}},
		{`a\ b c`, []string{"a b", "c"}},
		{`pre'quoted'post "x"'y'`, []string{"prequotedpost", "xy"}},
		{`''`, []string{""}},
		{`a '' b`, []string{"a", "", "b"}},
		{`sh -c 'echo $TOKEN | head -1'`, []string{"sh", "-c", "echo $TOKEN | head -1"}},
		{`a~b c=~d \~e`, []string{"a~b", "c=~d", "~e"}},
		{`printf '%s\n' x`, []string{"printf", `%s\n`, "x"}},
	}
	for _, tc := range good {
		got, err := splitWords(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("splitWords(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{`'open`, `"open`, `trailing\`, `a | b`, `a;b`, `a && b`, `a > f`, `a < f`, `$(x)`, "`x`", `echo $HOME`,
		`"$HOME"`, "\"`x`\"", `~/x`, `a (b)`} {
		if got, err := splitWords(in); err == nil {
			t.Errorf("splitWords(%q) = %q, want an error", in, got)
		}
	}
}
