package httpc

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
)

// proxy returns the proxy for u, or nil for a direct connection, from
// the environment, as net/http's ProxyFromEnvironment reads it:
//
//   - HTTPS_PROXY (or https_proxy) for https:// URLs, HTTP_PROXY (or
//     http_proxy) for http:// URLs; the upper-case name first. A value
//     without a scheme ("proxy:3128") is http://. Under CGI
//     (REQUEST_METHOD set), HTTP_PROXY is ignored: a client's "Proxy:"
//     header field would set it ("httpoxy"), and sendmail is often run
//     from CGI programs;
//   - NO_PROXY (or no_proxy), see noProxy;
//   - never a proxy for localhost or a loopback address.
//
// The proxy's scheme must be http or https. An error never quotes the
// variable, which may hold a password.
func (c *Client) proxy(u *url.URL) (*url.URL, error) {
	var raw string
	if u.Scheme == "https" {
		raw = c.getenvAny("HTTPS_PROXY", "https_proxy")
	} else {
		if c.getenv("REQUEST_METHOD") == "" {
			raw = c.getenv("HTTP_PROXY")
		}
		if raw == "" {
			raw = c.getenv("http_proxy")
		}
	}
	if raw == "" || noProxy(u, c.getenvAny("NO_PROXY", "no_proxy")) {
		return nil, nil
	}
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	p, err := url.Parse(raw)
	switch {
	case err != nil:
		return nil, errors.New("httpc: the proxy variable of the environment is not a URL")
	case p.Scheme != "http" && p.Scheme != "https":
		return nil, fmt.Errorf("httpc: proxy scheme %q is not supported (only http and https)", p.Scheme)
	case p.Hostname() == "":
		return nil, errors.New("httpc: the proxy variable of the environment has no host")
	}
	return p, nil
}

// getenvAny returns the first non-empty variable of names.
func (c *Client) getenvAny(names ...string) string {
	for _, n := range names {
		if v := c.getenv(n); v != "" {
			return v
		}
	}
	return ""
}

// noProxy reports whether u must be reached directly: its host is
// localhost or a loopback address, or it matches an entry of list, a
// comma-separated NO_PROXY value whose entries are (each with an
// optional ":port" that must then be u's port too):
//
//   - "*": every host;
//   - an IP address, or a CIDR prefix ("10.0.0.0/8"), matching IP
//     addresses in URLs (not names that resolve to them);
//   - "example.com": that name and the names under it;
//   - ".example.com" or "*.example.com": only the names under it.
func noProxy(u *url.URL, list string) bool {
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	ip, ipErr := netip.ParseAddr(host)
	if ipErr == nil {
		ip = ip.WithZone("").Unmap()
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") || ipErr == nil && ip.IsLoopback() {
		return true
	}
	for entry := range strings.SplitSeq(list, ",") {
		entry = strings.ToLower(strings.TrimSpace(entry))
		if entry == "" {
			continue
		}
		if entry == "*" {
			return true
		}
		ehost, eport := entry, ""
		if h, p, err := net.SplitHostPort(entry); err == nil {
			ehost, eport = h, p
		}
		if eport != "" && eport != port {
			continue
		}
		if pfx, err := netip.ParsePrefix(ehost); err == nil {
			if ipErr == nil && pfx.Masked().Contains(ip) {
				return true
			}
			continue
		}
		if a, err := netip.ParseAddr(ehost); err == nil {
			if ipErr == nil && a.Unmap() == ip {
				return true
			}
			continue
		}
		if ipErr == nil {
			continue // a name matches no IP address
		}
		ehost = strings.TrimSuffix(strings.TrimPrefix(ehost, "*"), ".")
		if strings.HasPrefix(ehost, ".") {
			if strings.HasSuffix(host, ehost) {
				return true
			}
			continue
		}
		if host == ehost || strings.HasSuffix(host, "."+ehost) {
			return true
		}
	}
	return false
}
