package queue

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The cross-process tests run this test binary again as a helper that
// takes a lock, says what happened on its stdout, and holds the lock
// until its stdin is closed: no sleeps, no guessing.

const helperEnv = "HANDOFF_QUEUE_TEST_HELPER"

func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("the helper of the cross-process tests")
	}
	q, err := Open(os.Getenv("HANDOFF_QUEUE_DIR"))
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	var release func()
	switch mode {
	case "lock":
		it, err := q.Lock(os.Getenv("HANDOFF_QUEUE_ID"))
		if err == nil {
			release = it.Unlock
		}
		report(err)
	case "enqueue":
		// Enqueue for ever, printing each id once Enqueue returned: the
		// acknowledgement a submitter gives its caller.
		for {
			id, err := q.Enqueue(testEnvelope(), strings.NewReader(testMessage))
			if err != nil {
				fmt.Println("error:", err)
				os.Exit(1)
			}
			fmt.Println(id)
		}
	case "runner":
		unlock, err := q.RunnerLock()
		if err == nil {
			release = unlock
		}
		report(err)
	default:
		fmt.Println("error: unknown mode", mode)
		os.Exit(1)
	}
	io.Copy(io.Discard, os.Stdin)
	if release != nil {
		release()
	}
	os.Exit(0)
}

func report(err error) {
	switch {
	case err == nil:
		fmt.Println("locked")
	case errors.Is(err, ErrBusy):
		fmt.Println("busy")
	default:
		fmt.Println("error:", err)
	}
}

// helper is a running helper process.
type helper struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	said  string
}

// startHelper runs the helper and waits for its first line.
func startHelper(t *testing.T, mode, dir, id string) *helper {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, "HANDOFF_QUEUE_DIR="+dir, "HANDOFF_QUEUE_ID="+id)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helper{cmd: cmd, stdin: stdin}
	t.Cleanup(func() { h.stop(t) })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("helper said %q: %v", line, err)
	}
	h.said = strings.TrimSpace(line)
	return h
}

// stop closes the helper's stdin (it releases its lock and exits) and
// waits for it.
func (h *helper) stop(t *testing.T) {
	if h.cmd == nil {
		return
	}
	h.stdin.Close()
	if err := h.cmd.Wait(); err != nil {
		t.Errorf("helper: %v", err)
	}
	h.cmd = nil
}

func TestLockAcrossProcesses(t *testing.T) {
	q := newQueue(t)
	id := enqueue(t, q, testEnvelope())

	// The other process holds the item: we are busy.
	h := startHelper(t, "lock", q.Dir, id)
	if h.said != "locked" {
		t.Fatalf("helper: %s", h.said)
	}
	if _, err := q.Lock(id); !errors.Is(err, ErrBusy) {
		t.Fatalf("Lock while another process holds it = %v, want ErrBusy", err)
	}
	if err := q.Delete(id); !errors.Is(err, ErrBusy) {
		t.Errorf("Delete = %v, want ErrBusy", err)
	}
	h.stop(t)
	it, err := q.Lock(id)
	if err != nil {
		t.Fatalf("Lock after the other process let go: %v", err)
	}

	// We hold it: the other process is busy.
	if h := startHelper(t, "lock", q.Dir, id); h.said != "busy" {
		t.Errorf("helper while we hold the item: %s, want busy", h.said)
	}
	it.Unlock()

	// A process that dies releases its lock.
	h = startHelper(t, "lock", q.Dir, id)
	if h.said != "locked" {
		t.Fatalf("helper: %s", h.said)
	}
	h.cmd.Process.Kill()
	h.cmd.Wait()
	h.cmd = nil
	it, err = q.Lock(id)
	if err != nil {
		t.Fatalf("Lock after the holder was killed: %v", err)
	}
	it.Unlock()
}

func TestRunnerLockAcrossProcesses(t *testing.T) {
	q := newQueue(t)
	h := startHelper(t, "runner", q.Dir, "")
	if h.said != "locked" {
		t.Fatalf("helper: %s", h.said)
	}
	if _, err := q.RunnerLock(); !errors.Is(err, ErrBusy) {
		t.Fatalf("RunnerLock while another process runs = %v, want ErrBusy", err)
	}
	h.stop(t)
	unlock, err := q.RunnerLock()
	if err != nil {
		t.Fatal(err)
	}
	if h := startHelper(t, "runner", q.Dir, ""); h.said != "busy" {
		t.Errorf("helper while we run: %s, want busy", h.said)
	}
	unlock()
}

// TestKillDuringEnqueue kills a process that enqueues as fast as it can,
// at an arbitrary moment, several times: every acknowledged message is
// queued whole; anything else a kill left is either a whole item or an
// orphan that ReapOrphans removes; nothing is corrupt.
func TestKillDuringEnqueue(t *testing.T) {
	q := newQueue(t)
	var acked []string
	for round := range 5 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), helperEnv+"=enqueue", "HANDOFF_QUEUE_DIR="+q.Dir)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(stdout)
		for i := 0; i < 5+round*3; i++ {
			line, err := r.ReadString('\n')
			if err != nil || !ValidID(strings.TrimSpace(line)) {
				t.Fatalf("helper said %q, %v", line, err)
			}
			acked = append(acked, strings.TrimSpace(line))
		}
		cmd.Process.Signal(syscall.SIGKILL)
		for { // the ids it printed before dying were acknowledged too
			line, err := r.ReadString('\n')
			if err != nil {
				break
			}
			acked = append(acked, strings.TrimSpace(line))
		}
		cmd.Wait()
	}

	items, err := q.List(Filter{})
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, s := range items {
		if s.Err != nil {
			t.Errorf("%s: %v", s.ID, s.Err)
		}
		listed[s.ID] = true
		it, err := q.Lock(s.ID)
		if err != nil {
			t.Fatalf("Lock(%s): %v", s.ID, err)
		}
		body, _ := it.Body()
		if data, _ := io.ReadAll(body); string(data) != testMessage {
			t.Errorf("%s: message %q", s.ID, data)
		}
		it.Unlock()
	}
	for _, id := range acked {
		if !listed[id] {
			t.Errorf("acknowledged %s lost", id)
		}
	}
	t.Logf("%d acknowledged, %d queued", len(acked), len(items))
	if _, err := q.ReapOrphans(time.Now().Add(OrphanGrace), OrphanGrace); err != nil {
		t.Fatal(err)
	}
	if got := files(t, q.Dir); len(got) != 2*len(items) {
		t.Errorf("after reaping, files %q for %d items", got, len(items))
	}
}
