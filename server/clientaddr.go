package server

import (
	"context"
	"net/http"
	"net/netip"
	"strings"

	"github.com/latchkey-dev/latchkey"
)

// ParseTrustedProxies reads LATCHKEY_TRUSTED_PROXIES: a comma-separated
// list of CIDR prefixes (a bare address is its own /32 or /128).
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, err
			}
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// clientAddr returns the address the contract calls the client's: the TCP
// peer, or, only when the peer is a trusted proxy, the nearest address of
// X-Forwarded-For that is not a trusted proxy, read from the right. Every
// entry left of that one was written by the client and proves nothing;
// trusting the header from anyone else would let a client choose a fresh
// address for every login attempt.
func clientAddr(r *http.Request, trusted []netip.Prefix) string {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return hostOf(r.RemoteAddr)
	}
	addr := peer.Addr().Unmap()
	if !isTrusted(addr, trusted) {
		return addr.String()
	}
	hops := r.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		entries := strings.Split(hops[i], ",")
		for j := len(entries) - 1; j >= 0; j-- {
			hop, err := netip.ParseAddr(strings.TrimSpace(entries[j]))
			if err != nil {
				// A trusted proxy wrote something that is not an address:
				// the last hop known to be real is the proxy itself.
				return addr.String()
			}
			addr = hop.Unmap()
			if !isTrusted(addr, trusted) {
				return addr.String()
			}
		}
	}
	// Every hop is a trusted proxy: the request began inside.
	return addr.String()
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// hostOf strips the port from an address that netip cannot parse (a
// Unix socket's "@", a test's "pipe").
func hostOf(addr string) string {
	host := addr
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	return strings.Trim(host, "[]")
}

type clientAddrKey struct{}

// withClientAddr records the resolved client address for the request's
// handlers, so that throttling, sessions and the access log see one value.
func withClientAddr(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, clientAddrKey{}, addr)
}

// clientOf describes the caller for rate limiting and session lists.
func clientOf(r *http.Request) latchkey.Client {
	addr, ok := r.Context().Value(clientAddrKey{}).(string)
	if !ok {
		addr = clientAddr(r, nil)
	}
	return latchkey.Client{IP: addr, UserAgent: r.UserAgent()}
}
