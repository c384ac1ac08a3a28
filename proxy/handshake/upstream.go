package handshake

import "net/netip"

// ForwardInfo is what wsgate tells the backend about the client's hop.
type ForwardInfo struct {
	// ClientIP is appended to X-Forwarded-For. An IPv4-mapped IPv6 address
	// is written as IPv4, and a zone is dropped (it names an interface of
	// wsgate's host, meaningless to the backend). The zero Addr (a client
	// without an IP, e.g. over a Unix socket) adds no entry.
	ClientIP netip.Addr
	// Proto is sent as X-Forwarded-Proto: "http" or "https" for the
	// scheme the client used. Empty, or anything but a token, sends none.
	Proto string
}

// AppendUpstreamRequest appends the request head to send to the backend for
// a request that Parse accepted, and returns the extended slice. With dst
// of sufficient capacity it does not allocate.
//
// The request line and every end-to-end header are copied byte for byte and
// in order (Sec-WebSocket-*, Cookie, Origin, Authorization and the rest are
// the backend's business, not wsgate's). Dropped: the hop-by-hop headers
// (Connection, Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding,
// Upgrade, Proxy-Authenticate, Proxy-Authorization) and any header the client
// named in Connection, since they describe the client's connection to
// wsgate; and the client's X-Forwarded-Proto and X-Forwarded-Host, since only
// wsgate knows those and a client must not be able to set them. Added after
// the copied headers, in this order:
//
//	Upgrade: websocket
//	Connection: Upgrade
//	X-Forwarded-For: <client's values, if any>, <fi.ClientIP>
//	X-Forwarded-Proto: <fi.Proto>
//	X-Forwarded-Host: <Host>
//
// X-Forwarded-For is appended to rather than replaced, as is customary: the
// client's own entries are kept (merged into one line), and a backend trusts
// only the entries added by proxies it knows, counted from the right.
// Forwarded (RFC 7239) and X-Real-IP are end-to-end headers wsgate does not
// write, so they pass through like any other: a backend must not trust them
// unless something in front of wsgate sets them.
func AppendUpstreamRequest(dst []byte, r *Request, fi ForwardInfo) []byte {
	h := r.Head
	dst = append(dst, r.Method...)
	dst = append(dst, ' ')
	dst = append(dst, r.Target...)
	dst = append(dst, " HTTP/1.1\r\n"...)
	for i := range r.fields {
		f := &r.fields[i]
		if f.drop || hopByHop(f.kind) {
			continue
		}
		switch f.kind {
		case kXForwardedFor, kXForwardedProto, kXForwardedHost:
			continue
		}
		dst = append(dst, h[f.line:f.end+2]...)
	}
	dst = append(dst, "Upgrade: websocket\r\nConnection: Upgrade\r\n"...)

	ip := fi.ClientIP.Unmap().WithZone("")
	n := 0 // X-Forwarded-For entries written
	for i := range r.fields {
		f := &r.fields[i]
		if f.kind != kXForwardedFor || f.drop || f.v0 == f.v1 {
			continue
		}
		if n == 0 {
			dst = append(dst, "X-Forwarded-For: "...)
		} else {
			dst = append(dst, ", "...)
		}
		dst = append(dst, h[f.v0:f.v1]...)
		n++
	}
	if ip.IsValid() {
		if n == 0 {
			dst = append(dst, "X-Forwarded-For: "...)
		} else {
			dst = append(dst, ", "...)
		}
		dst = ip.AppendTo(dst)
		n++
	}
	if n > 0 {
		dst = append(dst, "\r\n"...)
	}
	if isTokenString(fi.Proto) {
		dst = append(dst, "X-Forwarded-Proto: "...)
		dst = append(dst, fi.Proto...)
		dst = append(dst, "\r\n"...)
	}
	dst = append(dst, "X-Forwarded-Host: "...)
	dst = append(dst, r.Host...)
	return append(dst, "\r\n\r\n"...)
}

// UpstreamRequestSize returns an upper bound on the length that
// AppendUpstreamRequest adds, for sizing dst so that it does not grow.
func UpstreamRequestSize(r *Request, fi ForwardInfo) int {
	// The copied lines are never longer than the head (the client's
	// X-Forwarded-For lines shrink when merged, and Upgrade and Connection
	// lines are always among those dropped); the rest is the added headers,
	// with at most 39 bytes for an IPv6 address.
	return len(r.Head) + len("Upgrade: websocket\r\nConnection: Upgrade\r\nX-Forwarded-For: , \r\nX-Forwarded-Proto: \r\nX-Forwarded-Host: \r\n") +
		len(r.Host) + 39 + len(fi.Proto)
}

func isTokenString(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if class[s[i]]&cToken == 0 {
			return false
		}
	}
	return true
}
