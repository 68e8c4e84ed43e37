package main

import (
	"os/exec"
	"strings"
	"testing"
)

// Every sendmail call starts this program afresh, and the package
// initialisation of everything linked in runs before main: net/http and
// what comes with it (HTTP/2 tables, compression, MIME multipart) cost
// about 0.1-0.2 ms a call, for OAuth2 token requests that a few hosts make
// once an hour. The OAuth2 client speaks HTTP with internal/httpc
// instead; this test keeps the heavy packages out.
func TestNoHeavyDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 20 {
		t.Fatalf("go list -deps printed only %q", deps)
	}
	for _, d := range deps {
		for _, banned := range []string{"net/http", "golang.org/x/oauth2", "compress/", "mime/multipart", "html/template", "text/template"} {
			if d == strings.TrimSuffix(banned, "/") || strings.HasPrefix(d, banned) || strings.HasPrefix(d, banned+"/") {
				t.Errorf("cmd/handoff depends on %s: its init runs on every call", d)
			}
		}
	}
}
