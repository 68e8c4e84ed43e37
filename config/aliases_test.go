package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseAliasesGood(t *testing.T) {
	src := "\ufeff# Debian's default /etc/aliases, and more\r\n" +
		"mailer-daemon: postmaster\r\n" +
		"postmaster: root\n" +
		"nobody: root\n" +
		"\n" +
		"   # an indented comment is a comment\n" +
		"Root:   admin@example.com,ops@example.com ,\n" +
		"\tbackup@example.com,\n" +
		"    , \"quoted, with comma\"@example.com\n" +
		"\"www-data\" : web@example.com\n" +
		"list:\n" +
		"  a@example.com\n" +
		"  # a comment inside a continued entry\n" +
		"  b@example.com"
	got, err := ParseAliases([]byte(src), "/etc/aliases")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"mailer-daemon": {"postmaster"},
		"postmaster":    {"root"},
		"nobody":        {"root"},
		"root":          {"admin@example.com", "ops@example.com", "backup@example.com", `"quoted, with comma"@example.com`},
		"www-data":      {"web@example.com"},
		"list":          {"a@example.com", "b@example.com"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestParseAliasesProblems(t *testing.T) {
	src := strings.Join([]string{
		"  orphan@example.com",                // 1
		"root: admin@example.com",             // 2
		"procmail: |/usr/bin/procmail",        // 3
		"quoted: \"|/usr/bin/procmail -a x\"", // 4
		"file: /var/log/mail.archive",         // 5
		"include: :include:/etc/mail/staff",   // 6
		"no colon here",                       // 7
		"root: again@example.com",             // 8
		"empty:",                              // 9
		"user@host: x@example.com",            // 10
		"mixed: ok@example.com,",              // 11
		"  |/bin/cat",                         // 12
		"spaces: John Doe <john@example.com>", // 13
		"\"unterminated: x@example.com",       // 14
		"ctl: a\x00b@example.com",             // 15
		"Root: case@example.com",              // 16
		"",
	}, "\n")
	got, err := ParseAliases([]byte(src), "/etc/aliases")
	if got != nil {
		t.Errorf("map returned with errors: %v", got)
	}
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v", err)
	}
	want := `/etc/aliases:1: continuation line (starting with white space) with no alias before it
/etc/aliases:3: procmail: "|/usr/bin/procmail": commands (|...) are not supported; handoff delivers only to addresses
/etc/aliases:4: quoted: "\"|/usr/bin/procmail -a x\"": commands (|...) are not supported; handoff delivers only to addresses
/etc/aliases:5: file: "/var/log/mail.archive": delivery to files (/...) is not supported; handoff delivers only to addresses
/etc/aliases:6: include: ":include:/etc/mail/staff": :include: is not supported; list the addresses
/etc/aliases:7: expected "name: address, ...", found "no colon here"
/etc/aliases:8: root: defined again; first defined on line 2
/etc/aliases:9: empty: no address
/etc/aliases:10: alias names are local names, without @ ("root", not "root@localhost")
/etc/aliases:12: mixed: "|/bin/cat": commands (|...) are not supported; handoff delivers only to addresses
/etc/aliases:13: spaces: "John Doe <john@example.com>" contains white space; give one address, without a display name
/etc/aliases:14: expected "name: address, ...", found "\"unterminated: x@example.com"
/etc/aliases:15: ctl: "a\x00b@example.com" must not contain control characters (CR, LF, NUL, ...)
/etc/aliases:16: root: defined again; first defined on line 2`
	if err.Error() != want {
		t.Errorf("got:\n%s\nwant:\n%s", err, want)
	}
}

// aliases_file is read at load time, its problems reported with its own
// name, and [aliases] wins over it.
func TestAliasesFileInConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "aliases")
	if err := os.WriteFile(file, []byte("root: file-root@example.com\nbackup: b@example.com\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := "aliases_file = \"" + file + "\"\n[aliases]\nroot = \"toml-root@example.com\"\n"
	c, err := Parse([]byte(src), "h.toml")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"root": {"toml-root@example.com"}, "backup": {"b@example.com"}}
	if !reflect.DeepEqual(c.Aliases, want) {
		t.Errorf("aliases = %q", c.Aliases)
	}

	if err := os.WriteFile(file, []byte("root: |/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Parse([]byte(src+"bogus = 1\n"), "h.toml")
	wantErr := "h.toml:4: aliases.bogus: must be an address or an array of addresses, not the integer 1\n" +
		file + `:1: root: "|/bin/sh": commands (|...) are not supported; handoff delivers only to addresses`
	if err == nil || err.Error() != wantErr {
		t.Errorf("err =\n%v\nwant\n%s", err, wantErr)
	}

	missing := filepath.Join(dir, "missing")
	_, err = Parse([]byte("aliases_file = \""+missing+"\"\n"), "h.toml")
	if err == nil || err.Error() != "h.toml:1: aliases_file: cannot read "+missing+": no such file or directory" {
		t.Errorf("err = %v", err)
	}
}

func TestLookupAlias(t *testing.T) {
	c := &Config{Aliases: map[string][]string{
		"root":     {"ops@example.com"},
		"www-data": {"web@example.com", "ops@example.com"},
	}}
	check := func(name string, want []string, wantOK bool) {
		t.Helper()
		got, ok := c.LookupAlias(name)
		if ok != wantOK || !reflect.DeepEqual(got, want) {
			t.Errorf("LookupAlias(%q) = %q, %v; want %q, %v", name, got, ok, want, wantOK)
		}
	}
	check("root", []string{"ops@example.com"}, true)
	check("ROOT", []string{"ops@example.com"}, true)
	check("www-data", []string{"web@example.com", "ops@example.com"}, true)
	check("alice", nil, false)
	c.Aliases["*"] = []string{"catchall@example.com"}
	check("alice", []string{"catchall@example.com"}, true)
	check("Root", []string{"ops@example.com"}, true)
	check("", []string{"catchall@example.com"}, true)
	if got, ok := Default().LookupAlias("root"); ok || got != nil {
		t.Errorf("Default().LookupAlias = %q, %v", got, ok)
	}
}
