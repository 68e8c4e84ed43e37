package cli

import (
	"io"
	"os"
	"os/user"
	"time"
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
	// Now is the clock.
	Now func() time.Time
	// StdinIsTerminal reports whether stdin is a terminal (dead.letter is
	// not written for typed input).
	StdinIsTerminal func() bool
	// MailSpool is the directory of local mailboxes, /var/mail.
	MailSpool string
	// Rand is the random source for Message-IDs; nil means crypto/rand.
	Rand io.Reader
}

// processEnv is the Env of the running process.
func processEnv(stdin io.Reader, stdout, stderr io.Writer) *Env {
	return &Env{
		Stdin:  stdin,
		Stdout: stdout,
		Stderr: stderr,
		Getenv: os.Getenv,
		User:   user.Current,
		Now:    time.Now,
		StdinIsTerminal: func() bool {
			f, ok := stdin.(*os.File)
			if !ok {
				return false
			}
			fi, err := f.Stat()
			return err == nil && fi.Mode()&os.ModeCharDevice != 0
		},
		MailSpool: "/var/mail",
	}
}
