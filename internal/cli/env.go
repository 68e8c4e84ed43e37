package cli

import (
	"context"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"strconv"
	"syscall"
	"time"

	"github.com/handoff-mta/handoff/internal/userdb"
)

// Env is everything the command line takes from the process, so that
// tests can run the whole program in-process with a fake user, clock and
// environment.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Getenv reads an environment variable (HANDOFF_CONFIG, NAME, HOME).
	Getenv func(string) string
	// User is the real user running the program.
	User func() (*user.User, error)
	// Getuid returns the real uid of the caller: the owner recorded on
	// the messages it queues; uid 0 sees and manages every queue item.
	// nil: User's Uid.
	Getuid func() int
	// Now is the clock.
	Now func() time.Time
	// StdinIsTerminal reports whether stdin is a terminal (dead.letter is
	// not written for typed input).
	StdinIsTerminal func() bool
	// MailSpool is the directory of local mailboxes, /var/mail.
	MailSpool string
	// Rand is the random source for Message-IDs; nil means crypto/rand.
	Rand io.Reader
	// Log, when set, receives the delivery log instead of syslog.
	Log io.Writer
	// Background starts this program detached with args (args[0] is the
	// name to run it as) and does not wait for it; nil makes -odb and
	// mode "always" attempt delivery in the calling process.
	Background func(args []string) error
	// Context returns the context of a queue run: done when the run is
	// to stop (SIGTERM or SIGINT for the process), which ends a
	// -q<interval> loop cleanly. nil: never done.
	Context func() (context.Context, context.CancelFunc)
	// Sleep waits d, or until ctx is done and then returns its error:
	// the pause between the runs of -q<interval>. nil: a timer.
	Sleep func(ctx context.Context, d time.Duration) error
}

// processEnv is the Env of the running process.
func processEnv(stdin io.Reader, stdout, stderr io.Writer) *Env {
	return &Env{
		Stdin:  stdin,
		Stdout: stdout,
		Stderr: stderr,
		Getenv: os.Getenv,
		User:   userdb.Current,
		Getuid: os.Getuid,
		Now:    time.Now,
		StdinIsTerminal: func() bool {
			f, ok := stdin.(*os.File)
			if !ok {
				return false
			}
			fi, err := f.Stat()
			return err == nil && fi.Mode()&os.ModeCharDevice != 0
		},
		MailSpool:  "/var/mail",
		Background: startDetached,
		Context: func() (context.Context, context.CancelFunc) {
			return signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		},
	}
}

// uid is the caller's real uid (see Getuid).
func (e *Env) uid() int {
	if e.Getuid != nil {
		return e.Getuid()
	}
	if e.User != nil {
		if u, err := e.User(); err == nil {
			if n, err := strconv.Atoi(u.Uid); err == nil {
				return n
			}
		}
	}
	return os.Getuid()
}

// context is Context, or a context that is never done.
func (e *Env) context() (context.Context, context.CancelFunc) {
	if e.Context != nil {
		return e.Context()
	}
	return context.WithCancel(context.Background())
}

// sleep is Sleep, or a timer that ctx interrupts.
func (e *Env) sleep(ctx context.Context, d time.Duration) error {
	if e.Sleep != nil {
		return e.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startDetached runs this executable again in a new session with its
// standard streams on /dev/null, and lets it go.
func startDetached(args []string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer null.Close()
	cmd := &exec.Cmd{
		Path:        exe,
		Args:        args,
		Stdin:       null,
		Stdout:      null,
		Stderr:      null,
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	return cmd.Process.Release()
}
