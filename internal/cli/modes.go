package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/handoff-mta/handoff/config"
	"github.com/handoff-mta/handoff/internal/mbox"
	"github.com/handoff-mta/handoff/internal/sendopt"
	"github.com/handoff-mta/handoff/message"
)

// verifyMode is -bv: print where each recipient would go; send nothing.
func verifyMode(env *Env, inv *sendopt.Invocation) int {
	j, code := newJob(env, inv)
	if j == nil {
		return code
	}
	if len(inv.Recipients) == 0 {
		fmt.Fprintf(env.Stderr, "%s: -bv needs recipients to verify\n", inv.Name)
		return exUsage
	}
	code = exOK
	for _, a := range inv.Recipients {
		list, err := message.ParseAddressList(a)
		if err != nil {
			fmt.Fprintf(env.Stdout, "%s: undeliverable: cannot parse: %v\n", a, err)
			code = worse(code, exDataErr)
			continue
		}
		for _, r := range list {
			targets, err := j.addr.expand(r)
			if err != nil {
				fmt.Fprintf(env.Stdout, "%s: undeliverable: %v\n", r, err)
				code = worse(code, exConfig)
				continue
			}
			routes, failed := j.routeAll(j.sender, targets)
			for _, f := range failed {
				fmt.Fprintf(env.Stdout, "%s -> %s: undeliverable: %v\n", r, f.rcpt, f.err)
				code = worse(code, exitFor(f.err))
			}
			for _, rt := range routes {
				for _, t := range rt.rcpts {
					desc := j.describeRoute(rt, t)
					fmt.Fprintf(env.Stdout, "%s -> %s: %s\n", r, t, desc)
					if strings.Contains(desc, "undeliverable: no such local user") {
						code = worse(code, exNoUser)
					} else if strings.Contains(desc, "undeliverable") {
						code = worse(code, exUnavailable)
					}
				}
			}
		}
	}
	return code
}

// describeRoute says how one recipient of a route would be delivered.
func (j *job) describeRoute(rt *route, rcpt string) string {
	if len(rt.relays) == 0 {
		return j.describeLocal(rcpt, j.env.MailSpool)
	}
	s := ""
	for i, rl := range rt.relays {
		if i > 0 {
			s += ", then "
		}
		if rl.IsMbox() {
			s += "relay " + rl.Name + " (" + j.describeLocal(rcpt, j.mboxDir(rl)) + ")"
		} else {
			s += "relay " + rl.Name + " (" + rl.URL + ")"
		}
	}
	return "deliverable: " + s
}

func (j *job) describeLocal(rcpt, dir string) string {
	local, _ := split(rcpt)
	mb, err := mbox.ForUser(dir, local)
	if errors.Is(err, mbox.ErrNoSuchUser) {
		return fmt.Sprintf("undeliverable: no such local user %q", local)
	}
	if err != nil {
		return "undeliverable: " + err.Error()
	}
	return "deliverable: local mailbox " + mb.Path
}

// aliasesMode is -bi / newaliases: there is no alias database to
// rebuild; it validates the aliases in the config (and aliases_file) and
// says how many there are.
func aliasesMode(env *Env, inv *sendopt.Invocation) int {
	cfg, err := loadConfig(env, inv)
	if err != nil {
		fmt.Fprintf(env.Stderr, "%s: %v\n", inv.Name, err)
		return exConfig
	}
	where := "built-in defaults"
	if cfg.Path != "" {
		where = cfg.Path
	}
	fmt.Fprintf(env.Stdout, "%s: %d aliases (from %s), nothing to rebuild\n", inv.Name, len(cfg.Aliases), where)
	return exOK
}

// configCmd is "handoff config check [-C FILE]".
func configCmd(args []string, env *Env) int {
	if len(args) == 0 || args[0] != "check" {
		fmt.Fprintln(env.Stderr, "handoff config: usage: handoff config check [-C FILE]")
		return exUsage
	}
	path := env.Getenv("HANDOFF_CONFIG")
	rest := args[1:]
	switch {
	case len(rest) == 2 && rest[0] == "-C":
		path = rest[1]
	case len(rest) != 0:
		fmt.Fprintln(env.Stderr, "handoff config: usage: handoff config check [-C FILE]")
		return exUsage
	}
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintf(env.Stderr, "handoff: %v\n", err)
		return exConfig
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(env.Stderr, "handoff: warning: %s\n", w)
	}
	if err := cfg.WriteEffective(env.Stdout); err != nil {
		fmt.Fprintf(env.Stderr, "handoff: %v\n", err)
		return exIOErr
	}
	return exOK
}
