package sendopt

// The man page man/handoff-sendmail.8 documents every option form of
// Letters and every name of Names. These tests keep the page and the
// tables from drifting apart, and lint all of handoff's pages with
// mandoc(1).
//
// How the page is read: it is mdoc(7). In its OPTIONS section the
// subsections ".Ss Accepted", ".Ss Accepted and ignored" and ".Ss Refused
// (exit 64)" hold the options of each Status, one ".It" line each (a line
// may list several, separated by " , "). Each ".It" line is rendered to
// plain text by a small renderer that knows the few macros used there:
// ".It Fl B Ar type" is "-B <type>", ".It Fl b Ns Ar other" is
// "-b<other>", ".It Fl d Ns Op Ar level" is "-d[<level>]", ".It Fl \-" is
// "--" and ".It Fl" alone is "-". The Program names subsection of
// DESCRIPTION holds one ".It Nm name" or ".It Cm name" line per name.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// manDir is the man page directory, from this package's directory.
const manDir = "../../man"

// manPages are the pages the lint test requires.
var manPages = []string{"handoff-sendmail.8", "handoff.toml.5", "handoff.8"}

// manStatusHeading maps a LetterDoc Status to the title of its
// subsection in OPTIONS.
var manStatusHeading = map[string]string{
	"accepted": "Accepted",
	"ignored":  "Accepted and ignored",
	"refused":  "Refused (exit 64)",
}

// manItem is one option (or name) of an .It line, rendered.
type manItem struct {
	line int    // line number in the page
	text string // "-B <type>", "-b<other>", "mailq"
}

// manPage is a page's .It heads by section and subsection title.
type manPage map[string]map[string][]manItem

// readManPage reads an mdoc page and collects the rendered .It heads of
// every subsection (those before any .Ss are under "").
func readManPage(t *testing.T, path string) manPage {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading the man page: %v", err)
	}
	page := manPage{}
	sh, ss := "", ""
	for i, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, ".") {
			continue
		}
		args := mdocArgs(line[1:])
		if len(args) == 0 {
			continue
		}
		switch args[0] {
		case "Sh":
			sh, ss = strings.Join(args[1:], " "), ""
		case "Ss":
			ss = strings.Join(args[1:], " ")
		case "It":
			if page[sh] == nil {
				page[sh] = map[string][]manItem{}
			}
			for _, text := range renderHead(args[1:]) {
				page[sh][ss] = append(page[sh][ss], manItem{line: i + 1, text: text})
			}
		}
	}
	return page
}

// mdocArgs splits a macro line (without its leading dot) into
// arguments as mdoc(7) does: blanks separate them, a double-quoted
// argument may hold blanks, and "" inside it is one quote.
func mdocArgs(s string) []string {
	var out []string
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			return out
		}
		if s[0] != '"' {
			end := strings.IndexAny(s, " \t")
			if end < 0 {
				end = len(s)
			}
			out = append(out, s[:end])
			s = s[end:]
			continue
		}
		var b strings.Builder
		i := 1
		for ; i < len(s); i++ {
			if s[i] == '"' {
				if i+1 < len(s) && s[i+1] == '"' {
					b.WriteByte('"')
					i++
					continue
				}
				break
			}
			b.WriteByte(s[i])
		}
		out = append(out, b.String())
		s = s[min(i+1, len(s)):]
	}
}

// mdocMacros are the macros renderHead knows; any other argument is text.
var mdocMacros = []string{"Fl", "Ar", "Cm", "Nm", "Li", "Pa", "Ic", "Ql", "No", "Sy", "Em", "Dv", "Ev", "Ns", "Op", "Oo", "Oc", "Pf"}

// mdocUnescape resolves the escapes the page uses in .It lines.
func mdocUnescape(s string) string {
	return strings.NewReplacer(`\&`, "", `\-`, "-", `\e`, `\`).Replace(s)
}

// renderHead renders the arguments of an .It line as plain text, one
// string per item: a "," argument separates items. Fl prefixes each of
// its arguments with '-' (alone it is "-"), Ar writes <arg>, Ns removes
// the space before what follows, Op and Oo/Oc write brackets.
func renderHead(args []string) []string {
	var items []string
	var b strings.Builder
	mode := ""           // the macro whose arguments follow
	noSpace := true      // no blank before the next word
	pendingFlag := false // a Fl that has not written anything yet
	closeOp := 0         // brackets to close at the end of the line
	word := func(s string) {
		if !noSpace && b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s)
		noSpace = false
	}
	flushFlag := func() {
		if pendingFlag {
			word("-")
			pendingFlag = false
		}
	}
	endItem := func() {
		flushFlag()
		if b.Len() > 0 {
			items = append(items, b.String())
		}
		b.Reset()
		noSpace, mode = true, ""
	}
	for _, a := range args {
		if slices.Contains(mdocMacros, a) {
			flushFlag()
			switch a {
			case "Ns":
				noSpace = true
			case "Op", "Oo":
				word("[")
				noSpace = true
				if a == "Op" {
					closeOp++
				}
			case "Oc":
				b.WriteString("]")
			case "Fl":
				pendingFlag = true
				mode = a
			default:
				mode = a
			}
			continue
		}
		if a == "," {
			endItem()
			continue
		}
		text := mdocUnescape(a)
		if len(text) == 1 && strings.Contains(".:;?!)]", text) {
			// A closing delimiter: no blank before it, and no macro
			// formats it.
			flushFlag()
			b.WriteString(text)
			continue
		}
		switch mode {
		case "Fl":
			pendingFlag = false
			word("-" + text)
		case "Ar":
			word("<" + text + ">")
		case "Pf":
			word(text)
			noSpace, mode = true, ""
		default:
			word(text)
		}
	}
	flushFlag()
	b.WriteString(strings.Repeat("]", closeOp))
	endItem()
	return items
}

// optionForms returns the option forms one LetterDoc stands for: its
// Option, or each letter of a list of letters ("-a -E -g ...").
func optionForms(d LetterDoc) []string {
	fields := strings.Fields(d.Option)
	for _, f := range fields {
		if !strings.HasPrefix(f, "-") {
			return []string{d.Option} // "-O IgnoreDots"
		}
	}
	return fields
}

// headMatches reports whether a rendered .It item documents the option
// form opt, which takes what Takes says.
func headMatches(item, opt, takes string) bool {
	if strings.ContainsAny(opt, "< ") {
		// The form spells out its value ("-b<other>", "-O IgnoreDots").
		return item == opt || strings.HasPrefix(item, opt) && strings.ContainsRune("[=< ", rune(item[len(opt)]))
	}
	switch takes {
	case "":
		return item == opt
	case "value":
		return strings.HasPrefix(item, opt+" <")
	default: // attached: "attached value", "letter", "file", "substring", ...
		if item == opt {
			return takes == "attached value" // "-q", "-d" alone
		}
		return strings.HasPrefix(item, opt+"<") || strings.HasPrefix(item, opt+"[")
	}
}

// suggestMdoc is the .It line that would document opt.
func suggestMdoc(opt, takes string) string {
	flag := func(s string) string {
		switch s {
		case "-":
			return "Fl"
		case "--":
			return `Fl \-`
		}
		if strings.HasPrefix(s, "--") {
			return `Fl \-` + s[2:]
		}
		return "Fl " + strings.TrimPrefix(s, "-")
	}
	if name, value, ok := strings.Cut(opt, " "); ok {
		return ".It " + flag(name) + " Cm " + value
	}
	if name, value, ok := strings.Cut(opt, "<"); ok {
		return ".It " + flag(name) + " Ns Ar " + strings.TrimSuffix(value, ">")
	}
	switch takes {
	case "":
		return ".It " + flag(opt)
	case "value":
		return ".It " + flag(opt) + " Ar value"
	}
	switch takes {
	case "attached value":
		return ".It " + flag(opt) + " Ns Op Ar value"
	case "optional boolean":
		return ".It " + flag(opt) + " Ns Op Ar bool"
	}
	return ".It " + flag(opt) + " Ns Ar " + strings.ReplaceAll(takes, " ", "_")
}

// TestManPageOptions checks that every option form of Letters is
// documented in the OPTIONS section of handoff-sendmail.8, under the
// subsection of its Status, spelled with what it takes; and that every
// option listed there is where the parser says it belongs.
func TestManPageOptions(t *testing.T) {
	const page = "handoff-sendmail.8"
	opts := readManPage(t, filepath.Join(manDir, page))["OPTIONS"]
	if opts == nil {
		t.Fatalf("%s has no OPTIONS section with .It lines", page)
	}
	for status, heading := range manStatusHeading {
		if len(opts[heading]) == 0 {
			t.Errorf("%s: OPTIONS has no \".Ss %s\" subsection with .It lines, for the %s options", page, heading, status)
		}
	}

	// Every form of every LetterDoc, under its own heading.
	for _, d := range Letters {
		heading, ok := manStatusHeading[d.Status]
		if !ok {
			t.Errorf("Letters: %s has status %q, not accepted, ignored or refused", d.Option, d.Status)
			continue
		}
		for _, form := range optionForms(d) {
			found := slices.ContainsFunc(opts[heading], func(it manItem) bool { return headMatches(it.text, form, d.Takes) })
			if found {
				continue
			}
			var elsewhere []string
			for h, items := range opts {
				for _, it := range items {
					if h != heading && headMatches(it.text, form, d.Takes) {
						elsewhere = append(elsewhere, fmt.Sprintf("%q (line %d)", h, it.line))
					}
				}
			}
			where := ""
			if len(elsewhere) > 0 {
				slices.Sort(elsewhere)
				where = "; it is under " + strings.Join(elsewhere, ", ")
			}
			t.Errorf("%s: OPTIONS, .Ss %s: no .It line for %s (status %s, takes %q); want something like %q%s",
				page, heading, form, d.Status, d.Takes, suggestMdoc(form, d.Takes), where)
		}
	}

	// Every option listed under a status heading belongs there. An item
	// with a placeholder must be a form of Letters with that status; a
	// concrete one ("-oem", "-bd", "-z") is given to Parse, whose verdict
	// must be the heading's.
	for status, heading := range manStatusHeading {
		for _, it := range opts[heading] {
			if strings.ContainsAny(it.text, "<[ ") {
				covered := false
				for _, d := range Letters {
					for _, form := range optionForms(d) {
						covered = covered || d.Status == status && headMatches(it.text, form, d.Takes)
					}
				}
				if !covered {
					t.Errorf("%s:%d: %q is under .Ss %s but is no %s form of Letters", page, it.line, it.text, heading, status)
				}
				continue
			}
			if msg := parserVerdict(it.text, status); msg != "" {
				t.Errorf("%s:%d: %q is under .Ss %s, but %s", page, it.line, it.text, heading, msg)
			}
		}
	}
}

// parserVerdict runs Parse on the single argument arg and returns what
// contradicts status, or "".
func parserVerdict(arg, status string) string {
	inv, err := Parse("sendmail", []string{arg})
	var ue *UsageError
	switch {
	case status == "refused":
		if !errors.As(err, &ue) {
			return fmt.Sprintf("Parse does not refuse it (error %v)", err)
		}
	case err != nil:
		return fmt.Sprintf("Parse refuses it: %v", err)
	case status == "ignored" && len(inv.Ignored) == 0 && inv.Mode != ModeNoop:
		return "Parse gives it an effect (it is not in Invocation.Ignored)"
	case status == "accepted" && len(inv.Ignored) > 0:
		return fmt.Sprintf("Parse ignores it (Invocation.Ignored = %q)", inv.Ignored)
	}
	return ""
}

// TestManPageNames checks that the Program names subsection of
// handoff-sendmail.8 lists exactly the names of Names.
func TestManPageNames(t *testing.T) {
	const page = "handoff-sendmail.8"
	items := readManPage(t, filepath.Join(manDir, page))["DESCRIPTION"]["Program names"]
	var listed []string
	for _, it := range items {
		listed = append(listed, it.text)
	}
	for _, n := range Names {
		if !slices.Contains(listed, n.Name) {
			t.Errorf("%s: DESCRIPTION, .Ss Program names: no \".It Nm %s\" (or Cm) line for the name %s", page, n.Name, n.Name)
		}
	}
	for _, it := range items {
		if !slices.ContainsFunc(Names, func(n NameDoc) bool { return n.Name == it.text }) {
			t.Errorf("%s:%d: Program names lists %q, which is not in Names", page, it.line, it.text)
		}
	}
}

// TestRenderHead pins the renderer the checks above rely on.
func TestRenderHead(t *testing.T) {
	for _, c := range []struct {
		line string
		want []string
	}{
		{`.It Fl t`, []string{"-t"}},
		{`.It Fl B Ar type`, []string{"-B <type>"}},
		{`.It Fl b Ns Ar other`, []string{"-b<other>"}},
		{`.It Fl d Ns Op Ar level`, []string{"-d[<level>]"}},
		{`.It Fl oi Ns Op Ar bool`, []string{"-oi[<bool>]"}},
		{`.It Fl O Cm IgnoreDots Ns Op Cm = Ns Ar bool`, []string{"-O IgnoreDots[=<bool>]"}},
		{`.It Fl \-`, []string{"--"}},
		{`.It Fl`, []string{"-"}},
		{`.It Fl \- Ns Ar word`, []string{"--<word>"}},
		{`.It Fl a , Fl E , Fl z`, []string{"-a", "-E", "-z"}},
		{`.It Fl p Ar protocol Ns Op : Ns Ar host`, []string{"-p <protocol>[:<host>]"}},
		{`.It Nm mailq`, []string{"mailq"}},
		{`.It Cm "hoststat"`, []string{"hoststat"}},
	} {
		if got := renderHead(mdocArgs(c.line[1:])[1:]); !slices.Equal(got, c.want) {
			t.Errorf("renderHead(%q) = %q, want %q", c.line, got, c.want)
		}
	}
}

// TestManPagesLint runs "mandoc -Tlint -W warning" on every page: it
// must print nothing. Without mandoc the test skips, or fails when
// HANDOFF_REQUIRE_INTEGRATION=1 (as in CI, which installs it).
func TestManPagesLint(t *testing.T) {
	mandoc, err := exec.LookPath("mandoc")
	if err != nil {
		if os.Getenv("HANDOFF_REQUIRE_INTEGRATION") == "1" {
			t.Fatalf("mandoc is not installed (Debian package mandoc), and HANDOFF_REQUIRE_INTEGRATION=1 makes that a failure: %v", err)
		}
		t.Skip("mandoc is not installed (apt-get install mandoc); set HANDOFF_REQUIRE_INTEGRATION=1 to make this a failure")
	}
	pages, err := filepath.Glob(filepath.Join(manDir, "*.[1-9]"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range manPages {
		if !slices.Contains(pages, filepath.Join(manDir, p)) {
			t.Errorf("man page %s is missing from %s", p, manDir)
		}
	}
	if len(pages) == 0 {
		t.Fatal("no man pages found")
	}
	cmd := exec.Command(mandoc, append([]string{"-Tlint", "-W", "warning"}, pages...)...)
	out, err := cmd.CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("mandoc -Tlint -W warning %s: %v\n%s", strings.Join(pages, " "), err, out)
	}
}
