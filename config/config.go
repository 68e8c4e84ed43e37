package config

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"strings"
	"time"
)

// DefaultPath is where handoff looks for its configuration.
const DefaultPath = "/etc/handoff/handoff.toml"

// Queue modes, the values of queue.mode.
const (
	// ModeNever delivers at once and never queues: a temporary failure
	// is reported to the caller (exit 75), who may retry.
	ModeNever = "never"
	// ModeFallback delivers at once and queues on a temporary failure.
	ModeFallback = "fallback"
	// ModeAlways queues every message and lets the queue runner deliver.
	ModeAlways = "always"
)

// STARTTLS policies, the values of a relay's starttls.
const (
	// StartTLSRequired upgrades with STARTTLS and fails closed when the
	// server does not offer it or the certificate check fails.
	StartTLSRequired = "required"
	// StartTLSOpportunistic upgrades when the server offers STARTTLS and
	// carries on in plain text when it does not.
	StartTLSOpportunistic = "opportunistic"
	// StartTLSNone never uses TLS.
	StartTLSNone = "none"
)

// Log formats, the values of log.format.
const (
	FormatText = "text" // Postfix-like key=value
	FormatJSON = "json" // one JSON object per line
)

// DefaultMailDir is the mailbox directory of an "mbox:" relay and of the
// built-in configuration: mail for USER is appended to DefaultMailDir/USER.
const DefaultMailDir = "/var/mail"

// Config is the whole configuration. Its field comments, and those of
// Queue, Relay, Log and Daemon, document each key of handoff.toml: the
// key's name in backquotes, what it does, and its default.
type Config struct {
	// Path is the file the configuration came from; "" for the built-in
	// default.
	Path string

	// `hostname`: the name handoff sends in EHLO/LHLO and uses as the
	// domain of the Message-ID it adds. Letters, digits, '-' and '.'.
	// Default: the host's fully qualified name: os.Hostname, resolved
	// through net.LookupCNAME (which reads /etc/hosts first) when it has
	// no dot, else os.Hostname as it is. Set it to avoid the look-up.
	Hostname string

	// `domain`: the domain that qualifies bare names ("root",
	// "www-data", "user@localhost") in the envelope and in the From, To,
	// Cc and Reply-To headers. Default: the first line of /etc/mailname,
	// else hostname.
	Domain string

	// `sender`: when set, every message is sent with this envelope
	// sender, whoever submits it and whatever -f says. A bare name is
	// qualified with domain. Default: "" (off: the caller's address).
	Sender string

	// `rewrite_from`: with sender, also replace the address in the From:
	// header with sender (the display name is kept). Needs sender.
	// Default: false.
	RewriteFrom bool

	// `[aliases]`: local name -> one or more addresses, applied to
	// unqualified recipients before they are qualified with domain. A
	// value is a string or an array of strings; each is an address or
	// another local name. Names are matched without regard to case and
	// stored in lower case; "*" is the catch-all for every local name
	// without an entry of its own. Commands ("|..."), files ("/...") and
	// ":include:" are not supported. Default: none.
	//
	//	[aliases]
	//	root = "ops@example.com"
	//	www-data = ["web@example.com", "ops@example.com"]
	//	"*" = "ops@example.com"
	Aliases map[string][]string

	// `aliases_file`: an absolute path to a file in /etc/aliases syntax
	// ("name: addr1, addr2" lines, '#' comments, continuation lines
	// starting with white space), read at load time and merged under
	// [aliases]: a name in [aliases] wins over the same name in the
	// file. Default: "" (none).
	AliasesFile string

	// `[queue]`: where and how messages wait.
	Queue Queue

	// `[[relay]]`: where mail goes, one table per relay, in failover
	// order. For each recipient the relays whose senders and domains
	// match are tried in order. With no [[relay]] at all, mail for local
	// users goes to /var/mail and other mail fails.
	Relays []Relay

	// `[log]`: where delivery attempts are logged.
	Log Log

	// `[daemon]`: settings of "handoff daemon" (system mode).
	Daemon Daemon

	// Warnings are problems that do not stop handoff, formatted like
	// problems ("path:line: key: message"). Not a key.
	Warnings []string
}

// Queue is the [queue] table.
type Queue struct {
	// `dir`: the queue directory, absolute. It must be owned by the user
	// running the queue (root in standalone mode, handoff in system
	// mode). Default: "/var/spool/handoff".
	Dir string

	// `mode`: when messages are queued. "never": deliver at once, and on
	// a temporary failure tell the caller (exit 75) without queueing.
	// "fallback": deliver at once, queue on a temporary failure.
	// "always": queue every message and return; the queue runner
	// delivers. Default: "fallback".
	Mode string

	// `retry_min`: the first retry delay after a temporary failure. Later
	// delays double, with jitter, up to retry_max. A duration string:
	// a number and a unit, units ms, s, m, h, d (24h) and w (7d),
	// combined as in "1h30m". Default: "5m".
	RetryMin Duration

	// `retry_max`: the longest delay between two attempts; at least
	// retry_min. Default: "1h".
	RetryMax Duration

	// `max_age`: how long a message may stay queued; after that it is
	// bounced to its sender. Default: "5d" (120h, as Postfix).
	MaxAge Duration

	// `delay_warning`: when a message has waited this long, its sender
	// is told once that it is delayed (a DSN with action "delayed").
	// "0" turns the warning off; a value not below max_age never fires.
	// Default: "4h" (Postfix's delay_warning_time).
	DelayWarning Duration

	// `connections_per_relay`: how many connections the queue runner
	// opens to one relay at a time, 1 to 100. Default: 2.
	ConnectionsPerRelay int

	// `messages_per_connection`: how many messages one connection carries
	// before the runner closes it and opens another, at least 1.
	// Default: 100.
	MessagesPerConnection int
}

// Relay is one relay, an element of the array of tables "relay".
type Relay struct {
	// `name`: names the relay in logs, in messages and in the queue.
	// Letters, digits, '.', '_' and '-', unique. Default: "relay" and the
	// table's position, "relay1", "relay2", ...
	Name string

	// `url`: where the relay is. Required.
	//
	//	smtp://host[:port]       SMTP, port 25, STARTTLS as starttls says
	//	submission://host[:port] SMTP on port 587, STARTTLS as starttls says
	//	smtps://host[:port]      SMTP with implicit TLS, port 465
	//	lmtp://host[:port]       LMTP over TCP, port 24, STARTTLS as starttls says
	//	lmtp:///path/to/socket   LMTP over a Unix socket, no TLS
	//	mbox:                    local mailboxes, /var/mail/USER
	//	mbox:/path/to/dir        local mailboxes, /path/to/dir/USER
	//
	// An IPv6 address goes in brackets: smtp://[2001:db8::1]:25. An mbox:
	// relay takes only name, url, senders and domains.
	URL string

	// `starttls`: the STARTTLS policy of an smtp://, submission:// or TCP
	// lmtp:// relay. "required" fails closed, before AUTH or MAIL, when
	// the server does not offer STARTTLS or its certificate does not
	// verify. "opportunistic" upgrades when offered and otherwise goes on
	// in plain text, but never sends AUTH in the clear. "none" never uses
	// TLS. Not allowed on smtps:// (always TLS), Unix sockets and mbox:.
	// Default: "required".
	StartTLS string

	// `username`: the SASL user name; setting it turns AUTH on, and then
	// exactly one of password, password_file, password_command,
	// password_credential and [relay.oauth2] is needed. Default: ""
	// (no AUTH).
	Username string

	// `password`: the password, in the file itself. Prefer password_file
	// or password_command, which keep it out of a file many users may
	// read. Never shown: errors and "handoff config check" print
	// <hidden>.
	Password string

	// `password_file`: an absolute path to a file whose first line is the
	// password (a trailing newline is not part of it). Read each time the
	// relay is used, so it may be replaced without a reload. It should be
	// readable only by root and handoff; a file others may read is
	// warned about at load time.
	PasswordFile string

	// `password_command`: a command whose first line of output is the
	// password or, with auth = ["XOAUTH2"] or ["OAUTHBEARER"], the OAuth2
	// access token. It is split into words as a shell would (with '...'
	// and "..." quoting and backslash escapes) but run without a shell,
	// each time the relay is used, with a 10s limit; shell operators
	// (| ; & < > $ ` ( )) must be quoted. Its output is never logged.
	PasswordCommand string

	// `password_credential`: the name of a systemd credential (a file
	// name, no '/') whose first line is the password: handoff reads
	// $CREDENTIALS_DIRECTORY/NAME each time the relay is used, as
	// password_file. systemd sets CREDENTIALS_DIRECTORY for a service
	// with LoadCredential=, LoadCredentialEncrypted= or SetCredential=;
	// without it, or without the file, the relay fails with a one-line
	// error. Default: "".
	PasswordCredential string

	// `auth`: the SASL mechanisms that may be used, in order of
	// preference: PLAIN, LOGIN, CRAM-MD5, SCRAM-SHA-256, XOAUTH2,
	// OAUTHBEARER. With only XOAUTH2 and/or OAUTHBEARER the secret is an
	// OAuth2 access token; the two kinds may not be mixed. Needs
	// username. Default: [] (the strongest password mechanism both sides
	// have: SCRAM-SHA-256, CRAM-MD5, PLAIN, LOGIN); with [relay.oauth2],
	// ["XOAUTH2", "OAUTHBEARER"], and then password mechanisms are an
	// error.
	Auth []string

	// `[relay.oauth2]`: the relay's secret is an OAuth2 access token
	// that handoff obtains and refreshes by itself (internal/oauth),
	// from a refresh token that "handoff oauth2 login RELAY" stores
	// once. An alternative to the password keys; needs username.
	// Default: none (nil).
	//
	//	[relay.oauth2]
	//	provider = "google"
	//	client_id = "1234.apps.googleusercontent.com"
	//	client_secret_file = "/etc/handoff/gmail-client-secret"
	OAuth2 *OAuth2

	// `tls_ca_file`: an absolute path to a PEM file of CA certificates
	// trusted instead of the system's. Default: "" (the system roots).
	TLSCAFile string

	// `tls_cert_file`: an absolute path to a PEM client certificate,
	// with tls_key_file. Default: "" (none).
	TLSCertFile string

	// `tls_key_file`: an absolute path to the PEM private key of
	// tls_cert_file. Default: "".
	TLSKeyFile string

	// `tls_pin_sha256`: SHA-256 digests of server public keys
	// (SubjectPublicKeyInfo), base64 or hex. When set, the server's key
	// must match one of them, in addition to the certificate check (or
	// instead of it with tls_insecure). Default: [] (no pinning).
	TLSPinSHA256 []string

	// `tls_min_version`: the lowest TLS version accepted, "1.2" or "1.3"
	// (a string: 1.2 unquoted is a float). Default: "1.2".
	TLSMinVersion string

	// `tls_server_name`: the name the server's certificate must carry,
	// also sent as SNI. Default: "" (the host in url).
	TLSServerName string

	// `tls_insecure`: turns certificate and name verification off. Pins
	// are still checked; without pins, anyone on the path can read the
	// mail and the password. Default: false.
	TLSInsecure bool

	// `senders`: glob patterns on the envelope sender; the relay is used
	// only for messages whose sender matches one ("*@example.com",
	// "root@*"). '*' matches any run of characters but '/', '?' one
	// character, [...] a class; matching ignores case. The null sender
	// of bounces is "", matched only by "*". Default: ["*"].
	Senders []string

	// `domains`: glob patterns on the recipient's domain; the relay
	// takes only recipients whose domain matches one ("example.com",
	// "*.example.com" — which does not match example.com itself — or
	// "*"). Default: ["*"].
	Domains []string

	// `connect_timeout`: the limit on opening the connection (TCP
	// connect). Default: "30s".
	ConnectTimeout Duration

	// `command_timeout`: the limit on each command's reply (greeting,
	// EHLO, STARTTLS, AUTH, MAIL, RCPT, DATA, QUIT; RSET uses at most
	// 20s). Default: "5m" (RFC 5321 §4.5.3.2).
	CommandTimeout Duration

	// `data_timeout`: the limit on each write of message data and on the
	// reply after the final dot. Default: "10m" (RFC 5321 §4.5.3.2.6).
	DataTimeout Duration

	// `pipelining`: send commands in groups (RFC 2920) when the relay
	// offers PIPELINING, and in a queue run the next message's MAIL,
	// RCPT and DATA right behind the previous message's data; false
	// sends one command at a time, for a relay that announces PIPELINING
	// and mishandles it. Default: true.
	Pipelining bool

	// Line is the line of the [[relay]] header in Config.Path, for
	// messages; 0 when not from a file. Not a key.
	Line int
}

// OAuth2 is a relay's [relay.oauth2] table: the application registered
// with the provider, its endpoints and the token file. Keys whose
// default depends on the provider are filled in by Parse.
type OAuth2 struct {
	// `provider`: "google", "microsoft" or "" (another provider: then
	// token_url, and device_auth_url or auth_url, are required). It
	// gives the defaults of scopes and the three endpoints. Default: "".
	Provider string

	// `client_id`: the client ID of the application registered with the
	// provider (Google: an OAuth client of type "Desktop app"; Microsoft:
	// an app registration with "Allow public client flows"). Required.
	ClientID string

	// `client_secret`: the application's client secret, in this file.
	// Never shown. At most one of client_secret, client_secret_file and
	// client_secret_credential; none for a public client (Microsoft),
	// Google needs one. Default: "".
	ClientSecret string

	// `client_secret_file`: an absolute path to a file whose first line
	// is the client secret, read when a token is refreshed. Default: "".
	ClientSecretFile string

	// `client_secret_credential`: the name of a systemd credential whose
	// first line is the client secret ($CREDENTIALS_DIRECTORY/NAME).
	// Default: "".
	ClientSecretCredential string

	// `tenant`: Microsoft's directory (tenant) ID or domain, or "common",
	// "organizations", "consumers"; it goes into the default endpoints.
	// Only with provider "microsoft". Default: "common".
	Tenant string

	// `scopes`: the scopes asked for at login. Default per provider:
	// google ["https://mail.google.com/"]; microsoft
	// ["https://outlook.office.com/SMTP.Send", "offline_access"];
	// otherwise [] (none sent).
	Scopes []string

	// `token_url`: the token endpoint, https:// (http:// only to a
	// loopback address). Default per provider: google
	// "https://oauth2.googleapis.com/token"; microsoft
	// "https://login.microsoftonline.com/TENANT/oauth2/v2.0/token".
	TokenURL string

	// `device_auth_url`: the device authorization endpoint (RFC 8628) of
	// "handoff oauth2 login". Default per provider: google
	// "https://oauth2.googleapis.com/device/code" (which refuses Gmail's
	// scope); microsoft ".../TENANT/oauth2/v2.0/devicecode".
	DeviceAuthURL string

	// `auth_url`: the authorization endpoint of "handoff oauth2 login
	// --auth-code". Default per provider: google
	// "https://accounts.google.com/o/oauth2/v2/auth"; microsoft
	// ".../TENANT/oauth2/v2.0/authorize".
	AuthURL string

	// `token_file`: an absolute path to the JSON file that holds the
	// refresh token and the current access token, written by "handoff
	// oauth2 login" and on each refresh; it must belong to the user who
	// sends (or runs the queue) and have mode 0600. Several relays may
	// share one. Default: "/var/lib/handoff/oauth2/NAME.json", NAME
	// being the relay's name.
	TokenFile string
}

// Log is the [log] table.
type Log struct {
	// `syslog`: send the log to syslog (the journal under systemd),
	// facility mail. With false, log lines go to standard error.
	// Default: true.
	Syslog bool

	// `format`: "text" for Postfix-like key=value lines, "json" for one
	// JSON object per line. Default: "text".
	Format string
}

// Daemon is the [daemon] table.
type Daemon struct {
	// `socket`: the absolute path of the Unix socket where "handoff
	// daemon" takes submissions (LMTP) and where the sendmail front end
	// looks for it. Default: "/run/handoff/submit.sock".
	Socket string

	// `trusted_users`: login names that may submit with any envelope
	// sender (-f) through the daemon. The daemon's own user and root
	// always may. Default: [].
	TrustedUsers []string

	// `sender_policy`: what the daemon does when any other user asks for
	// an envelope sender that is not theirs (their login at domain, or
	// one their entry in senders allows): "refuse" answers 550 and the
	// front end reports it; "rewrite" replaces it with their own address
	// and logs it. Default: "refuse".
	SenderPolicy string

	// `senders`: per user, the envelope senders that user may use besides
	// their own address, as patterns ("*@example.com", "web@example.com").
	// A table: www-data = ["shop@example.com"]. Default: {}.
	Senders map[string][]string

	// `max_message_size`: the largest message the daemon takes, in bytes.
	// Default: 52428800 (50 MiB).
	MaxMessageSize int64

	// `max_recipients`: the most recipients of one message. Default: 1000.
	MaxRecipients int

	// `submissions_per_minute`: how many messages one local user (uid)
	// may submit per minute; more are answered 452 (try again later).
	// root and the trusted users are not limited. 0: no limit.
	// Default: 120.
	SubmissionsPerMinute int

	// `max_connections`: how many front ends may be connected at once;
	// more wait. Default: 64.
	MaxConnections int

	// `idle_exit`: when started by socket activation, the daemon exits
	// after this long with no connection and nothing queued that is due
	// within it; "0" never exits. Default: "5m".
	IdleExit Duration

	// `relay_idle`: how long the daemon keeps an unused relay connection
	// open for the next submission. Default: "30s".
	RelayIdle Duration
}

// Sender policies of the daemon.
const (
	SenderRefuse  = "refuse"
	SenderRewrite = "rewrite"
)

// Built-in defaults, one place.
const (
	defaultQueueDir     = "/var/spool/handoff"
	defaultRetryMin     = 5 * time.Minute
	defaultRetryMax     = time.Hour
	defaultMaxAge       = 5 * 24 * time.Hour
	defaultDelayWarning = 4 * time.Hour
	defaultConnsPerRly  = 2
	defaultMsgsPerConn  = 100
	defaultSocket       = "/run/handoff/submit.sock"
	defaultConnect      = 30 * time.Second
	defaultCommand      = 5 * time.Minute
	defaultData         = 10 * time.Minute
	defaultTLSMin       = "1.2"
	defaultTokenDir     = "/var/lib/handoff/oauth2"
	maxConnsPerRelay    = 100
)

// Hooks replaced by tests.
var (
	defaultPath  = DefaultPath
	mailnamePath = "/etc/mailname"
	osHostname   = os.Hostname
	lookupCNAME  = func(ctx context.Context, host string) (string, error) {
		return net.DefaultResolver.LookupCNAME(ctx, host)
	}
)

// hostLookupTimeout bounds the look-up of the default hostname.
const hostLookupTimeout = 2 * time.Second

// defaults returns the built-in configuration without Hostname and
// Domain, which need the system.
func defaults() *Config {
	return &Config{
		Queue: Queue{
			Dir:                   defaultQueueDir,
			Mode:                  ModeFallback,
			RetryMin:              Duration{defaultRetryMin},
			RetryMax:              Duration{defaultRetryMax},
			MaxAge:                Duration{defaultMaxAge},
			DelayWarning:          Duration{defaultDelayWarning},
			ConnectionsPerRelay:   defaultConnsPerRly,
			MessagesPerConnection: defaultMsgsPerConn,
		},
		Log: Log{Syslog: true, Format: FormatText},
		Daemon: Daemon{
			Socket:               defaultSocket,
			TrustedUsers:         []string{},
			SenderPolicy:         SenderRefuse,
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

// defaultRelay returns a [[relay]] with every default filled in but the
// name.
func defaultRelay() Relay {
	return Relay{
		StartTLS:       StartTLSRequired,
		TLSMinVersion:  defaultTLSMin,
		Senders:        []string{"*"},
		Domains:        []string{"*"},
		ConnectTimeout: Duration{defaultConnect},
		CommandTimeout: Duration{defaultCommand},
		DataTimeout:    Duration{defaultData},
		Pipelining:     true,
	}
}

// Default returns the built-in configuration, the one used when no file
// exists: no relays (local users' mail goes to /var/mail, other mail
// fails), the defaults documented on each field, Hostname and Domain from
// the system.
func Default() *Config {
	c := defaults()
	c.Hostname = systemHostname()
	c.Domain, _ = mailname()
	if c.Domain == "" {
		c.Domain = c.Hostname
	}
	return c
}

// systemHostname returns the host's fully qualified name as documented on
// Config.Hostname, lower-cased, without a trailing dot.
func systemHostname() string {
	h, err := osHostname()
	if err != nil || h == "" {
		return "localhost"
	}
	h = strings.ToLower(strings.TrimSuffix(h, "."))
	if strings.Contains(h, ".") {
		return h
	}
	ctx, cancel := context.WithTimeout(context.Background(), hostLookupTimeout)
	defer cancel()
	if cname, err := lookupCNAME(ctx, h); err == nil {
		cname = strings.ToLower(strings.TrimSuffix(cname, "."))
		if strings.Contains(cname, ".") && validHostname(cname) {
			return cname
		}
	}
	return h
}

// mailname returns the first line of /etc/mailname, "" when there is
// none. bad is the line when it is not a valid domain name (and then
// name is "").
func mailname() (name, bad string) {
	f, err := os.Open(mailnamePath)
	if err != nil {
		return "", ""
	}
	defer f.Close()
	line, _ := bufio.NewReader(io.LimitReader(f, 1024)).ReadString('\n')
	line = strings.TrimSpace(line)
	if line == "" {
		return "", ""
	}
	line = strings.ToLower(strings.TrimSuffix(line, "."))
	if !validHostname(line) {
		return "", line
	}
	return line, ""
}

// maxFileSize caps what Load and the aliases_file reader read: a config
// or aliases file is small, and -C /dev/zero must not exhaust memory.
const maxFileSize = 4 << 20

// Load reads and parses the configuration file at path (DefaultPath when
// path is ""). When path is "" and DefaultPath does not exist, it returns
// Default() and no error; a missing file named explicitly is an error.
//
// Errors: a *Error listing every problem in the file (see Parse); or, when
// the file cannot be read, an error wrapping the *fs.PathError
// (errors.Is(err, fs.ErrNotExist) holds for a missing file).
func Load(path string) (*Config, error) {
	explicit := path != ""
	if !explicit {
		path = defaultPath
	}
	data, err := readFile(path)
	if err != nil {
		if !explicit && errors.Is(err, fs.ErrNotExist) {
			return Default(), nil
		}
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(data, path)
}

// readFile reads a regular file of at most maxFileSize bytes. It refuses
// FIFOs and devices, which could block or never end.
func readFile(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "read", Path: path, Err: errors.New("not a regular file")}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		return nil, &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("larger than %d MiB", maxFileSize>>20)}
	}
	return data, nil
}

// Parse parses a configuration file's contents; path is the name used in
// messages and stored in Config.Path. It reads aliases_file, and stats
// password_file for the permission warning; nothing else touches the
// system, except the host-name look-up when hostname is not set.
//
// Every problem found is returned at once in a *Error; the *Config is then
// nil. Problems that do not stop handoff are in Config.Warnings.
func Parse(data []byte, path string) (*Config, error) {
	d := newDecoder(data, path)
	c := d.decode()
	if len(d.problems) > 0 {
		return nil, d.err()
	}
	return c, nil
}
