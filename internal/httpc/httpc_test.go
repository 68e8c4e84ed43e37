package httpc

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// env returns a Getenv of vars, so that the tests do not depend on the
// proxy variables of the environment they run in.
func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// A request to a net/http server: the request line, the header fields
// and the form are what the package documentation says; the answer's
// status, fields and body (by Content-Length) come back.
func TestPostFormContentLength(t *testing.T) {
	var got *http.Request
	var form url.Values
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		r.ParseForm()
		form = r.PostForm
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Two", "a")
		w.Header().Add("X-Two", "b")
		w.WriteHeader(201)
		io.WriteString(w, `{"ok":true}`)
	}))
	defer srv.Close()
	c := &Client{Getenv: env(nil)}
	resp, err := c.PostForm(context.Background(), srv.URL+"/token?x=1", "a=1&b=two+words")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 201 || string(resp.Body) != `{"ok":true}` || resp.Header.Get("content-TYPE") != "application/json" || resp.Header.Get("X-Two") != "a, b" {
		t.Errorf("answer %d %v %q", resp.StatusCode, resp.Header, resp.Body)
	}
	if got.Method != "POST" || got.RequestURI != "/token?x=1" || got.Proto != "HTTP/1.1" || got.Host != strings.TrimPrefix(srv.URL, "http://") || !got.Close {
		t.Errorf("request %s %s %s, Host %s, close %v", got.Method, got.RequestURI, got.Proto, got.Host, got.Close)
	}
	for k, want := range map[string]string{"User-Agent": "handoff", "Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded", "Content-Length": "15"} {
		if got.Header.Get(k) != want {
			t.Errorf("request %s: %q, want %q", k, got.Header.Get(k), want)
		}
	}
	if form.Get("a") != "1" || form.Get("b") != "two words" {
		t.Errorf("form %v", form)
	}
}

// rawServer calls answer for each connection after reading the request's
// head and its body (by Content-Length). It returns the server's URL and
// the request heads it read.
func rawServer(t *testing.T, answer func(conn net.Conn)) (string, func() []string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var heads []string
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(10 * time.Second))
				head, err := readRequest(bufio.NewReader(conn))
				if err != nil {
					return
				}
				mu.Lock()
				heads = append(heads, head)
				mu.Unlock()
				answer(conn)
			})
		}
	})
	return "http://" + ln.Addr().String(), func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), heads...)
	}
}

// readRequest reads a request's head and its body by Content-Length and
// returns the head.
func readRequest(br *bufio.Reader) (string, error) {
	var head strings.Builder
	n := 0
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return "", err
		}
		head.WriteString(line)
		if line == "\r\n" {
			break
		}
		if v, ok := strings.CutPrefix(strings.ToLower(line), "content-length: "); ok {
			n, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	_, err := io.CopyN(io.Discard, br, int64(n))
	return head.String(), err
}

// post makes a request to a rawServer answering with answer.
func post(t *testing.T, answer string) (*Response, error) {
	t.Helper()
	u, _ := rawServer(t, func(conn net.Conn) { io.WriteString(conn, answer) })
	return (&Client{Getenv: env(nil)}).PostForm(context.Background(), u+"/t", "a=b")
}

// Bodies by chunked coding (extensions and trailers ignored, over
// Content-Length), by Content-Length, by the end of the connection, and
// none for 204; interim 1xx answers are skipped.
func TestResponseFraming(t *testing.T) {
	cases := []struct{ name, answer, body string }{
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n4;ext=1\r\n{\"a\"\r\n6\r\n:\"b\"}\n\r\n0\r\nX-Trailer: t\r\n\r\n", "{\"a\":\"b\"}\n"},
		{"chunked without trailer end", "HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n2\r\nok\r\n0\r\n", "ok"},
		{"content-length", "HTTP/1.1 400 Bad Request\r\nContent-Length: 5\r\n\r\nhello and more", "hello"},
		{"repeated content-length", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok", "ok"},
		{"to the end", "HTTP/1.0 200 OK\nContent-Type: text/plain\n\nuntil the end", "until the end"},
		{"no reason", "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok", "ok"},
		{"204", "HTTP/1.1 204 No Content\r\n\r\nignored", ""},
		{"1xx", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "ok"},
		{"folded field", "HTTP/1.1 200 OK\r\nX-A: one\r\n  two\r\nContent-Length: 2\r\n\r\nok", "ok"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := post(t, tc.answer)
			if err != nil {
				t.Fatal(err)
			}
			if string(resp.Body) != tc.body {
				t.Errorf("body %q, want %q", resp.Body, tc.body)
			}
			if tc.name == "1xx" && (resp.StatusCode != 200 || resp.Header.Get("Link") != "") {
				t.Errorf("status %d, fields %v: not the final answer's", resp.StatusCode, resp.Header)
			}
			if tc.name == "folded field" && resp.Header.Get("X-A") != "one two" {
				t.Errorf("folded field %q", resp.Header.Get("X-A"))
			}
		})
	}
}

// A body over MaxBody is refused, whatever delimits it; MaxBody itself
// is fine.
func TestBodyTooLarge(t *testing.T) {
	big := strings.Repeat("x", MaxBody+1)
	for name, answer := range map[string]string{
		"content-length": "HTTP/1.1 200 OK\r\nContent-Length: 1048577\r\n\r\n" + big,
		"declared only":  "HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n",
		"chunked":        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n80000\r\n" + big[:1<<19] + "\r\n80000\r\n" + big[:1<<19] + "\r\n1\r\nx\r\n0\r\n\r\n",
		"to the end":     "HTTP/1.1 200 OK\r\n\r\n" + big,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := post(t, answer)
			var ue *url.Error
			if !errors.Is(err, ErrBodyTooLarge) || !errors.As(err, &ue) {
				t.Fatalf("error %v, want ErrBodyTooLarge in a *url.Error", err)
			}
		})
	}
	resp, err := post(t, "HTTP/1.1 200 OK\r\n\r\n"+big[1:])
	if err != nil || len(resp.Body) != MaxBody {
		t.Fatalf("a body of MaxBody: %v", err)
	}
}

// Malformed answers are ErrMalformed; answers cut short
// io.ErrUnexpectedEOF; all in a *url.Error naming the URL, without the
// answer's bytes.
func TestResponseErrors(t *testing.T) {
	cases := []struct {
		name, answer string
		want         error
	}{
		{"nothing", "", io.ErrUnexpectedEOF},
		{"not http", "SSH-2.0-OpenSSH\r\n\r\n", ErrMalformed},
		{"http/2", "HTTP/2 200\r\n\r\n", ErrMalformed},
		{"bad status", "HTTP/1.1 20 OK\r\n\r\n", ErrMalformed},
		{"status 000", "HTTP/1.1 000 OK\r\n\r\n", ErrMalformed},
		{"101", "HTTP/1.1 101 Switching Protocols\r\n\r\n", ErrMalformed},
		{"too many 1xx", strings.Repeat("HTTP/1.1 100 Continue\r\n\r\n", 10) + "HTTP/1.1 200 OK\r\n\r\n", ErrMalformed},
		{"bad field", "HTTP/1.1 200 OK\r\nno colon\r\n\r\n", ErrMalformed},
		{"space in name", "HTTP/1.1 200 OK\r\nX A: b\r\n\r\n", ErrMalformed},
		{"fold first", "HTTP/1.1 200 OK\r\n folded\r\n\r\n", ErrMalformed},
		{"head too large", "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", maxHead) + "\r\n\r\n", ErrMalformed},
		{"bad content-length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", ErrMalformed},
		{"conflicting content-length", "HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\nab", ErrMalformed},
		{"gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", ErrMalformed},
		{"bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", ErrMalformed},
		{"chunk size overflow", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n", ErrMalformed},
		{"chunk without crlf", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokk\r\n0\r\n\r\n", ErrMalformed},
		{"head cut short", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n", io.ErrUnexpectedEOF},
		{"body cut short", "HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\nshort", io.ErrUnexpectedEOF},
		{"chunk cut short", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nshort", io.ErrUnexpectedEOF},
		{"no last chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n", io.ErrUnexpectedEOF},
		{"1xx then nothing", "HTTP/1.1 100 Continue\r\n\r\n", io.ErrUnexpectedEOF},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := post(t, tc.answer)
			var ue *url.Error
			if !errors.Is(err, tc.want) || !errors.As(err, &ue) || ue.Op != "Post" || !strings.HasSuffix(ue.URL, "/t") {
				t.Fatalf("PostForm = %+v, %v; want %v in a *url.Error", resp, err, tc.want)
			}
			for _, quoted := range []string{"OpenSSH", "no colon", "folded", "Switching"} {
				if strings.Contains(err.Error(), quoted) && tc.name != "101" {
					t.Errorf("message %q quotes the answer", err)
				}
			}
		})
	}
}

// A server that closes the connection without answering, or in the
// middle of the body: a *url.Error, as net/http's, which the callers
// count as a temporary failure.
func TestServerClosesEarly(t *testing.T) {
	u, _ := rawServer(t, func(conn net.Conn) {})
	_, err := (&Client{Getenv: env(nil)}).PostForm(context.Background(), u+"/t", "a=b")
	var ue *url.Error
	if !errors.As(err, &ue) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("error %T %v, want a *url.Error", err, err)
	}
	// Nobody listening at all: the dial's *net.OpError in the *url.Error.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	_, err = (&Client{Getenv: env(nil)}).PostForm(context.Background(), "http://"+addr+"/t", "")
	var oe *net.OpError
	if !errors.As(err, &ue) || !errors.As(err, &oe) {
		t.Fatalf("error %T %v, want a *net.OpError in a *url.Error", err, err)
	}
}

// A server that does not answer: the context's deadline, or Timeout,
// ends the request promptly with the context's error; so does a
// cancellation.
func TestTimeoutAndCancel(t *testing.T) {
	stall := make(chan struct{})
	u, _ := rawServer(t, func(conn net.Conn) { <-stall })
	t.Cleanup(func() { close(stall) }) // before rawServer's, which waits for the handlers
	c := &Client{Getenv: env(nil)}

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.PostForm(ctx, u+"/t", "")
	var ue *url.Error
	if !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &ue) || time.Since(start) > 5*time.Second {
		t.Errorf("context deadline: %v after %v", err, time.Since(start))
	}

	c.Timeout = 100 * time.Millisecond
	start = time.Now()
	_, err = c.PostForm(context.Background(), u+"/t", "")
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Errorf("Timeout: %v after %v", err, time.Since(start))
	}

	c.Timeout = 0
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start = time.Now()
	_, err = c.PostForm(ctx, u+"/t", "")
	if !errors.Is(err, context.Canceled) || time.Since(start) > 5*time.Second {
		t.Errorf("cancel: %v after %v", err, time.Since(start))
	}
}

// tlsConfig is the client side of srv's certificate.
func tlsConfig(srv *httptest.Server) *tls.Config {
	return srv.Client().Transport.(*http.Transport).TLSClientConfig
}

// https: with the test server's roots the request goes through; with the
// system's (the default) the certificate is refused.
func TestHTTPS(t *testing.T) {
	var srv *httptest.Server
	srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || r.TLS.Version < tls.VersionTLS12 || r.Host != strings.TrimPrefix(srv.URL, "https://") {
			w.WriteHeader(400)
		}
		io.WriteString(w, "secure")
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake
	srv.StartTLS()
	defer srv.Close()
	resp, err := (&Client{TLSConfig: tlsConfig(srv), Getenv: env(nil)}).PostForm(context.Background(), srv.URL+"/t", "")
	if err != nil || resp.StatusCode != 200 || string(resp.Body) != "secure" {
		t.Fatalf("PostForm = %+v, %v", resp, err)
	}
	_, err = (&Client{Getenv: env(nil)}).PostForm(context.Background(), srv.URL+"/t", "")
	var ue *url.Error
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("with the system's roots: %v", err)
	}
}

// fakeProxy is an HTTP proxy that takes CONNECT to any host and port and
// connects to target instead, recording the requests' heads; with
// refuse it answers 407.
func fakeProxy(t *testing.T, target string, refuse bool) (string, func() []string) {
	return rawServer(t, func(conn net.Conn) {
		if refuse {
			io.WriteString(conn, "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 4\r\n\r\nauth")
			return
		}
		up, err := net.Dial("tcp", target)
		if err != nil {
			io.WriteString(conn, "HTTP/1.1 502 Bad Gateway\r\n\r\n")
			return
		}
		defer up.Close()
		io.WriteString(conn, "HTTP/1.1 200 Connection established\r\n\r\n")
		go io.Copy(up, conn)
		io.Copy(conn, up)
	})
}

// An https URL through an http proxy: CONNECT host:port with the proxy's
// credentials, then TLS to the server (named as in the URL) inside the
// tunnel. The credentials go to the proxy only.
func TestProxyConnect(t *testing.T) {
	var host, proxyAuth string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, proxyAuth = r.Host, r.Header.Get("Proxy-Authorization")
		io.WriteString(w, "tunnelled")
	}))
	defer srv.Close()
	proxyURL, heads := fakeProxy(t, srv.Listener.Addr().String(), false)
	c := &Client{TLSConfig: tlsConfig(srv), Getenv: env(map[string]string{
		"HTTPS_PROXY": strings.Replace(proxyURL, "http://", "http://us%3Aer:p%40ss@", 1),
		"HTTP_PROXY":  "http://127.0.0.1:1", // not for https
	})}
	// *.example.com is in httptest's certificate; only the proxy
	// resolves the name (to the test server).
	resp, err := c.PostForm(context.Background(), "https://token.example.com/t", "a=b")
	if err != nil || string(resp.Body) != "tunnelled" {
		t.Fatalf("PostForm = %+v, %v", resp, err)
	}
	h := heads()
	wantAuth := "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("us:er:p@ss")) + "\r\n"
	if len(h) != 1 || !strings.HasPrefix(h[0], "CONNECT token.example.com:443 HTTP/1.1\r\nHost: token.example.com:443\r\n") || !strings.Contains(h[0], wantAuth) {
		t.Errorf("proxy got %q", h)
	}
	if host != "token.example.com" || proxyAuth != "" {
		t.Errorf("server got Host %q, Proxy-Authorization %q", host, proxyAuth)
	}

	// A refusal by the proxy is a *url.Error with its status.
	proxyURL, _ = fakeProxy(t, srv.Listener.Addr().String(), true)
	c.Getenv = env(map[string]string{"https_proxy": proxyURL})
	_, err = c.PostForm(context.Background(), "https://token.example.com/t", "a=b")
	var ue *url.Error
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "407 Proxy Authentication Required") {
		t.Fatalf("refusing proxy: %v", err)
	}
}

// An http URL through a proxy: the absolute URI in the request line,
// the proxy's credentials in Proxy-Authorization; a proxy without a
// scheme is http://.
func TestProxyAbsoluteURI(t *testing.T) {
	proxyURL, heads := rawServer(t, func(conn net.Conn) {
		io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nproxied")
	})
	c := &Client{Getenv: env(map[string]string{"HTTP_PROXY": strings.Replace(proxyURL, "http://", "u:p@", 1)})}
	resp, err := c.PostForm(context.Background(), "http://api.example.com:8080/t?x=1", "a=b")
	if err != nil || string(resp.Body) != "proxied" {
		t.Fatalf("PostForm = %+v, %v", resp, err)
	}
	h := heads()
	if len(h) != 1 || !strings.HasPrefix(h[0], "POST http://api.example.com:8080/t?x=1 HTTP/1.1\r\nHost: api.example.com:8080\r\n") ||
		!strings.Contains(h[0], "Proxy-Authorization: Basic "+base64.StdEncoding.EncodeToString([]byte("u:p"))+"\r\n") {
		t.Errorf("proxy got %q", h)
	}
}

// The choice of proxy: the variables by scheme, NO_PROXY, loopback
// addresses, CGI.
func TestProxyChoice(t *testing.T) {
	vars := map[string]string{
		"HTTPS_PROXY": "http://secure-proxy:3128",
		"http_proxy":  "plain-proxy:8080",
		"NO_PROXY":    " internal.example , .corp.example,*.wild.example, 10.0.0.0/8, 192.168.1.1, [2001:db8::1]:443, ports.example:8443,",
	}
	cases := []struct{ url, proxy string }{
		{"https://oauth2.googleapis.com/token", "http://secure-proxy:3128"},
		{"http://oauth2.googleapis.com/token", "http://plain-proxy:8080"},
		{"https://localhost/t", ""},
		{"https://LOCALHOST./t", ""},
		{"https://a.localhost/t", ""},
		{"https://127.0.0.1:8443/t", ""},
		{"https://127.1.2.3/t", ""},
		{"https://[::1]:8443/t", ""},
		{"https://[::ffff:127.0.0.1]/t", ""},
		{"https://internal.example/t", ""},
		{"https://Sub.Internal.Example/t", ""},
		{"https://notinternal.example/t", "http://secure-proxy:3128"},
		{"https://corp.example/t", "http://secure-proxy:3128"},
		{"https://a.corp.example/t", ""},
		{"https://wild.example/t", "http://secure-proxy:3128"},
		{"https://a.wild.example/t", ""},
		{"https://10.1.2.3/t", ""},
		{"https://11.1.2.3/t", "http://secure-proxy:3128"},
		{"https://192.168.1.1/t", ""},
		{"https://192.168.1.2/t", "http://secure-proxy:3128"},
		{"https://[2001:db8::1]/t", ""},
		{"https://[2001:db8::1]:8443/t", "http://secure-proxy:3128"},
		{"https://ports.example:8443/t", ""},
		{"https://ports.example/t", "http://secure-proxy:3128"},
	}
	c := &Client{Getenv: env(vars)}
	for _, tc := range cases {
		u, _ := url.Parse(tc.url)
		p, err := c.proxy(u)
		got := ""
		if p != nil {
			got = p.String()
		}
		if err != nil || got != tc.proxy {
			t.Errorf("proxy(%s) = %q, %v; want %q", tc.url, got, err, tc.proxy)
		}
	}

	u, _ := url.Parse("https://anything.example/t")
	if p, _ := (&Client{Getenv: env(map[string]string{"HTTPS_PROXY": "http://p:1", "no_proxy": "*"})}).proxy(u); p != nil {
		t.Errorf("NO_PROXY=*: proxy %v", p)
	}
	if p, _ := (&Client{Getenv: env(map[string]string{"HTTPS_PROXY": "http://upper:1", "https_proxy": "http://lower:1"})}).proxy(u); p == nil || p.Host != "upper:1" {
		t.Errorf("HTTPS_PROXY before https_proxy: %v", p)
	}
	if p, _ := (&Client{Getenv: env(map[string]string{"HTTP_PROXY": "http://p:1"})}).proxy(u); p != nil {
		t.Errorf("HTTP_PROXY used for https: %v", p)
	}
	// Under CGI, HTTP_PROXY may come from the request's Proxy field.
	hu, _ := url.Parse("http://api.example/t")
	if p, _ := (&Client{Getenv: env(map[string]string{"HTTP_PROXY": "http://evil:1", "REQUEST_METHOD": "POST"})}).proxy(hu); p != nil {
		t.Errorf("HTTP_PROXY used under CGI: %v", p)
	}
	for _, bad := range []string{"socks5://p:1080", "http://", "http://%zz"} {
		_, err := (&Client{Getenv: env(map[string]string{"HTTPS_PROXY": bad})}).proxy(u)
		if err == nil || strings.Contains(err.Error(), "zz") && bad == "http://%zz" {
			t.Errorf("HTTPS_PROXY=%s: %v", bad, err)
		}
		if _, err := (&Client{Getenv: env(map[string]string{"HTTPS_PROXY": bad})}).PostForm(context.Background(), u.String(), ""); err == nil {
			t.Errorf("PostForm with HTTPS_PROXY=%s: no error", bad)
		}
	}
}

// URLs that are not http(s) with a host are plain errors, not
// *url.Error: they are configuration mistakes, not network failures.
func TestBadURL(t *testing.T) {
	for _, u := range []string{"ftp://example.com/", "https:///path", "://x", "mailto:a@b"} {
		_, err := (&Client{Getenv: env(nil)}).PostForm(context.Background(), u, "")
		var ue *url.Error
		if err == nil || errors.As(err, &ue) && ue.Op == "Post" {
			t.Errorf("PostForm(%q): %v", u, err)
		}
	}
}

func TestStatusText(t *testing.T) {
	if StatusText(502) != "Bad Gateway" || StatusText(429) != "Too Many Requests" || StatusText(299) != "" {
		t.Error("StatusText")
	}
}
