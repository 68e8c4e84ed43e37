package config

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// Error is every problem found in one configuration file. Load and Parse
// return it as a *Error; the caller exits 78 (EX_CONFIG).
type Error struct {
	// Path is the configuration file, as given to Load or Parse.
	Path string
	// Problems, sorted: those in Path by line, then those in other files
	// (aliases_file) by file and line.
	Problems []Problem
}

// Problem is one thing wrong in a file.
type Problem struct {
	// File is the file the problem is in when it is not Error.Path (an
	// aliases_file); "" otherwise.
	File string
	// Line is the 1-based line of the offending key; 0 when unknown.
	Line int
	// Col is the 1-based column, set for TOML syntax errors only.
	Col int
	// Key is the key path, "relay[2].starttls", "queue.mode",
	// `aliases."*"`; in an aliases file, the alias name. "" for syntax
	// errors.
	Key string
	// Msg says what is wrong, with the bad value (never a secret) and
	// what is allowed.
	Msg string
}

// Error returns the problems, one per line, as "path:line: key: message"
// ("path:line:col: message" for a syntax error).
func (e *Error) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(p.format(e.Path))
	}
	return b.String()
}

func (p Problem) format(path string) string {
	var b strings.Builder
	if p.File != "" {
		path = p.File
	}
	b.WriteString(path)
	if p.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(p.Line))
		if p.Col > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(p.Col))
		}
	}
	b.WriteString(": ")
	if p.Key != "" {
		b.WriteString(p.Key)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// sortProblems orders problems as documented on Error.Problems; ties keep
// the order they were found in.
func sortProblems(ps []Problem) {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		// "" (the configuration file) sorts first.
		return cmp.Or(
			cmp.Compare(a.File, b.File),
			cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Col, b.Col),
		)
	})
}
