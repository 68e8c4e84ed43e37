package config

import (
	"fmt"
	"strings"
)

// ParseAliases parses a file in /etc/aliases syntax, the format of
// aliases_file. path names the file in messages. Names are lower-cased.
//
// The syntax is that of aliases(5) as Postfix reads it:
//
//	# comment (a line whose first non-blank character is #)
//	name: address, other-name, "quoted address"
//	name2: first@example.com,
//	    second@example.com      (a line starting with white space continues)
//
// A name may be in double quotes. Targets that run a command ("|..."),
// write a file ("/...") or include one (":include:...") are not supported
// and reported, as are a name defined twice, a line without ':', a name
// with no address, and a continuation line with nothing to continue.
//
// Errors: a *Error with one Problem per bad line; the map is then nil.
func ParseAliases(data []byte, path string) (map[string][]string, error) {
	m, probs := parseAliases(data)
	if len(probs) > 0 {
		sortProblems(probs)
		return nil, &Error{Path: path, Problems: probs}
	}
	return m, nil
}

type aliasEntry struct {
	name    string
	line    int
	targets []string
}

// parseAliases parses the aliases syntax, returning what it could and
// the problems, with Key the alias name and File unset.
func parseAliases(data []byte) (map[string][]string, []Problem) {
	var probs []Problem
	bad := func(line int, key, format string, args ...any) {
		probs = append(probs, Problem{Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	var entries []*aliasEntry
	seen := map[string]int{} // name -> line
	var cur *aliasEntry
	text := strings.TrimPrefix(string(data), "\ufeff")
	for i, raw := range strings.Split(text, "\n") {
		n := i + 1
		raw = strings.TrimSuffix(raw, "\r")
		trimmed := strings.TrimSpace(raw)
		if trimmed == "" || trimmed[0] == '#' {
			continue
		}
		if raw[0] == ' ' || raw[0] == '\t' {
			if cur == nil {
				bad(n, "", "continuation line (starting with white space) with no alias before it")
				continue
			}
			addTargets(cur, raw, n, bad)
			continue
		}
		name, rest, ok := splitAliasLine(raw)
		if !ok {
			bad(n, "", "expected \"name: address, ...\", found %s", quoteShort(trimmed))
			cur = nil
			continue
		}
		if msg := checkAliasName(name); msg != "" {
			bad(n, "", "%s", msg)
			cur = nil
			continue
		}
		lname := strings.ToLower(name)
		if first, dup := seen[lname]; dup {
			bad(n, lname, "defined again; first defined on line %d", first)
			cur = nil
			continue
		}
		seen[lname] = n
		cur = &aliasEntry{name: lname, line: n}
		entries = append(entries, cur)
		addTargets(cur, rest, n, bad)
	}
	m := make(map[string][]string, len(entries))
	for _, e := range entries {
		if len(e.targets) == 0 {
			// Either no address at all or only refused ones (reported).
			if !hasProblemFor(probs, e.name) {
				bad(e.line, e.name, "no address")
			}
			continue
		}
		if !hasProblemFor(probs, e.name) {
			m[e.name] = e.targets
		}
	}
	return m, probs
}

func hasProblemFor(probs []Problem, name string) bool {
	for _, p := range probs {
		if p.Key == name {
			return true
		}
	}
	return false
}

// splitAliasLine splits "name: rest" or "\"name\": rest".
func splitAliasLine(line string) (name, rest string, ok bool) {
	if strings.HasPrefix(line, `"`) {
		end := strings.IndexByte(line[1:], '"')
		if end < 0 {
			return "", "", false
		}
		name = line[1 : 1+end]
		after := strings.TrimLeft(line[2+end:], " \t")
		rest, ok = strings.CutPrefix(after, ":")
		return name, rest, ok
	}
	name, rest, ok = strings.Cut(line, ":")
	return strings.TrimRight(name, " \t"), rest, ok
}

// addTargets splits a comma-separated list, respecting double quotes, and
// adds the valid targets to e.
func addTargets(e *aliasEntry, list string, line int, bad func(int, string, string, ...any)) {
	var fields []string
	start, quoted := 0, false
	for i := 0; i < len(list); i++ {
		switch list[i] {
		case '"':
			quoted = !quoted
		case '\\':
			i++
		case ',':
			if !quoted {
				fields = append(fields, list[start:i])
				start = i + 1
			}
		}
	}
	fields = append(fields, list[start:])
	for _, f := range fields {
		t := strings.TrimSpace(f)
		if t == "" {
			continue
		}
		if msg := checkAliasTarget(t); msg != "" {
			bad(line, e.name, "%s", msg)
			continue
		}
		e.targets = append(e.targets, t)
	}
}

// LookupAlias returns the targets of the local name (compared in lower
// case) from [aliases] and aliases_file, or those of the "*" catch-all
// when the name has none; ok is false when neither exists. Targets may be
// local names themselves: expanding them again, and stopping loops, is the
// caller's job. The returned slice must not be modified.
func (c *Config) LookupAlias(name string) (targets []string, ok bool) {
	if t, ok := c.Aliases[strings.ToLower(name)]; ok {
		return t, true
	}
	t, ok := c.Aliases["*"]
	return t, ok
}
