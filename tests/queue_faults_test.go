package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestQueueFaultStages submits one message in fallback mode against a
// relay that fails at each stage of the dialogue, and checks the exit
// status and the queue afterwards (handoff queue list --json): a
// temporary failure is queued (exit 0) with the recipient deferred and
// the server's reply; a permanent one is not queued (exit 67 or 69, the
// message in dead.letter); then a flush against a healthy relay
// delivers what was queued.
func TestQueueFaultStages(t *testing.T) {
	cases := []struct {
		name  string
		fault sinkFault
		exit  int
		// queued: the recipient is deferred with a last reply that
		// contains reply ("" : any non-empty text); dup: flagged as a
		// possible duplicate.
		queued bool
		reply  string
		dup    bool
		// acked: the sink took the message (250 after the dot); seen:
		// it got the whole message (the dot) without saying 250.
		acked, seen int
	}{
		{name: "accept", fault: sinkAccept, exit: 0, acked: 1},
		{name: "greeting-close", fault: sinkCloseGreet, exit: 0, queued: true},
		{name: "greeting-silence", fault: sinkFault{stage: stGreeting, action: actSilence}, exit: 0, queued: true},
		{name: "ehlo-421", fault: sinkFault{stage: stEHLO, action: "421 4.3.2 Service shutting down"}, exit: 0, queued: true, reply: "421"},
		{name: "mail-451", fault: sinkFault{stage: stMail, action: "451 4.3.0 Local error in processing"}, exit: 0, queued: true, reply: "451"},
		{name: "mail-550", fault: sinkFault{stage: stMail, action: "550 5.7.1 Sender refused"}, exit: 69},
		{name: "mail-silence", fault: sinkFault{stage: stMail, action: actSilence}, exit: 0, queued: true},
		{name: "rcpt-451", fault: sinkRcpt451, exit: 0, queued: true, reply: "451"},
		{name: "rcpt-550", fault: sinkFault{stage: stRcpt, action: "550 5.1.1 No such user"}, exit: 67},
		{name: "data-451", fault: sinkFault{stage: stData, action: "451 4.3.0 Try DATA later"}, exit: 0, queued: true, reply: "451"},
		{name: "data-554", fault: sinkFault{stage: stData, action: "554 5.6.0 No DATA for you"}, exit: 69},
		{name: "dot-451", fault: sinkFault{stage: stDot, action: "451 4.3.0 Queue file write error"}, exit: 0, queued: true, reply: "451", seen: 1},
		{name: "dot-554", fault: sinkFault{stage: stDot, action: "554 5.7.1 Message refused"}, exit: 69, seen: 1},
		{name: "dot-drop", fault: sinkDropAfterDot, exit: 0, queued: true, dup: true, seen: 1},
		{name: "dot-silence", fault: sinkFault{stage: stDot, action: actSilence}, exit: 0, queued: true, dup: true, seen: 1},
	}
	s := startSink(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.exit != 0 {
				// A permanent failure writes dead.letter to the passwd
				// home: only with a private one.
				needPrivateHome(t)
			}
			e := newQueueEnv(t, s, "1s", "1s")
			s.set(c.fault)
			before := len(s.messages())
			marker := fmt.Sprintf("QMARK-fault-%s-%d", c.name, time.Now().UnixNano())
			r := e.mustRun(t, []string{"sendmail", "-i", "rcpt@example.net"}, testMessage(marker))
			t.Logf("exit %d in %v; stderr: %q", r.code, r.took.Round(time.Millisecond), r.stderr)
			if r.code != c.exit {
				t.Errorf("exit status %d, want %d\nstderr:\n%s", r.code, c.exit, r.stderr)
			}
			var acked, seen int
			for _, m := range s.messages()[before:] {
				if m.marker != marker {
					t.Errorf("unexpected message at the sink: %+v", m)
					continue
				}
				if m.acked {
					acked++
				} else {
					seen++
				}
			}
			if acked != c.acked || seen != c.seen {
				t.Errorf("the sink took %d and saw %d more copies, want %d and %d", acked, seen, c.acked, c.seen)
			}
			items := e.list(t)
			if !c.queued {
				if len(items) != 0 {
					t.Errorf("queued %d items, want none: %+v", len(items), items)
				}
				_, err := os.Stat(filepath.Join(e.home, "dead.letter"))
				if c.exit != 0 && err != nil {
					t.Errorf("the refused message is not in dead.letter: %v", err)
				}
				if files := e.queueFiles(t); len(files) != 0 {
					t.Errorf("files in the queue directory: %v", files)
				}
				return
			}
			if len(items) != 1 {
				t.Fatalf("%d items queued, want 1: %+v", len(items), items)
			}
			it := items[0]
			if it.Problem != "" || it.Attempts != 1 || len(it.Recipients) != 1 {
				t.Fatalf("queued item: %+v, want 1 attempt and 1 recipient", it)
			}
			rc := it.Recipients[0]
			if rc.Address != "rcpt@example.net" || rc.State != "deferred" {
				t.Errorf("recipient %+v, want rcpt@example.net deferred", rc)
			}
			if rc.LastReply == "" || !strings.Contains(rc.LastReply, c.reply) {
				t.Errorf("last reply %q, want one with %q", rc.LastReply, c.reply)
			}
			if strings.HasPrefix(rc.LastReply, "2") {
				// mailq shows this text as the reason of the delay.
				t.Errorf("deferred recipient with a success reply as its last reply: %q (want the error: connection lost or timeout after the final dot)", rc.LastReply)
			}
			if rc.PossibleDuplicate != c.dup {
				t.Errorf("possible_duplicate %v, want %v (last reply %q)", rc.PossibleDuplicate, c.dup, rc.LastReply)
			}
			t.Logf("queued %s: %s %q dup=%v", it.ID, rc.State, rc.LastReply, rc.PossibleDuplicate)

			// A healthy relay now: the flush delivers it, once.
			s.set(sinkAccept)
			before = len(s.messages())
			f := e.mustRun(t, []string{"handoff", "queue", "flush"}, "")
			if f.code != 0 {
				t.Errorf("handoff queue flush: exit %d\n%s", f.code, f.stderr)
			}
			got := 0
			for _, m := range s.messages()[before:] {
				if m.marker == marker && m.acked {
					got++
				}
			}
			if got != 1 {
				t.Errorf("the flush delivered %d copies, want 1", got)
			}
			if items := e.list(t); len(items) != 0 {
				t.Errorf("%d items left after the flush: %+v", len(items), items)
			}
			if files := e.queueFiles(t); len(files) != 0 {
				t.Errorf("files left in the queue directory: %v", files)
			}
		})
	}
}
