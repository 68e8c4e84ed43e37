package cli

import (
	"bufio"
	"bytes"
	"net"
	"strings"
	"testing"
)

func TestUsageErrors(t *testing.T) {
	cases := map[string][]string{
		"unknown command": {"handoff", "frobnicate"},
		"probe no url":    {"handoff", "probe"},
		"probe bad url":   {"handoff", "probe", "gopher://x"},
		"probe bad flag":  {"handoff", "probe", "-x", "smtp://x"},
	}
	for name, argv := range cases {
		var out, errb bytes.Buffer
		if code := Run(argv, nil, &out, &errb); code != exUsage {
			t.Errorf("%s: exit %d, stderr %q", name, code, errb.String())
		}
	}
	var out bytes.Buffer
	if code := Run([]string{"handoff", "version"}, nil, &out, &out); code != 0 || !strings.HasPrefix(out.String(), "handoff ") {
		t.Errorf("version: %d %q", code, out.String())
	}
}

// probe against a minimal server: greeting, EHLO with extensions, QUIT.
func TestProbe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		c.Write([]byte("220 probe.test ESMTP\r\n"))
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				return
			}
			switch {
			case strings.HasPrefix(l, "EHLO"):
				c.Write([]byte("250-probe.test\r\n250-SIZE 1000\r\n250 PIPELINING\r\n"))
			case strings.HasPrefix(l, "QUIT"):
				c.Write([]byte("221 bye\r\n"))
				return
			default:
				c.Write([]byte("500 what\r\n"))
			}
		}
	}()
	var out, errb bytes.Buffer
	code := Run([]string{"handoff", "probe", "-v", "smtp://" + ln.Addr().String()}, nil, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, w := range []string{"greeting:   220 probe.test ESMTP", "tls:        none", "extension:  PIPELINING", "extension:  SIZE 1000"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("output lacks %q:\n%s", w, out.String())
		}
	}
	if !strings.Contains(errb.String(), "send: QUIT") {
		t.Errorf("-v transcript missing:\n%s", errb.String())
	}
}

func TestProbeUnreachable(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	var out, errb bytes.Buffer
	if code := Run([]string{"handoff", "probe", "smtp://" + addr}, nil, &out, &errb); code != exTempFail {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
	if strings.Count(errb.String(), "\n") != 1 {
		t.Errorf("want one line, got %q", errb.String())
	}
}
