package cli

import (
	"fmt"
	"strings"

	"github.com/handoff-mta/handoff/config"
)

// addresser applies the config's address rules: aliases (with the "*"
// catch-all), then qualification of bare names with the mail domain
// (PRODUCT.md §3). Local means the address is for this host: no domain,
// "localhost", the host name or the mail domain.
type addresser struct {
	cfg *config.Config
}

// isLocalDomain reports whether d names this host.
func (a addresser) isLocalDomain(d string) bool {
	d = strings.ToLower(d)
	return d == "" || d == "localhost" || d == "localhost.localdomain" ||
		d == strings.ToLower(a.cfg.Hostname) || d == strings.ToLower(a.cfg.Domain)
}

// split returns the local part and the domain ("" when there is none).
func split(addr string) (local, domain string) {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[:i], addr[i+1:]
	}
	return addr, ""
}

// qualify adds the mail domain to a bare name and maps local host names
// to the mail domain: "root" and "root@localhost" become "root@domain".
func (a addresser) qualify(addr string) string {
	local, domain := split(addr)
	if local == "" {
		return addr
	}
	if domain == "" || strings.EqualFold(domain, "localhost") || strings.EqualFold(domain, "localhost.localdomain") || strings.EqualFold(domain, a.cfg.Hostname) {
		return local + "@" + a.cfg.Domain
	}
	return addr
}

// expand maps one recipient through the aliases, recursively (an alias
// may name another local name), and qualifies the results. Loops and
// chains deeper than 10 are errors.
func (a addresser) expand(addr string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	var walk func(addr string, depth int) error
	walk = func(addr string, depth int) error {
		if depth > 10 {
			return fmt.Errorf("alias chain for %q is longer than 10 (a loop?)", addr)
		}
		local, domain := split(addr)
		if !a.isLocalDomain(domain) {
			out = append(out, addr)
			return nil
		}
		key := strings.ToLower(local)
		if seen[key] {
			// A name that maps to itself ("root: root") is the end of the
			// chain, not a loop.
			out = append(out, a.qualify(local))
			return nil
		}
		targets, ok := a.cfg.LookupAlias(key)
		if !ok {
			out = append(out, a.qualify(addr))
			return nil
		}
		seen[key] = true
		for _, t := range targets {
			if err := walk(t, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(addr, 0); err != nil {
		return nil, err
	}
	return out, nil
}

// headerAddress is the Qualify function for header fields: an alias with
// exactly one target replaces the name; anything else is only qualified.
func (a addresser) headerAddress(addr string) string {
	local, domain := split(addr)
	if !a.isLocalDomain(domain) || local == "" {
		return addr
	}
	if t, err := a.expand(addr); err == nil && len(t) == 1 {
		return t[0]
	}
	return a.qualify(addr)
}

// dedupe keeps the first of each address, comparing domains without
// case.
func dedupe(in []string) []string {
	seen := make(map[string]bool, len(in))
	out := in[:0:0]
	for _, r := range in {
		l, d := split(r)
		k := l + "@" + strings.ToLower(d)
		if !seen[k] {
			seen[k] = true
			out = append(out, r)
		}
	}
	return out
}
