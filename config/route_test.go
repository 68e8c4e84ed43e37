package config

import (
	"reflect"
	"testing"
)

func TestMatches(t *testing.T) {
	cases := []struct {
		senders, domains []string
		sender, domain   string
		want             bool
	}{
		{nil, nil, "a@example.com", "example.org", true},
		{[]string{"*"}, []string{"*"}, "", "example.org", true}, // null sender
		{[]string{"*@example.com"}, nil, "app@example.com", "x.org", true},
		{[]string{"*@example.com"}, nil, "App@EXAMPLE.COM", "x.org", true},
		{[]string{"*@EXAMPLE.com"}, nil, "app@example.com", "x.org", true}, // hand-built, upper case
		{[]string{"*@example.com"}, nil, "app@sub.example.com", "x.org", false},
		{[]string{"*@example.com"}, nil, "", "x.org", false},
		{[]string{"*@example.com", "root@*"}, nil, "root@web1", "x.org", true},
		{[]string{"app?@example.com"}, nil, "app1@example.com", "x.org", true},
		{[]string{"app[0-9]@example.com"}, nil, "appx@example.com", "x.org", false},
		{nil, []string{"example.com"}, "a@b", "example.com", true},
		{nil, []string{"example.com"}, "a@b", "EXAMPLE.COM.", true},
		{nil, []string{"example.com"}, "a@b", "sub.example.com", false},
		{nil, []string{"*.example.com"}, "a@b", "sub.example.com", true},
		{nil, []string{"*.example.com"}, "a@b", "a.b.example.com", true},
		{nil, []string{"*.example.com"}, "a@b", "example.com", false},
		{nil, []string{"example.com", "*.example.com"}, "a@b", "example.com", true},
		{[]string{"*@example.com"}, []string{"example.org"}, "a@example.com", "example.net", false},
		{[]string{"["}, nil, "[", "x", false}, // malformed pattern matches nothing
	}
	for _, tc := range cases {
		r := &Relay{Senders: tc.senders, Domains: tc.domains}
		if got := r.Matches(tc.sender, tc.domain); got != tc.want {
			t.Errorf("senders %q domains %q: Matches(%q, %q) = %v", tc.senders, tc.domains, tc.sender, tc.domain, got)
		}
	}
}

func TestRoutes(t *testing.T) {
	c, err := Parse([]byte(`
[[relay]]
name = "local"
url = "mbox:"
domains = ["localhost", "web1.example.com"]

[[relay]]
name = "corp"
url = "smtps://smtp.example.com"
senders = ["*@Example.com"]

[[relay]]
name = "lists"
url = "smtps://lists.example.net"
domains = ["lists.example.net"]

[[relay]]
name = "fallback"
url = "smtp://backup.example.org"
`), "h.toml")
	if err != nil {
		t.Fatal(err)
	}
	names := func(rs []*Relay) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Name)
		}
		return out
	}
	cases := []struct {
		sender, domain string
		want           []string
	}{
		{"app@example.com", "gmail.com", []string{"corp", "fallback"}},
		{"app@example.com", "localhost", []string{"local", "corp", "fallback"}},
		{"cron@web1.example.com", "lists.example.net", []string{"lists", "fallback"}},
		{"", "gmail.com", []string{"fallback"}},
	}
	for _, tc := range cases {
		got := c.Routes(tc.sender, tc.domain)
		if !reflect.DeepEqual(names(got), tc.want) {
			t.Errorf("Routes(%q, %q) = %q, want %q", tc.sender, tc.domain, names(got), tc.want)
		}
		// The pointers are into c.Relays.
		for _, r := range got {
			if r != &c.Relays[0] && r != &c.Relays[1] && r != &c.Relays[2] && r != &c.Relays[3] {
				t.Errorf("Routes returned a copy of %s", r.Name)
			}
		}
	}
	if got := Default().Routes("a@b", "c"); got != nil {
		t.Errorf("Default().Routes = %v", got)
	}
	c.Relays = c.Relays[:3]
	if got := c.Routes("", "gmail.com"); got != nil {
		t.Errorf("no match: %v", names(got))
	}
}
