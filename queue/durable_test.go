package queue

import (
	"errors"
	"io"
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

// TestWriteFileDurableFailures fails each step of the helper in turn: the
// error is returned (wrapping the cause), no temporary file remains, and
// the previous file is intact for every failure before the rename; after
// a failed directory fsync the new file is in place, whole.
func TestWriteFileDurableFailures(t *testing.T) {
	errInjected := syscall.EIO
	errWrite := errors.New("the content could not be produced")
	for _, tc := range []struct {
		op      string
		wantNew bool // the new content is in place
	}{
		{op: "create"},
		{op: "write"},
		{op: "writefunc"},
		{op: "sync"},
		{op: "close"},
		{op: "rename"},
		{op: "syncDir", wantNew: true},
	} {
		t.Run(tc.op, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "f"), []byte("old"), 0o600); err != nil {
				t.Fatal(err)
			}
			fl := &faults{op: tc.op, at: 1, err: errInjected}
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
	ops := defaultOps
	ops.create = func(dir, name string) (*os.File, error) {
		os.Symlink(target, filepath.Join(dir, name))
		return defaultOps.create(dir, name)
	}
	_, err := writeDurable(&ops, dir, "f", func(w io.Writer) error { return nil }, writeOpts{owner: -1})
	if !errors.Is(err, os.ErrExist) {
		t.Fatalf("err = %v, want EEXIST", err)
	}
	if _, err := os.Lstat(target); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the link's target was created")
	}
}
