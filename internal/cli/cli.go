// Package cli is handoff's command line. Run takes the whole argument
// vector, so the interface is chosen by the name it was called by:
// sendmail, send-mail, mailq, newaliases, rmail, runq, hoststat and
// purgestat speak the sendmail interface (internal/sendopt parses it);
// handoff runs the admin commands, or the sendmail interface when its
// first argument starts with "-".
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/handoff-mta/handoff/internal/sendopt"
	"github.com/handoff-mta/handoff/relay"
)

// Version is set at build time with -ldflags "-X ...cli.Version=...".
var Version = "0.1.0-dev"

// Run runs the program with args (args[0] is the name it was called by)
// and returns the exit status.
func Run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return RunEnv(args, processEnv(stdin, stdout, stderr))
}

// RunEnv is Run with every outside dependency in env, for tests.
func RunEnv(args []string, env *Env) int {
	name := "handoff"
	if len(args) > 0 {
		name = filepath.Base(args[0])
		args = args[1:]
	}
	if name == "handoff" && (len(args) == 0 || !strings.HasPrefix(args[0], "-") || args[0] == "-h" || args[0] == "--help") {
		return admin(args, env)
	}
	inv, err := sendopt.Parse(name, args)
	if err != nil {
		fmt.Fprintf(env.Stderr, "%s: %v\n", name, err)
		var ec interface{ ExitCode() int }
		if errors.As(err, &ec) {
			return ec.ExitCode()
		}
		return exUsage
	}
	for _, w := range inv.Warnings {
		fmt.Fprintf(env.Stderr, "%s: warning: %s\n", inv.Name, w)
	}
	switch inv.Mode {
	case sendopt.ModeDeliver:
		return deliverMode(env, inv)
	case sendopt.ModeSMTP:
		return smtpMode(env, inv)
	case sendopt.ModeVerify:
		return verifyMode(env, inv)
	case sendopt.ModeAliases:
		return aliasesMode(env, inv)
	case sendopt.ModeQueueList:
		return queueListMode(env, inv)
	case sendopt.ModeQueueRun:
		return queueRunMode(env, inv)
	case sendopt.ModeNoop:
		return exOK
	}
	fmt.Fprintf(env.Stderr, "%s: mode %v is not supported\n", inv.Name, inv.Mode)
	return exUsage
}

// admin runs "handoff COMMAND".
func admin(args []string, env *Env) int {
	stdout, stderr := env.Stdout, env.Stderr
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
	case "config":
		return configCmd(args[1:], env)
	case "queue":
		return queueCmd(args[1:], env)
	case "oauth2":
		return oauth2Cmd(args[1:], env)
	case "daemon":
		return daemonCmd(args[1:], env)
	}
	fmt.Fprintf(stderr, "handoff: unknown command %q (try: handoff help)\n", args[0])
	return exUsage
}

const usage = `usage:
  handoff version             print the version
  handoff config check [-C FILE]
                              validate the config and print the effective
                              settings, secrets hidden
  handoff queue [-C FILE] [-v] list [--json] | show ID | flush [ID...] |
                delete ID... | hold ID... | release ID...
                              list, inspect, deliver now or remove queued
                              messages (see handoff queue -h)
  handoff oauth2 login [-C FILE] [--device | --auth-code] RELAY
                              authorise handoff once to get OAuth2 tokens
                              for RELAY (see handoff oauth2 -h)
  handoff daemon [-C FILE] [-v]
                              system mode: take submissions on the
                              [daemon] socket as user handoff, keep the
                              relay secrets, run the queue (see handoff(8))
  handoff -t ... / sendmail ...
                              the sendmail interface (see handoff-sendmail(8))
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
