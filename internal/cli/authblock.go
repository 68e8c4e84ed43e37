package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/handoff-mta/handoff/relay"
)

// authBlockFile, in the queue directory, lists the relays that refused
// the configured credentials with 535 during a queue run, each with the
// fingerprint of the config it happened under. Until the config changes
// or an admin flushes the queue, runs do not connect to those relays
// again: retrying a wrong password every few minutes gets accounts
// locked and fills the relay's logs (PRODUCT.md §5).
const authBlockFile = "auth-refused"

// authBlocks is the set of blocked relays for one run.
type authBlocks struct {
	mu     sync.Mutex // parallel workers of one run share the blocks
	path   string
	print  string          // fingerprint of the current config
	relays map[string]bool // relay name -> blocked
	// proven lists the relays this run has connected to; until then a
	// relay's gate lets one worker at a time connect, so that parallel
	// workers try a wrong password once, not once each.
	proven map[string]bool
	gates  map[string]chan struct{}
}

// connect runs dial, the start of a connection to the named relay, alone
// until one has succeeded in this run; after a 535 it blocks the relay
// (note), and the workers that waited get the block instead of dialling.
func (b *authBlocks) connect(ctx context.Context, j *job, name string, dial func() (*relay.Client, error)) (*relay.Client, error) {
	if b == nil {
		return dial()
	}
	b.mu.Lock()
	if b.proven[name] {
		b.mu.Unlock()
		return b.noted(j, name, dial)
	}
	g := b.gates[name]
	if g == nil {
		g = make(chan struct{}, 1)
		b.gates[name] = g
	}
	b.mu.Unlock()
	select {
	case g <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-g }()
	if err := b.blocked(name); err != nil {
		return nil, err
	}
	c, err := b.noted(j, name, dial)
	if err == nil {
		b.mu.Lock()
		b.proven[name] = true
		b.mu.Unlock()
	}
	return c, err
}

// noted dials and notes a 535.
func (b *authBlocks) noted(j *job, name string, dial func() (*relay.Client, error)) (*relay.Client, error) {
	c, err := dial()
	if err != nil {
		b.note(j, name, err)
	}
	return c, err
}

// configPrint fingerprints the config file (its bytes), so that editing
// the password or anything else lifts the block.
func configPrint(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		data = []byte("builtin:" + path)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:8])
}

// loadAuthBlocks reads the blocks that still apply to this config; with
// clear (a flush) it removes them all.
func loadAuthBlocks(queueDir, cfgPath string, clear bool) *authBlocks {
	b := &authBlocks{path: filepath.Join(queueDir, authBlockFile), print: configPrint(cfgPath), relays: map[string]bool{},
		proven: map[string]bool{}, gates: map[string]chan struct{}{}}
	if clear {
		os.Remove(b.path)
		return b
	}
	data, err := os.ReadFile(b.path)
	if err != nil {
		return b
	}
	for _, line := range strings.Split(string(data), "\n") {
		name, print, ok := strings.Cut(line, " ")
		if ok && print == b.print {
			b.relays[name] = true
		}
	}
	return b
}

// blocked returns the error to record for a recipient of a blocked
// relay, or nil.
func (b *authBlocks) blocked(name string) error {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	blocked := b.relays[name]
	b.mu.Unlock()
	if !blocked {
		return nil
	}
	return errorf(exTempFail, fmt.Sprintf("relay %s refused the configured credentials (535) earlier; not retried until the configuration changes or an admin runs 'handoff queue flush'", name))
}

// note blocks a relay after a 535 and says so once; it reports whether
// this error was such a refusal.
func (b *authBlocks) note(j *job, name string, err error) bool {
	if b == nil || !errors.Is(err, relay.ErrAuthentication) {
		return false
	}
	if r := relay.ReplyOf(err); r == nil || r.Code != 535 {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.relays[name] {
		return true
	}
	b.relays[name] = true
	var lines []string
	for n := range b.relays {
		lines = append(lines, n+" "+b.print)
	}
	if werr := os.WriteFile(b.path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); werr != nil {
		j.warnf("recording that relay %s refused authentication: %v", name, werr)
	}
	j.warnf("relay %s refused the configured credentials: %v; not trying it again until the configuration changes or an admin runs 'handoff queue flush'", name, err)
	j.logNote(j.logID, fmt.Sprintf("relay=%s refused the configured credentials (%v); not tried again until the configuration changes or 'handoff queue flush'", name, oneLine(err.Error())))
	return true
}
