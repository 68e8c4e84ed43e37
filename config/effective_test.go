package config

import (
	"bytes"
	"os"
	"reflect"
	"strings"
	"testing"
)

func TestWriteEffective(t *testing.T) {
	data, err := os.ReadFile("testdata/effective.toml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(data, "handoff.toml")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := c.WriteEffective(&out); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "hunter2") {
		t.Errorf("the password is in the output:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "password = <hidden>\n") {
		t.Errorf("no hidden password line:\n%s", out.String())
	}
	const golden = "testdata/effective.golden"
	if *update {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != string(want) {
		t.Errorf("got:\n%s\nwant:\n%s", out.String(), want)
	}
}

// The effective output, with a password put back in place of <hidden>,
// loads again into the same configuration: it really is "every default
// filled in".
func TestWriteEffectiveRoundTrip(t *testing.T) {
	for _, c := range []*Config{fullConfig(t), Default(), mustParse(t, "testdata/effective.toml")} {
		roundTrip(t, c)
	}
}

func mustParse(t *testing.T, file string) *Config {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(data, file)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// roundTrip checks that c's effective form parses back to c.
func roundTrip(t testing.TB, c *Config) {
	t.Helper()
	var out bytes.Buffer
	if err := c.WriteEffective(&out); err != nil {
		t.Fatal(err)
	}
	const fake = "restored-secret"
	text := strings.ReplaceAll(out.String(), "password = <hidden>", `password = "`+fake+`"`)
	text = strings.ReplaceAll(text, "client_secret = <hidden>", `client_secret = "`+fake+`"`)
	back, err := Parse([]byte(text), c.Path)
	if err != nil {
		t.Fatalf("effective config does not load: %v\n%s", err, text)
	}
	want := *c
	want.Relays = append([]Relay(nil), c.Relays...)
	for i := range want.Relays {
		if want.Relays[i].Password != "" {
			want.Relays[i].Password = fake
		}
		if o := want.Relays[i].OAuth2; o != nil && o.ClientSecret != "" {
			oc := *o
			oc.ClientSecret = fake
			want.Relays[i].OAuth2 = &oc
		}
		want.Relays[i].Line = back.Relays[i].Line
		if want.Relays[i].IsMbox() || want.Relays[i].kind() == urlUnix {
			// Keys that do not apply are not written; they keep their
			// defaults.
			d := defaultRelay()
			want.Relays[i].StartTLS, want.Relays[i].TLSMinVersion = d.StartTLS, d.TLSMinVersion
		}
	}
	if want.Aliases == nil {
		want.Aliases = map[string][]string{}
	}
	want.Warnings = back.Warnings
	if !reflect.DeepEqual(back, &want) {
		t.Errorf("round trip:\n%+v\nwant\n%+v\nfrom\n%s", back, &want, text)
	}
}
