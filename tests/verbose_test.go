package tests

import (
	"regexp"
	"testing"
)

// TestVerboseShowsLogLine: with the default [log] (syslog), -v also
// writes the delivery log line to standard error, after the dialogue:
// queue id "-" (delivered at submission), the envelope, the relay and
// its address, TLS, and Postfix's own reply with its queue id.
func TestVerboseShowsLogLine(t *testing.T) {
	e := startRelay(t)
	marker := newMarker("verbose")
	r := run(t, call{argv: []string{"/usr/sbin/sendmail", "-v", "-i", "bob@example.test"}, config: e.config,
		stdin: "Subject: " + marker + "\n\nverbose\n"})
	r.wantExit(t, 0)
	line := regexp.MustCompile(`(?m)^-: from=<root@example\.test>, to=<bob@example\.test>, relay=postfix\[127\.0\.0\.1:\d+\], tls=TLSv1\.[23] \S+, delay=\d+\.\d\d, status=sent \(250 2\.0\.0 Ok: queued as [0-9A-F]+\)$`)
	if !line.MatchString(r.stderr) {
		t.Errorf("no delivery log line on stderr with -v:\n%s", r.stderr)
	}
	e.find(t, "bob", marker)
}
