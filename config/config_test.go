package config

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files (testdata/bad/*/want.txt, testdata/effective.golden)")

// TestMain keeps the tests away from the machine's own name, DNS,
// /etc/mailname and /etc/handoff.
func TestMain(m *testing.M) {
	flag.Parse()
	osHostname = func() (string, error) { return "testhost", nil }
	lookupCNAME = func(context.Context, string) (string, error) { return "testhost.example.test.", nil }
	mailnamePath = "/nonexistent/handoff-test/mailname"
	defaultPath = "/nonexistent/handoff-test/handoff.toml"
	os.Exit(m.Run())
}

// wantDefaults is the built-in configuration under TestMain's hooks.
func wantDefaults() *Config {
	return &Config{
		Hostname: "testhost.example.test",
		Domain:   "testhost.example.test",
		Queue: Queue{
			Dir:                   "/var/spool/handoff",
			Mode:                  "fallback",
			RetryMin:              Duration{5 * time.Minute},
			RetryMax:              Duration{time.Hour},
			MaxAge:                Duration{120 * time.Hour},
			DelayWarning:          Duration{4 * time.Hour},
			ConnectionsPerRelay:   2,
			MessagesPerConnection: 100,
		},
		Log: Log{Syslog: true, Format: "text"},
		Daemon: Daemon{
			Socket:               "/run/handoff/submit.sock",
			TrustedUsers:         []string{},
			SenderPolicy:         "refuse",
			Senders:              map[string][]string{},
			MaxMessageSize:       50 << 20,
			MaxRecipients:        1000,
			SubmissionsPerMinute: 120,
			MaxConnections:       64,
			IdleExit:             Duration{5 * time.Minute},
			RelayIdle:            Duration{30 * time.Second},
		},
	}
}

func TestDefault(t *testing.T) {
	if got, want := Default(), wantDefaults(); !reflect.DeepEqual(got, want) {
		t.Errorf("Default() =\n%+v\nwant\n%+v", got, want)
	}
}

// An empty file is the defaults, with Path set and an empty alias map.
func TestParseEmptyIsDefault(t *testing.T) {
	c, err := Parse(nil, "handoff.toml")
	if err != nil {
		t.Fatal(err)
	}
	want := wantDefaults()
	want.Path = "handoff.toml"
	want.Aliases = map[string][]string{}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Parse(empty) =\n%+v\nwant\n%+v", c, want)
	}
}

func TestLoadNoFile(t *testing.T) {
	c, err := Load("")
	if err != nil {
		t.Fatalf("Load(\"\") with no %s: %v", defaultPath, err)
	}
	if !reflect.DeepEqual(c, wantDefaults()) {
		t.Errorf("Load(\"\") = %+v, want the defaults", c)
	}
	if len(c.Relays) != 0 || c.Path != "" {
		t.Errorf("built-in config has relays %v, path %q", c.Relays, c.Path)
	}
}

func TestLoadMissingExplicitFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "handoff.toml")
	_, err := Load(p)
	if err == nil {
		t.Fatal("Load of a missing explicit file: no error")
	}
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), p) {
		t.Errorf("err = %v; want fs.ErrNotExist naming %s", err, p)
	}
}

func TestLoadDefaultPath(t *testing.T) {
	dir := t.TempDir()
	old := defaultPath
	defaultPath = filepath.Join(dir, "handoff.toml")
	defer func() { defaultPath = old }()
	if err := os.WriteFile(defaultPath, []byte("hostname = \"mx.example.org\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if c.Path != defaultPath || c.Hostname != "mx.example.org" || c.Domain != "mx.example.org" {
		t.Errorf("Load(\"\") = path %q hostname %q domain %q", c.Path, c.Hostname, c.Domain)
	}
	// A bad default file is an error, not the defaults.
	if err := os.WriteFile(defaultPath, []byte("hostnme = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var ce *Error
	if _, err := Load(""); !errors.As(err, &ce) || ce.Path != defaultPath {
		t.Errorf("Load(\"\") of a bad file: %v", err)
	}
}

func TestLoadRefusesNonRegularFiles(t *testing.T) {
	if _, err := Load(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("Load(directory) = %v", err)
	}
	if _, err := os.Stat("/dev/zero"); err == nil {
		if _, err := Load("/dev/zero"); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("Load(/dev/zero) = %v", err)
		}
	}
	big := filepath.Join(t.TempDir(), "big.toml")
	if err := os.WriteFile(big, bytes.Repeat([]byte("# padding\n"), maxFileSize/10+1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Load(big) = %v", err)
	}
}

// fullConfig parses testdata/full.toml with aliases_file pointing at
// testdata/aliases.
func fullConfig(t *testing.T) *Config {
	t.Helper()
	data, err := os.ReadFile("testdata/full.toml")
	if err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs("testdata/aliases")
	if err != nil {
		t.Fatal(err)
	}
	const line = `aliases_file = "/etc/aliases"`
	if !bytes.Contains(data, []byte(line)) {
		t.Fatalf("full.toml lacks %s", line)
	}
	data = bytes.Replace(data, []byte(line), []byte(`aliases_file = "`+abs+`"`), 1)
	c, err := Parse(data, "full.toml")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestFullExample(t *testing.T) {
	c := fullConfig(t)
	if len(c.Warnings) != 0 {
		t.Errorf("warnings: %q", c.Warnings)
	}
	abs, _ := filepath.Abs("testdata/aliases")
	want := &Config{
		Path:        "full.toml",
		Hostname:    "web1.example.com",
		Domain:      "example.com",
		Sender:      "noreply@example.com",
		RewriteFrom: true,
		AliasesFile: abs,
		Aliases: map[string][]string{
			"postmaster": {"root"},
			"root":       {"ops@example.com"}, // [aliases] wins over the file
			"abuse":      {"root"},
			"www-data":   {"web@example.com", "ops@example.com"},
			"*":          {"ops@example.com"},
		},
		Queue: wantDefaults().Queue,
		Log:   Log{Syslog: true, Format: "text"},
		Daemon: Daemon{
			Socket: "/run/handoff/submit.sock",
		},
	}
	r := func(name, url string, line int, f func(*Relay)) Relay {
		r := defaultRelay()
		r.Name, r.URL, r.Line = name, url, line
		if f != nil {
			f(&r)
		}
		return r
	}
	want.Daemon = Daemon{
		Socket:               "/run/handoff/submit.sock",
		TrustedUsers:         []string{"www-data"},
		SenderPolicy:         "rewrite",
		Senders:              map[string][]string{"deploy": {"ci@example.com", "*@deploy.example.com"}},
		MaxMessageSize:       10485760,
		MaxRecipients:        100,
		SubmissionsPerMinute: 30,
		MaxConnections:       16,
		IdleExit:             Duration{10 * time.Minute},
		RelayIdle:            Duration{time.Minute},
	}
	want.Relays = []Relay{
		r("local", "mbox:", 76, func(r *Relay) { r.Domains = []string{"localhost"} }),
		r("dovecot", "lmtp:///run/dovecot/lmtp", 82, func(r *Relay) { r.Domains = []string{"example.com"} }),
		r("legacy", "smtp://[2001:db8::25]:2525", 88, func(r *Relay) {
			r.StartTLS = "opportunistic"
			r.Username = "legacy"
			r.Password = "correct horse battery staple"
			r.TLSServerName = "legacy.example.org"
			r.Domains = []string{"legacy.example.org", "*.legacy.example.org"}
		}),
		r("primary", "smtps://smtp.example.com:465", 98, func(r *Relay) {
			r.Username = "app@example.com"
			r.PasswordFile = "/etc/handoff/primary.secret"
			r.Auth = []string{"SCRAM-SHA-256", "PLAIN"}
			r.TLSCAFile = "/etc/handoff/ca.pem"
			r.TLSCertFile = "/etc/handoff/client.pem"
			r.TLSKeyFile = "/etc/handoff/client.key"
			r.TLSPinSHA256 = []string{"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="}
			r.TLSMinVersion = "1.3"
			r.TLSServerName = "smtp.example.com"
			r.Senders = []string{"*@example.com"}
			r.Pipelining = false
		}),
		r("backup", "submission://mail.example.net", 138, func(r *Relay) {
			r.Username = "app@example.net"
			r.PasswordCommand = "/usr/local/bin/oauth2-token --account app@example.net"
			r.Auth = []string{"XOAUTH2"}
		}),
	}
	// The relays with the credential keys come last; their lines are
	// found rather than counted, so that keys added above them do not
	// move them.
	fullData, err := os.ReadFile("testdata/full.toml")
	if err != nil {
		t.Fatal(err)
	}
	headerLine := func(name string) int {
		lines := strings.Split(string(fullData), "\n")
		for i, l := range lines {
			if l == `name = "`+name+`"` && i > 0 && lines[i-1] == "[[relay]]" {
				return i
			}
		}
		t.Fatalf("full.toml has no relay %s", name)
		return 0
	}
	want.Relays = append(want.Relays,
		r("vault", "smtps://smtp.example.org", headerLine("vault"), func(r *Relay) {
			r.Username = "app@example.org"
			r.PasswordCredential = "mail-password"
		}),
		r("gmail", "smtps://smtp.gmail.com", headerLine("gmail"), func(r *Relay) {
			r.Username = "me@gmail.com"
			r.Auth = []string{"XOAUTH2", "OAUTHBEARER"}
			r.OAuth2 = &OAuth2{
				Provider:         "google",
				ClientID:         "1234-abcd.apps.googleusercontent.com",
				ClientSecretFile: "/etc/handoff/gmail-client-secret",
				Scopes:           []string{"https://mail.google.com/"},
				TokenURL:         "https://oauth2.googleapis.com/token",
				DeviceAuthURL:    "https://oauth2.googleapis.com/device/code",
				AuthURL:          "https://accounts.google.com/o/oauth2/v2/auth",
				TokenFile:        "/var/lib/handoff/oauth2/gmail.json",
			}
		}),
		r("office", "submission://smtp.office365.com", headerLine("office"), func(r *Relay) {
			r.Username = "me@example.com"
			r.Auth = []string{"XOAUTH2"}
			const base = "https://login.microsoftonline.com/example.onmicrosoft.com/oauth2/v2.0/"
			r.OAuth2 = &OAuth2{
				Provider:               "microsoft",
				ClientID:               "00000000-0000-0000-0000-000000000000",
				ClientSecretCredential: "office-client-secret",
				Tenant:                 "example.onmicrosoft.com",
				Scopes:                 []string{"https://outlook.office.com/SMTP.Send", "offline_access"},
				TokenURL:               base + "token",
				DeviceAuthURL:          base + "devicecode",
				AuthURL:                base + "authorize",
				TokenFile:              "/var/lib/handoff/oauth2/office.json",
			}
		}),
		r("sso", "submission://mail.example.com", headerLine("sso"), func(r *Relay) {
			r.Username = "me@example.com"
			r.Auth = []string{"XOAUTH2", "OAUTHBEARER"}
			r.OAuth2 = &OAuth2{
				ClientID:      "handoff",
				ClientSecret:  "s3cret-client",
				Scopes:        []string{"smtp", "offline_access"},
				TokenURL:      "https://sso.example.com/oauth2/token",
				DeviceAuthURL: "https://sso.example.com/oauth2/device",
				AuthURL:       "https://sso.example.com/oauth2/authorize",
				TokenFile:     "/var/lib/handoff/oauth2/sso.json",
			}
		}),
	)
	if !reflect.DeepEqual(c, want) {
		t.Errorf("full.toml =\n%+v\nwant\n%+v", c, want)
		for i := range min(len(c.Relays), len(want.Relays)) {
			if !reflect.DeepEqual(c.Relays[i], want.Relays[i]) {
				t.Errorf("relay %d =\n%+v\nwant\n%+v", i+1, c.Relays[i], want.Relays[i])
			}
		}
	}
}

// full.toml is the documentation: it must set every key, each after a
// comment, and every key must be documented on the Go structs.
func TestFullExampleHasEveryKey(t *testing.T) {
	data, err := os.ReadFile("testdata/full.toml")
	if err != nil {
		t.Fatal(err)
	}
	kl := scanKeyLines(string(data))
	src, err := os.ReadFile("config.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		for _, k := range tb.keys {
			var p keyPath
			switch tb.name {
			case "":
				p = keyPath{k}
			case "relay":
				p = keyPath{"relay[1]", k}
			default:
				p = keyPath{tb.name, k}
			}
			if tb.name == "" && k == "relay" {
				p = keyPath{"relay[1]"}
			}
			found := kl[p.String()] > 0
			for i := 1; (tb.name == "relay" || tb.name == "relay.oauth2") && !found && i <= 20; i++ {
				rp := keyPath{"relay"}.index(i)
				if tb.name == "relay.oauth2" {
					rp = rp.child("oauth2")
				}
				found = kl[rp.child(k).String()] > 0
			}
			if !found {
				t.Errorf("full.toml does not set %s", p)
			}
			doc := "`" + k + "`"
			switch {
			case tb.name == "" && k == "relay":
				doc = "`[[relay]]`"
			case tb.name == "" && (k == "aliases" || k == "queue" || k == "log" || k == "daemon"):
				doc = "`[" + k + "]`"
			case tb.name == "relay" && k == "oauth2":
				doc = "`[relay.oauth2]`"
			}
			if !bytes.Contains(src, []byte(doc)) {
				t.Errorf("config.go documents no key %s", doc)
			}
		}
	}
	// Each key has a comment at most two lines above it at least once.
	lines := strings.Split(string(data), "\n")
	for _, tb := range tables {
		for _, k := range tb.keys {
			commented := false
			for p, n := range kl {
				if (p == k || strings.HasSuffix(p, "."+k) || strings.HasPrefix(p, k+"[")) && n >= 2 {
					commented = commented || strings.HasPrefix(lines[n-2], "#") || n >= 3 && strings.HasPrefix(lines[n-3], "#")
				}
			}
			if !commented {
				t.Errorf("full.toml: %s has no comment above it", k)
			}
		}
	}
}

// Each testdata/bad/NAME/handoff.toml must fail with exactly
// testdata/bad/NAME/want.txt. Run with -update to rewrite them.
func TestBadConfigs(t *testing.T) {
	dirs, err := filepath.Glob("testdata/bad/*")
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < 15 {
		t.Fatalf("only %d bad-config cases", len(dirs))
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dir, "handoff.toml"))
			if err != nil {
				t.Fatal(err)
			}
			c, err := Parse(data, "handoff.toml")
			if err == nil {
				t.Fatalf("no error; config %+v", c)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %T, want *Error: %v", err, err)
			}
			if c != nil {
				t.Errorf("config returned with an error")
			}
			got := err.Error() + "\n"
			wantFile := filepath.Join(dir, "want.txt")
			if *update {
				if err := os.WriteFile(wantFile, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(wantFile)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
			for _, p := range ce.Problems {
				if p.Line == 0 {
					t.Errorf("problem without a line: %+v", p)
				}
			}
			// Passwords never show.
			for _, secret := range []string{"hunter2", "123456789", "pass\\nword"} {
				if strings.Contains(got, secret) {
					t.Errorf("error shows the password %q", secret)
				}
			}
		})
	}
}

// Problems come sorted by line whatever order they are found in.
func TestErrorSorted(t *testing.T) {
	e := &Error{Path: "h.toml", Problems: []Problem{
		{File: "/etc/aliases", Line: 1, Key: "root", Msg: "m4"},
		{Line: 9, Key: "b", Msg: "m3"},
		{Line: 2, Col: 5, Msg: "m2"},
		{Line: 2, Key: "a", Msg: "m1"},
	}}
	sortProblems(e.Problems)
	want := "h.toml:2: a: m1\nh.toml:2:5: m2\nh.toml:9: b: m3\n/etc/aliases:1: root: m4"
	if got := e.Error(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestWarnings(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("pw\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(secret, 0o644); err != nil {
		t.Fatal(err)
	}
	src := `[queue]
delay_warning = "6d"

[[relay]]
url = "smtps://smtp.example.com"
username = "app"
password_file = "` + secret + `"
tls_insecure = true

[[relay]]
url = "smtp://smtp.example.com"
starttls = "none"
username = "app"
password = "x"
tls_ca_file = "/etc/ssl/ca.pem"
`
	c, err := Parse([]byte(src), "h.toml")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`h.toml:2: queue.delay_warning: 6d is not shorter than max_age (5d): no delay warning will be sent`,
		`h.toml:7: relay[1].password_file: ` + secret + ` is readable by every user (mode 0644); make it readable only by root and handoff (chmod 600 or 640)`,
		`h.toml:8: relay[1].tls_insecure: certificate verification is off and no tls_pin_sha256 is set: anyone on the path can read the mail and the password`,
		`h.toml:12: relay[2].starttls: "none" with username: AUTH is sent only to a loopback address without TLS, so authentication will fail elsewhere`,
		`h.toml:15: relay[2].tls_ca_file: has no effect with starttls = "none"`,
	}
	if !reflect.DeepEqual(c.Warnings, want) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(c.Warnings, "\n"), strings.Join(want, "\n"))
	}
	// 0600 is fine.
	if err := os.Chmod(secret, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = Parse([]byte(src), "h.toml")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range c.Warnings {
		if strings.Contains(w, "readable by every user") {
			t.Errorf("warning for a 0600 file: %s", w)
		}
	}
}

func TestHostnameDefaults(t *testing.T) {
	defer func(h func() (string, error), l func(context.Context, string) (string, error), m string) {
		osHostname, lookupCNAME, mailnamePath = h, l, m
	}(osHostname, lookupCNAME, mailnamePath)
	dir := t.TempDir()
	mailnamePath = filepath.Join(dir, "mailname")
	lookups := 0
	cases := []struct {
		host, cname string
		cnameErr    error
		mailname    string // "" = no file
		wantHost    string
		wantDomain  string
		warn        bool
	}{
		{host: "web1.example.com", wantHost: "web1.example.com", wantDomain: "web1.example.com"},
		{host: "WEB1.Example.COM.", wantHost: "web1.example.com", wantDomain: "web1.example.com"},
		{host: "web1", cname: "web1.example.org.", wantHost: "web1.example.org", wantDomain: "web1.example.org"},
		{host: "web1", cnameErr: errors.New("no such host"), wantHost: "web1", wantDomain: "web1"},
		{host: "web1", cname: "web1", wantHost: "web1", wantDomain: "web1"},
		{host: "web1.example.com", mailname: "example.com\nignored\n", wantHost: "web1.example.com", wantDomain: "example.com"},
		{host: "web1.example.com", mailname: "  \n", wantHost: "web1.example.com", wantDomain: "web1.example.com"},
		{host: "web1.example.com", mailname: "not a domain\n", wantHost: "web1.example.com", wantDomain: "web1.example.com", warn: true},
	}
	for _, tc := range cases {
		osHostname = func() (string, error) { return tc.host, nil }
		lookupCNAME = func(_ context.Context, h string) (string, error) {
			lookups++
			return tc.cname, tc.cnameErr
		}
		os.Remove(mailnamePath)
		if tc.mailname != "" {
			if err := os.WriteFile(mailnamePath, []byte(tc.mailname), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		d := Default()
		if d.Hostname != tc.wantHost || d.Domain != tc.wantDomain {
			t.Errorf("%+v: Default() hostname %q domain %q", tc, d.Hostname, d.Domain)
		}
		c, err := Parse(nil, "h.toml")
		if err != nil {
			t.Fatal(err)
		}
		if c.Hostname != tc.wantHost || c.Domain != tc.wantDomain || (len(c.Warnings) > 0) != tc.warn {
			t.Errorf("%+v: Parse hostname %q domain %q warnings %q", tc, c.Hostname, c.Domain, c.Warnings)
		}
	}
	// Set in the file: no look-up at all.
	lookups = 0
	c, err := Parse([]byte("hostname = \"a\"\ndomain = \"b.example\"\n"), "h.toml")
	if err != nil || c.Hostname != "a" || c.Domain != "b.example" || lookups != 0 {
		t.Errorf("explicit names: %v %+v, %d look-ups", err, c, lookups)
	}
}

func TestDuration(t *testing.T) {
	good := []struct {
		in   string
		want time.Duration
		out  string
	}{
		{"0", 0, "0"},
		{"30s", 30 * time.Second, "30s"},
		{"5m", 5 * time.Minute, "5m"},
		{"1h30m", 90 * time.Minute, "1h30m"},
		{"90m", 90 * time.Minute, "1h30m"},
		{"5d", 120 * time.Hour, "5d"},
		{"120h", 120 * time.Hour, "5d"},
		{"1w", 168 * time.Hour, "7d"},
		{"1w2d3h4m5s", (9*24+3)*time.Hour + 4*time.Minute + 5*time.Second, "9d3h4m5s"},
		{"1.5h", 90 * time.Minute, "1h30m"},
		{"1.5s", 1500 * time.Millisecond, "1.5s"},
		{"250ms", 250 * time.Millisecond, "250ms"},
		{"-5m", -5 * time.Minute, "-5m"},
		{"+5m", 5 * time.Minute, "5m"},
		{"10us", 10 * time.Microsecond, "10µs"},
	}
	for _, tc := range good {
		d, err := ParseDuration(tc.in)
		if err != nil || d != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tc.in, d, err, tc.want)
			continue
		}
		if s := (Duration{d}).String(); s != tc.out {
			t.Errorf("String(%v) = %q, want %q", d, s, tc.out)
		}
		var back Duration
		text, _ := Duration{d}.MarshalText()
		if err := back.UnmarshalText(text); err != nil || back.Duration != d {
			t.Errorf("round trip of %q: %v, %v", text, back, err)
		}
	}
	for _, in := range []string{"", "5", "m", "5 m", "5minutes", "1y", "1..5s", "-", "5m-", "99999999999999d", "1e3s", "d5"} {
		if d, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", in, d)
		}
	}
}
