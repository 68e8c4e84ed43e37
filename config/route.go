package config

import (
	"path"
	"path/filepath"
	"strings"
)

// IsMbox reports whether the relay delivers to local mailboxes (url
// "mbox:" or "mbox:/dir").
func (r *Relay) IsMbox() bool {
	scheme, _, ok := strings.Cut(r.URL, ":")
	return ok && strings.EqualFold(scheme, "mbox")
}

// MboxDir returns the mailbox directory of an mbox: relay: the path after
// "mbox:", or DefaultMailDir for a bare "mbox:". It returns "" for other
// relays.
func (r *Relay) MboxDir() string {
	if !r.IsMbox() {
		return ""
	}
	_, dir, _ := strings.Cut(r.URL, ":")
	if dir == "" {
		return DefaultMailDir
	}
	return filepath.Clean(dir)
}

// Matches reports whether the relay takes mail from the envelope sender
// (an address, "" for the null sender) to a recipient in rcptDomain:
// one of Senders must match the sender and one of Domains the domain.
// Patterns use path.Match syntax and are matched in lower case; empty
// Senders or Domains match anything (as the default ["*"]). A malformed
// pattern matches nothing (Parse refuses them).
func (r *Relay) Matches(sender, rcptDomain string) bool {
	return matchAny(r.Senders, strings.ToLower(sender)) &&
		matchAny(r.Domains, strings.ToLower(strings.TrimSuffix(rcptDomain, ".")))
}

func matchAny(patterns []string, s string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if ok, err := path.Match(strings.ToLower(p), s); ok && err == nil {
			return true
		}
	}
	return false
}

// Routes returns the relays that take mail from sender to a recipient in
// rcptDomain, in the order of the file: the first is tried first, the
// others are its fallbacks. It returns nil when none matches (with no
// relays configured, the caller delivers local mail to mailboxes).
func (c *Config) Routes(sender, rcptDomain string) []*Relay {
	var out []*Relay
	for i := range c.Relays {
		if c.Relays[i].Matches(sender, rcptDomain) {
			out = append(out, &c.Relays[i])
		}
	}
	return out
}
