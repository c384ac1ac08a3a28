package handshake

import (
	"crypto/sha1"
	"encoding/base64"
	"net/http"
)

// Response is a validated backend response head. Protocol and Head point
// into the head given to ParseResponse and are valid only while it is.
type Response struct {
	Status int
	// HTTP10 is set for an "HTTP/1.0" status line (never for a 101).
	HTTP10 bool
	// Deflate is set when a 101 selected permessage-deflate (RFC 7692), so
	// frames may carry RSV1.
	Deflate bool
	// ContentLength is the Content-Length value, -1 if absent.
	ContentLength int64
	// Chunked is set when chunked is the (last) transfer coding.
	Chunked bool
	// Protocol is the subprotocol a 101 selected, nil if none.
	Protocol []byte
	// Head is the whole head as given to ParseResponse.
	Head []byte
}

// Interim reports a 1xx other than 101 (100 Continue, 103 Early Hints): it
// has no body and is followed by another response head, which the caller
// reads after relaying (or dropping) this one.
func (r *Response) Interim() bool { return r.Status >= 100 && r.Status < 200 && r.Status != 101 }

// ParseResponse validates a complete response head (as delimited by HeadEnd)
// from a backend to which the request with Sec-WebSocket-Key clientKey was
// sent, and fills r. Errors are *Reject with status 502: the backend's
// answer is not relayed, wsgate answers 502 instead.
//
// Every response is held to the syntax rules of requests (CRLF only, no
// obs-fold, no whitespace before colons, no control bytes in values), and its
// framing must be unambiguous, because a non-101 answer is relayed with its
// body and the client must find its end where wsgate did: Content-Length at
// most once and all digits, never together with Transfer-Encoding, which may
// only be a single "chunked" and not in HTTP/1.0.
//
// A 101 must be a WebSocket accept of this very request (RFC 6455 4.1):
// HTTP/1.1, Upgrade: websocket, Connection: upgrade, exactly one
// Sec-WebSocket-Accept matching clientKey, at most one subprotocol token,
// and no extension other than one permessage-deflate, the only one whose
// framing (RSV1) wsgate's relay understands.
func ParseResponse(head []byte, clientKey []byte, r *Response) error {
	*r = Response{Head: head, ContentLength: -1}
	if len(head) > maxHead {
		return badGateway("response head too large")
	}
	ls := lines{head: head}
	start, end, more, bad := ls.next()
	if bad != "" {
		return badGateway(bad)
	}
	if !more {
		return badGateway("empty status line")
	}
	if bad := r.parseStatusLine(head[start:end]); bad != "" {
		return badGateway(bad)
	}
	switching := r.Status == http.StatusSwitchingProtocols

	var (
		n                       int
		accepts, protocols      int
		accept                  []byte
		upgrade, connUpgrade    bool
		transferEncoding        bool
		extDeflate, extOther    int
		badExtensions, badProto bool
	)
	for {
		start, end, more, bad = ls.next()
		if bad != "" {
			return badGateway(bad)
		}
		if !more {
			break
		}
		f, bad := parseField(head, start, end)
		if bad != "" {
			return badGateway(bad)
		}
		if n++; n > MaxHeaders {
			return badGateway("too many header fields")
		}
		v := head[f.v0:f.v1]
		switch f.kind {
		case kContentLength:
			if r.ContentLength >= 0 {
				return badGateway("duplicate Content-Length")
			}
			if r.ContentLength = parseLength(v); r.ContentLength < 0 {
				return badGateway("invalid Content-Length")
			}
		case kTransferEncoding:
			// RFC 9112 allows other codings before chunked (and a body
			// delimited by close when chunked is not last), but Go's
			// client and most proxies refuse them and no WebSocket backend
			// sends them: only a single "chunked" is relayed.
			if transferEncoding || !equalLower(v, "chunked") {
				return badGateway("unsupported Transfer-Encoding")
			}
			transferEncoding, r.Chunked = true, true
		case kUpgrade:
			found, _ := upgradeHasWebSocket(v)
			upgrade = upgrade || found
		case kConnection:
			found, _ := containsToken(v, "upgrade")
			connUpgrade = connUpgrade || found
		case kSecAccept:
			accepts++
			accept = v
		case kSecProtocol:
			protocols++
			r.Protocol = v
			badProto = badProto || !isToken(v)
		case kSecExtensions:
			if !switching || len(v) == 0 {
				break
			}
			d, o, ok := countExtensions(v)
			extDeflate += d
			extOther += o
			badExtensions = badExtensions || !ok
		}
	}

	if transferEncoding {
		if r.ContentLength >= 0 {
			// RFC 9112 6.3: the classic smuggling shape. A proxy may only
			// forward it after removing Content-Length, and wsgate relays
			// verbatim.
			return badGateway("both Transfer-Encoding and Content-Length")
		}
		if r.HTTP10 {
			return badGateway("Transfer-Encoding in HTTP/1.0")
		}
	}
	if !switching {
		r.Protocol = nil
		return nil
	}
	r.Chunked, r.ContentLength = false, -1 // a 101 has no body
	switch {
	case r.HTTP10:
		return badGateway("101 in HTTP/1.0")
	case !upgrade:
		return badGateway("101 without Upgrade: websocket")
	case !connUpgrade:
		return badGateway("101 without Connection: upgrade")
	case accepts != 1:
		return badGateway("101 needs exactly one Sec-WebSocket-Accept")
	case !validKey(clientKey):
		return badGateway("invalid client key")
	case !acceptMatches(accept, clientKey):
		return badGateway("Sec-WebSocket-Accept does not match key")
	case protocols > 1 || badProto:
		return badGateway("invalid Sec-WebSocket-Protocol")
	case badExtensions:
		return badGateway("malformed Sec-WebSocket-Extensions")
	case extOther > 0:
		return badGateway("unsupported WebSocket extension")
	case extDeflate > 1:
		return badGateway("permessage-deflate selected twice")
	}
	r.Deflate = extDeflate == 1
	return nil
}

// countExtensions parses a Sec-WebSocket-Extensions value (RFC 6455 9.1):
//
//	1#( token *( OWS ";" OWS token [ "=" ( token / quoted-string ) ] ) )
//
// and counts permessage-deflate and other extensions. httphead.ScanOptions
// parses the same grammar but is lenient where this must not be (it reads
// "a b" as "b" and accepts "a;p="), so a malformed value from the backend
// could be taken for a different extension than the client sees.
func countExtensions(v []byte) (deflate, other int, ok bool) {
	i := 0
	skipOWS := func() {
		for i < len(v) && isOWS(v[i]) {
			i++
		}
	}
	token := func() []byte {
		j := i
		for i < len(v) && class[v[i]]&cToken != 0 {
			i++
		}
		return v[j:i]
	}
	for {
		skipOWS()
		if i == len(v) {
			return deflate, other, true
		}
		if v[i] == ',' { // empty list elements are allowed (RFC 9110 5.6.1)
			i++
			continue
		}
		name := token()
		if len(name) == 0 {
			return deflate, other, false
		}
		if equalLower(name, "permessage-deflate") {
			deflate++
		} else {
			other++
		}
		skipOWS()
		for i < len(v) && v[i] == ';' {
			i++
			skipOWS()
			if len(token()) == 0 {
				return deflate, other, false
			}
			if i < len(v) && v[i] == '=' {
				i++
				if i < len(v) && v[i] == '"' {
					if i = quotedStringEnd(v, i); i < 0 {
						return deflate, other, false
					}
				} else if len(token()) == 0 {
					return deflate, other, false
				}
			}
			skipOWS()
		}
		if i == len(v) {
			return deflate, other, true
		}
		if v[i] != ',' {
			return deflate, other, false
		}
		i++
	}
}

// quotedStringEnd returns the index after the quoted-string (RFC 9110 5.6.4)
// starting at v[i], or -1 if it is malformed or unterminated.
func quotedStringEnd(v []byte, i int) int {
	for i++; i < len(v); i++ {
		switch c := v[i]; {
		case c == '"':
			return i + 1
		case c == '\\':
			if i++; i == len(v) || class[v[i]]&cValue == 0 {
				return -1
			}
		case class[c]&cValue == 0:
			return -1
		}
	}
	return -1
}

// parseStatusLine accepts "HTTP/1.1 NNN reason" and "HTTP/1.0 NNN reason",
// with the reason (and the space before it) optional, as many servers omit
// it. Only 100-599 are statuses a client can act on.
func (r *Response) parseStatusLine(line []byte) string {
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || line[8] != ' ' {
		return "malformed status line"
	}
	switch line[7] {
	case '1':
	case '0':
		r.HTTP10 = true
	default:
		return "unsupported HTTP version"
	}
	for _, c := range line[9:12] {
		if class[c]&cDigit == 0 {
			return "malformed status line"
		}
		r.Status = r.Status*10 + int(c-'0')
	}
	if r.Status < 100 || r.Status > 599 {
		return "invalid status code"
	}
	if len(line) > 12 {
		if line[12] != ' ' {
			return "malformed status line"
		}
		for _, c := range line[13:] {
			if class[c]&cValue == 0 {
				return "invalid byte in reason phrase"
			}
		}
	}
	return ""
}

// parseLength parses 1*DIGIT, returning -1 for anything else or for a value
// too large for any real body (over 18 digits, so it cannot overflow).
func parseLength(v []byte) int64 {
	if len(v) == 0 || len(v) > 18 {
		return -1
	}
	var n int64
	for _, c := range v {
		if class[c]&cDigit == 0 {
			return -1
		}
		n = n*10 + int64(c-'0')
	}
	return n
}

const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

func acceptMatches(accept, key []byte) bool {
	want := acceptFor(key)
	return string(accept) == string(want[:])
}

// acceptFor computes Sec-WebSocket-Accept for a 24-byte key (RFC 6455 4.2.2).
func acceptFor(key []byte) [28]byte {
	var buf [24 + len(websocketGUID)]byte
	copy(buf[:], key)
	copy(buf[24:], websocketGUID)
	sum := sha1.Sum(buf[:])
	var out [28]byte
	base64.StdEncoding.Encode(out[:], sum[:])
	return out
}
