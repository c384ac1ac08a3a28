package handshake

import (
	"net/http"
)

// Request is a validated WebSocket upgrade request head.
//
// Every []byte in it, and every slice its methods return, points into the
// head given to Parse: it is valid only while that buffer is, and only until
// the Request is parsed into again. Copy what must outlive the handshake.
// A Request is reused by calling Parse again; its field list keeps its
// capacity, so a warmed-up Request parses without allocating.
type Request struct {
	Method []byte // always "GET"
	Target []byte // origin-form request-target: Path plus "?" Query if any
	Path   []byte // Target up to the first "?", still percent-encoded
	Query  []byte // Target after the first "?", nil if there is none
	Host   []byte // the Host header's value (host[:port]); compare it ignoring case
	Key    []byte // the Sec-WebSocket-Key value, 24 base64 characters

	// Head is the whole head as given to Parse.
	Head []byte

	fields []field
}

// Reset forgets the head r points into but keeps the capacity of its field
// list, so that a Request kept for reuse (in a sync.Pool, say) neither holds
// on to a connection's input buffer nor allocates when it parses again.
func (r *Request) Reset() { *r = Request{fields: r.fields[:0]} }

// ParseRequest is r.Parse(head).
func ParseRequest(head []byte, r *Request) error { return r.Parse(head) }

// Parse validates head, which must be a complete request head as delimited by
// HeadEnd (ending with its blank line and nothing after it), as a WebSocket
// upgrade request, and fills r. On failure it returns a *Reject whose status
// is the answer to send: 426 when Sec-WebSocket-Version is missing or not 13,
// 431 for more than MaxHeaders header fields, and 400 for anything else that
// is malformed or not a WebSocket upgrade (including another HTTP version).
// On failure r's contents are unspecified.
func (r *Request) Parse(head []byte) error {
	*r = Request{Head: head, fields: r.fields[:0]}
	if len(head) > maxHead {
		return reject(http.StatusRequestHeaderFieldsTooLarge, "request head too large")
	}
	ls := lines{head: head}
	start, end, more, bad := ls.next()
	if bad != "" && start == end && len(head) > 1 && head[0] == '\r' {
		// RFC 9112 2.2 lets a server skip blank lines before a request;
		// nothing sends them before a handshake on a fresh connection, so
		// they are refused like any other malformed start.
		return badRequest("empty request line")
	}
	if bad != "" {
		return badRequest(bad)
	}
	if !more {
		return badRequest("empty request line")
	}
	if err := r.parseRequestLine(head[start:end]); err != nil {
		return err
	}

	var (
		hosts, keys, versions int
		version               []byte
		upgrade, connUpgrade  bool
		seenConnection        bool
		contentLength         bool
	)
	for {
		start, end, more, bad = ls.next()
		if bad != "" {
			return badRequest(bad)
		}
		if !more {
			break
		}
		f, bad := parseField(head, start, end)
		if bad != "" {
			return badRequest(bad)
		}
		if len(r.fields) == MaxHeaders {
			return reject(http.StatusRequestHeaderFieldsTooLarge, "too many header fields")
		}
		r.fields = append(r.fields, f)
		v := head[f.v0:f.v1]
		switch f.kind {
		case kHost:
			hosts++
			r.Host = v
		case kSecKey:
			keys++
			r.Key = v
		case kSecVersion:
			versions++
			version = v
		case kTransferEncoding:
			// An upgrade GET has no body; a framing header is either a
			// mistake or an attempt to make wsgate and the backend disagree
			// on where the request ends.
			return badRequest("Transfer-Encoding not allowed")
		case kContentLength:
			if contentLength {
				return badRequest("duplicate Content-Length")
			}
			contentLength = true
			if len(v) != 1 || v[0] != '0' {
				return badRequest("request body not allowed")
			}
		case kUpgrade:
			found, ok := upgradeHasWebSocket(v)
			if !ok {
				return badRequest("malformed Upgrade")
			}
			upgrade = upgrade || found
		case kConnection:
			found, ok := containsToken(v, "upgrade")
			if !ok {
				return badRequest("malformed Connection")
			}
			connUpgrade = connUpgrade || found
			seenConnection = true
		}
	}

	switch {
	case hosts == 0:
		return badRequest("missing Host")
	case hosts > 1:
		return badRequest("duplicate Host")
	case !validHost(r.Host):
		return badRequest("invalid Host")
	case !upgrade:
		// RFC 6455 4.2.1 asks for 400 when the handshake does not match.
		// (RFC 9110's 426 would fit too, but wsgate keeps 426 for the one
		// case a client can fix by itself: the protocol version.)
		return badRequest("not a WebSocket upgrade")
	case !connUpgrade:
		return badRequest("Connection lacks upgrade")
	case versions > 1:
		return badRequest("duplicate Sec-WebSocket-Version")
	case versions == 0 || string(version) != "13":
		return reject(http.StatusUpgradeRequired, "unsupported Sec-WebSocket-Version")
	case keys == 0:
		return badRequest("missing Sec-WebSocket-Key")
	case keys > 1:
		return badRequest("duplicate Sec-WebSocket-Key")
	case !validKey(r.Key):
		return badRequest("invalid Sec-WebSocket-Key")
	}
	if seenConnection {
		return r.markConnectionOptions()
	}
	return nil
}

// markConnectionOptions drops the headers the client named in Connection
// (RFC 9110 7.6.1: they belong to the client's hop). Naming a header the
// backend needs for the handshake would make the forwarded request invalid,
// so that is refused rather than honoured.
func (r *Request) markConnectionOptions() error {
	for _, c := range r.fields {
		if c.kind != kConnection {
			continue
		}
		v := r.Head[c.v0:c.v1]
		for i := 0; i >= 0; {
			var opt []byte
			opt, i = nextElem(v, i)
			if len(opt) == 0 {
				continue
			}
			switch kindOf(opt) {
			case kHost, kSecKey, kSecVersion:
				return badRequest("Connection names a required header")
			}
			for j := range r.fields {
				f := &r.fields[j]
				if equalFoldBytes(r.Head[f.line:f.colon], opt) {
					f.drop = true
				}
			}
		}
	}
	return nil
}

func equalFoldBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

// parseRequestLine accepts exactly "GET SP origin-form SP HTTP/1.1": single
// spaces, since parsers that collapse or split on other whitespace would see
// a different target (RFC 9112 3).
func (r *Request) parseRequestLine(line []byte) error {
	sp1 := indexByte(line, ' ', 0)
	if sp1 <= 0 {
		return badRequest("malformed request line")
	}
	sp2 := indexByte(line, ' ', sp1+1)
	if sp2 < 0 || sp2 == sp1+1 || indexByte(line, ' ', sp2+1) >= 0 {
		return badRequest("malformed request line")
	}
	method, target, version := line[:sp1], line[sp1+1:sp2], line[sp2+1:]
	if !isToken(method) {
		return badRequest("malformed request line")
	}
	if string(version) != "HTTP/1.1" {
		// HTTP/1.0 has no Upgrade (RFC 9110 7.8) and HTTP/2 does not
		// arrive in this form; wsgate documents 400 for both rather
		// than 505, which would invite a retry in another version.
		if len(version) == 8 && string(version[:5]) == "HTTP/" && version[6] == '.' &&
			class[version[5]]&cDigit != 0 && class[version[7]]&cDigit != 0 {
			return badRequest("HTTP version not 1.1")
		}
		return badRequest("malformed request line")
	}
	// RFC 6455 4.1: the opening handshake is a GET. Method names are case
	// sensitive, so "get" is a different, unsupported method.
	if string(method) != "GET" {
		return badRequest("method must be GET")
	}
	if target[0] != '/' {
		// Absolute-form would give the authority twice (target and Host)
		// and a router and a backend could each pick a different one.
		return badRequest("request-target not origin-form")
	}
	q := indexByte(target, '?', 0)
	path := target
	if q >= 0 {
		path = target[:q]
		for _, c := range target[q+1:] {
			if class[c]&cTarget == 0 {
				return badRequest("invalid byte in query")
			}
		}
		r.Query = target[q+1:]
	}
	if bad := checkPath(path); bad != "" {
		return badRequest(bad)
	}
	r.Method, r.Target, r.Path = method, target, path
	return nil
}

// checkPath holds the path to what a browser's URL parser emits, so that a
// path-based route matches what the backend will resolve: no raw bytes
// outside visible ASCII, well-formed percent-escapes, no backslash (which
// some servers treat as "/"), and no "." or ".." segments, plain or
// percent-encoded (browsers resolve them before sending; a client that
// does not is trying to step outside a routed prefix).
func checkPath(p []byte) string {
	seg := 1 // start of the current segment; p[0] is '/'
	dotBytes, dots := 0, 0
	for i := 1; i <= len(p); i++ {
		if i == len(p) || p[i] == '/' {
			if dotBytes == i-seg && (dots == 1 || dots == 2) {
				return "dot-segment in path"
			}
			seg, dotBytes, dots = i+1, 0, 0
			continue
		}
		c := p[i]
		switch {
		case c == '%':
			if i+2 >= len(p) || class[p[i+1]]&cHex == 0 || class[p[i+2]]&cHex == 0 {
				return "invalid percent-encoding in path"
			}
			if p[i+1] == '2' && lower(p[i+2]) == 'e' {
				dotBytes += 3
				dots++
			}
			i += 2
		case c == '.':
			dotBytes++
			dots++
		case c == '\\':
			return "backslash in path"
		case class[c]&cTarget == 0:
			return "invalid byte in path"
		}
	}
	return ""
}

func indexByte(b []byte, c byte, from int) int {
	for i := from; i < len(b); i++ {
		if b[i] == c {
			return i
		}
	}
	return -1
}

// validHost accepts host[:port] where host is a DNS-style name (letters,
// digits, '-', '.', '_') or a bracketed IPv6 literal, and port is 1 to 5
// digits. RFC 3986 allows more (userinfo is excluded by RFC 9110, but
// percent-escapes and sub-delims are allowed in reg-name); none of it names a
// real host and all of it is room for a router and a backend to disagree.
func validHost(h []byte) bool {
	if len(h) == 0 {
		return false
	}
	i := 0
	if h[0] == '[' {
		i = 1
		for i < len(h) && (class[h[i]]&cHex != 0 || h[i] == ':' || h[i] == '.') {
			i++
		}
		if i == 1 || i == len(h) || h[i] != ']' {
			return false
		}
		i++
	} else {
		for i < len(h) && class[h[i]]&cHost != 0 {
			i++
		}
		if i == 0 {
			return false
		}
	}
	if i == len(h) {
		return true
	}
	if h[i] != ':' {
		return false
	}
	port := h[i+1:]
	if len(port) == 0 || len(port) > 5 {
		return false
	}
	n := 0
	for _, c := range port {
		if class[c]&cDigit == 0 {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n <= 65535
}

// validKey accepts the base64 encoding of 16 bytes (RFC 6455 4.1): 22
// alphabet characters and "==". The low bits of the last character are not
// required to be zero; the key is only ever hashed as text.
func validKey(k []byte) bool {
	if len(k) != 24 || k[22] != '=' || k[23] != '=' {
		return false
	}
	for _, c := range k[:22] {
		if class[c]&cAlnum == 0 && c != '+' && c != '/' {
			return false
		}
	}
	return true
}

// Hostname returns Host without its port and, for an IPv6 literal, without
// brackets.
func (r *Request) Hostname() []byte {
	h := r.Host
	if len(h) > 0 && h[0] == '[' {
		if i := indexByte(h, ']', 0); i > 0 {
			return h[1:i]
		}
		return h
	}
	if i := indexByte(h, ':', 0); i >= 0 {
		return h[:i]
	}
	return h
}

// Header returns the value (without surrounding whitespace) of the first
// header named name, compared ignoring case, or nil if there is none.
func (r *Request) Header(name string) []byte {
	for i := range r.fields {
		f := &r.fields[i]
		if equalFold(r.Head[f.line:f.colon], name) {
			return r.Head[f.v0:f.v1:f.v1]
		}
	}
	return nil
}

// VisitHeaders calls fn with each header's name and value, in order, until
// fn returns false.
func (r *Request) VisitHeaders(fn func(name, value []byte) bool) {
	for i := range r.fields {
		f := &r.fields[i]
		if !fn(r.Head[f.line:f.colon:f.colon], r.Head[f.v0:f.v1:f.v1]) {
			return
		}
	}
}

// NumHeaders returns the number of header fields in the request.
func (r *Request) NumHeaders() int { return len(r.fields) }
