package queue

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// t0 is the tests' "now".
var t0 = time.Date(2025, 6, 2, 10, 0, 0, 0, time.UTC)

// newQueue opens a fresh queue in a temporary directory.
func newQueue(t testing.TB) *Queue {
	t.Helper()
	q, err := Open(filepath.Join(t.TempDir(), "queue"))
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// testEnvelope is a typical envelope as the sendmail front end builds it.
func testEnvelope() *Envelope {
	return &Envelope{
		Sender: "www-data@example.com",
		Recipients: []Recipient{
			{Addr: "alice@example.org"},
			{Addr: "bob@example.net", ORCPT: "bob@example.net", Notify: []string{NotifyFailure, NotifyDelay}},
		},
		Ret:   RetHdrs,
		EnvID: "QQ314159",
		UID:   33,
		User:  "www-data",
	}
}

const testMessage = "Date: Mon, 2 Jun 2025 10:00:00 +0000\r\n" +
	"From: www-data@example.com\r\n" +
	"To: alice@example.org, bob@example.net\r\n" +
	"Subject: test\r\n" +
	"Message-ID: <1@example.com>\r\n" +
	"\r\n" +
	"Hello.\r\n" +
	".leading dot\r\n" +
	"\x00\xff binary \xc3\xa9\n" +
	"no final newline"

// enqueue queues testMessage with env and returns the id.
func enqueue(t testing.TB, q *Queue, env *Envelope) string {
	t.Helper()
	id, err := q.Enqueue(env, strings.NewReader(testMessage))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// files lists the files (not directories) under dir, relative, sorted.
func files(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			rel, _ := filepath.Rel(dir, path)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// faults wraps the real file operations and fails the at-th call of op
// (1-based) with err, counting every call. With named, temporary files
// are always named (createNamed), as where O_TMPFILE is missing.
type faults struct {
	mu     sync.Mutex
	op     string
	at     int
	err    error
	named  bool
	counts map[string]int
	// dirSyncs counts the calls of syncDir by the directory's base name
	// ("msg", "env").
	dirSyncs map[string]int
}

// dirSynced returns how many fsyncs of the directory named base were
// asked for.
func (f *faults) dirSynced(base string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dirSyncs[base]
}

func (f *faults) hit(op string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.counts == nil {
		f.counts = map[string]int{}
	}
	f.counts[op]++
	if op == f.op && f.counts[op] == f.at {
		return f.err
	}
	return nil
}

func (f *faults) ops() *fileOps {
	return &fileOps{
		create: func(dir, name string) (*os.File, bool, error) {
			if err := f.hit("create"); err != nil {
				return nil, false, &os.PathError{Op: "open", Path: filepath.Join(dir, name), Err: err}
			}
			if f.named {
				return createNamed(dir, name)
			}
			return defaultOps.create(dir, name)
		},
		write: func(file *os.File, p []byte) (int, error) {
			if err := f.hit("write"); err != nil {
				return 0, &os.PathError{Op: "write", Path: file.Name(), Err: err}
			}
			return defaultOps.write(file, p)
		},
		sync: func(file *os.File) error {
			if err := f.hit("sync"); err != nil {
				return &os.PathError{Op: "sync", Path: file.Name(), Err: err}
			}
			return defaultOps.sync(file)
		},
		link: func(file *os.File, path string) error {
			if err := f.hit("link"); err != nil {
				return &os.LinkError{Op: "link", Old: file.Name(), New: path, Err: err}
			}
			return defaultOps.link(file, path)
		},
		close: func(file *os.File) error {
			err := defaultOps.close(file)
			if ferr := f.hit("close"); ferr != nil {
				return &os.PathError{Op: "close", Path: file.Name(), Err: ferr}
			}
			return err
		},
		rename: func(oldpath, newpath string, noReplace bool) error {
			if err := f.hit("rename"); err != nil {
				return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
			}
			return defaultOps.rename(oldpath, newpath, noReplace)
		},
		syncDir: func(dir string) error {
			f.mu.Lock()
			if f.dirSyncs == nil {
				f.dirSyncs = map[string]int{}
			}
			f.dirSyncs[filepath.Base(dir)]++
			f.mu.Unlock()
			if err := f.hit("syncDir"); err != nil {
				return &os.PathError{Op: "sync", Path: dir, Err: err}
			}
			return defaultOps.syncDir(dir)
		},
	}
}

// writeLegacy queues msg with env the way handoff did before version 2
// items: msg/ID holds the message alone and env/ID, written after it,
// the envelope of version 1 (the item's commit marker), both mode 0600.
// It sets env's Version, ID, Size and, when zero, Created, and returns
// the id.
func writeLegacy(t testing.TB, q *Queue, env *Envelope, msg string) string {
	t.Helper()
	now := q.now()
	id := newID(now)
	env.Version, env.ID, env.Size = legacyVersion, id, int64(len(msg))
	if env.Created.IsZero() {
		env.Created = stamp(now)
	}
	if env.NextAttempt.IsZero() {
		env.NextAttempt = env.Created
	}
	data, err := env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "handoff-envelope 1\n") {
		t.Fatalf("a legacy envelope starts %.30q", data)
	}
	for _, f := range []struct{ dir, content string }{{"msg", msg}, {"env", string(data)}} {
		p := filepath.Join(q.Dir, f.dir, id)
		if err := os.WriteFile(p, []byte(f.content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return id
}

// afterGrace returns a time at which ReapOrphans(now, OrphanGrace) may
// take what exists now: files written before it is called, and ids (ids
// may lie ahead of the clock: the id clock never goes back, and TestIDs
// takes it a day ahead).
func afterGrace(ids ...string) time.Time {
	base := time.Now()
	for _, id := range ids {
		if it := idTime(id); it.After(base) {
			base = it
		}
	}
	return base.Add(OrphanGrace + time.Minute)
}

// setMtime sets the modification time of the queue files (relative to
// q.Dir) to at.
func setMtime(t testing.TB, q *Queue, at time.Time, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if err := os.Chtimes(filepath.Join(q.Dir, p), at, at); err != nil {
			t.Fatal(err)
		}
	}
}

// itemFile reads msg/ID and splits it where the envelope at its head
// ends (after the first "\nend\n").
func itemFile(t testing.TB, q *Queue, id string) (head, msg string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(q.Dir, "msg", id))
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(data), "\nend\n")
	if i < 0 {
		t.Fatalf("msg/%s has no envelope at its head: %.60q", id, data)
	}
	return string(data[:i+5]), string(data[i+5:])
}
