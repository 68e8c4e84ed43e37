package queue

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

func TestWriteFileDurable(t *testing.T) {
	dir := t.TempDir()
	for _, content := range []string{"first", "second, longer than the first", ""} {
		err := WriteFileDurable(dir, "f", func(w io.Writer) error {
			_, err := io.WriteString(w, content)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dir, "f"))
		if err != nil || string(got) != content {
			t.Fatalf("content = %q, %v; want %q", got, err, content)
		}
		fi, _ := os.Stat(filepath.Join(dir, "f"))
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("mode %v, want 0600", fi.Mode())
		}
		if got := files(t, dir); !slices.Equal(got, []string{"f"}) {
			t.Errorf("files %q, want only f", got)
		}
	}
}

func TestWriteFileDurableUmask(t *testing.T) {
	dir := t.TempDir()
	old := syscall.Umask(0o277)
	defer syscall.Umask(old)
	if err := WriteFileDurable(dir, "f", func(w io.Writer) error { return nil }); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(filepath.Join(dir, "f"))
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v under umask 0277, want 0600", fi.Mode())
	}
}

// TestWriteFileDurableFailures fails each step of the helper in turn,
// with an anonymous temporary file (O_TMPFILE) and with a named one: the
// error is returned (wrapping the cause), no temporary file remains, and
// the previous file is intact for every failure before the rename; after
// a failed directory fsync the new file is in place, whole.
func TestWriteFileDurableFailures(t *testing.T) {
	errInjected := syscall.EIO
	errWrite := errors.New("the content could not be produced")
	for _, named := range []bool{false, true} {
		for _, tc := range []struct {
			op      string
			wantNew bool // the new content is in place
		}{
			{op: "create"},
			{op: "write"},
			{op: "writefunc"},
			{op: "sync"},
			{op: "link"},
			{op: "close"},
			{op: "rename"},
			{op: "syncDir", wantNew: true},
		} {
			if named && tc.op == "link" {
				continue // a named file is not linked
			}
			t.Run(fmt.Sprintf("%s/named=%v", tc.op, named), func(t *testing.T) {
				dir := t.TempDir()
				if err := os.WriteFile(filepath.Join(dir, "f"), []byte("old"), 0o600); err != nil {
					t.Fatal(err)
				}
				fl := &faults{op: tc.op, at: 1, err: errInjected, named: named}
				want := error(errInjected)
				_, err := writeDurable(fl.ops(), dir, "f", func(w io.Writer) error {
					if tc.op == "writefunc" {
						io.WriteString(w, "partial")
						return errWrite
					}
					_, err := io.WriteString(w, strings.Repeat("new", 50000)) // > the buffer: several writes
					return err
				}, writeOpts{owner: -1})
				if tc.op == "writefunc" {
					want = errWrite
				}
				if !errors.Is(err, want) {
					t.Fatalf("err = %v, want it to wrap %v", err, want)
				}
				if got := files(t, dir); !slices.Equal(got, []string{"f"}) {
					t.Errorf("files after a failed %s: %q, want only f", tc.op, got)
				}
				got, _ := os.ReadFile(filepath.Join(dir, "f"))
				switch {
				case tc.wantNew && string(got) != strings.Repeat("new", 50000):
					t.Errorf("after a failed %s the file has %d bytes, want the whole new content", tc.op, len(got))
				case !tc.wantNew && string(got) != "old":
					t.Errorf("after a failed %s the file is %.20q, want the old content", tc.op, got)
				}
			})
		}
	}
}

// TestWriteDurableAnonymous: where the system allows it (Linux, /proc
// mounted, a file system with O_TMPFILE) the temporary file has no name
// until its content is durable, so a crash while it is written leaves
// nothing behind; the calls are as many as with a named one, plus the
// link.
func TestWriteDurableAnonymous(t *testing.T) {
	dir := t.TempDir()
	f, anon, err := defaultOps.create(dir, ".tmp-probe")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if !anon {
		t.Skip("no anonymous temporary files here")
	}
	if got := files(t, dir); len(got) != 0 {
		t.Errorf("an anonymous temporary file has a name: %q", got)
	}
	fl := &faults{}
	if _, err := writeDurable(fl.ops(), dir, "f", func(w io.Writer) error {
		_, err := io.WriteString(w, "content")
		return err
	}, writeOpts{owner: -1}); err != nil {
		t.Fatal(err)
	}
	if want := map[string]int{"create": 1, "write": 1, "sync": 1, "link": 1, "close": 1, "rename": 1, "syncDir": 1}; !maps.Equal(fl.counts, want) {
		t.Errorf("calls %v, want %v", fl.counts, want)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "f")); string(got) != "content" {
		t.Errorf("content %q", got)
	}
}

func TestWriteDurableNoReplace(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "f"), []byte("old"), 0o600)
	_, err := writeDurable(&defaultOps, dir, "f", func(w io.Writer) error {
		_, err := io.WriteString(w, "new")
		return err
	}, writeOpts{noReplace: true, owner: -1})
	if !errors.Is(err, os.ErrExist) {
		t.Fatalf("err = %v, want EEXIST", err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "f")); string(got) != "old" {
		t.Errorf("file replaced: %q", got)
	}
	if got := files(t, dir); !slices.Equal(got, []string{"f"}) {
		t.Errorf("files %q", got)
	}
}

func TestWriteDurableRefusesSymlinkedTemp(t *testing.T) {
	// O_EXCL|O_NOFOLLOW: a planted link at the temporary name is never
	// followed (the random name makes planting hard in the first place).
	dir := t.TempDir()
	target := filepath.Join(t.TempDir(), "target")
	// With an anonymous file, the link to the temporary name fails the
	// same way.
	for _, create := range []func(dir, name string) (*os.File, bool, error){createNamed, defaultOps.create} {
		ops := defaultOps
		ops.create = func(dir, name string) (*os.File, bool, error) {
			os.Symlink(target, filepath.Join(dir, name))
			return create(dir, name)
		}
		_, err := writeDurable(&ops, dir, "f", func(w io.Writer) error { return nil }, writeOpts{owner: -1})
		if !errors.Is(err, os.ErrExist) {
			t.Fatalf("err = %v, want EEXIST", err)
		}
		if _, err := os.Lstat(target); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the link's target was created")
		}
	}
}

// batchFiles are the files of a batch write in the tests: f0 to f3,
// where f0 and f2 exist already (content "old").
func batchFiles(t *testing.T, dir string) []durableFile {
	t.Helper()
	for _, name := range []string{"f0", "f2"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("old"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var batch []durableFile
	for i := range 4 {
		batch = append(batch, durableFile{name: fmt.Sprintf("f%d", i), write: func(w io.Writer) error {
			_, err := fmt.Fprintf(w, "new %d", i)
			return err
		}})
	}
	return batch
}

// TestWriteDurableBatch: every file of the batch in place with its new
// content, with one fsync of the directory for all of them.
func TestWriteDurableBatch(t *testing.T) {
	for _, named := range []bool{false, true} {
		dir := t.TempDir()
		batch := batchFiles(t, dir)
		fl := &faults{named: named}
		writeDurableBatch(fl.ops(), dir, batch, writeOpts{owner: -1})
		for i, df := range batch {
			if df.err != nil || df.f != nil {
				t.Errorf("named=%v: file %d: err %v, f %v", named, i, df.err, df.f)
			}
			if got, _ := os.ReadFile(filepath.Join(dir, df.name)); string(got) != fmt.Sprintf("new %d", i) {
				t.Errorf("named=%v: %s has %q", named, df.name, got)
			}
		}
		if got := files(t, dir); !slices.Equal(got, []string{"f0", "f1", "f2", "f3"}) {
			t.Errorf("named=%v: files %q", named, got)
		}
		if fl.counts["sync"] != 4 || fl.counts["rename"] != 4 || fl.counts["syncDir"] != 1 {
			t.Errorf("named=%v: calls %v, want 4 fsyncs, 4 renames and 1 fsync of the directory", named, fl.counts)
		}
	}
}

// TestWriteDurableBatchFailures fails each step for the second file of a
// batch (f1, new) or the third (f2, which exists): that file gets the
// error and keeps its old state (no file, or the old content), no
// temporary file remains, and the others of the batch are written. A
// failed fsync of the directory is every renamed file's failure: their
// new content is in place, but may not survive a crash.
func TestWriteDurableBatchFailures(t *testing.T) {
	errInjected := syscall.EIO
	for _, named := range []bool{false, true} {
		for _, op := range []string{"create", "write", "sync", "link", "close", "rename"} {
			if named && op == "link" {
				continue
			}
			for _, victim := range []int{1, 2} {
				t.Run(fmt.Sprintf("%s/file%d/named=%v", op, victim, named), func(t *testing.T) {
					dir := t.TempDir()
					batch := batchFiles(t, dir)
					// Each step runs over the files in order; a file's
					// content is one write.
					writeDurableBatch((&faults{op: op, at: victim + 1, err: errInjected, named: named}).ops(), dir, batch, writeOpts{owner: -1})
					for i, df := range batch {
						got, err := os.ReadFile(filepath.Join(dir, df.name))
						switch {
						case i != victim:
							if df.err != nil || string(got) != fmt.Sprintf("new %d", i) {
								t.Errorf("%s: err %v, content %q; want it written", df.name, df.err, got)
							}
						case !errors.Is(df.err, errInjected):
							t.Errorf("%s: err %v, want it to wrap %v", df.name, df.err, errInjected)
						case i == 1 && !errors.Is(err, fs.ErrNotExist):
							t.Errorf("%s, new, exists after its failure: %q", df.name, got)
						case i == 2 && string(got) != "old":
							t.Errorf("%s has %q after its failure, want the old content", df.name, got)
						}
					}
					if got := files(t, dir); !slices.Equal(got, slices.DeleteFunc([]string{"f0", "f1", "f2", "f3"}, func(s string) bool { return victim == 1 && s == "f1" })) {
						t.Errorf("files %q", got)
					}
				})
			}
		}
		t.Run(fmt.Sprintf("syncDir/named=%v", named), func(t *testing.T) {
			dir := t.TempDir()
			batch := batchFiles(t, dir)
			writeDurableBatch((&faults{op: "syncDir", at: 1, err: errInjected, named: named}).ops(), dir, batch, writeOpts{owner: -1})
			for i, df := range batch {
				if !errors.Is(df.err, errInjected) {
					t.Errorf("%s: err %v, want it to wrap %v", df.name, df.err, errInjected)
				}
				if got, _ := os.ReadFile(filepath.Join(dir, df.name)); string(got) != fmt.Sprintf("new %d", i) {
					t.Errorf("%s has %q, want the new content in place", df.name, got)
				}
			}
			if got := files(t, dir); !slices.Equal(got, []string{"f0", "f1", "f2", "f3"}) {
				t.Errorf("files %q", got)
			}
		})
	}
}
