package tests

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// killTrials is the number of trials of TestQueueKill9: 200 in CI or
// with HANDOFF_LONG_TESTS set, 20 otherwise.
func killTrials() int {
	if os.Getenv("CI") != "" || os.Getenv("HANDOFF_LONG_TESTS") != "" {
		return 200
	}
	return 20
}

// TestQueueKill9 kills submitters and runners with SIGKILL at random
// moments, then flushes the queue against a healthy relay: every
// submission that exited 0 is delivered at least once; a copy beyond
// the first only ever follows a delivery by a runner that was killed
// (the after-dot window); and what the killed processes left in the
// queue directory is only orphans and temporary files, never listed.
func TestQueueKill9(t *testing.T) {
	start := time.Now()
	trials := killTrials()
	s := startSink(t)
	// retry_min 1ms: what a submitter queued is due again at once, for
	// sendmail -q.
	e := newQueueEnv(t, s, "1ms", "10s")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 42))

	type trial struct {
		kind   string // "fallback", "odq" or "runner"
		marker string // submissions only
		code   int
		killed bool
		delay  time.Duration
	}
	var all []trial
	acked := map[string]bool{}
	submitted := map[string]bool{}
	killedRunnerEpochs := map[int]bool{}
	kinds := map[string]int{}
	killedBy := map[string]int{}

	// The kill delay: the brief's 0-20 ms is shorter than a process
	// start here (the race-built wrapper, then handoff), so every run
	// would die before doing anything. Instead the first two runs of
	// each kind go uninterrupted, and later ones are killed after a
	// delay drawn uniformly from 0 to 1.5 times the median uninterrupted
	// run of their kind (at least 20 ms): the kill lands at any point of
	// the run, and some runs complete.
	clean := map[string][]time.Duration{}
	median := func(kind string) time.Duration {
		d := slices.Clone(clean[kind])
		if len(d) == 0 {
			return 0
		}
		slices.Sort(d)
		return d[len(d)/2]
	}
	delayFor := func(kind string) time.Duration {
		if len(clean[kind]) < 2 {
			return -1
		}
		span := max(median(kind)*3/2, 20*time.Millisecond)
		return time.Duration(rng.Int64N(int64(span) + 1))
	}

	for i := 1; i <= trials; i++ {
		s.setEpoch(i)
		tr := trial{}
		var argv []string
		stdin := ""
		switch k := rng.IntN(3); {
		case k == 0:
			// Fallback: the relay defers the recipient, so the
			// submitter queues it.
			tr.kind = "fallback"
			s.set(sinkRcpt451)
			argv = []string{"sendmail", "-i", "rcpt@example.net"}
		case k == 1:
			tr.kind = "odq"
			s.set(sinkAccept)
			argv = []string{"sendmail", "-odq", "-i", "rcpt@example.net"}
		default:
			tr.kind = "runner"
			s.set(sinkFault{slow: time.Duration(1+rng.IntN(5)) * time.Millisecond})
			argv = []string{"sendmail", "-q"}
		}
		if tr.kind != "runner" {
			tr.marker = fmt.Sprintf("QMARK-kill-%d-%d", i, rng.Uint32())
			stdin = testMessage(tr.marker)
			submitted[tr.marker] = true
		}
		tr.delay = delayFor(tr.kind)
		p, err := e.startBin(argv, stdin, 30*time.Second)
		if err != nil {
			t.Fatalf("trial %d: %v", i, err)
		}
		var timer *time.Timer
		if tr.delay >= 0 {
			timer = time.AfterFunc(tr.delay, p.kill)
		}
		r := p.wait()
		if timer != nil {
			timer.Stop()
		}
		if !r.killed && r.code == 0 {
			clean[tr.kind] = append(clean[tr.kind], r.took)
		}
		tr.code, tr.killed = r.code, r.killed
		kinds[tr.kind]++
		if r.killed {
			killedBy[tr.kind]++
			if tr.kind == "runner" {
				killedRunnerEpochs[i] = true
			}
		} else if r.code != 0 {
			t.Errorf("trial %d (%s): exit %d\nstderr:\n%s", i, tr.kind, r.code, r.stderr)
		} else if tr.marker != "" {
			acked[tr.marker] = true
		}
		all = append(all, tr)
	}
	t.Logf("%d trials in %v: %v; killed before their end: %v; %d submissions acknowledged of %d; median uninterrupted runs: fallback %v, odq %v, runner %v",
		trials, time.Since(start).Round(time.Millisecond), kinds, killedBy, len(acked), len(submitted),
		median("fallback").Round(time.Millisecond), median("odq").Round(time.Millisecond), median("runner").Round(time.Millisecond))

	// The final flush: a healthy relay, until the queue is empty or a
	// flush makes no progress.
	flushEpoch := trials + 1
	s.setEpoch(flushEpoch)
	s.set(sinkAccept)
	prev := -1
	for round := 1; round <= 5; round++ {
		r := e.mustRun(t, []string{"handoff", "queue", "flush"}, "")
		if r.code != 0 {
			t.Errorf("flush %d: exit %d\nstderr:\n%s", round, r.code, r.stderr)
		}
		n := len(e.list(t))
		t.Logf("flush %d: exit %d in %v, %d items left", round, r.code, r.took.Round(time.Millisecond), n)
		if n == 0 || n == prev {
			break
		}
		prev = n
	}
	// And a -q, as the brief's runner does: it also reaps orphans older
	// than queue.OrphanGrace (1h, so none of these).
	if r := e.mustRun(t, []string{"sendmail", "-q"}, ""); r.code != 0 {
		t.Errorf("final sendmail -q: exit %d\n%s", r.code, r.stderr)
	}
	if items := e.list(t); len(items) != 0 {
		t.Errorf("%d items left in the queue after the flushes:", len(items))
		for _, it := range items {
			t.Errorf("  %+v", it)
		}
	}
	e.mailqEmpty(t)

	// At least once for the acknowledged.
	counts := s.delivered()
	for m := range acked {
		if counts[m+" rcpt@example.net"] < 1 {
			t.Errorf("%s was acknowledged (exit 0) but never delivered", m)
		}
	}
	// Copies beyond the first: each earlier copy must come from a
	// connection of a runner that was killed.
	byMarker := map[string][]sinkMsg{}
	for _, m := range s.messages() {
		if !m.acked {
			continue
		}
		if !submitted[m.marker] {
			t.Errorf("unexpected message at the sink (a bounce?): %+v", m)
			continue
		}
		byMarker[m.marker] = append(byMarker[m.marker], m)
	}
	dups, dupsAcked, unackedDelivered := 0, 0, 0
	for marker, ms := range byMarker {
		if !acked[marker] {
			unackedDelivered++
		}
		if len(ms) <= 1 {
			continue
		}
		dups += len(ms) - 1
		if acked[marker] {
			dupsAcked += len(ms) - 1
		}
		var epochs []string
		for _, m := range ms {
			epochs = append(epochs, fmt.Sprint(m.epoch))
		}
		for _, m := range ms[:len(ms)-1] {
			if !killedRunnerEpochs[m.epoch] {
				t.Errorf("%s delivered %d times (epochs %s): a copy from epoch %d, whose process was not a killed runner, was delivered again",
					marker, len(ms), strings.Join(epochs, ","), m.epoch)
			}
		}
	}
	t.Logf("duplicates (copies beyond one per recipient): %d, of which %d of acknowledged submissions; %d killed submissions were delivered anyway; the sink saw %d connections",
		dups, dupsAcked, unackedDelivered, s.connections())

	// What is left: only orphans and temporary files of the killed,
	// nothing corrupt, nothing listed (checked above).
	files := e.queueFiles(t)
	sort.Strings(files)
	var bad []string
	orphans := 0
	for _, f := range files {
		switch {
		case strings.HasPrefix(f, "msg/.tmp-") || strings.HasPrefix(f, "env/.tmp-"):
			orphans++
		case strings.HasPrefix(f, "msg/"):
			if fileExists(e.qdir + "/env/" + strings.TrimPrefix(f, "msg/")) {
				bad = append(bad, f+" (an item, but the queue lists none)")
			}
			orphans++
		default:
			bad = append(bad, f)
		}
	}
	if len(bad) > 0 {
		t.Errorf("unexpected files left in the queue directory: %v", bad)
	}
	killed := 0
	for _, n := range killedBy {
		killed += n
	}
	if orphans > killed {
		t.Errorf("%d orphan or temporary files, more than the %d processes killed: %v", orphans, killed, files)
	}
	t.Logf("%d orphan/temporary files left by %d killed processes: %v", orphans, killed, files)

	// queue.OrphanGrace is 1h: age the leftovers by 2h (ReapOrphans goes
	// by the modification time), and the next sendmail -q must reap
	// every one of them.
	old := time.Now().Add(-2 * time.Hour)
	for _, f := range files {
		if err := os.Chtimes(e.qdir+"/"+f, old, old); err != nil {
			t.Error(err)
		}
	}
	if r := e.mustRun(t, []string{"sendmail", "-q"}, ""); r.code != 0 {
		t.Errorf("sendmail -q to reap the orphans: exit %d\n%s", r.code, r.stderr)
	}
	if left := e.queueFiles(t); len(left) != 0 {
		t.Errorf("sendmail -q left these files older than queue.OrphanGrace: %v", left)
	}
	t.Logf("total %v", time.Since(start).Round(time.Millisecond))
}
