package config

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
)

// keyPath is a key's position in the document, one element per table
// level, each as it is displayed: quoted when it is not a bare key, with
// a 1-based index for an array of tables ("relay[2]").
type keyPath []string

func (p keyPath) String() string { return strings.Join(p, ".") }

// child returns p extended by the raw key name k.
func (p keyPath) child(k string) keyPath {
	q := make(keyPath, len(p), len(p)+1)
	copy(q, p)
	return append(q, displayKey(k))
}

// index returns p with its last element indexed: relay -> relay[i].
func (p keyPath) index(i int) keyPath {
	q := make(keyPath, len(p))
	copy(q, p)
	q[len(q)-1] += "[" + strconv.Itoa(i) + "]"
	return q
}

// displayKey quotes k as TOML would need it.
func displayKey(k string) string { return toml.Key{k}.String() }

// keyLines maps key paths (keyPath.String()) to the line where each key or
// table is first defined. The TOML decoder reports positions only for
// syntax errors, so the lines come from scanKeyLines.
type keyLines map[string]int

// find returns the line of p, or of its nearest ancestor that has one
// (an indexed element's ancestor being its array), or 0.
func (kl keyLines) find(p keyPath) int {
	for n := len(p); n > 0; n-- {
		if l, ok := kl[p[:n].String()]; ok {
			return l
		}
		// An element of an inline array of tables: the array's line.
		last := p[n-1]
		if i := strings.LastIndexByte(last, '['); i > 0 && strings.HasSuffix(last, "]") {
			q := append(append(keyPath{}, p[:n-1]...), last[:i])
			if l, ok := kl[q.String()]; ok {
				return l
			}
		}
	}
	return 0
}

// scanKeyLines finds the line of every key and table header in a TOML
// document. It is a scanner, not a parser: it skips strings (basic,
// literal, multi-line), arrays and inline tables as units and records
// "key = value" at the start of a statement and [table] / [[array]]
// headers, numbering the elements of arrays of tables from 1. Keys inside
// inline tables are not recorded; find falls back to the key holding the
// table. It is meant for documents the decoder accepted, but never panics
// or loops on any input.
func scanKeyLines(src string) keyLines {
	src = strings.TrimPrefix(src, "\ufeff")
	s := &lineScanner{src: src, line: 1}
	kl := keyLines{}
	arrays := map[string]int{} // array-of-tables path -> elements so far
	var table keyPath
	record := func(p keyPath, line int) {
		for n := 1; n <= len(p); n++ {
			k := p[:n].String()
			if _, ok := kl[k]; !ok {
				kl[k] = line
			}
		}
	}
	for s.i < len(s.src) {
		switch c := s.src[s.i]; c {
		case ' ', '\t', '\r', '\n':
			s.adv()
		case '#':
			s.skipComment()
		case '[':
			line := s.line
			s.adv()
			array := s.peek() == '['
			if array {
				s.adv()
			}
			keys := s.keys(']')
			var p keyPath
			for i, k := range keys {
				p = p.child(k)
				last := i == len(keys)-1
				if n := arrays[p.String()]; n > 0 && !(last && array) {
					p = p.index(n)
				} else if last && array {
					arrays[p.String()]++
					p = p.index(arrays[p.String()])
				}
			}
			table = p
			if len(p) > 0 {
				record(p, line)
			}
			s.skipLine()
		default:
			line := s.line
			keys := s.keys('=')
			if len(keys) == 0 {
				s.skipLine()
				continue
			}
			p := table
			for _, k := range keys {
				p = p.child(k)
			}
			record(p, line)
			if s.peek() == '=' {
				s.adv()
			}
			s.skipValue()
		}
	}
	return kl
}

type lineScanner struct {
	src  string
	i    int
	line int
}

func (s *lineScanner) peek() byte {
	if s.i < len(s.src) {
		return s.src[s.i]
	}
	return 0
}

func (s *lineScanner) adv() {
	if s.i < len(s.src) {
		if s.src[s.i] == '\n' {
			s.line++
		}
		s.i++
	}
}

func (s *lineScanner) skipBlank() {
	for s.peek() == ' ' || s.peek() == '\t' {
		s.adv()
	}
}

// skipComment skips to the end of the line, leaving the newline.
func (s *lineScanner) skipComment() {
	for s.i < len(s.src) && s.src[s.i] != '\n' {
		s.i++
	}
}

// skipLine skips the rest of the line, strings included, and the newline.
func (s *lineScanner) skipLine() {
	for s.i < len(s.src) {
		switch s.src[s.i] {
		case '\n':
			s.adv()
			return
		case '"', '\'':
			s.skipString()
		case '#':
			s.skipComment()
		default:
			s.adv()
		}
	}
}

// keys reads a dotted key up to term (not consumed), a newline or the end.
func (s *lineScanner) keys(term byte) []string {
	var keys []string
	for {
		s.skipBlank()
		var k string
		switch c := s.peek(); c {
		case '"', '\'':
			k = s.quotedKey(c)
		default:
			start := s.i
			for s.i < len(s.src) && !strings.ContainsRune(" \t.=[]\r\n#\"'", rune(s.src[s.i])) {
				s.i++
			}
			k = s.src[start:s.i]
			if k == "" {
				return keys
			}
		}
		keys = append(keys, k)
		s.skipBlank()
		if s.peek() != '.' {
			return keys
		}
		s.adv()
	}
}

// quotedKey reads a "basic" or 'literal' key and returns its value.
func (s *lineScanner) quotedKey(q byte) string {
	s.adv()
	var b strings.Builder
	for s.i < len(s.src) {
		c := s.src[s.i]
		switch {
		case c == q:
			s.adv()
			return b.String()
		case c == '\n':
			return b.String()
		case c == '\\' && q == '"':
			b.WriteString(s.escape())
		default:
			b.WriteByte(c)
			s.i++
		}
	}
	return b.String()
}

// escape decodes the escape sequence at s.i (a backslash).
func (s *lineScanner) escape() string {
	s.i++ // the backslash
	if s.i >= len(s.src) {
		return ""
	}
	c := s.src[s.i]
	s.i++
	switch c {
	case 'b':
		return "\b"
	case 't':
		return "\t"
	case 'n':
		return "\n"
	case 'f':
		return "\f"
	case 'r':
		return "\r"
	case 'e':
		return "\x1b"
	case 'u', 'U', 'x':
		n := map[byte]int{'u': 4, 'U': 8, 'x': 2}[c]
		if s.i+n > len(s.src) {
			return ""
		}
		v, err := strconv.ParseUint(s.src[s.i:s.i+n], 16, 32)
		if err != nil {
			return ""
		}
		s.i += n
		return string(rune(v))
	}
	return string(c)
}

// skipString skips the string starting at s.i, one-line or multi-line.
func (s *lineScanner) skipString() {
	q := s.src[s.i]
	if strings.HasPrefix(s.src[s.i:], strings.Repeat(string(q), 3)) {
		s.i += 3
		for s.i < len(s.src) {
			c := s.src[s.i]
			switch {
			case c == '\\' && q == '"':
				s.i++
				s.adv()
			case c == q && strings.HasPrefix(s.src[s.i:], strings.Repeat(string(q), 3)):
				s.i += 3
				// Up to two more quotes belong to the content.
				for n := 0; n < 2 && s.peek() == q; n++ {
					s.i++
				}
				return
			default:
				s.adv()
			}
		}
		return
	}
	s.i++
	for s.i < len(s.src) {
		c := s.src[s.i]
		switch {
		case c == q:
			s.i++
			return
		case c == '\n':
			return
		case c == '\\' && q == '"':
			s.i++
			if s.peek() != '\n' {
				s.i++
			}
		default:
			_, n := utf8.DecodeRuneInString(s.src[s.i:])
			s.i += n
		}
	}
}

// skipValue skips a value and the rest of its line: strings, arrays and
// inline tables may span lines.
func (s *lineScanner) skipValue() {
	depth := 0
	for s.i < len(s.src) {
		switch s.src[s.i] {
		case '"', '\'':
			s.skipString()
		case '[', '{':
			depth++
			s.i++
		case ']', '}':
			if depth > 0 {
				depth--
			}
			s.i++
		case '#':
			s.skipComment()
		case '\n':
			s.adv()
			if depth == 0 {
				return
			}
		default:
			s.i++
		}
	}
}
