package tests

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestCommandLine runs the binary for what needs no server: the other
// names (mailq, newaliases), -bv, and command lines that must be refused
// before any input is read. The relay in the config is an address where
// nothing listens, so nothing here can have been sent.
func TestCommandLine(t *testing.T) {
	t.Logf("built %s in %v; private home for each run: %v %s", handoffBin, buildTime.Round(time.Millisecond), privateHome, noPrivateHome)
	dir := t.TempDir()
	down := closedAddr(t)
	cfg := writeConfig(t, dir, "handoff.toml", "smtp://"+down, "alicepass", dir+"/no-ca.pem")
	message := "To: bob@example.test\nSubject: must not be sent\n\nbody\n"

	t.Run("mailq", func(t *testing.T) {
		t.Parallel()
		r := run(t, call{argv: []string{"mailq"}, config: cfg})
		r.wantExit(t, 0)
		if r.stdout != "Mail queue is empty\n" || r.stderr != "" {
			t.Errorf("stdout %q, stderr %q; want \"Mail queue is empty\\n\" and nothing", r.stdout, r.stderr)
		}
	})

	t.Run("sendmail_bp", func(t *testing.T) {
		t.Parallel()
		r := run(t, call{argv: []string{"/usr/sbin/sendmail", "-bp"}, config: cfg})
		r.wantExit(t, 0)
		if r.stdout != "Mail queue is empty\n" || r.stderr != "" {
			t.Errorf("stdout %q, stderr %q; want \"Mail queue is empty\\n\" and nothing", r.stdout, r.stderr)
		}
	})

	t.Run("newaliases", func(t *testing.T) {
		t.Parallel()
		r := run(t, call{argv: []string{"newaliases"}, config: cfg})
		r.wantExit(t, 0)
		want := "newaliases: 1 aliases (from " + cfg + "), nothing to rebuild\n"
		if r.stdout != want || r.stderr != "" {
			t.Errorf("stdout %q, stderr %q; want %q and nothing", r.stdout, r.stderr, want)
		}
	})

	t.Run("bv", func(t *testing.T) {
		// -bv routes each recipient through the aliases and the
		// relays, prints one line each, and sends nothing: it never
		// reads stdin, which stays open.
		t.Parallel()
		r := run(t, call{
			argv:   []string{"/usr/sbin/sendmail", "-bv", "root", "alice", "bob@example.test", "Carol <carol@elsewhere.test>"},
			config: cfg, stdin: message, openStdin: true, timeout: 10 * time.Second,
		})
		r.wantExit(t, 0)
		via := ": deliverable: relay postfix (smtp://" + down + ")"
		want := "root -> bob@example.test" + via + "\n" +
			"alice -> alice@example.test" + via + "\n" +
			"bob@example.test -> bob@example.test" + via + "\n" +
			"carol@elsewhere.test -> carol@elsewhere.test" + via + "\n"
		if r.stdout != want {
			t.Errorf("stdout\n%s\nwant\n%s", r.stdout, want)
		}
		if r.stderr != "" {
			t.Errorf("stderr: %q", r.stderr)
		}
	})

	t.Run("bv_unparseable", func(t *testing.T) {
		t.Parallel()
		r := run(t, call{argv: []string{"/usr/sbin/sendmail", "-bv", "alice", "<bob@"}, config: cfg})
		r.wantExit(t, 65)
		lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
		if len(lines) != 2 || !strings.HasPrefix(lines[0], "alice -> alice@example.test: deliverable") ||
			!strings.HasPrefix(lines[1], "<bob@: undeliverable: cannot parse") {
			t.Errorf("stdout:\n%s", r.stdout)
		}
	})

	// Refused command lines: exit status, one line on stderr, nothing on
	// stdout, and an exit without waiting for the end of the input
	// (stdin stays open: a caller that writes its message first, such as
	// popen(), must not hang).
	refused := []struct {
		name string
		argv []string
		exit int
		want string // in the one stderr line
	}{
		{"unknown_option", []string{"/usr/sbin/sendmail", "-z", "bob@example.test"}, 64, "sendmail: "},
		{"unsupported_mode", []string{"/usr/sbin/sendmail", "-bt"}, 64, "sendmail: "},
		{"newline_in_f", []string{"/usr/sbin/sendmail", "-f", "a\nb", "bob@example.test"}, 65, "sendmail: "},
		{"newline_in_recipient", []string{"/usr/sbin/sendmail", "-i", "bob@example.test\nRCPT TO:<x@y>"}, 65, "sendmail: "},
		{"mailq_with_argument", []string{"mailq", "bob@example.test"}, 64, "mailq: "},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := run(t, call{argv: c.argv, config: cfg, stdin: message, openStdin: true, timeout: 10 * time.Second})
			r.wantExit(t, c.exit)
			t.Logf("stderr: %s", r.stderr)
			lines := stderrLines(r.stderr)
			if len(lines) != 1 || !strings.HasPrefix(lines[0], c.want) {
				t.Errorf("stderr is not one line starting with %q:\n%s", c.want, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout: %q", r.stdout)
			}
			if strings.Contains(r.stderr, "\nRCPT") {
				t.Errorf("a newline from argv reached stderr raw: %q", r.stderr)
			}
		})
	}

	t.Run("config_broken", func(t *testing.T) {
		// A typo in the config (cron keeps running while the admin
		// edits it): EX_CONFIG, every problem reported with its line,
		// and — PRODUCT.md §5, "A message that could be neither sent
		// nor queued is appended whole to ~/dead.letter" — the job's
		// output kept, not drained and dropped.
		needPrivateHome(t)
		t.Parallel()
		dir := t.TempDir()
		cfg := dir + "/handoff.toml"
		if err := os.WriteFile(cfg, []byte("hostname = \"client.example.test\"\nhostnme = \"typo\"\n[[relay]]\nurl = \"gopher://x\"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		marker := newMarker("config-broken")
		r := run(t, call{argv: []string{"/usr/sbin/sendmail", "-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"}, config: cfg,
			stdin: failMessage(marker)})
		r.wantExit(t, 78)
		t.Logf("stderr:\n%s", r.stderr)
		for _, want := range []string{cfg + ":2: hostnme: unknown key", cfg + ":4: relay[1].url: unknown scheme \"gopher\""} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
			}
		}
		dl, _, ok := r.deadLetter(t)
		if !ok {
			t.Fatalf("the message was read and dropped: no dead.letter")
		}
		for _, want := range []string{"Subject: " + marker, "first line\n.\n>From here on, an mbox From_ quote\nlast line\n"} {
			if !strings.Contains(dl, want) {
				t.Errorf("dead.letter lacks %q:\n%s", want, dl)
			}
		}
	})

	t.Run("no_recipients", func(t *testing.T) {
		// No recipient and no -t: a usage error, after the input is
		// read to its end, so that the writer gets no SIGPIPE.
		t.Parallel()
		r := run(t, call{argv: []string{"/usr/sbin/sendmail", "-i"}, config: cfg, stdin: strings.Repeat("line\n", 20000)})
		r.wantExit(t, 64)
		if lines := stderrLines(r.stderr); len(lines) != 1 || !strings.Contains(lines[0], "no recipients") {
			t.Errorf("stderr:\n%s", r.stderr)
		}
		if r.stdinErr != nil {
			t.Errorf("writing the input: %v (the input was not read to its end)", r.stdinErr)
		}
	})
}
