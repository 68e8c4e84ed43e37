package queue

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
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

func TestRemoveFailureKeepsMessage(t *testing.T) {
	q := newQueue(t)
	id := enqueue(t, q, testEnvelope())
	it, err := q.Lock(id)
	if err != nil {
		t.Fatal(err)
	}
	q.ops = (&faults{op: "syncDir", at: 1, err: syscall.EIO}).ops()
	if err := it.Remove(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Remove = %v, want EIO", err)
	}
	// The message stays until its envelope's removal is known durable;
	// it is an orphan now, reaped in time.
	if _, err := os.Stat(filepath.Join(q.Dir, "msg", id)); err != nil {
		t.Errorf("message removed before the envelope's removal was durable: %v", err)
	}
	q.ops = &defaultOps
	if n, _ := q.ReapOrphans(time.Now().Add(2*OrphanGrace), OrphanGrace); n != 1 {
		t.Errorf("reaped %d", n)
	}
	if _, err := it.Body(); !errors.Is(err, ErrUnlocked) {
		t.Errorf("Body after Remove = %v", err)
	}
	if err := it.RecordAttempt(t0, Policy{}); !errors.Is(err, ErrUnlocked) {
		t.Errorf("RecordAttempt after Remove = %v", err)
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
