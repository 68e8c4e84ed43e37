package packaging

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/handoff-mta/handoff/config"
)

// conffile is the shipped configuration file and where it is installed.
const (
	conffile     = "handoff.toml"
	conffilePath = config.DefaultPath
)

// examples are the example configurations the package ships; every file
// in examples/ must be listed here, and every name here must exist.
var examples = []string{
	"dovecot-lmtp.toml",
	"gmail-app-password.toml",
	"gmail-oauth2.toml",
	"isp-smarthost.toml",
	"local-only.toml",
	"microsoft365-oauth2.toml",
}

// parse parses data as the file at path and fails the test on any
// problem, and on any warning about the file itself (a warning about
// /etc/mailname depends on the machine, not on the file).
func parse(t *testing.T, data []byte, path string) *config.Config {
	t.Helper()
	c, err := config.Parse(data, path)
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) {
			for _, p := range strings.Split(ce.Error(), "\n") {
				t.Errorf("problem: %s", p)
			}
		} else {
			t.Errorf("Parse: %v", err)
		}
		t.FailNow()
	}
	for _, w := range c.Warnings {
		if strings.HasPrefix(w, path+":") {
			t.Errorf("warning: %s", w)
		}
	}
	return c
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestConffileIsDefaults: the shipped /etc/handoff/handoff.toml, with
// every setting commented out, is the same configuration as an empty
// file (and so as no file at all).
func TestConffileIsDefaults(t *testing.T) {
	got := parse(t, readFile(t, conffile), conffilePath)
	want := parse(t, nil, conffilePath)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s does not parse to the defaults:\n got %+v\nwant %+v", conffile, got, want)
	}
}

// defaultLine is a line of the conffile that shows a default: '#'
// directly followed by a key or a table header. Comments and examples
// start with "# " instead.
var defaultLine = regexp.MustCompile(`^#([a-z_]+ = |\[)`)

// TestConffileShowsTrueDefaults uncomments every "#key = value" line and
// table header of the shipped file: the result must parse and still be
// the defaults, except for what a default cannot be shown for: hostname
// and domain (computed from the system; the file shows placeholders) and
// the one [[relay]] (there is none by default; its url is a
// placeholder), whose other keys must be the defaults of a relay that
// sets only name and url.
func TestConffileShowsTrueDefaults(t *testing.T) {
	var b strings.Builder
	n := 0
	for line := range strings.Lines(string(readFile(t, conffile))) {
		if defaultLine.MatchString(line) {
			line = line[1:]
			n++
		}
		b.WriteString(line)
	}
	if n < 30 {
		t.Fatalf("only %d default lines in %s; the pattern %s no longer matches its style", n, conffile, defaultLine)
	}
	got := parse(t, []byte(b.String()), conffilePath)
	if len(got.Relays) != 1 {
		t.Fatalf("uncommented %s has %d relays, want the 1 example", conffile, len(got.Relays))
	}
	r := got.Relays[0]
	minimal := "hostname = " + quote(got.Hostname) + "\ndomain = " + quote(got.Domain) +
		"\n[[relay]]\nname = " + quote(r.Name) + "\nurl = " + quote(r.URL) + "\n"
	want := parse(t, []byte(minimal), conffilePath)
	got.Relays[0].Line, want.Relays[0].Line = 0, 0
	if !reflect.DeepEqual(got, want) {
		t.Errorf("uncommented, %s is not the defaults:\n got %+v\nwant %+v", conffile, got, want)
		if !reflect.DeepEqual(got.Relays, want.Relays) {
			t.Errorf("relay:\n got %+v\nwant %+v", got.Relays[0], want.Relays[0])
		}
	}
}

func quote(s string) string { return `"` + s + `"` }

// TestExamples parses every example configuration.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("examples", "*"))
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, f := range files {
		found = append(found, filepath.Base(f))
	}
	for _, name := range found {
		if !slices.Contains(examples, name) {
			t.Errorf("examples/%s is not listed in examples_test.go", name)
		}
	}
	for _, name := range examples {
		t.Run(name, func(t *testing.T) {
			if !slices.Contains(found, name) {
				t.Fatalf("examples/%s is missing", name)
			}
			c := parse(t, readFile(t, filepath.Join("examples", name)), "/usr/share/doc/handoff/examples/"+name)
			if len(c.Relays) == 0 && len(c.Aliases) == 0 {
				t.Errorf("examples/%s configures neither a relay nor an alias", name)
			}
		})
	}
}
