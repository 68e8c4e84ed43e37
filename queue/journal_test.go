package queue

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A journal counts the attempts in memory and on disk in one file; the
// envelopes are not rewritten; Done removes it.
func TestJournalAttempts(t *testing.T) {
	q := newQueue(t)
	items := lockAll(t, q, 3)
	j, err := q.JournalAttempts(items, t0, Policy{})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if it.Env.Attempts != 1 || !it.Env.NextAttempt.After(t0) {
			t.Errorf("%s in memory: %d attempts, next %v", it.ID(), it.Env.Attempts, it.Env.NextAttempt)
		}
	}
	for id, n := range attemptsOnDisk(t, q) {
		if n != 0 {
			t.Errorf("%s: the envelope on disk says %d attempts; a journal must not rewrite it", id, n)
		}
	}
	js, _ := os.ReadDir(filepath.Join(q.Dir, journalDir))
	if len(js) != 1 {
		t.Fatalf("%d journal files, want 1", len(js))
	}
	data, _ := os.ReadFile(filepath.Join(q.Dir, journalDir, js[0].Name()))
	entries, err := parseJournal(data)
	if err != nil || len(entries) != 3 || entries[0].id != items[0].ID() || entries[0].before != 0 || !entries[0].next.Equal(items[0].Env.NextAttempt) {
		t.Errorf("journal %q: %+v, %v", data, entries, err)
	}
	if st, _ := os.Stat(filepath.Join(q.Dir, journalDir, js[0].Name())); st.Mode().Perm() != 0o600 {
		t.Errorf("journal mode %v", st.Mode())
	}
	if err := j.Done(); err != nil {
		t.Fatal(err)
	}
	if js, _ := os.ReadDir(filepath.Join(q.Dir, journalDir)); len(js) != 0 {
		t.Errorf("Done left %v", js)
	}
	for _, it := range items {
		it.Unlock()
	}
}

// A failure at any step of the journal's write records nothing: no
// attempt in memory, no file left, the envelopes as they were.
func TestJournalAttemptsFailures(t *testing.T) {
	for _, op := range []string{"create", "write", "sync", "link", "rename", "syncDir"} {
		t.Run(op, func(t *testing.T) {
			q := newQueue(t)
			items := lockAll(t, q, 2)
			// The journal directory exists first (its own fsync is not
			// the one under test).
			os.Mkdir(filepath.Join(q.Dir, journalDir), 0o700)
			fl := &faults{op: op, at: 1, err: syscall.EIO}
			q.ops = fl.ops()
			j, err := q.JournalAttempts(items, t0, Policy{})
			q.ops = &defaultOps
			if op == "link" && fl.counts["link"] == 0 {
				t.Skip("no anonymous temporary files here")
			}
			if err == nil || j != nil {
				t.Fatalf("JournalAttempts with %s failing: %v, %v", op, j, err)
			}
			for _, it := range items {
				if it.Env.Attempts != 0 {
					t.Errorf("%s counts %d attempts in memory after the failure", it.ID(), it.Env.Attempts)
				}
				it.Unlock()
			}
			if op != "syncDir" {
				if js, _ := os.ReadDir(filepath.Join(q.Dir, journalDir)); len(js) != 0 {
					t.Errorf("files left in journal/: %v", js)
				}
			}
		})
	}
}

// ReplayJournals counts the attempt of each item still queued with the
// attempts the journal saw, leaves alone the items saved since (they
// counted it themselves), removed (delivered) or locked, deletes the
// journals, and drops one it cannot read.
func TestReplayJournals(t *testing.T) {
	q := newQueue(t)
	items := lockAll(t, q, 4)
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.ID()
	}
	if _, err := q.JournalAttempts(items, t0, Policy{}); err != nil {
		t.Fatal(err)
	}
	next := items[0].Env.NextAttempt
	// 0: left as it was (the run died during its attempt).
	items[0].Unlock()
	// 1: saved after its attempt, as a live run does.
	if err := items[1].Save(); err != nil {
		t.Fatal(err)
	}
	items[1].Unlock()
	// 2: delivered and removed.
	if err := items[2].Remove(); err != nil {
		t.Fatal(err)
	}
	// 3: still locked by someone.
	os.WriteFile(filepath.Join(q.Dir, journalDir, "garbage"), []byte("not a journal\n"), 0o600)
	os.WriteFile(filepath.Join(q.Dir, journalDir, tmpPrefix+"x"), []byte("half"), 0o600)

	n, err := q.ReplayJournals()
	if n != 1 {
		t.Errorf("counted %d attempts, want 1", n)
	}
	if err == nil || !strings.Contains(err.Error(), "garbage") {
		t.Errorf("err %v, want the unreadable journal reported", err)
	}
	disk := attemptsOnDisk(t, q)
	if disk[ids[0]] != 1 || disk[ids[1]] != 1 || disk[ids[3]] != 0 {
		t.Errorf("attempts on disk %v, want %s:1 %s:1 %s:0", disk, ids[0], ids[1], ids[3])
	}
	if _, ok := disk[ids[2]]; ok {
		t.Errorf("the removed item came back")
	}
	it, err := q.Lock(ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if !it.Env.NextAttempt.Equal(next) {
		t.Errorf("next attempt %v, want the journal's %v", it.Env.NextAttempt, next)
	}
	it.Unlock()
	items[3].Unlock()
	if js, _ := os.ReadDir(filepath.Join(q.Dir, journalDir)); len(js) != 0 {
		t.Errorf("journal/ after the replay: %v", js)
	}
	// A second replay has nothing to do.
	if n, err := q.ReplayJournals(); n != 0 || err != nil {
		t.Errorf("second replay: %d, %v", n, err)
	}
}

func TestParseJournal(t *testing.T) {
	good := journalMagic + "\n0JM2Q4ZK8PX7A3BD 2 2025-06-02T10:15:12Z\nend\n"
	if e, err := parseJournal([]byte(good)); err != nil || len(e) != 1 || e[0].before != 2 || !e[0].next.Equal(time.Date(2025, 6, 2, 10, 15, 12, 0, time.UTC)) {
		t.Errorf("parseJournal(good) = %+v, %v", e, err)
	}
	for _, bad := range []string{
		"",
		journalMagic + "\n",
		journalMagic + "\n0JM2Q4ZK8PX7A3BD 2 2025-06-02T10:15:12Z\n", // no end
		journalMagic + "\n../etc/passwd 2 2025-06-02T10:15:12Z\nend\n",
		journalMagic + "\n0JM2Q4ZK8PX7A3BD -1 2025-06-02T10:15:12Z\nend\n",
		journalMagic + "\n0JM2Q4ZK8PX7A3BD 2 yesterday\nend\n",
		journalMagic + "\n0JM2Q4ZK8PX7A3BD  2 2025-06-02T10:15:12Z\nend\n",
		"handoff-journal 2\nend\n",
	} {
		if e, err := parseJournal([]byte(bad)); err == nil {
			t.Errorf("parseJournal(%q) = %+v, want an error", bad, e)
		}
	}
}

func FuzzParseJournal(f *testing.F) {
	f.Add([]byte(journalMagic + "\n0JM2Q4ZK8PX7A3BD 2 2025-06-02T10:15:12Z\nend\n"))
	f.Add([]byte(journalMagic + "\nend\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := parseJournal(data)
		if err != nil {
			return
		}
		for _, e := range entries {
			if !ValidID(e.id) || e.before < 0 {
				t.Fatalf("parseJournal accepted %+v from %q", e, data)
			}
		}
	})
}
