// Package cli is handoff's command line. Run takes the whole argument
// vector, so the interface can be chosen by the name it was called by.
//
// Today it has the admin commands that need only the relay package:
// "handoff version" and "handoff probe URL". The sendmail interface
// (sendmail, mailq, newaliases) is not built yet; called that way, the
// program says so and exits 69 (EX_UNAVAILABLE) without reading a message.
package cli

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/handoff-mta/handoff/relay"
)

// Version is set at build time with -ldflags "-X ...cli.Version=...".
var Version = "0.1.0-dev"

// sysexits(3) codes used here.
const (
	exOK          = 0
	exUsage       = 64
	exUnavailable = 69
	exTempFail    = 75
)

// Run runs the program with args (args[0] is the name it was called by)
// and returns the exit status.
func Run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	name := "handoff"
	if len(args) > 0 {
		name = filepath.Base(args[0])
		args = args[1:]
	}
	if name != "handoff" || (len(args) > 0 && strings.HasPrefix(args[0], "-") && args[0] != "-h" && args[0] != "--help") {
		fmt.Fprintf(stderr, "%s: the sendmail interface is not implemented yet in this build; no message was read\n", name)
		return exUnavailable
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		return exOK
	}
	switch args[0] {
	case "version":
		fmt.Fprintf(stdout, "handoff %s\n", Version)
		return exOK
	case "probe":
		return probe(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "handoff: unknown command %q (try: handoff help)\n", args[0])
	return exUsage
}

const usage = `usage:
  handoff version             print the version
  handoff probe [-v] [-insecure] [-timeout 30s] URL
                              connect to a relay, print its greeting,
                              extensions and TLS, and QUIT; -v shows the
                              dialogue. URL: smtp://host[:port],
                              submission://host, smtps://host[:port],
                              lmtp://host[:port], lmtp:///path/to/socket
`

// probe connects to a relay and describes it.
func probe(args []string, stdout, stderr io.Writer) int {
	verbose, insecure := false, false
	timeout := 30 * time.Second
	var url string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-v":
			verbose = true
		case a == "-insecure":
			insecure = true
		case a == "-timeout" && i+1 < len(args):
			d, err := time.ParseDuration(args[i+1])
			if err != nil {
				fmt.Fprintf(stderr, "handoff probe: bad -timeout %q\n", args[i+1])
				return exUsage
			}
			timeout = d
			i++
		case strings.HasPrefix(a, "-") || url != "":
			fmt.Fprintf(stderr, "handoff probe: unexpected argument %q\n%s", a, usage)
			return exUsage
		default:
			url = a
		}
	}
	if url == "" {
		fmt.Fprint(stderr, usage)
		return exUsage
	}
	opts, err := relay.ParseURL(url)
	if err != nil {
		fmt.Fprintf(stderr, "handoff probe: %v\n", err)
		return exUsage
	}
	if opts.TLS == relay.TLSDefault && opts.Network != "unix" {
		opts.TLS = relay.STARTTLSOpportunistic
	}
	opts.TLSConfig.InsecureSkipVerify = insecure
	if verbose {
		opts.Debug = stderr
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := relay.Dial(ctx, opts)
	if err != nil {
		fmt.Fprintf(stderr, "handoff probe: %v\n", err)
		if relay.IsTemporary(err) {
			return exTempFail
		}
		return exUnavailable
	}
	defer c.Close()
	fmt.Fprintf(stdout, "server:     %s\n", c.Server())
	fmt.Fprintf(stdout, "greeting:   %s\n", c.Greeting())
	tlsInfo := c.TLS()
	if tlsInfo == "" {
		tlsInfo = "none"
	}
	fmt.Fprintf(stdout, "tls:        %s\n", tlsInfo)
	ext := c.Extensions()
	keys := make([]string, 0, len(ext))
	for k := range ext {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(stdout, "extension:  %s\n", strings.TrimSpace(k+" "+ext[k]))
	}
	if err := c.Quit(ctx); err != nil {
		fmt.Fprintf(stderr, "handoff probe: %v\n", err)
	}
	return exOK
}
