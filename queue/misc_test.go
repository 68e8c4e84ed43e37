package queue

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSummaryJSON is what "handoff queue list --json" gets to print.
func TestSummaryJSON(t *testing.T) {
	s := Summary{Envelope: *fullEnvelope()}
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"id":"0JM2Q4ZK8PX7A3BD"`, `"state":"deferred"`, `"state":"pending"`, `"possible_duplicate":true`,
		`"last_reply":"451 4.3.0 Mailbox temporarily unavailable"`, `"created":"2025-06-02T10:00:00Z"`, `"held":true`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("%s not in %s", want, data)
		}
	}
	if strings.Contains(string(data), "problem") || strings.Contains(string(data), "last_attempt\":\"0001") {
		t.Errorf("empty fields shown: %s", data)
	}
	var back Summary
	if err := json.Unmarshal(data, &back); err != nil || back.Recipients[1].State != Deferred {
		t.Errorf("unmarshal: %v %+v", err, back.Recipients)
	}
	bad := Summary{Envelope: Envelope{ID: "0JM2Q4ZK8PX7A3BD"}, Err: ErrCorrupt, Problem: ErrCorrupt.Error()}
	data, _ = json.Marshal(bad)
	if !strings.Contains(string(data), `"problem":"corrupt queue item"`) {
		t.Errorf("problem missing: %s", data)
	}
	if _, err := State(9).MarshalText(); err == nil || State(9).String() != "state(9)" {
		t.Error("invalid state marshalled")
	}
}

// TestRemoveFailureKeepsMessage: Remove deletes first the file whose
// presence makes the item queued (the item file; a legacy item's
// envelope), then fsyncs its directory; when that fsync fails, the other
// file (a saved envelope; a legacy item's message) stays until the first
// deletion is known durable: should the item come back after a crash, it
// comes back whole, with its latest envelope. Left behind, that file is an
// orphan, reaped in time.
func TestRemoveFailureKeepsMessage(t *testing.T) {
	for _, tc := range []struct {
		name string
		make func(q *Queue) string
		left string // the file left after the failed fsync: "msg", "env" or ""
		dir  string // the directory whose fsync failed
	}{
		{"new", func(q *Queue) string { return enqueue(t, q, testEnvelope()) }, "", "msg"},
		{"saved", func(q *Queue) string {
			id := enqueue(t, q, testEnvelope())
			if err := q.Hold(id, false); err != nil {
				t.Fatal(err)
			}
			return id
		}, "env", "msg"},
		{"legacy", func(q *Queue) string { return writeLegacy(t, q, testEnvelope(), testMessage) }, "msg", "env"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := newQueue(t)
			id := tc.make(q)
			it, err := q.Lock(id)
			if err != nil {
				t.Fatal(err)
			}
			fl := &faults{op: "syncDir", at: 1, err: syscall.EIO}
			q.ops = fl.ops()
			if err := it.Remove(); !errors.Is(err, syscall.EIO) {
				t.Fatalf("Remove = %v, want EIO", err)
			}
			q.ops = &defaultOps
			if fl.counts["syncDir"] != 1 || fl.dirSynced(tc.dir) != 1 {
				t.Errorf("fsyncs of directories %v, want one of %s/", fl.dirSyncs, tc.dir)
			}
			var want []string
			if tc.left != "" {
				want = []string{tc.left + "/" + id}
			}
			if got := files(t, q.Dir); !slices.Equal(got, want) {
				t.Errorf("files after the failed Remove %q, want %q", got, want)
			}
			if _, err := q.Lock(id); !errors.Is(err, ErrNotFound) {
				t.Errorf("Lock after the failed Remove = %v, want ErrNotFound", err)
			}
			if items, _ := q.List(Filter{}); len(items) != 0 {
				t.Errorf("listed after the failed Remove: %+v", items)
			}
			if n, _ := q.ReapOrphans(afterGrace(id), OrphanGrace); n != len(want) {
				t.Errorf("reaped %d, want %d", n, len(want))
			}
			if got := files(t, q.Dir); len(got) != 0 {
				t.Errorf("files left after reaping: %q", got)
			}
			if _, err := it.Body(); !errors.Is(err, ErrUnlocked) {
				t.Errorf("Body after Remove = %v", err)
			}
			if err := it.RecordAttempt(t0, Policy{}); !errors.Is(err, ErrUnlocked) {
				t.Errorf("RecordAttempt after Remove = %v", err)
			}
		})
	}
}

func TestItemWrappers(t *testing.T) {
	q := newQueue(t)
	q.now = func() time.Time { return t0 }
	it, err := q.EnqueueLocked(testEnvelope(), strings.NewReader(testMessage))
	if err != nil {
		t.Fatal(err)
	}
	defer it.Unlock()
	if it.Expired(t0.Add(time.Hour), Policy{}) || !it.Expired(t0.Add(DefaultMaxAge), Policy{}) {
		t.Error("Expired")
	}
	it.Apply([]Result{{Addr: "alice@example.org", Reply: "250 ok"}, {Addr: "bob@example.net", Reply: "250 ok"}}, t0, Policy{})
	if !it.Done() {
		t.Error("not Done after every recipient was sent")
	}
	if err := it.Remove(); err != nil {
		t.Fatal(err)
	}
}

func TestLinkRename(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	os.WriteFile(a, []byte("1"), 0o600)
	os.WriteFile(b, []byte("2"), 0o600)
	if err := linkRename(a, b); !errors.Is(err, os.ErrExist) {
		t.Errorf("linkRename over an existing file = %v", err)
	}
	os.Remove(b)
	if err := linkRename(a, b); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(b); string(got) != "1" {
		t.Errorf("content %q", got)
	}
	if _, err := os.Lstat(a); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("old name remains: %v", err)
	}
}
