package config

import (
	"strconv"
	"strings"
)

// validHostname reports whether s is a host or domain name: dot-separated
// labels of 1 to 63 letters, digits and '-', not starting or ending with
// '-', at most 253 bytes in all.
func validHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// checkAddress returns what is wrong with an address or bare local name
// ("ops@example.com", "root"), or "". It is deliberately loose: the
// address syntax proper is checked where mail is submitted.
func checkAddress(s string) string {
	switch {
	case s == "":
		return "is empty"
	case hasControl(s):
		return "must not contain control characters (CR, LF, NUL, ...)"
	case unquotedAny(s, " \t"):
		return "contains white space; give one address, without a display name"
	case unquotedAny(s, "<>(),;"):
		return "must be a bare address, like ops@example.com, without <>, (), ',' or ';'"
	case strings.HasPrefix(s, "@") || strings.HasSuffix(s, "@"):
		return "is not an address; use local@domain or a local name"
	}
	return ""
}

// checkAliasName returns what is wrong with an alias name, or "".
func checkAliasName(name string) string {
	switch {
	case name == "":
		return "an alias name must not be empty"
	case hasControl(name) || strings.ContainsAny(name, " \t,:"):
		return "an alias name must not contain white space, control characters, ',' or ':'"
	case strings.Contains(name, "@"):
		return "alias names are local names, without @ (\"root\", not \"root@localhost\")"
	}
	return ""
}

// checkAliasTarget returns what is wrong with an alias target, or "".
// Targets are addresses or local names; the sendmail forms that run
// commands or write files are refused.
func checkAliasTarget(t string) string {
	u := strings.Trim(t, `"`)
	switch {
	case strings.HasPrefix(u, "|"):
		return strconv.Quote(t) + ": commands (|...) are not supported; handoff delivers only to addresses"
	case strings.HasPrefix(u, "/"):
		return strconv.Quote(t) + ": delivery to files (/...) is not supported; handoff delivers only to addresses"
	case strings.HasPrefix(strings.ToLower(u), ":include:"):
		return strconv.Quote(t) + ": :include: is not supported; list the addresses"
	}
	if unquotedAny(t, ",") {
		return quoteShort(t) + " is several addresses; write an array, [\"a@example.com\", \"b@example.com\"]"
	}
	if msg := checkAddress(t); msg != "" {
		return quoteShort(t) + " " + msg
	}
	return ""
}

// checkRelayName returns what is wrong with a relay name, or "".
func checkRelayName(s string) string {
	if s == "" {
		return "must not be empty; leave it out for the default, relay1, relay2, ..."
	}
	if len(s) > 64 {
		return quoteShort(s) + " is longer than 64 characters"
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return quoteShort(s) + " may contain only letters, digits, '.', '_' and '-'"
		}
	}
	return ""
}

// unquotedAny reports whether one of chars occurs in s outside a
// "quoted string" (where a backslash escapes the next byte).
func unquotedAny(s, chars string) bool {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			quoted = !quoted
		case c == '\\' && quoted:
			i++
		case !quoted && strings.IndexByte(chars, c) >= 0:
			return true
		}
	}
	return false
}
