package config

import (
	"reflect"
	"testing"

	"github.com/BurntSushi/toml"
)

func TestScanKeyLines(t *testing.T) {
	src := "\ufeff# comment with key = value and [table]\n" + // 1
		"hostname = \"a # not a comment\" # comment\n" + // 2
		"sender = '''\n" + // 3
		"x = 1\n" + // 4: inside a multi-line literal string
		"[[relay]]\n" + // 5: likewise
		"'''\n" + // 6
		"domain = \"\"\"\n" + // 7
		"  \\\"\"\" still inside\n" + // 8: an escaped quote and two more
		"[queue]\"\"\"\"\n" + // 9: closes with one extra quote in the content
		"  aliases_file  =  \"/etc/aliases\"\n" + // 10
		"\"quoted key\" = [\n" + // 11
		"  \"]\", # ] in a string, and a comment [\n" + // 12
		"  'x',\n" + // 13
		"]\n" + // 14
		"dotted . key = { a = 1, b = [\n" + // 15
		"  2 ] }\n" + // 16
		"\n" + // 17
		"[ queue ]\n" + // 18
		"mode = \"always\"\n" + // 19
		"\n" + // 20
		"[[relay]]\n" + // 21
		"url = 'smtp://a'\n" + // 22
		"[relay.sub]\n" + // 23
		"x = 1\n" + // 24
		"[[ relay ]] # second\n" + // 25
		"url = \"smtp://b\"\r\n" + // 26
		"'single.quoted' = 1\r\n" + // 27
		"\"esc\\u0041\\\"\" = 2\n" + // 28
		"[aliases]\n" + // 29
		"\"*\" = \"ops\"\n" + // 30
		"[[relay.sub2]]\n" + // 31
		"y = 2\n" + // 32
		"[[relay.sub2]]\n" // 33
	if _, err := toml.Decode(src, new(map[string]any)); err != nil {
		t.Fatalf("test document is not TOML: %v", err)
	}
	got := scanKeyLines(src)
	want := keyLines{
		"hostname":                 2,
		"sender":                   3,
		"domain":                   7,
		"aliases_file":             10,
		`"quoted key"`:             11,
		"dotted":                   15,
		"dotted.key":               15,
		"queue":                    18,
		"queue.mode":               19,
		"relay[1]":                 21,
		"relay[1].url":             22,
		"relay[1].sub":             23,
		"relay[1].sub.x":           24,
		"relay[2]":                 25,
		"relay[2].url":             26,
		`relay[2]."single.quoted"`: 27,
		`relay[2]."escA\""`:        28,
		"aliases":                  29,
		`aliases."*"`:              30,
		"relay[2].sub2[1]":         31,
		"relay[2].sub2[1].y":       32,
		"relay[2].sub2[2]":         33,
	}
	if !reflect.DeepEqual(got, want) {
		for k, v := range got {
			if want[k] != v {
				t.Errorf("got %s: %d, want %d", k, v, want[k])
			}
		}
		for k, v := range want {
			if _, ok := got[k]; !ok {
				t.Errorf("missing %s (line %d)", k, v)
			}
		}
	}
	// find falls back to the nearest ancestor.
	for _, tc := range []struct {
		p    keyPath
		want int
	}{
		{keyPath{"relay[2]", "password"}, 25},
		{keyPath{"dotted", "key", "a"}, 15},
		{keyPath{"nothing"}, 0},
		{keyPath{}, 0},
	} {
		if l := got.find(tc.p); l != tc.want {
			t.Errorf("find(%s) = %d, want %d", tc.p, l, tc.want)
		}
	}
}

// The scanner never panics or loops, on anything.
func TestScanKeyLinesGarbage(t *testing.T) {
	for _, s := range []string{"", "[", "[[", "\"", "'''", "\"\"\"\\", "a = [", "a = {", "= 1", "]]]", "a.", "\"a\\", "a = \"\\u12", "[a.\"b"} {
		scanKeyLines(s)
	}
}
