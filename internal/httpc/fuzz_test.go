package httpc

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"
)

// FuzzReadResponse: ReadResponse, which reads what a server (or anyone
// between) sends, never panics and keeps its bounds; what it accepts
// is a final status with a body of at most MaxBody, and written again
// with Content-Length it reads back the same. The seeds are
// testdata/fuzz/FuzzReadResponse and those below.
func FuzzReadResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n{\"access_token\":1}",
		"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nTrailer: t\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 503 Service Unavailable\nRetry-After: 5\n folded\n\nbusy",
		"HTTP/1.1 204 No Content\r\nContent-Length: 4\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\nX: a\r\nX: b\r\n\r\nok",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		resp, err := ReadResponse(bufio.NewReader(bytes.NewReader(data)), "POST")
		if err != nil {
			if resp != nil {
				t.Fatalf("an answer and an error: %v", err)
			}
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrBodyTooLarge) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if resp.StatusCode < 200 || resp.StatusCode > 999 || len(resp.Body) > MaxBody {
			t.Fatalf("status %d, %d bytes of body", resp.StatusCode, len(resp.Body))
		}
		var b strings.Builder
		fmt.Fprintf(&b, "HTTP/1.1 %d Again\r\n", resp.StatusCode)
		delete(resp.Header, "content-length")
		delete(resp.Header, "transfer-encoding")
		for _, k := range slices.Sorted(maps.Keys(resp.Header)) {
			fmt.Fprintf(&b, "%s: %s\r\n", k, resp.Header[k])
		}
		fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(resp.Body), resp.Body)
		again, err := ReadResponse(bufio.NewReader(strings.NewReader(b.String())), "POST")
		if err != nil {
			t.Fatalf("written again, it does not read: %v\n%q", err, b.String())
		}
		delete(again.Header, "content-length")
		if again.StatusCode != resp.StatusCode || !bytes.Equal(again.Body, resp.Body) && (len(again.Body) > 0 || len(resp.Body) > 0) || !maps.Equal(again.Header, resp.Header) {
			t.Fatalf("read again: %d %v %q, want %d %v %q", again.StatusCode, again.Header, again.Body, resp.StatusCode, resp.Header, resp.Body)
		}
	})
}
