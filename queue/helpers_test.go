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
			if err := f.hit("syncDir"); err != nil {
				return &os.PathError{Op: "sync", Path: dir, Err: err}
			}
			return defaultOps.syncDir(dir)
		},
	}
}
