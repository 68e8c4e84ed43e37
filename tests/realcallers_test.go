package tests

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRealCallers runs the real caller programs of PRODUCT.md §2 — PHP's
// mail() in php-cli, git send-email, mutt, s-nail, bsd-mailx and at/atd —
// against the built binary, through the private Postfix into Dovecot,
// where TestCallers replays their argv and input. Each subtest checks
// the caller's own verdict (mail()'s return value, the exit status),
// what arrived (Return-Path, Delivered-To, the stored header fields and
// body bytes) and handoff's delivery log line ([log] syslog = false
// puts it on handoff's standard error, which every caller here but atd
// passes through).
//
// Each caller runs in a private mount namespace whose passwd home is a
// fresh directory (handoff and s-nail write dead.letter there). Where a
// test needs handoff at /usr/sbin/sendmail (atd, and the built-in
// sendmail_path of PHP, git's default), the binary is bind-mounted there
// inside the namespace only.
//
// Not run for real: cron. The Debian cron daemon mails a job's output
// only after running it at the start of a minute; TestCallers replays
// its exact argv and input instead.
func TestRealCallers(t *testing.T) {
	e := startRelay(t)
	needNamespace(t)
	cfg := callerLogConfig(t, e, "realcallers.toml")
	t.Run("php", func(t *testing.T) { t.Parallel(); testRealPHP(t, e, cfg) })
	t.Run("git_send_email", func(t *testing.T) { t.Parallel(); testRealGitSendEmail(t, e, cfg) })
	t.Run("mutt", func(t *testing.T) { t.Parallel(); testRealMutt(t, e, cfg) })
	t.Run("s-nail", func(t *testing.T) { t.Parallel(); testRealSNail(t, e, cfg) })
	t.Run("bsd-mailx", func(t *testing.T) { t.Parallel(); testRealBSDMailx(t, e, cfg) })
	t.Run("at", func(t *testing.T) { t.Parallel(); testRealAt(t, e, cfg) })
}

// sendmailBin is the handoff binary by its sendmail name, as a caller's
// configuration names it.
func sendmailBin() string { return filepath.Join(binDir, "sendmail") }

// atUsrSbinSendmail bind-mounts the handoff binary at /usr/sbin/sendmail
// in the caller's namespace.
func atUsrSbinSendmail(t *testing.T) [2]string {
	t.Helper()
	if _, err := os.Stat("/usr/sbin/sendmail"); err != nil {
		// Postfix, which the tests need anyway, installs it.
		t.Fatalf("no /usr/sbin/sendmail to bind-mount handoff over (Debian package postfix): %v", err)
	}
	return [2]string{handoffBin, "/usr/sbin/sendmail"}
}

// arrival is what one message must look like on arrival.
type arrival struct {
	marker string
	// to maps each Dovecot user who must get the message to the
	// Delivered-To Dovecot records ("" with several recipients).
	to         map[string]string
	bcc        []string // addresses that must show in no header field
	returnPath string
	fields     []string // in order; anyDate, anyMsgID for generated values
	body       string
}

// checkArrival waits for the message, checks every stored copy, and
// returns the Postfix queue id it had.
func checkArrival(t *testing.T, e *relayEnv, d arrival) string {
	t.Helper()
	var users []string
	for u := range d.to {
		users = append(users, u)
	}
	got := e.delivered(t, d.marker, users...)
	for u, s := range got {
		s.check(t, u, d.returnPath, d.to[u], d.fields, d.body)
		s.checkNoBcc(t, u, d.bcc...)
	}
	return postfixQueueID(t, e, got[users[0]].get("Message-ID"))
}

// arrivalAddrs lists the addresses of an arrival's users.
func arrivalAddrs(d arrival) []string {
	var a []string
	for u := range d.to {
		a = append(a, u+"@example.test")
	}
	return a
}

// phpQuote makes s a single-quoted PHP string literal: only \ and '
// are escaped there; CR and LF stand as they are.
func phpQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// phpCase is one call of mail() in php-cli.
type phpCase struct {
	name string
	// sendmailPath is the -d sendmail_path=...; "" leaves PHP's built-in
	// default ("/usr/sbin/sendmail -t -i") with handoff bind-mounted
	// there.
	sendmailPath string
	ini          []string // more -d settings
	// args are mail()'s arguments as PHP expressions; {M} stands for the
	// marker.
	args func(marker string) []string
	want func(marker string) arrival
}

func testRealPHP(t *testing.T, e *relayEnv, cfg string) {
	php := callerPath("php")
	requireProgram(t, "PHP mail() (php-cli)", [2]string{php, "php-cli"})
	plain := sendmailBin() + " -t -i"
	cases := []phpCase{
		{
			// mail($to, $subject, $message) with PHP's built-in
			// sendmail_path, as on a host where handoff is
			// /usr/sbin/sendmail: PHP writes To and Subject with CRLF,
			// the message as given, and a CRLF; handoff adds the rest.
			name: "builtin_sendmail_path",
			args: func(m string) []string {
				return []string{"'bob@example.test'", phpQuote(m), phpQuote("Hello Bob,\nyour order has shipped.\n")}
			},
			want: func(m string) arrival {
				return arrival{marker: m, to: map[string]string{"bob": "bob@example.test"}, returnPath: "root@example.test",
					fields: []string{"To: bob@example.test", "Subject: " + m, "Date: " + anyDate, "Message-ID: " + anyMsgID,
						"From: root <root@example.test>"},
					body: "Hello Bob,\nyour order has shipped.\n\n"}
			},
		},
		{
			// sendmail_path = "/path/to/handoff/sendmail -t -i" in php.ini,
			// a message without a final newline.
			name:         "sendmail_path_t_i",
			sendmailPath: plain,
			args: func(m string) []string {
				return []string{"'alice@example.test'", phpQuote("Your code " + m), "'Your code is 482913'"}
			},
			want: func(m string) arrival {
				return arrival{marker: m, to: map[string]string{"alice": "alice@example.test"}, returnPath: "root@example.test",
					fields: []string{"To: alice@example.test", "Subject: Your code " + m, "Date: " + anyDate,
						"Message-ID: " + anyMsgID, "From: root <root@example.test>"},
					body: "Your code is 482913\n"}
			},
		},
		{
			// The fifth argument, -f, appended to sendmail_path: the
			// envelope sender; a From: in the additional headers string.
			name:         "fifth_argument_f",
			sendmailPath: plain,
			args: func(m string) []string {
				return []string{"'bob@example.test'", phpQuote(m), "'Password reset requested.'",
					"'From: Alice <alice@example.test>'", "'-falice@example.test'"}
			},
			want: func(m string) arrival {
				return arrival{marker: m, to: map[string]string{"bob": "bob@example.test"}, returnPath: "alice@example.test",
					fields: []string{"To: bob@example.test", "Subject: " + m, "From: Alice <alice@example.test>",
						"Date: " + anyDate, "Message-ID: " + anyMsgID},
					body: "Password reset requested.\n"}
			},
		},
		{
			// Additional headers as an array (PHP 7.2+): From, Cc, Bcc,
			// Reply-To and MIME fields. -t takes To, Cc and Bcc; Bcc is
			// removed.
			name:         "additional_headers",
			sendmailPath: plain,
			args: func(m string) []string {
				return []string{"'Bob <bob@example.test>'", phpQuote(m), phpQuote("Newsletter\n\nSee you.\n"),
					"['From' => 'Alice <alice@example.test>', 'Cc' => 'carol@example.test', 'Bcc' => 'dave@example.test', " +
						"'Reply-To' => 'Support <support@example.test>', 'MIME-Version' => '1.0', " +
						"'Content-Type' => 'text/plain; charset=UTF-8']"}
			},
			want: func(m string) arrival {
				return arrival{marker: m, to: map[string]string{"bob": "", "carol": "", "dave": ""}, bcc: []string{"dave@example.test"},
					returnPath: "root@example.test",
					fields: []string{"To: Bob <bob@example.test>", "Subject: " + m, "From: Alice <alice@example.test>",
						"Cc: carol@example.test", "Reply-To: Support <support@example.test>", "MIME-Version: 1.0",
						"Content-Type: text/plain; charset=UTF-8", "Date: " + anyDate, "Message-ID: " + anyMsgID},
					body: "Newsletter\n\nSee you.\n\n"}
			},
		},
		{
			// A body with LF line ends only, a lone dot (data with -i), a
			// line of two dots and one starting with "From ", and
			// additional headers joined by CRLF as PHP's manual says.
			name:         "lf_only_body",
			sendmailPath: plain,
			args: func(m string) []string {
				return []string{"'carol@example.test'", phpQuote(m),
					phpQuote("first line\n.\n..two dots\nFrom the start of a line\n\nlast line"),
					phpQuote("From: shop@example.test\r\nX-Order: 4711")}
			},
			want: func(m string) arrival {
				return arrival{marker: m, to: map[string]string{"carol": "carol@example.test"}, returnPath: "root@example.test",
					fields: []string{"To: carol@example.test", "Subject: " + m, "From: shop@example.test", "X-Order: 4711",
						"Date: " + anyDate, "Message-ID: " + anyMsgID},
					body: "first line\n.\n..two dots\nFrom the start of a line\n\nlast line\n"}
			},
		},
		{
			// mail.mixed_lf_and_crlf = On (PHP 8.2.4+): PHP writes LF
			// after its own header lines too, so the whole input is
			// LF-only.
			name:         "mixed_lf_and_crlf",
			sendmailPath: plain,
			ini:          []string{"mail.mixed_lf_and_crlf=On"},
			args: func(m string) []string {
				return []string{"'bob@example.test'", phpQuote(m), phpQuote("one\n.\ntwo\n"), "'From: alice@example.test'"}
			},
			want: func(m string) arrival {
				return arrival{marker: m, to: map[string]string{"bob": "bob@example.test"}, returnPath: "root@example.test",
					fields: []string{"To: bob@example.test", "Subject: " + m, "From: alice@example.test",
						"Date: " + anyDate, "Message-ID: " + anyMsgID},
					body: "one\n.\ntwo\n\n"}
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			m := newMarker("php-" + c.name)
			r := runPHP(t, cfg, c.sendmailPath, c.ini, c.args(m))
			if r.code != 0 || r.stdout != "mail() returned true\n" {
				t.Fatalf("php exit %d, stdout %q; want 0 and mail() true\nstderr:\n%s", r.code, r.stdout, r.stderr)
			}
			d := c.want(m)
			qid := checkArrival(t, e, d)
			logs, other := splitDeliveryLog(r.stderr)
			if len(other) > 0 {
				t.Errorf("stderr has more than the delivery log:\n%s", strings.Join(other, "\n"))
			}
			checkSentLog(t, e, logs, d.returnPath, qid, arrivalAddrs(d)...)
			if _, ok := r.deadLetter(t); ok {
				t.Error("dead.letter written for a delivered message")
			}
		})
	}

	t.Run("refused_recipient", func(t *testing.T) {
		// Postfix refuses the only recipient (550 5.1.1): handoff exits
		// 67, so mail() returns false; handoff says why on stderr,
		// which PHP passes through, logs the bounce, and keeps the
		// message in dead.letter.
		t.Parallel()
		m := newMarker("php-refused")
		r := runPHP(t, cfg, plain, nil, []string{"'nosuchuser@example.test'", phpQuote(m), "'lost?'"})
		if r.code != 0 || r.stdout != "mail() returned false\n" {
			t.Fatalf("php exit %d, stdout %q; want 0 and mail() false\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
		e.p.WaitLog(t, "NOQUEUE: reject: RCPT from", "550 5.1.1 <nosuchuser@example.test>")
		logs, other := splitDeliveryLog(r.stderr)
		checkRefusedStderr(t, other, "nosuchuser@example.test", true)
		checkBouncedLog(t, e, logs, "root@example.test", "nosuchuser@example.test")
		dl, ok := r.deadLetter(t)
		if !ok || !strings.Contains(dl, "Subject: "+m+"\n") || !strings.Contains(dl, "\n\nlost?\n") {
			t.Errorf("dead.letter (present: %v) lacks the message:\n%s", ok, dl)
		}
	})

	t.Run("one_recipient_refused", func(t *testing.T) {
		// One good and one refused recipient: bob gets the message,
		// handoff exits 67, and mail() returns false; no dead.letter.
		t.Parallel()
		m := newMarker("php-partial")
		r := runPHP(t, cfg, plain, nil, []string{"'bob@example.test, nosuchuser@example.test'", phpQuote(m), "'half'"})
		if r.code != 0 || r.stdout != "mail() returned false\n" {
			t.Fatalf("php exit %d, stdout %q; want 0 and mail() false\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
		d := arrival{marker: m, to: map[string]string{"bob": "bob@example.test"}, returnPath: "root@example.test",
			fields: []string{"To: bob@example.test, nosuchuser@example.test", "Subject: " + m, "Date: " + anyDate,
				"Message-ID: " + anyMsgID, "From: root <root@example.test>"},
			body: "half\n"}
		qid := checkArrival(t, e, d)
		logs, other := splitDeliveryLog(r.stderr)
		checkRefusedStderr(t, other, "nosuchuser@example.test", false)
		var sent, bounced []deliveryLogLine
		for _, l := range logs {
			if l.to == "bob@example.test" {
				sent = append(sent, l)
			} else {
				bounced = append(bounced, l)
			}
		}
		checkSentLog(t, e, sent, "root@example.test", qid, "bob@example.test")
		checkBouncedLog(t, e, bounced, "root@example.test", "nosuchuser@example.test")
		if _, ok := r.deadLetter(t); ok {
			t.Error("dead.letter written although bob got the message")
		}
	})
}

// runPHP calls mail() with args in php -n (no php.ini: PHP's built-in
// defaults), and prints what mail() returned. With sendmailPath ""
// PHP's built-in sendmail_path is used, checked to be
// "/usr/sbin/sendmail -t -i", with handoff bind-mounted there.
func runPHP(t *testing.T, cfg, sendmailPath string, ini, args []string) callerResult {
	t.Helper()
	argv := []string{callerPath("php"), "-n"}
	var binds [][2]string
	code := ""
	if sendmailPath == "" {
		binds = append(binds, atUsrSbinSendmail(t))
		code = `if (ini_get('sendmail_path') !== '/usr/sbin/sendmail -t -i') { echo 'sendmail_path is ', ini_get('sendmail_path'), "\n"; }` + "\n"
	} else {
		argv = append(argv, "-d", "sendmail_path="+sendmailPath)
	}
	for _, s := range ini {
		argv = append(argv, "-d", s)
	}
	code += "$ok = mail(" + strings.Join(args, ", ") + ");\n" +
		`echo $ok ? "mail() returned true\n" : "mail() returned false\n";`
	argv = append(argv, "-r", code)
	return runCaller(t, cfg, callerRun{argv: argv, binds: binds})
}

// checkRefusedStderr checks handoff's own lines for a refused recipient:
// "sendmail: RCPT: 550 5.1.1 ...", and, when the message was kept, the
// line naming dead.letter; nothing else.
func checkRefusedStderr(t *testing.T, lines []string, rcpt string, saved bool) {
	t.Helper()
	want := 1
	if saved {
		want++
	}
	if len(lines) != want {
		t.Errorf("%d lines on stderr besides the log, want %d:\n%s", len(lines), want, strings.Join(lines, "\n"))
	}
	if len(lines) > 0 && (!strings.HasPrefix(lines[0], "sendmail: "+rcpt+": ") || !strings.Contains(lines[0], "550 5.1.1 <"+rcpt+">")) {
		t.Errorf("stderr line %q, want \"sendmail: %s: ... 550 5.1.1 <%s> ...\"", lines[0], rcpt, rcpt)
	}
	if saved && len(lines) > 1 {
		if w := "sendmail: message saved in " + passwdHome + "/dead.letter"; lines[len(lines)-1] != w {
			t.Errorf("stderr line %q, want %q", lines[len(lines)-1], w)
		}
	}
}

// checkBouncedLog checks the one log line of a recipient Postfix
// refused.
func checkBouncedLog(t *testing.T, e *relayEnv, logs []deliveryLogLine, sender, rcpt string) {
	t.Helper()
	if len(logs) != 1 {
		t.Fatalf("%d log lines for the refused recipient, want 1: %+v", len(logs), logs)
	}
	l := logs[0]
	if l.to != rcpt || l.from != sender || l.status != "bounced" || !strings.Contains(l.reply, "550 5.1.1 <"+rcpt+">") ||
		l.relay != "postfix" || l.server != e.p.Addr {
		t.Errorf("log line %+v, want from=<%s>, to=<%s>, relay=postfix[%s], status=bounced (550 5.1.1 ...)", l, sender, rcpt, e.p.Addr)
	}
}

// patchGitEnv is the environment of the git commands that make the patches.
func patchGitEnv(home string) []string {
	return []string{"PATH=" + fixedPath, "HOME=" + home, "GIT_CONFIG_NOSYSTEM=1", "LC_ALL=C"}
}

// makePatches makes a repository with two commits on top of the first,
// and formats them as patches; it returns the patch files.
func makePatches(t *testing.T, m1, m2 string) (repo string, patches []string) {
	t.Helper()
	base := t.TempDir()
	repo = filepath.Join(base, "repo")
	if err := os.Mkdir(repo, 0o755); err != nil {
		t.Fatal(err)
	}
	env := patchGitEnv(base)
	git := func(args ...string) string { return runGit(t, repo, env, args...) }
	git("init", "-q")
	git("config", "user.name", "Alice Example")
	git("config", "user.email", "alice@example.test")
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(repo, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("data.txt", "a\n")
	git("add", "data.txt")
	git("commit", "-q", "-m", "initial")
	write("data.txt", "a\n.\n")
	git("commit", "-q", "-a", "-m", "data: add a lone dot "+m1+"\n\n"+
		"From the RFC: a line with a single dot ends the data, like this one:\n.\n"+
		"and this line must still arrive.\n\nSigned-off-by: Alice Example <alice@example.test>")
	write("data.txt", "a\n.\n..\nFrom here\n")
	git("commit", "-q", "-a", "-m", "data: dots and From "+m2+"\n\nSigned-off-by: Alice Example <alice@example.test>")
	out := git("format-patch", "-o", filepath.Join(base, "patches"), "-2")
	patches = stderrLines(out)
	if len(patches) != 2 {
		t.Fatalf("format-patch wrote %q, want 2 patches", out)
	}
	// The first patch's body has the lone dot that -i must keep.
	if !strings.Contains(patchBody(t, patches[0]), "\n.\nand this line must still arrive.\n") {
		t.Fatalf("git dropped the lone dot from the commit message:\n%s", patchBody(t, patches[0]))
	}
	return repo, patches
}

// patchBody is the body of a format-patch file: what follows its header.
func patchBody(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, body, ok := strings.Cut(string(b), "\n\n")
	if !ok {
		t.Fatalf("%s has no header", path)
	}
	return body
}

// sentBlock is what git send-email reports for one message on stdout:
// the Sendmail: command line and the header it wrote.
type sentBlock struct {
	sendmail string
	header   []string
	result   string
}

// parseSendEmail parses git send-email's report ("OK. Log says:",
// "Sendmail: CMD ARGS", the header, an empty line, "Result: OK").
func parseSendEmail(t *testing.T, stdout string) []sentBlock {
	t.Helper()
	var blocks []sentBlock
	parts := strings.Split(stdout, "OK. Log says:\n")
	for _, p := range parts[1:] {
		head, rest, ok := strings.Cut(p, "\n\n")
		if !ok {
			t.Fatalf("git send-email report without a header end:\n%s", p)
		}
		lines := strings.Split(head, "\n")
		b := sentBlock{sendmail: lines[0]}
		for _, l := range lines[1:] {
			if (strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t")) && len(b.header) > 0 {
				b.header[len(b.header)-1] += "\n" + l
				continue
			}
			b.header = append(b.header, l)
		}
		b.result, _, _ = strings.Cut(rest, "\n")
		blocks = append(blocks, b)
	}
	return blocks
}

func testRealGitSendEmail(t *testing.T, e *relayEnv, cfg string) {
	sendEmail := "/usr/lib/git-core/git-send-email"
	requireProgram(t, "git send-email", [2]string{callerPath("git"), "git"}, [2]string{sendEmail, "git-email"},
		// git-email only recommends it, but send-email does not start
		// without it.
		[2]string{"/usr/share/perl5/Mail/Address.pm", "libmailtools-perl"})

	t.Run("sendmail_cmd_series", func(t *testing.T) {
		// Two patches with --sendmail-cmd (git 2.33+), To, Cc, Bcc and
		// an envelope sender: git runs sh -c 'CMD "$@"' with
		// "-f alice@example.test -i bob carol dave" for each patch.
		t.Parallel()
		m1, m2 := newMarker("git-1"), newMarker("git-2")
		repo, patches := makePatches(t, m1, m2)
		argv := append([]string{callerPath("git"), "send-email", "--sendmail-cmd=" + sendmailBin(),
			"--from=Alice Example <alice@example.test>", "--to=bob@example.test", "--cc=carol@example.test",
			"--bcc=dave@example.test", "--envelope-sender=alice@example.test", "--suppress-cc=all", "--confirm=never"},
			patches...)
		r := runCaller(t, cfg, callerRun{argv: argv, dir: repo, env: []string{"GIT_CONFIG_NOSYSTEM=1"}})
		if r.code != 0 {
			t.Fatalf("git send-email exit %d", r.code)
		}
		blocks := parseSendEmail(t, r.stdout)
		if len(blocks) != 2 {
			t.Fatalf("git send-email reported %d messages, want 2:\n%s", len(blocks), r.stdout)
		}
		logs, other := splitDeliveryLog(r.stderr)
		if len(other) > 0 {
			t.Errorf("stderr has more than the delivery log:\n%s", strings.Join(other, "\n"))
		}
		if len(logs) != 6 {
			t.Fatalf("%d delivery log lines, want 3 per patch:\n%s", len(logs), r.stderr)
		}
		for i, b := range blocks {
			if want := "Sendmail: " + sendmailBin() + " -f alice@example.test -i bob@example.test carol@example.test dave@example.test"; b.sendmail != want {
				t.Errorf("patch %d: git ran %q, want %q", i+1, b.sendmail, want)
			}
			if b.result != "Result: OK" {
				t.Errorf("patch %d: %q", i+1, b.result)
			}
			d := arrival{marker: []string{m1, m2}[i], to: map[string]string{"bob": "", "carol": "", "dave": ""},
				bcc: []string{"dave@example.test"}, returnPath: "alice@example.test",
				// Exactly the header git says it wrote: handoff adds
				// nothing to a complete one.
				fields: b.header, body: patchBody(t, patches[i])}
			qid := checkArrival(t, e, d)
			checkSentLog(t, e, logs[3*i:3*i+3], "alice@example.test", qid, arrivalAddrs(d)...)
		}
		if !strings.Contains(strings.Join(blocks[1].header, "\n"), "\nIn-Reply-To: <") {
			t.Errorf("the second patch is not threaded to the first:\n%s", strings.Join(blocks[1].header, "\n"))
		}
	})

	t.Run("default_usr_sbin_sendmail", func(t *testing.T) {
		// No SMTP server or command configured: git send-email finds
		// /usr/sbin/sendmail (handoff, bind-mounted) and runs it with
		// "-i" and the recipient; no -f.
		t.Parallel()
		m1, m2 := newMarker("git-default-1"), newMarker("git-default-2")
		repo, patches := makePatches(t, m1, m2)
		argv := []string{callerPath("git"), "send-email", "--to=alice@example.test", "--suppress-cc=all", "--confirm=never", patches[0]}
		r := runCaller(t, cfg, callerRun{argv: argv, dir: repo, env: []string{"GIT_CONFIG_NOSYSTEM=1"}, binds: [][2]string{atUsrSbinSendmail(t)}})
		if r.code != 0 {
			t.Fatalf("git send-email exit %d", r.code)
		}
		blocks := parseSendEmail(t, r.stdout)
		if len(blocks) != 1 {
			t.Fatalf("git send-email reported %d messages, want 1:\n%s", len(blocks), r.stdout)
		}
		if want := "Sendmail: /usr/sbin/sendmail -i alice@example.test"; blocks[0].sendmail != want {
			t.Errorf("git ran %q, want %q", blocks[0].sendmail, want)
		}
		d := arrival{marker: m1, to: map[string]string{"alice": "alice@example.test"}, returnPath: "root@example.test",
			fields: blocks[0].header, body: patchBody(t, patches[0])}
		qid := checkArrival(t, e, d)
		logs, other := splitDeliveryLog(r.stderr)
		if len(other) > 0 {
			t.Errorf("stderr has more than the delivery log:\n%s", strings.Join(other, "\n"))
		}
		checkSentLog(t, e, logs, "root@example.test", qid, "alice@example.test")
	})
}

func testRealMutt(t *testing.T, e *relayEnv, cfg string) {
	mutt := callerPath("mutt")
	requireProgram(t, "mutt", [2]string{mutt, "mutt"})
	// mutt in batch mode, no system or user muttrc; $sendmail is
	// mutt's default flags with handoff's path; with use_envelope_from
	// mutt adds -f.
	muttArgv := func(subject string, extra ...string) []string {
		return append([]string{mutt, "-n", "-F", "/dev/null",
			"-e", `set sendmail="` + sendmailBin() + ` -oem -oi"`,
			"-e", `set from="Carol <carol@example.test>"`, "-e", "set use_envelope_from=yes",
			"-e", "set hostname=client.example.test", "-e", "set copy=no",
			"-s", subject}, extra...)
	}

	t.Run("batch", func(t *testing.T) {
		t.Parallel()
		m := newMarker("mutt")
		r := runCaller(t, cfg, callerRun{
			argv:  muttArgv("lunch? "+m, "-c", "alice@example.test", "-b", "dave@example.test", "--", "bob@example.test"),
			stdin: "Hi Bob,\n\nlunch at noon?\n.\n..\nFrom the office,\n-- \nCarol\n",
		})
		if r.code != 0 || r.stdout != "" {
			t.Fatalf("mutt exit %d, stdout %q; want 0 and none", r.code, r.stdout)
		}
		d := arrival{marker: m, to: map[string]string{"bob": "", "alice": "", "dave": ""}, bcc: []string{"dave@example.test"},
			returnPath: "carol@example.test",
			fields: []string{"Date: " + anyDate, "From: Carol <carol@example.test>", "To: bob@example.test",
				"Cc: alice@example.test", "Subject: lunch? " + m, "Message-ID: " + anyMsgID, "MIME-Version: 1.0",
				"Content-Type: text/plain; charset=us-ascii", "Content-Disposition: inline"},
			body: "Hi Bob,\n\nlunch at noon?\n.\n..\nFrom the office,\n-- \nCarol\n"}
		qid := checkArrival(t, e, d)
		logs, other := splitDeliveryLog(r.stderr)
		if len(other) > 0 {
			t.Errorf("stderr has more than the delivery log:\n%s", strings.Join(other, "\n"))
		}
		checkSentLog(t, e, logs, "carol@example.test", qid, arrivalAddrs(d)...)
	})

	t.Run("refused_recipient", func(t *testing.T) {
		// handoff's exit status 67 reaches mutt, which says so and
		// exits 1.
		t.Parallel()
		m := newMarker("mutt-refused")
		r := runCaller(t, cfg, callerRun{argv: muttArgv(m, "--", "nosuchuser@example.test"), stdin: "hello?\n"})
		if r.code != 1 {
			t.Errorf("mutt exit %d, want 1", r.code)
		}
		e.p.WaitLog(t, "NOQUEUE: reject: RCPT from", "550 5.1.1 <nosuchuser@example.test>")
		logs, other := splitDeliveryLog(r.stderr)
		var own, mutts []string
		for _, l := range other {
			if strings.HasPrefix(l, "sendmail: ") {
				own = append(own, l)
			} else {
				mutts = append(mutts, l)
			}
		}
		checkRefusedStderr(t, own, "nosuchuser@example.test", true)
		// mutt's -oem: handoff also mails an error report to the
		// envelope sender, from the null sender, and logs it.
		report := e.find(t, "carol", m)
		if rp := report.get("Return-Path"); rp != "<>" {
			t.Errorf("the error report has Return-Path %q, want <>", rp)
		}
		if !strings.Contains(report.body, "550 5.1.1") || !strings.Contains(report.body, "Subject: "+m) {
			t.Errorf("the error report lacks the refusal or the message:\n%s", report.raw)
		}
		var bounced, sent []deliveryLogLine
		for _, l := range logs {
			if l.status == "bounced" {
				bounced = append(bounced, l)
			} else {
				sent = append(sent, l)
			}
		}
		checkBouncedLog(t, e, bounced, "carol@example.test", "nosuchuser@example.test")
		checkSentLog(t, e, sent, "", postfixQueueID(t, e, report.get("Message-ID")), "carol@example.test")
		if !strings.Contains(strings.Join(mutts, "\n"), "Error sending message, child exited 67 (User unknown.).") {
			t.Errorf("mutt does not report exit status 67:\n%s", r.stderr)
		}
		if dl, ok := r.deadLetter(t); !ok || !strings.Contains(dl, m) {
			t.Errorf("dead.letter (present: %v) lacks the message:\n%s", ok, dl)
		}
	})
}

func testRealSNail(t *testing.T, e *relayEnv, cfg string) {
	snail := callerPath("s-nail")
	requireProgram(t, "s-nail", [2]string{snail, "s-nail"})
	// s-nail puts its version in User-Agent.
	out, err := exec.Command(snail, "-V").Output()
	if err != nil {
		t.Fatalf("s-nail -V: %v", err)
	}
	version, _, _ := strings.Cut(strings.TrimSpace(string(out)), ",")
	m := newMarker("s-nail")
	// -:/ loads no resource file; mta is handoff; -r gives the From:
	// and -f; s-nail runs "sendmail -i -f dave@example.test -- bob
	// carol alice" (argv[0] "sendmail", its mta-argv0).
	r := runCaller(t, cfg, callerRun{
		argv: []string{snail, "-:/", "-Smta=" + sendmailBin(), "-Shostname=client.example.test",
			"-r", "dave@example.test", "-s", "disk usage " + m, "-c", "carol@example.test", "-b", "alice@example.test",
			"bob@example.test"},
		stdin: "/dev/sda1  93%\n.\nFrom smartd: ok\n",
	})
	if r.code != 0 || r.stdout != "" {
		t.Fatalf("s-nail exit %d, stdout %q; want 0 and none", r.code, r.stdout)
	}
	d := arrival{marker: m, to: map[string]string{"bob": "", "carol": "", "alice": ""}, bcc: []string{"alice@example.test"},
		returnPath: "dave@example.test",
		fields: []string{"Date: " + anyDate, "From: dave@example.test", "To: bob@example.test", "Cc: carol@example.test",
			"Subject: disk usage " + m, "Message-ID: " + anyMsgID, "User-Agent: " + version,
			"MIME-Version: 1.0", "Content-Type: text/plain; charset=us-ascii", "Content-Transfer-Encoding: quoted-printable"},
		// s-nail itself protects the lone dot and the "From " line with
		// quoted-printable.
		body: "/dev/sda1  93%\n=2E\n=46rom smartd: ok\n"}
	qid := checkArrival(t, e, d)
	logs, other := splitDeliveryLog(r.stderr)
	if len(other) > 0 {
		t.Errorf("stderr has more than the delivery log:\n%s", strings.Join(other, "\n"))
	}
	checkSentLog(t, e, logs, "dave@example.test", qid, arrivalAddrs(d)...)
}

func testRealBSDMailx(t *testing.T, e *relayEnv, cfg string) {
	mailx := callerPath("bsd-mailx")
	requireProgram(t, "bsd-mailx", [2]string{mailx, "bsd-mailx"})
	// bsd-mailx runs /usr/sbin/sendmail unless the sendmail variable
	// says otherwise; MAILRC names the file that sets it. Debian's
	// bsd-mailx runs "sendmail -i -t [-f FROM]": recipients from the
	// header, Bcc included, which handoff must remove.
	mailrc := filepath.Join(t.TempDir(), "mailrc")
	if err := os.WriteFile(mailrc, []byte("set sendmail="+sendmailBin()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m := newMarker("bsd-mailx")
	r := runCaller(t, cfg, callerRun{
		argv: []string{mailx, "-s", "apticron " + m, "-c", "carol@example.test", "-b", "dave@example.test",
			"-a", "X-Origin: apticron", "bob@example.test"},
		// bsd-mailx names the locale's charset in Content-Type.
		env:   []string{"MAILRC=" + mailrc, "LANG=C.UTF-8"},
		stdin: "Paquets mis à jour ✓\n.\nlibc6 2.36-9+deb12u14\n",
	})
	if r.code != 0 || r.stdout != "" {
		t.Fatalf("bsd-mailx exit %d, stdout %q; want 0 and none", r.code, r.stdout)
	}
	d := arrival{marker: m, to: map[string]string{"bob": "", "carol": "", "dave": ""}, bcc: []string{"dave@example.test"},
		returnPath: "root@example.test",
		fields: []string{"To: bob@example.test", "Subject: apticron " + m, "Cc: carol@example.test", "X-Origin: apticron",
			"MIME-Version: 1.0", `Content-Type: text/plain; charset="UTF-8"`, "Content-Transfer-Encoding: 8bit",
			"Date: " + anyDate, "Message-ID: " + anyMsgID, "From: root <root@example.test>"},
		body: "Paquets mis à jour ✓\n.\nlibc6 2.36-9+deb12u14\n"}
	qid := checkArrival(t, e, d)
	logs, other := splitDeliveryLog(r.stderr)
	if len(other) > 0 {
		t.Errorf("stderr has more than the delivery log:\n%s", strings.Join(other, "\n"))
	}
	checkSentLog(t, e, logs, "root@example.test", qid, arrivalAddrs(d)...)
}

// atJobLine is what at says about the job it queued.
var atJobLine = regexp.MustCompile(`(?m)^job ([0-9]+) at `)

func testRealAt(t *testing.T, e *relayEnv, cfg string) {
	at, atd := callerPath("at"), callerPath("atd")
	requireProgram(t, "at", [2]string{at, "at"}, [2]string{atd, "at"})
	// at queues the job in a private spool and "atd -f -s" runs the
	// queue once; atd mails the job's output with
	// execl("/usr/sbin/sendmail", "sendmail", "-i", owner). It sends
	// the mailer's stdout and stderr to the job's (deleted) output
	// file, so /usr/sbin/sendmail is a shim that keeps handoff's argv,
	// stderr and exit status for the test, and runs handoff with
	// atd's arguments.
	dir := t.TempDir()
	spool := filepath.Join(dir, "atjobs")
	outSpool := filepath.Join(dir, "atspool")
	results := filepath.Join(dir, "results")
	for _, d := range []string{spool, outSpool, results} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The spool as Debian's package makes it: daemon's, mode 1770,
	// with the job counter.
	daemonUID, daemonGID := daemonIDs(t)
	for _, d := range []string{spool, outSpool} {
		if err := os.Chown(d, daemonUID, daemonGID); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, 0o1770); err != nil {
			t.Fatal(err)
		}
	}
	seq := filepath.Join(spool, ".SEQ")
	if err := os.WriteFile(seq, []byte("0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(seq, daemonUID, daemonGID); err != nil {
		t.Fatal(err)
	}
	shim := filepath.Join(dir, "sendmail-shim")
	writeCallerScript(t, shim, fmt.Sprintf(`#!/bin/sh
# /usr/sbin/sendmail for atd in the test's namespace.
printf '%%s\n' "$@" >%[1]s/argv
HANDOFF_CONFIG=%[2]s %[3]s "$@" 2>%[1]s/stderr
status=$?
echo $status >%[1]s/status.tmp && mv %[1]s/status.tmp %[1]s/status
exit $status
`, results, cfg, sendmailBin()))

	m := newMarker("at")
	r := runCaller(t, cfg, callerRun{
		argv:  []string{"/bin/sh", "-c", `at now && exec "$0" -f -s`, atd},
		stdin: "echo 'backup " + m + " finished'\necho .\necho 'after the dot'\n",
		binds: [][2]string{{spool, "/var/spool/cron/atjobs"}, {outSpool, "/var/spool/cron/atspool"}, {shim, "/usr/sbin/sendmail"}},
	})
	if r.code != 0 {
		t.Fatalf("at/atd exit %d", r.code)
	}
	job := atJobLine.FindStringSubmatch(r.stderr)
	if job == nil {
		t.Fatalf("at did not say which job it queued:\n%s", r.stderr)
	}
	// atd sends the mail after the job, in the background.
	status := waitCallerFile(t, filepath.Join(results, "status"), 30*time.Second)
	argv, _ := os.ReadFile(filepath.Join(results, "argv"))
	stderr, _ := os.ReadFile(filepath.Join(results, "stderr"))
	if status != "0\n" {
		t.Fatalf("handoff run by atd exited %q\nstderr:\n%s", strings.TrimSpace(status), stderr)
	}
	if string(argv) != "-i\nroot\n" {
		t.Errorf("atd ran sendmail with %q, want -i root", argv)
	}
	d := arrival{marker: m, to: map[string]string{"bob": "bob@example.test"}, returnPath: "root@example.test",
		fields: []string{fmt.Sprintf("Subject: Output from your job %8s", job[1]), "To: bob@example.test",
			"Date: " + anyDate, "Message-ID: " + anyMsgID, "From: root <root@example.test>"},
		body: "backup " + m + " finished\n.\nafter the dot\n"}
	qid := checkArrival(t, e, d)
	logs, other := splitDeliveryLog(string(stderr))
	if len(other) > 0 {
		t.Errorf("handoff's stderr has more than the delivery log:\n%s", strings.Join(other, "\n"))
	}
	checkSentLog(t, e, logs, "root@example.test", qid, "bob@example.test")
}

// daemonIDs are the ids of the user and group "daemon", who own at's
// spool.
func daemonIDs(t *testing.T) (int, int) {
	t.Helper()
	u, err := user.Lookup("daemon")
	if err != nil {
		t.Fatalf("no user daemon, who owns at's spool: %v", err)
	}
	g, err := user.LookupGroup("daemon")
	if err != nil {
		t.Fatalf("no group daemon, which owns at's spool: %v", err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(g.Gid)
	if err1 != nil || err2 != nil {
		t.Fatalf("user daemon %s, group daemon %s", u.Uid, g.Gid)
	}
	return uid, gid
}

// waitCallerFile waits for a file to appear and returns its content.
func waitCallerFile(t *testing.T, path string, limit time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		b, err := os.ReadFile(path)
		if err == nil {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %v", path, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
