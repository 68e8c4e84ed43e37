package realserver

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Addresses with a fixed fate at every Postfix started here.
const (
	// BlockedSender is rejected at MAIL FROM with
	// "554 5.7.1 <blocked@example.test>: Sender address rejected: sender blocked".
	BlockedSender = "blocked@example.test"
	// TempfailRecipient is refused at RCPT TO with
	// "450 4.2.0 <tempfail@example.test>: Recipient address rejected: try later".
	TempfailRecipient = "tempfail@example.test"
)

// DefaultMessageSizeLimit is Postfix's message_size_limit (advertised with
// SIZE) unless PostfixOptions says otherwise: 10 MiB.
const DefaultMessageSizeLimit = 10 << 20

// PostfixHostname is Postfix's myhostname (its greeting and EHLO name).
const PostfixHostname = "mail." + Domain

// PostfixOptions configures StartPostfix. The zero value is fine.
type PostfixOptions struct {
	// Dovecot authenticates SMTP clients and receives mail for Domain.
	// If nil, StartPostfix starts one with default options.
	Dovecot *Dovecot
	// CA issues the server certificate; if nil, StartPostfix makes one.
	CA *CA
	// MessageSizeLimit is message_size_limit in bytes; 0 means
	// DefaultMessageSizeLimit.
	MessageSizeLimit int64
	// MainCF holds further main.cf parameters; they replace the
	// harness's settings of the same names.
	MainCF map[string]string
}

// Postfix is a running private Postfix instance. Both of its SMTP services
// offer AUTH (mechanisms from Dovecot: PLAIN, LOGIN, CRAM-MD5, SCRAM-SHA-1
// and SCRAM-SHA-256) only under TLS, reject BlockedSender and tempfail
// TempfailRecipient, accept mail to the users of its Dovecot (anyone else
// at Domain gets 550 5.1.1), relay elsewhere only for authenticated
// clients (unauthenticated: "554 5.7.1 ... Relay access denied"), and
// deliver mail for Domain to Dovecot over LMTP, adding only a Received
// header (no Date or Message-ID, no address rewriting). Mail to other
// domains is never sent out: it bounces through Postfix's error transport.
type Postfix struct {
	Addr             string // 127.0.0.1:port: SMTP with STARTTLS offered (smtpd_tls_security_level = may)
	SMTPSAddr        string // 127.0.0.1:port: SMTP in implicit TLS (smtpd_tls_wrappermode = yes)
	CA               *CA    // the CA that issued the certificate for "localhost", PostfixHostname and 127.0.0.1
	Dovecot          *Dovecot
	Hostname         string // PostfixHostname
	MessageSizeLimit int64
	Version          string // the installed Postfix's mail_version

	Dir       string // the instance directory
	ConfigDir string // main.cf and master.cf (postfix -c ConfigDir)
	QueueDir  string
	LogFile   string // maillog_file
}

var (
	peernameOnce  sync.Once
	peernameKnown bool
)

// hasPeernameLookup reports whether Postfix knows smtpd_peername_lookup,
// with which smtpd skips reverse DNS of its clients.
func hasPeernameLookup() bool {
	peernameOnce.Do(func() {
		out, err := exec.Command(postconfBin, "-dh", "smtpd_peername_lookup").Output()
		peernameKnown = err == nil && strings.TrimSpace(string(out)) != ""
	})
	return peernameKnown
}

// StartPostfix starts a private Postfix for the test (and a Dovecot if opts
// has none) and stops it in t.Cleanup. It skips or fails the test as
// Require does when Postfix or Dovecot is not installed. On test failure
// the tail of Postfix's log is logged.
func StartPostfix(t testing.TB, opts PostfixOptions) *Postfix {
	t.Helper()
	Require(t, "postfix", "dovecot")
	dv := opts.Dovecot
	if dv == nil {
		dv = StartDovecot(t, DovecotOptions{})
	}
	begin := time.Now()
	v, err := postfixVersion()
	if err != nil {
		t.Fatalf("%v", err)
	}
	ca := opts.CA
	if ca == nil {
		ca = NewCA(t)
	}
	certFile, keyFile := ca.Issue(t, "localhost", PostfixHostname, "127.0.0.1")
	size := opts.MessageSizeLimit
	if size == 0 {
		size = DefaultMessageSizeLimit
	}

	dir := instanceDir(t)
	p := &Postfix{
		CA:               ca,
		Dovecot:          dv,
		Hostname:         PostfixHostname,
		MessageSizeLimit: size,
		Version:          v.text,
		Dir:              dir,
		ConfigDir:        filepath.Join(dir, "etc"),
		QueueDir:         filepath.Join(dir, "queue"),
		LogFile:          filepath.Join(dir, "maillog"),
	}
	for _, d := range []string{p.ConfigDir, p.QueueDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatalf("realserver: %v", err)
		}
	}
	files := map[string]string{
		"sender_access":    BlockedSender + " REJECT 5.7.1 sender blocked\n",
		"recipient_access": TempfailRecipient + " 450 4.2.0 try later\n",
	}
	var mailboxes strings.Builder
	for _, u := range slices.Sorted(maps.Keys(dv.Users)) {
		fmt.Fprintf(&mailboxes, "%s@%s OK\n", u, Domain)
	}
	files["virtual_mailboxes"] = mailboxes.String()

	compat := "2"
	if !v.less(3, 6) {
		compat = "3.6"
	}
	instance := "handoff-" + randomHex(4)
	mapFile := func(name string) string { return "texthash:" + filepath.Join(p.ConfigDir, name) }
	mainCF := [][2]string{
		{"compatibility_level", compat},
		{"queue_directory", p.QueueDir},
		{"data_directory", filepath.Join(dir, "data")},
		{"mail_owner", "postfix"},
		{"setgid_group", "postdrop"},
		{"syslog_name", instance},
		{"maillog_file", p.LogFile},
		{"maillog_file_prefixes", dir},
		{"myhostname", PostfixHostname},
		{"mydomain", Domain},
		{"myorigin", "$mydomain"},
		{"mydestination", ""},
		{"inet_interfaces", "127.0.0.1"},
		{"inet_protocols", "ipv4"},
		{"mynetworks", "127.0.0.0/8"},
		{"alias_maps", ""},
		{"alias_database", ""},
		{"biff", "no"},
		{"smtpd_banner", "$myhostname ESMTP handoff-realserver"},
		// Deliver what clients send unchanged but for Postfix's Received
		// header: no Date, Message-ID, From or To added, no address
		// rewriting (the default does both for clients on 127.0.0.1).
		{"local_header_rewrite_clients", ""},
		// Reject at the command concerned (MAIL FROM for senders).
		{"smtpd_delay_reject", "no"},
		{"smtpd_error_sleep_time", "0"},
		{"in_flow_delay", "0"},
		{"smtpd_sender_restrictions", "check_sender_access " + mapFile("sender_access")},
		{"smtpd_relay_restrictions", "permit_sasl_authenticated, reject_unauth_destination"},
		{"smtpd_recipient_restrictions", "check_recipient_access " + mapFile("recipient_access")},
		{"virtual_mailbox_domains", Domain},
		{"virtual_mailbox_maps", mapFile("virtual_mailboxes")},
		{"virtual_transport", "lmtp:unix:" + dv.LMTPSocket},
		{"default_transport", "error:handoff realserver sends no mail outside " + Domain},
		{"message_size_limit", strconv.FormatInt(size, 10)},
		{"mailbox_size_limit", "0"},
		{"virtual_mailbox_limit", "0"},
		{"smtpd_tls_security_level", "may"},
		{"smtpd_tls_cert_file", certFile},
		{"smtpd_tls_key_file", keyFile},
		{"smtpd_tls_auth_only", "yes"},
		{"smtpd_tls_loglevel", "1"},
		{"smtpd_tls_received_header", "yes"},
		{"smtpd_sasl_auth_enable", "yes"},
		{"smtpd_sasl_type", "dovecot"},
		{"smtpd_sasl_path", dv.AuthSocket},
		{"smtpd_sasl_security_options", "noanonymous"},
		{"smtpd_sasl_tls_security_options", "noanonymous"},
	}
	if hasPeernameLookup() {
		// No reverse DNS for 127.0.0.1: this machine may have no resolver.
		mainCF = append(mainCF, [2]string{"smtpd_peername_lookup", "no"})
	}
	for _, k := range slices.Sorted(maps.Keys(opts.MainCF)) {
		i := slices.IndexFunc(mainCF, func(kv [2]string) bool { return kv[0] == k })
		if i >= 0 {
			mainCF[i][1] = opts.MainCF[k]
		} else {
			mainCF = append(mainCF, [2]string{k, opts.MainCF[k]})
		}
	}
	var main strings.Builder
	main.WriteString("# Written by handoff's internal/realserver.\n")
	for _, kv := range mainCF {
		fmt.Fprintf(&main, "%s = %s\n", kv[0], kv[1])
	}
	files["main.cf"] = main.String()
	for name, text := range files {
		if err := writeSettled(filepath.Join(p.ConfigDir, name), text); err != nil {
			t.Fatalf("realserver: %v", err)
		}
	}

	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("realserver: Postfix log %s, last lines:\n%s", p.LogFile, tailFile(p.LogFile, logTailLines))
		}
		if !p.stop() {
			t.Errorf("realserver: Postfix in %s did not stop", p.Dir)
		}
	})

	// The phases of the start are timed for the log: on a busy machine
	// each can take seconds.
	//
	// Make the queue directory tree with the owners and modes of
	// $meta_directory/postfix-files.
	phase := time.Now()
	if out, err := p.postfix("post-install", "create-missing"); err != nil {
		t.Fatalf("realserver: postfix post-install create-missing after %v: %v\n%s\nlog:\n%s",
			time.Since(phase).Round(time.Millisecond), err, out, tailFile(p.LogFile, logTailLines))
	}
	postInstall := time.Since(phase)

	var failures []string
	for attempt := 1; attempt <= startAttempts; attempt++ {
		ports, err := pickPorts(2)
		if err != nil {
			t.Fatalf("realserver: picking ports: %v", err)
		}
		p.Addr = "127.0.0.1:" + strconv.Itoa(ports[0])
		p.SMTPSAddr = "127.0.0.1:" + strconv.Itoa(ports[1])
		if err := writeSettled(filepath.Join(p.ConfigDir, "master.cf"), masterCF(instance, p.Addr, p.SMTPSAddr)); err != nil {
			t.Fatalf("realserver: %v", err)
		}
		phase = time.Now()
		out, err := p.postfix("start")
		start := time.Since(phase)
		if err != nil {
			failures = append(failures, fmt.Sprintf("attempt %d: postfix start: %v\n%s", attempt, err, out))
			t.Logf("realserver: Postfix start attempt %d failed after %v: %v %s\n%s", attempt,
				time.Since(begin).Round(time.Millisecond), err, strings.TrimSpace(out), tailFile(p.LogFile, 3))
			p.stop() // in case something is left
			continue
		}
		phase = time.Now()
		err = p.waitReady()
		if err == nil {
			t.Logf("realserver: Postfix %s ready in %v (post-install %v, postfix start %v, greetings %v; SMTP %s, SMTPS %s)",
				p.Version, time.Since(begin).Round(time.Millisecond), postInstall.Round(time.Millisecond),
				start.Round(time.Millisecond), time.Since(phase).Round(time.Millisecond), p.Addr, p.SMTPSAddr)
			return p
		}
		failures = append(failures, fmt.Sprintf("attempt %d: %v", attempt, err))
		break
	}
	t.Fatalf("realserver: Postfix did not start:\n%s\nlog:\n%s", strings.Join(failures, "\n"), tailFile(p.LogFile, logTailLines))
	return nil
}

// writeSettled writes a configuration file (mode 0644) and dates it back a
// minute: Postfix waits (300 ms at a time) until a file it loads was last
// modified before the current second, which costs up to a second for
// every Postfix command that reads a file just written.
func writeSettled(path, text string) error {
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		return err
	}
	old := time.Now().Add(-time.Minute)
	return os.Chtimes(path, old, old)
}

// masterCF is the master.cf of an instance: the two SMTP services on the
// given addresses and Postfix's internal services, none chrooted.
func masterCF(instance, smtpAddr, smtpsAddr string) string {
	return `# Written by handoff's internal/realserver.
# service type  private unpriv  chroot  wakeup  maxproc command + args
` + smtpAddr + ` inet n - n - - smtpd
` + smtpsAddr + ` inet n - n - - smtpd
  -o syslog_name=` + instance + `/smtps
  -o smtpd_tls_wrappermode=yes
  -o smtpd_tls_security_level=encrypt
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`
}

// postfix runs "postfix -c ConfigDir args...".
func (p *Postfix) postfix(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, postfixBin, append([]string{"-c", p.ConfigDir}, args...)...)
	// A daemon that keeps the output pipe open must not hang us.
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// masterPID is the pid of the instance's master daemon, or 0.
func (p *Postfix) masterPID() int {
	b, err := os.ReadFile(filepath.Join(p.QueueDir, "pid", "master.pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	return pid
}

// waitReady polls until both SMTP services greet, or the master exits, or
// startTimeout passes.
func (p *Postfix) waitReady() error {
	deadline := time.Now().Add(startTimeout)
	for {
		err := greeting("tcp", p.Addr, nil, "220 ", true)
		if err == nil {
			err = greeting("tcp", p.SMTPSAddr, p.CA.TLSConfig("localhost"), "220 ", true)
		}
		if err == nil {
			return nil
		}
		if pid := p.masterPID(); pid == 0 || !alive(pid) {
			return fmt.Errorf("%w: the master daemon is gone (%v)", errExited, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v: %v", startTimeout, err)
		}
		time.Sleep(pollInterval)
	}
}

// stop runs "postfix stop" and waits for the master and all its processes
// (its process group) to exit, killing them if they linger. It reports
// whether everything is gone.
func (p *Postfix) stop() bool {
	pid := p.masterPID()
	if pid == 0 || !alive(pid) {
		return true
	}
	_, _ = p.postfix("stop")
	if waitGone(pid, pid, stopTimeout) {
		return true
	}
	killGroup(pid)
	return waitGone(pid, pid, 5*time.Second)
}

// Log returns Postfix's log so far. Postfix writes its log asynchronously
// (its daemons send their lines to postlogd), and it logs a delivery only
// after Dovecot has answered, that is after the message is in the
// Maildir: to check for something that happens after the SMTP session,
// use WaitLog.
func (p *Postfix) Log() string {
	b, _ := os.ReadFile(p.LogFile)
	return string(b)
}

// waitLogTimeout bounds Postfix.WaitLog.
const waitLogTimeout = 10 * time.Second

// WaitLog polls Postfix's log until one of its lines contains every one of
// substrs, and returns that line; it fails the test if that takes longer
// than 10 seconds. For example, WaitLog(t, queueID+": to=<bob@example.test>",
// "status=sent") waits for the delivery of one message to bob.
func (p *Postfix) WaitLog(t testing.TB, substrs ...string) string {
	t.Helper()
	deadline := time.Now().Add(waitLogTimeout)
	for {
		for line := range strings.Lines(p.Log()) {
			if containsAll(line, substrs) {
				return strings.TrimSuffix(line, "\n")
			}
		}
		if time.Now().After(deadline) {
			// The log's tail is logged when the test ends (see
			// StartPostfix).
			t.Fatalf("realserver: no line with %q in Postfix's log %s after %v", substrs, p.LogFile, waitLogTimeout)
		}
		time.Sleep(pollInterval)
	}
}

func containsAll(s string, substrs []string) bool {
	for _, sub := range substrs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
