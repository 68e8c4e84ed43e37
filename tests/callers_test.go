package tests

import (
	"encoding/base64"
	"strings"
	"testing"
)

// callerCase is one real caller of PRODUCT.md §2: the exact argv it
// executes (research/sendmail-compat.md §5), the message it writes, and
// what must arrive.
type callerCase struct {
	name string
	argv []string
	// input is the message the caller writes, with the test's marker.
	input func(marker string) string
	// to maps each Dovecot user that must get the message to the
	// Delivered-To Dovecot must record ("" when the message had several
	// recipients: Dovecot then records none). Every other user must not
	// get it.
	to map[string]string
	// bcc are addresses that must not appear in any stored header.
	bcc []string
	// returnPath is the envelope sender.
	returnPath string
	// fields are the header fields that must arrive, in order (anyDate,
	// anyMsgID for generated values); body the body bytes (LF endings),
	// where {MARKER} stands for the marker.
	fields func(marker string) []string
	body   string
	// stderr is what must be on standard error: nothing, by default.
	stderr string
}

// The running user is root (postfix needs it), whose passwd full name is
// "root": it names the sender of a message without From: when neither -F
// nor $NAME says otherwise. Without -f the envelope sender is
// root@example.test.
var callerCases = []callerCase{
	{
		// PHP 8 mail($to, $subject, $message) with the default
		// sendmail_path, run through popen(): CRLF after the header
		// lines it writes, the script's body as given (LF), and a CRLF
		// after it. No From: PHP leaves it to sendmail.
		name: "php_mail",
		argv: []string{"/usr/sbin/sendmail", "-t", "-i"},
		input: func(m string) string {
			return "To: bob@example.test\r\nSubject: " + m + "\r\n\r\n" +
				"Hello Bob,\nyour order has shipped.\n.\nA line with a single dot is data with -i.\r\n"
		},
		to:         map[string]string{"bob": "bob@example.test"},
		returnPath: "root@example.test",
		fields: func(m string) []string {
			return []string{"To: bob@example.test", "Subject: " + m, "Date: " + anyDate, "Message-ID: " + anyMsgID,
				"From: root <root@example.test>"}
		},
		body: "Hello Bob,\nyour order has shipped.\n.\nA line with a single dot is data with -i.\n",
	},
	{
		// mail($to, $subject, $message, "From: ...", "-falice@example.test"):
		// the fifth argument is appended to sendmail_path.
		name: "php_mail_f",
		argv: []string{"/usr/sbin/sendmail", "-t", "-i", "-falice@example.test"},
		input: func(m string) string {
			return "To: bob@example.test\r\nSubject: " + m + "\r\nFrom: Alice <alice@example.test>\r\n\r\n" +
				"Password reset requested.\nIgnore this mail if it was not you.\r\n"
		},
		to:         map[string]string{"bob": "bob@example.test"},
		returnPath: "alice@example.test",
		fields: func(m string) []string {
			return []string{"To: bob@example.test", "Subject: " + m, "From: Alice <alice@example.test>",
				"Date: " + anyDate, "Message-ID: " + anyMsgID}
		},
		body: "Password reset requested.\nIgnore this mail if it was not you.\n",
	},
	{
		// The fifth argument written with a space, "-f alice@example.test":
		// popen()'s shell makes it two arguments.
		name: "php_mail_f_separate",
		argv: []string{"/usr/sbin/sendmail", "-t", "-i", "-f", "alice@example.test"},
		input: func(m string) string {
			return "To: bob@example.test\r\nSubject: " + m + "\r\n\r\nNo From: in this one.\r\n"
		},
		to:         map[string]string{"bob": "bob@example.test"},
		returnPath: "alice@example.test",
		fields: func(m string) []string {
			return []string{"To: bob@example.test", "Subject: " + m, "Date: " + anyDate, "Message-ID: " + anyMsgID,
				"From: root <alice@example.test>"}
		},
		body: "No From: in this one.\n",
	},
	{
		// mail() with additional headers joined by CRLF, as PHP's manual
		// says, and a body with LF only: -t takes To, Cc and Bcc; Bcc
		// is removed; the bare name in Reply-To is qualified.
		name: "php_mail_headers",
		argv: []string{"/usr/sbin/sendmail", "-t", "-i"},
		input: func(m string) string {
			return "To: Bob <bob@example.test>\r\nSubject: " + m + "\r\n" +
				"From: Alice <alice@example.test>\r\nCc: carol@example.test\r\nBcc: dave@example.test\r\n" +
				"Reply-To: www-data\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n" +
				"Newsletter\n\n.hidden line starting with a dot\nend\n\r\n"
		},
		to:         map[string]string{"bob": "", "carol": "", "dave": ""},
		bcc:        []string{"dave@example.test"},
		returnPath: "root@example.test",
		fields: func(m string) []string {
			return []string{"To: Bob <bob@example.test>", "Subject: " + m, "From: Alice <alice@example.test>",
				"Cc: carol@example.test", "Reply-To: www-data@example.test", "MIME-Version: 1.0",
				"Content-Type: text/plain; charset=UTF-8", "Date: " + anyDate, "Message-ID: " + anyMsgID}
		},
		body: "Newsletter\n\n.hidden line starting with a dot\nend\n\n",
	},
	{
		// Debian cron 3.0pl1-162: the recipient is MAILTO or the
		// crontab's owner, unqualified; root is aliased to bob. Cron
		// writes its own From:, whose bare name goes through the
		// aliases like the other address fields (PRODUCT.md §3).
		name: "debian_cron",
		argv: []string{"/usr/sbin/sendmail", "-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"},
		input: func(m string) string {
			return "From: root (Cron Daemon)\nTo: root\nSubject: Cron <root@client> /usr/local/bin/backup " + m + "\n" +
				"MIME-Version: 1.0\nContent-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: 8bit\n" +
				"X-Cron-Env: <SHELL=/bin/sh>\nX-Cron-Env: <HOME=/root>\nX-Cron-Env: <PATH=/usr/bin:/bin>\nX-Cron-Env: <LOGNAME=root>\n\n" +
				"sauvegarde terminée ✓\n3 fichiers copiés\n"
		},
		to:         map[string]string{"bob": "bob@example.test"},
		returnPath: "root@example.test",
		fields: func(m string) []string {
			return []string{"From: bob@example.test (Cron Daemon)", "To: bob@example.test",
				"Subject: Cron <root@client> /usr/local/bin/backup " + m,
				"MIME-Version: 1.0", "Content-Type: text/plain; charset=UTF-8", "Content-Transfer-Encoding: 8bit",
				"X-Cron-Env: <SHELL=/bin/sh>", "X-Cron-Env: <HOME=/root>", "X-Cron-Env: <PATH=/usr/bin:/bin>", "X-Cron-Env: <LOGNAME=root>",
				"Date: " + anyDate, "Message-ID: " + anyMsgID}
		},
		body: "sauvegarde terminée ✓\n3 fichiers copiés\n",
	},
	{
		// Older Debian cron orders the options differently; with a
		// message that has no From:, -F names the sender.
		name: "debian_cron_old_order_no_from",
		argv: []string{"/usr/sbin/sendmail", "-i", "-FCronDaemon", "-B8BITMIME", "-oem", "root"},
		input: func(m string) string {
			return "To: root\nSubject: Cron <root@client> true " + m + "\n\nok\n"
		},
		to:         map[string]string{"bob": "bob@example.test"},
		returnPath: "root@example.test",
		fields: func(m string) []string {
			return []string{"To: bob@example.test", "Subject: Cron <root@client> true " + m,
				"Date: " + anyDate, "Message-ID: " + anyMsgID, "From: CronDaemon <root@example.test>"}
		},
		body: "ok\n",
	},
	{
		// cronie: -t, and -f with the bare login name.
		name: "cronie",
		argv: []string{"/usr/sbin/sendmail", "-FCronDaemon", "-i", "-odi", "-oem", "-oi", "-t", "-f", "root"},
		input: func(m string) string {
			return "From: \"(Cron Daemon)\" <root>\nTo: root\nSubject: Cron <root@client> run-parts /etc/cron.hourly " + m + "\n" +
				"Content-Type: text/plain; charset=UTF-8\nAuto-Submitted: auto-generated\nPrecedence: bulk\n" +
				"X-Cron-Env: <LANG=C.UTF-8>\nX-Cron-Env: <SHELL=/bin/sh>\n\n" +
				"/etc/cron.hourly/logrotate: done\n"
		},
		to:         map[string]string{"bob": "bob@example.test"},
		returnPath: "root@example.test",
		fields: func(m string) []string {
			return []string{"From: \"(Cron Daemon)\" <bob@example.test>", "To: bob@example.test",
				"Subject: Cron <root@client> run-parts /etc/cron.hourly " + m,
				"Content-Type: text/plain; charset=UTF-8", "Auto-Submitted: auto-generated", "Precedence: bulk",
				"X-Cron-Env: <LANG=C.UTF-8>", "X-Cron-Env: <SHELL=/bin/sh>",
				"Date: " + anyDate, "Message-ID: " + anyMsgID}
		},
		body: "/etc/cron.hourly/logrotate: done\n",
	},
	{
		// systemd-cron's mail_for_job: -B's value is a separate
		// argument, which must not become a recipient.
		name: "systemd_cron",
		argv: []string{"/usr/sbin/sendmail", "-i", "-B", "8BITMIME", "root"},
		input: func(m string) string {
			return "Content-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: binary\n" +
				"Date: Sat, 28 Nov 2026 12:00:00 +0000\nFrom: root (systemd-cron)\nTo: root\n" +
				"Subject: [client] failure cron-daily.service " + m + "\nX-Mailer: systemd-cron 2.3.3\nAuto-Submitted: auto-generated\n\n" +
				"× cron-daily.service - [Cron] \"daily\"\n     Active: failed (Result: exit-code)\n"
		},
		to:         map[string]string{"bob": "bob@example.test"},
		returnPath: "root@example.test",
		fields: func(m string) []string {
			return []string{"Content-Type: text/plain; charset=UTF-8", "Content-Transfer-Encoding: binary",
				"Date: Sat, 28 Nov 2026 12:00:00 +0000", "From: bob@example.test (systemd-cron)", "To: bob@example.test",
				"Subject: [client] failure cron-daily.service " + m, "X-Mailer: systemd-cron 2.3.3", "Auto-Submitted: auto-generated",
				"Message-ID: " + anyMsgID}
		},
		body: "× cron-daily.service - [Cron] \"daily\"\n     Active: failed (Result: exit-code)\n",
	},
	{
		// atd: execl(SENDMAIL, "sendmail", "-i", mailname, NULL) with
		// the job owner's bare name.
		name: "at",
		argv: []string{"sendmail", "-i", "alice"},
		input: func(m string) string {
			return "Subject: Output from your job        7\nTo: alice\n\nbackup " + m + " finished\n"
		},
		to:         map[string]string{"alice": "alice@example.test"},
		returnPath: "root@example.test",
		fields: func(m string) []string {
			return []string{"Subject: Output from your job        7", "To: alice@example.test",
				"Date: " + anyDate, "Message-ID: " + anyMsgID, "From: root <root@example.test>"}
		},
		body: "backup {MARKER} finished\n",
	},
	{
		// mutt: $sendmail "/usr/sbin/sendmail -oem -oi", then "--" and
		// every recipient (To, Cc).
		name: "mutt",
		argv: []string{"/usr/sbin/sendmail", "-oem", "-oi", "--", "bob@example.test", "alice@example.test"},
		input: func(m string) string {
			return "Date: Sat, 28 Nov 2026 13:00:00 +0100\nFrom: Carol <carol@example.test>\nTo: Bob <bob@example.test>\n" +
				"Cc: alice@example.test\nSubject: lunch? " + m + "\nMessage-ID: <" + m + "@client.example.test>\n" +
				"MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\nContent-Disposition: inline\n" +
				"User-Agent: Mutt/2.2.9 (2022-11-12)\n\nHi Bob,\n\nlunch at noon?\n.\n-- \nCarol\n"
		},
		to:         map[string]string{"bob": "", "alice": ""},
		returnPath: "root@example.test",
		fields: func(m string) []string {
			return []string{"Date: Sat, 28 Nov 2026 13:00:00 +0100", "From: Carol <carol@example.test>", "To: Bob <bob@example.test>",
				"Cc: alice@example.test", "Subject: lunch? " + m, "Message-ID: <" + m + "@client.example.test>",
				"MIME-Version: 1.0", "Content-Type: text/plain; charset=us-ascii", "Content-Disposition: inline",
				"User-Agent: Mutt/2.2.9 (2022-11-12)"}
		},
		body: "Hi Bob,\n\nlunch at noon?\n.\n-- \nCarol\n",
	},
	{
		// git send-email: "-i" and the recipients, no "--"; a patch
		// with a lone "." and a body line starting with "From ".
		name: "git_send_email",
		argv: []string{"/usr/sbin/sendmail", "-i", "bob@example.test"},
		input: func(m string) string {
			return "From: Alice Example <alice@example.test>\nTo: bob@example.test\n" +
				"Subject: [PATCH] relay: stop at a lone dot " + m + "\nDate: Sat, 28 Nov 2026 12:00:00 +0000\n" +
				"Message-ID: <20261128120000.4242-1-" + m + "@example.test>\nX-Mailer: git-send-email 2.39.5\n" +
				"MIME-Version: 1.0\nContent-Transfer-Encoding: 8bit\n\n" +
				"From the RFC: a line with a single dot ends the data, like this one:\n.\n\n" +
				"Signed-off-by: Alice Example <alice@example.test>\n---\n relay/data.go | 2 +-\n\n" +
				"diff --git a/relay/data.go b/relay/data.go\n--- a/relay/data.go\n+++ b/relay/data.go\n" +
				"@@ -1,2 +1,2 @@\n-.\n+..\n \n-- \n2.39.5\n\n"
		},
		to:         map[string]string{"bob": "bob@example.test"},
		returnPath: "root@example.test",
		fields: func(m string) []string {
			return []string{"From: Alice Example <alice@example.test>", "To: bob@example.test",
				"Subject: [PATCH] relay: stop at a lone dot " + m, "Date: Sat, 28 Nov 2026 12:00:00 +0000",
				"Message-ID: <20261128120000.4242-1-" + m + "@example.test>", "X-Mailer: git-send-email 2.39.5",
				"MIME-Version: 1.0", "Content-Transfer-Encoding: 8bit"}
		},
		body: "From the RFC: a line with a single dot ends the data, like this one:\n.\n\n" +
			"Signed-off-by: Alice Example <alice@example.test>\n---\n relay/data.go | 2 +-\n\n" +
			"diff --git a/relay/data.go b/relay/data.go\n--- a/relay/data.go\n+++ b/relay/data.go\n" +
			"@@ -1,2 +1,2 @@\n-.\n+..\n \n-- \n2.39.5\n\n",
	},
	{
		// Rails (mail gem ≥ 2.8): ["/usr/sbin/sendmail", "-i", "-f",
		// from, "--", to...]; a folded Content-Type stays folded.
		name: "rails",
		argv: []string{"/usr/sbin/sendmail", "-i", "-f", "alice@example.test", "--", "bob@example.test"},
		input: func(m string) string {
			return "Date: Sat, 28 Nov 2026 12:00:00 +0000\nFrom: alice@example.test\nTo: bob@example.test\n" +
				"Message-ID: <6763a2b0c1f0d_1a2b-" + m + "@client.example.test.mail>\nSubject: Welcome " + m + "\n" +
				"Mime-Version: 1.0\nContent-Type: text/plain;\n charset=UTF-8\nContent-Transfer-Encoding: 7bit\n\n" +
				"Welcome to example.test, Bob!\n"
		},
		to:         map[string]string{"bob": "bob@example.test"},
		returnPath: "alice@example.test",
		fields: func(m string) []string {
			return []string{"Date: Sat, 28 Nov 2026 12:00:00 +0000", "From: alice@example.test", "To: bob@example.test",
				"Message-ID: <6763a2b0c1f0d_1a2b-" + m + "@client.example.test.mail>", "Subject: Welcome " + m,
				"Mime-Version: 1.0", "Content-Type: text/plain;\n charset=UTF-8", "Content-Transfer-Encoding: 7bit"}
		},
		body: "Welcome to example.test, Bob!\n",
	},
	{
		// sudo: mailerpath with mailerflags "-t", argv[0] the
		// basename; To is mailto (root), From the invoking user's bare
		// login name.
		name: "sudo",
		argv: []string{"sendmail", "-t"},
		input: func(m string) string {
			return "To: root\nFrom: alice\nAuto-Submitted: auto-generated\n" +
				"Subject: *** SECURITY information for client.example.test *** " + m + "\n\n" +
				"client.example.test : Nov 28 12:00:00 : alice : user NOT in sudoers ; TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id\n\n"
		},
		to:         map[string]string{"bob": "bob@example.test"},
		returnPath: "root@example.test",
		fields: func(m string) []string {
			return []string{"To: bob@example.test", "From: alice@example.test", "Auto-Submitted: auto-generated",
				"Subject: *** SECURITY information for client.example.test *** " + m,
				"Date: " + anyDate, "Message-ID: " + anyMsgID}
		},
		body: "client.example.test : Nov 28 12:00:00 : alice : user NOT in sudoers ; TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id\n\n",
	},
	{
		// s-nail (mailx): mta-argv0 "sendmail", "-i", "--", recipients.
		name: "mailx",
		argv: []string{"sendmail", "-i", "--", "bob@example.test"},
		input: func(m string) string {
			return "Date: Sat, 28 Nov 2026 12:00:00 +0000\nTo: bob@example.test\nSubject: disk usage " + m + "\n" +
				"Message-ID: <20261128120000.x1y2z3-" + m + "@client.example.test>\nUser-Agent: s-nail v14.9.24\n" +
				"MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\nContent-Transfer-Encoding: 7bit\n\n" +
				"/dev/sda1  93%\n"
		},
		to:         map[string]string{"bob": "bob@example.test"},
		returnPath: "root@example.test",
		fields: func(m string) []string {
			return []string{"Date: Sat, 28 Nov 2026 12:00:00 +0000", "To: bob@example.test", "Subject: disk usage " + m,
				"Message-ID: <20261128120000.x1y2z3-" + m + "@client.example.test>", "User-Agent: s-nail v14.9.24",
				"MIME-Version: 1.0", "Content-Type: text/plain; charset=us-ascii", "Content-Transfer-Encoding: 7bit",
				"From: root <root@example.test>"}
		},
		body: "/dev/sda1  93%\n",
	},
	{
		// rmail (UUCP): called by its own name, recipients as
		// arguments, -i -oee implied; the leading "From " line is
		// dropped.
		name: "rmail",
		argv: []string{"rmail", "bob@example.test"},
		input: func(m string) string {
			return "From alice  Sat Nov 28 12:00:00 2026 remote from uuhost\n" +
				"From: alice@example.test\nTo: bob@example.test\nSubject: uucp " + m + "\n\nover the wire\n.\nstill here\n"
		},
		to:         map[string]string{"bob": "bob@example.test"},
		returnPath: "root@example.test",
		fields: func(m string) []string {
			return []string{"From: alice@example.test", "To: bob@example.test", "Subject: uucp " + m,
				"Date: " + anyDate, "Message-ID: " + anyMsgID}
		},
		body: "over the wire\n.\nstill here\n",
	},
	{
		// anacron: no -i; its own From: with a bare name.
		name: "anacron",
		argv: []string{"/usr/sbin/sendmail", "-FAnacron", "-odi", "root"},
		input: func(m string) string {
			return "From: Anacron <root>\nTo: root\nContent-Type: text/plain; charset=\"UTF-8\"\n" +
				"Subject: Anacron job 'cron.daily' on client " + m + "\nContent-Transfer-Encoding: 8bit\n\n" +
				"/etc/cron.daily/man-db:\nmandb: can't update index cache\n"
		},
		to:         map[string]string{"bob": "bob@example.test"},
		returnPath: "root@example.test",
		fields: func(m string) []string {
			return []string{"From: Anacron <bob@example.test>", "To: bob@example.test",
				"Content-Type: text/plain; charset=\"UTF-8\"", "Subject: Anacron job 'cron.daily' on client " + m,
				"Content-Transfer-Encoding: 8bit", "Date: " + anyDate, "Message-ID: " + anyMsgID}
		},
		body: "/etc/cron.daily/man-db:\nmandb: can't update index cache\n",
	},
	{
		// Older atd releases: no -i, so a lone "." in the job's output
		// ends the message; the rest is read, discarded, and counted
		// in a warning.
		name: "at_old_no_i",
		argv: []string{"sendmail", "alice"},
		input: func(m string) string {
			return "Subject: Output from your job        8\nTo: alice\n\njob " + m + "\n.\nafter the dot\n"
		},
		to:         map[string]string{"alice": "alice@example.test"},
		returnPath: "root@example.test",
		fields: func(m string) []string {
			return []string{"Subject: Output from your job        8", "To: alice@example.test",
				"Date: " + anyDate, "Message-ID: " + anyMsgID, "From: root <root@example.test>"}
		},
		body:   "job {MARKER}\n",
		stderr: "sendmail: warning: 14 bytes after the lone \".\" line were discarded (use -i to keep them)\n",
	},
	{
		// logwatch: mailer "/usr/sbin/sendmail -t", From: Logwatch
		// (a bare name), and very long lines: no line over 998 octets
		// may go on the wire, so they arrive broken Postfix-style
		// (CRLF SP).
		name: "logwatch_long_lines",
		argv: []string{"/usr/sbin/sendmail", "-t"},
		input: func(m string) string {
			return "To: root\nFrom: Logwatch\nSubject: Logwatch for client (Linux) " + m + "\n" +
				"Auto-Submitted: auto-generated\nMIME-Version: 1.0\nContent-Transfer-Encoding: 7bit\n" +
				"Content-Type: text/plain; charset=\"iso-8859-1\"\n\n" + logwatchBody
		},
		to:         map[string]string{"bob": "bob@example.test"},
		returnPath: "root@example.test",
		fields: func(m string) []string {
			return []string{"To: bob@example.test", "From: Logwatch@example.test", "Subject: Logwatch for client (Linux) " + m,
				"Auto-Submitted: auto-generated", "MIME-Version: 1.0", "Content-Transfer-Encoding: 7bit",
				"Content-Type: text/plain; charset=\"iso-8859-1\"", "Date: " + anyDate, "Message-ID: " + anyMsgID}
		},
		body: breakLongLines(logwatchBody, 998),
	},
	{
		// PHP mail() with a MIME attachment of 300 KB: the body goes
		// through the spill file and must arrive byte for byte.
		name: "php_mail_attachment",
		argv: []string{"/usr/sbin/sendmail", "-t", "-i"},
		input: func(m string) string {
			return "To: carol@example.test\r\nSubject: " + m + "\r\nFrom: Shop <alice@example.test>\r\n" +
				"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n" +
				strings.ReplaceAll(attachmentBody, "\n", "\r\n") + "\r\n"
		},
		to:         map[string]string{"carol": "carol@example.test"},
		returnPath: "root@example.test",
		fields: func(m string) []string {
			return []string{"To: carol@example.test", "Subject: " + m, "From: Shop <alice@example.test>",
				"MIME-Version: 1.0", "Content-Type: multipart/mixed; boundary=\"b1\"", "Date: " + anyDate, "Message-ID: " + anyMsgID}
		},
		body: attachmentBody + "\n",
	},
	{
		// mail() to "undisclosed-recipients:;" with the real
		// recipients in Bcc only.
		name: "php_mail_bcc_only",
		argv: []string{"/usr/sbin/sendmail", "-t", "-i"},
		input: func(m string) string {
			return "To: undisclosed-recipients:;\r\nSubject: " + m + "\r\nFrom: alice@example.test\r\n" +
				"Bcc: carol@example.test, Dave <dave@example.test>\r\n\r\nHello, all.\n"
		},
		to:         map[string]string{"carol": "", "dave": ""},
		bcc:        []string{"carol@example.test", "dave@example.test"},
		returnPath: "root@example.test",
		fields: func(m string) []string {
			return []string{"To: undisclosed-recipients:;", "Subject: " + m, "From: alice@example.test",
				"Date: " + anyDate, "Message-ID: " + anyMsgID}
		},
		body: "Hello, all.\n",
	},
	{
		// Dovecot's Sieve vacation (smtp-submit without
		// submission_host): "-i -f <> --" and the recipient; the
		// envelope sender is null.
		name: "dovecot_vacation",
		argv: []string{"/usr/sbin/sendmail", "-i", "-f", "<>", "--", "alice@example.test"},
		input: func(m string) string {
			return "Message-ID: <dovecot-sieve-" + m + "@client.example.test>\r\nDate: Sat, 28 Nov 2026 12:00:00 +0000\r\n" +
				"X-Sieve: Pigeonhole Sieve 0.5.19\r\nFrom: <bob@example.test>\r\nTo: <alice@example.test>\r\n" +
				"Subject: Auto: Out of office " + m + "\r\nAuto-Submitted: auto-replied (vacation)\r\n" +
				"Precedence: bulk\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n" +
				"Content-Transfer-Encoding: 8bit\r\n\r\nI am away until Monday.\r\n"
		},
		to:         map[string]string{"alice": "alice@example.test"},
		returnPath: "",
		fields: func(m string) []string {
			return []string{"Message-ID: <dovecot-sieve-" + m + "@client.example.test>", "Date: Sat, 28 Nov 2026 12:00:00 +0000",
				"X-Sieve: Pigeonhole Sieve 0.5.19", "From: <bob@example.test>", "To: <alice@example.test>",
				"Subject: Auto: Out of office " + m, "Auto-Submitted: auto-replied (vacation)", "Precedence: bulk",
				"MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit"}
		},
		body: "I am away until Monday.\n",
	},
	{
		// A script that passes a raw UTF-8 subject and display name,
		// but only ASCII addresses. PRODUCT.md §3: "8-bit content →
		// BODY=8BITMIME when offered; non-ASCII addresses → SMTPUTF8".
		// Asking for SMTPUTF8 here makes any hop without it bounce the
		// message after sendmail exited 0, as Postfix does on its way
		// to Dovecot 2.3's LMTP.
		name: "php_mail_utf8_subject",
		argv: []string{"/usr/sbin/sendmail", "-t", "-i"},
		input: func(m string) string {
			return "To: Bob <bob@example.test>\r\nSubject: Bestellung bestätigt – " + m + "\r\n" +
				"From: Bäckerei Müller <alice@example.test>\r\nMessage-ID: <" + m + "@client.example.test>\r\n" +
				"Content-Type: text/plain; charset=UTF-8\r\n\r\nGrüße\n\r\n"
		},
		to:         map[string]string{"bob": "bob@example.test"},
		returnPath: "root@example.test",
		fields: func(m string) []string {
			return []string{"To: Bob <bob@example.test>", "Subject: Bestellung bestätigt – " + m,
				"From: Bäckerei Müller <alice@example.test>", "Message-ID: <" + m + "@client.example.test>",
				"Content-Type: text/plain; charset=UTF-8", "Date: " + anyDate}
		},
		body: "Grüße\n\n",
	},
	{
		// mutt with DSN options (dsn_notify, dsn_return).
		name: "mutt_dsn",
		argv: []string{"/usr/sbin/sendmail", "-oem", "-oi", "-N", "failure,delay", "-R", "hdrs", "--", "bob@example.test"},
		input: func(m string) string {
			return "Date: Sat, 28 Nov 2026 13:00:00 +0100\nFrom: Carol <carol@example.test>\nTo: bob@example.test\n" +
				"Subject: dsn " + m + "\nMessage-ID: <" + m + "@client.example.test>\n\nplease confirm\n"
		},
		to:         map[string]string{"bob": "bob@example.test"},
		returnPath: "root@example.test",
		fields: func(m string) []string {
			return []string{"Date: Sat, 28 Nov 2026 13:00:00 +0100", "From: Carol <carol@example.test>", "To: bob@example.test",
				"Subject: dsn " + m, "Message-ID: <" + m + "@client.example.test>"}
		},
		body: "please confirm\n",
	},
}

// logwatchBody has lines of 2500 and 998 and 999 octets among short
// ones.
var logwatchBody = " --------------------- SSHD Begin ------------------------ \n\n" +
	" Illegal users from: " + strings.Repeat("203.0.113.7 (host7.example.net): 3 times, ", 60)[:2500] + "\n" +
	strings.Repeat("x", 998) + "\n" + strings.Repeat("y", 999) + "\n" +
	" ---------------------- SSHD End ------------------------- \n"

// breakLongLines breaks the lines of s as the relay package does:
// after limit octets a line goes on after LF and one space, the space
// counting towards the next line.
func breakLongLines(s string, limit int) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(s, "\n") {
		body := strings.TrimSuffix(line, "\n")
		n := 0
		for i := 0; i < len(body); i++ {
			if n == limit {
				b.WriteString("\n ")
				n = 1
			}
			b.WriteByte(body[i])
			n++
		}
		if strings.HasSuffix(line, "\n") {
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// attachmentBody is a multipart body with a 300 KB base64 attachment of
// fixed pseudo-random bytes, LF line ends.
var attachmentBody = func() string {
	data := make([]byte, 225_000)
	x := uint32(2463534242)
	for i := range data {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		data[i] = byte(x)
	}
	enc := base64.StdEncoding.EncodeToString(data)
	var b strings.Builder
	b.WriteString("--b1\nContent-Type: text/plain; charset=utf-8\n\nYour invoice is attached.\n\n")
	b.WriteString("--b1\nContent-Type: application/pdf; name=\"invoice.pdf\"\nContent-Transfer-Encoding: base64\n" +
		"Content-Disposition: attachment; filename=\"invoice.pdf\"\n\n")
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\n--b1--")
	return b.String()
}()

// TestCallers runs every caller of PRODUCT.md §2 against one private
// Postfix that delivers to Dovecot, and checks exit status 0, silence,
// the envelope and the stored bytes.
func TestCallers(t *testing.T) {
	e := startRelay(t)
	for _, c := range callerCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			marker := newMarker(c.name)
			r := run(t, call{argv: c.argv, config: e.config, stdin: c.input(marker)})
			r.wantExit(t, 0)
			if r.stdout != "" || r.stderr != c.stderr {
				t.Errorf("stdout %q, want none\nstderr %q, want %q", r.stdout, r.stderr, c.stderr)
			}
			if id := messageIDOf(c.input(marker)); id != "" {
				e.waitSent(t, id)
			}
			var want []string
			for u := range c.to {
				want = append(want, u)
			}
			got := e.delivered(t, marker, want...)
			body := strings.ReplaceAll(c.body, "{MARKER}", marker)
			for u, s := range got {
				s.check(t, u, c.returnPath, c.to[u], c.fields(marker), body)
				s.checkNoBcc(t, u, c.bcc...)
			}
			if _, _, ok := r.deadLetter(t); ok {
				t.Error("dead.letter written for a delivered message")
			}
		})
	}
	t.Run("php_mail_via_smtps", func(t *testing.T) {
		// The same PHP call through the relay's implicit-TLS port.
		t.Parallel()
		cfg := writeConfigWith(t, e.dir, "smtps.toml", "smtps://"+e.p.SMTPSAddr, "alicepass", e.p.CA.CertFile,
			map[string]string{`starttls = "required"`: ""})
		marker := newMarker("smtps")
		r := run(t, call{argv: []string{"/usr/sbin/sendmail", "-t", "-i"}, config: cfg,
			stdin: "To: bob@example.test\r\nSubject: " + marker + "\r\n\r\nover SMTPS\n\r\n"})
		r.wantExit(t, 0)
		r.wantQuiet(t)
		got := e.delivered(t, marker, "bob")
		got["bob"].check(t, "bob", "root@example.test", "bob@example.test",
			[]string{"To: bob@example.test", "Subject: " + marker, "Date: " + anyDate, "Message-ID: " + anyMsgID,
				"From: root <root@example.test>"}, "over SMTPS\n\n")
	})
	t.Run("symfony_bs", func(t *testing.T) { t.Parallel(); testSMTPMode(t, e, []string{"/usr/sbin/sendmail", "-bs"}) })
	t.Run("laravel_bs", func(t *testing.T) { t.Parallel(); testSMTPMode(t, e, []string{"/usr/sbin/sendmail", "-bs", "-i"}) })
	t.Run("alpine_bs", func(t *testing.T) {
		t.Parallel()
		testSMTPMode(t, e, []string{"/usr/sbin/sendmail", "-bs", "-odb", "-oem"})
	})
}

// TestEmptyInput: "sendmail -i bob@example.test </dev/null" sends a
// message of generated header fields and no body.
func TestEmptyInput(t *testing.T) {
	e := startRelay(t)
	r := run(t, call{argv: []string{"/usr/sbin/sendmail", "-i", "bob@example.test"}, config: e.config})
	r.wantExit(t, 0)
	r.wantQuiet(t)
	// The Message-ID is the only thing to find it by.
	var s *stored
	for _, m := range e.p.Dovecot.WaitMessages(t, "bob", 1) {
		s = parseStored(t, m)
	}
	s.check(t, "bob", "root@example.test", "bob@example.test",
		[]string{"Date: " + anyDate, "Message-ID: " + anyMsgID, "From: root <root@example.test>"}, "")
}
