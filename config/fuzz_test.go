package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse: Parse never panics; it returns either a *Error with at least
// one problem, each on a line of the input, or a configuration whose
// effective form loads back to the same configuration. The seeds are the
// example, the bad-config cases and testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/bad/*/handoff.toml")
	seeds = append(seeds, "testdata/full.toml", "testdata/effective.toml")
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "f.toml")
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) || len(ce.Problems) == 0 || c != nil {
				t.Fatalf("Parse error %T %v, config %v", err, err, c)
			}
			lines := strings.Count(string(data), "\n") + 1
			for _, p := range ce.Problems {
				if p.File == "" && (p.Line < 0 || p.Line > lines) {
					t.Fatalf("problem on line %d of %d: %+v", p.Line, lines, p)
				}
				if p.Msg == "" {
					t.Fatalf("empty message: %+v", p)
				}
			}
			return
		}
		roundTrip(t, c)
	})
}

// FuzzAliasesFile: the aliases parser never panics, and what it accepts
// is valid: lower-case names that pass checkAliasName, each with at least
// one target that passes checkAliasTarget.
func FuzzAliasesFile(f *testing.F) {
	for _, s := range []string{
		"root: ops@example.com\n",
		"# comment\npostmaster: root\nroot: a@example.com,\n  b@example.com\n",
		"\"quoted\": \"|cmd\", /file, :include:/x\n",
		"  orphan\nno colon\nempty:\n",
	} {
		f.Add([]byte(s))
	}
	if data, err := os.ReadFile("testdata/aliases"); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, probs := parseAliases(data)
		for name, targets := range m {
			if name != strings.ToLower(name) || checkAliasName(name) != "" {
				t.Fatalf("accepted name %q", name)
			}
			if len(targets) == 0 {
				t.Fatalf("name %q without targets", name)
			}
			for _, tg := range targets {
				if checkAliasTarget(tg) != "" || strings.TrimSpace(tg) != tg {
					t.Fatalf("accepted target %q of %q", tg, name)
				}
			}
		}
		for _, p := range probs {
			if p.Line < 1 || p.Msg == "" {
				t.Fatalf("bad problem %+v", p)
			}
		}
		m2, err := ParseAliases(data, "aliases")
		if (err != nil) != (len(probs) > 0) || (err == nil && len(m2) != len(m)) {
			t.Fatalf("ParseAliases = %v, %v; parseAliases found %d problems", m2, err, len(probs))
		}
		var ce *Error
		if err != nil && !errors.As(err, &ce) {
			t.Fatalf("error %T", err)
		}
	})
}
