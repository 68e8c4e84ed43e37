// Command handoff is a sendmail replacement: installed as
// /usr/sbin/sendmail it hands each message to a relay over SMTP, SMTPS or
// LMTP. All the work is in internal/cli, so that every path is testable.
package main

import (
	"os"

	"github.com/handoff-mta/handoff/internal/cli"
)

func main() {
	os.Exit(cli.Run(os.Args, os.Stdin, os.Stdout, os.Stderr))
}
