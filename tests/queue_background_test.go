package tests

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// -odb returns as soon as the message is queued; a detached process
// delivers it without the caller waiting for the relay.
func TestQueueBackgroundDelivery(t *testing.T) {
	s := startSink(t)
	e := newQueueEnv(t, s, "1s", "10s")
	marker := fmt.Sprintf("QMARK-bg-%d", time.Now().UnixNano())
	r := e.mustRun(t, []string{"sendmail", "-odb", "-i", "rcpt@example.net"}, testMessage(marker))
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	deadline := time.Now().Add(15 * time.Second)
	for s.delivered()[marker+" rcpt@example.net"] == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the detached attempt did not deliver within 15 s; queue: %+v", e.list(t))
		}
		time.Sleep(20 * time.Millisecond) // polling an asynchronous event, bounded above
	}
	// The detached process removes the item once delivered.
	for len(e.list(t)) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("delivered but still queued: %+v", e.list(t))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := s.delivered()[marker+" rcpt@example.net"]; n != 1 {
		t.Errorf("delivered %d times", n)
	}
	if strings.Contains(r.stderr, "rcpt@example.net") {
		t.Errorf("the submitter reported on the delivery it did not wait for: %s", r.stderr)
	}
}
