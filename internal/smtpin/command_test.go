package smtpin

import "testing"

// cmdHandler takes XPING and passes on everything else.
type cmdHandler struct {
	testHandler
	seen []string
}

func (h *cmdHandler) Command(verb, arg string) (Reply, bool) {
	h.seen = append(h.seen, verb+" "+arg)
	if verb != "XPING" {
		return Reply{}, false
	}
	return Reply{250, "2.0.0 pong\n" + arg}, true
}

// A CommandHandler answers X verbs of its own, multi-line replies
// included; an X verb it declines and any other unknown verb get 500,
// and a verb the server knows never reaches it.
func TestCommandHandler(t *testing.T) {
	h := &cmdHandler{}
	srv := &Server{Hostname: "mx.test", Handler: h}
	out, err := serve(t, srv, lines("EHLO c", "xping hello there", "XNOPE", "FOO", "NOOP", "QUIT"))
	if err != nil {
		t.Fatal(err)
	}
	want := lines(append(with([]string{greeting}, ehlo...),
		"250-2.0.0 pong",
		"250 2.0.0 hello there",
		"500 5.5.2 Error: command not recognized",
		"500 5.5.2 Error: command not recognized",
		"250 2.0.0 Ok",
		"221 2.0.0 Bye")...)
	if out != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
	if len(h.seen) != 2 || h.seen[0] != "XPING hello there" || h.seen[1] != "XNOPE " {
		t.Errorf("Command saw %q, want the two X verbs only", h.seen)
	}
}
