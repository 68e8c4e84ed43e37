package tests

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestQueueConcurrentSubmitters: 50 submitters queue at the same time
// (-odq), then two runners run at the same time, twice: every message
// that was acknowledged (exit 0) is delivered exactly once, the queue
// is empty and no runner failed.
func TestQueueConcurrentSubmitters(t *testing.T) {
	start := time.Now()
	s := startSink(t)
	e := newQueueEnv(t, s, "1s", "10s")
	const n = 50
	markers := make([]string, n)
	results := make([]qresult, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		markers[i] = fmt.Sprintf("QMARK-conc-%d-%d", i, time.Now().UnixNano())
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = e.runBin([]string{"sendmail", "-odq", "-i", "rcpt@example.net"}, testMessage(markers[i]), 60*time.Second)
		}()
	}
	wg.Wait()
	acked := map[string]bool{}
	for i := range n {
		switch {
		case errs[i] != nil:
			t.Errorf("submitter %d: %v", i, errs[i])
		case results[i].code != 0:
			t.Errorf("submitter %d: exit %d (killed %v)\n%s", i, results[i].code, results[i].killed, results[i].stderr)
		default:
			acked[markers[i]] = true
		}
	}
	t.Logf("%d submitters in %v, %d acknowledged", n, time.Since(start).Round(time.Millisecond), len(acked))
	if got := len(e.list(t)); got != len(acked) {
		t.Errorf("%d items queued, want %d", got, len(acked))
	}
	if d := s.messages(); len(d) != 0 {
		t.Errorf("-odq delivered %d messages before any runner ran", len(d))
	}

	runStart := time.Now()
	for round := 1; round <= 2; round++ {
		var rwg sync.WaitGroup
		var rres [2]qresult
		var rerr [2]error
		for k := range 2 {
			rwg.Add(1)
			go func() {
				defer rwg.Done()
				rres[k], rerr[k] = e.runBin([]string{"sendmail", "-q"}, "", 60*time.Second)
			}()
		}
		rwg.Wait()
		for k := range 2 {
			if rerr[k] != nil || rres[k].code != 0 || rres[k].killed {
				t.Errorf("round %d runner %d: exit %d err %v\nstderr:\n%s", round, k, rres[k].code, rerr[k], rres[k].stderr)
			} else if rres[k].stderr != "" {
				t.Logf("round %d runner %d (exit 0) said: %s", round, k, rres[k].stderr)
			}
		}
	}
	t.Logf("2x2 runners in %v; the sink saw %d connections", time.Since(runStart).Round(time.Millisecond), s.connections())

	got := s.delivered()
	for m := range acked {
		if c := got[m+" rcpt@example.net"]; c != 1 {
			t.Errorf("%s delivered %d times, want exactly once", m, c)
		}
	}
	for _, m := range s.messages() {
		if !acked[m.marker] {
			t.Errorf("unexpected message at the sink: %+v", m)
		}
		if m.from == "" {
			t.Errorf("message %s from <%s>", m.marker, m.from)
		}
	}
	if items := e.list(t); len(items) != 0 {
		t.Errorf("%d items left in the queue: %+v", len(items), items)
	}
	e.mailqEmpty(t)
	if files := e.queueFiles(t); len(files) != 0 {
		t.Errorf("files left in the queue directory: %v", files)
	}
	t.Logf("total %v", time.Since(start).Round(time.Millisecond))
}
