package handshake

import "bytes"

// MaxHeaders bounds the header fields of one head. Field positions are kept
// in a slice reused across parses, so the bound is what keeps a client from
// growing it (and the work per request) with thousands of one-byte headers
// inside an otherwise acceptable head size.
const MaxHeaders = 100

// maxHead keeps every offset in an int32; the caller's head limit (a few KiB)
// is far below it.
const maxHead = 1 << 30

// HeadEnd returns the length of the head in buf, through the blank line that
// ends it, or -1 if no blank line has arrived yet.
//
// A line ending is LF optionally preceded by CR, so a head written with bare
// LF (or with a mix) is found complete too: it is then rejected by the parser
// with 400 at once instead of waiting for the size limit, and the answer is
// the same whatever the client meant by it. The caller enforces the size
// limit: when HeadEnd returns -1 and len(buf) is already at the limit, answer
// 431; when it returns more than the limit, answer 431 as well.
func HeadEnd(buf []byte) int {
	line := 0
	for {
		i := bytes.IndexByte(buf[line:], '\n')
		if i < 0 {
			return -1
		}
		i += line
		if i == line || (i == line+1 && buf[line] == '\r') {
			return i + 1
		}
		line = i + 1
	}
}

// Character classes. The table is built once and never written again.
const (
	cToken  = 1 << iota // tchar (RFC 9110 5.6.2)
	cValue              // field-value octet: VCHAR, SP, HTAB, obs-text
	cTarget             // octet allowed raw in an origin-form request-target
	cHost               // octet of a reg-name or IP literal as wsgate accepts it
	cHex
	cDigit
	cAlnum
)

var class = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		switch {
		case c >= 0x21 && c <= 0x7e:
			t[c] |= cValue
			if c != '#' {
				t[c] |= cTarget
			}
		case c == ' ' || c == '\t' || c >= 0x80:
			t[c] |= cValue
		}
		switch {
		case c >= '0' && c <= '9':
			t[c] |= cToken | cHost | cHex | cDigit | cAlnum
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
			t[c] |= cToken | cHost | cAlnum
			if c|0x20 <= 'f' {
				t[c] |= cHex
			}
		}
	}
	for _, c := range []byte("!#$%&'*+-.^_`|~") {
		t[c] |= cToken
	}
	for _, c := range []byte("-._") {
		t[c] |= cHost
	}
	return t
}()

func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if class[c]&cToken == 0 {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}

// equalLower reports whether b equals s ignoring ASCII case; s must be lower
// case. Header names are compared this way so that no lowered copy is made.
func equalLower(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if lower(b[i]) != s[i] {
			return false
		}
	}
	return true
}

// equalFold is equalLower for two inputs of any case.
func equalFold(a []byte, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

func isOWS(c byte) bool { return c == ' ' || c == '\t' }

func trimOWS(b []byte) []byte {
	for len(b) > 0 && isOWS(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isOWS(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// nextElem splits a comma-separated list (RFC 9110 5.6.1) without allocating:
// it returns the element starting at v[i:], trimmed of OWS (possibly empty,
// which the list rule tolerates), and the index after its comma, or -1 after
// the last element. It knows nothing of quoted strings: it is used only for
// lists whose elements wsgate requires to be tokens, where a quote is an error
// the caller reports.
func nextElem(v []byte, i int) (elem []byte, next int) {
	j := bytes.IndexByte(v[i:], ',')
	if j < 0 {
		return trimOWS(v[i:]), -1
	}
	return trimOWS(v[i : i+j]), i + j + 1
}

// field is one header line of a parsed head, as offsets into the head so a
// parse stores no pointers and the field slice can be reused as is.
type field struct {
	line  int32 // first byte of the line (the name)
	colon int32 // index of the colon: the name is head[line:colon]
	v0    int32 // value without surrounding OWS is head[v0:v1]
	v1    int32
	end   int32 // index of the line's CR
	kind  uint8
	drop  bool // named in Connection: not forwarded
}

// Header kinds that parsing or forwarding treats specially.
const (
	kOther uint8 = iota
	kHost
	kConnection
	kUpgrade
	kContentLength
	kTransferEncoding
	kKeepAlive
	kProxyConnection
	kTE
	kTrailer
	kProxyAuthenticate
	kProxyAuthorization
	kSecKey
	kSecVersion
	kSecAccept
	kSecExtensions
	kSecProtocol
	kXForwardedFor
	kXForwardedProto
	kXForwardedHost
)

var kindNames = [...]struct {
	name string
	kind uint8
}{
	{"host", kHost},
	{"connection", kConnection},
	{"upgrade", kUpgrade},
	{"content-length", kContentLength},
	{"transfer-encoding", kTransferEncoding},
	{"keep-alive", kKeepAlive},
	{"proxy-connection", kProxyConnection},
	{"te", kTE},
	{"trailer", kTrailer},
	{"proxy-authenticate", kProxyAuthenticate},
	{"proxy-authorization", kProxyAuthorization},
	{"sec-websocket-key", kSecKey},
	{"sec-websocket-version", kSecVersion},
	{"sec-websocket-accept", kSecAccept},
	{"sec-websocket-extensions", kSecExtensions},
	{"sec-websocket-protocol", kSecProtocol},
	{"x-forwarded-for", kXForwardedFor},
	{"x-forwarded-proto", kXForwardedProto},
	{"x-forwarded-host", kXForwardedHost},
}

// kindsByLen holds kindNames by name length: a header name is compared
// only with the known names of its length, at most three.
var kindsByLen = func() (t [len("sec-websocket-extensions") + 1][]uint8) {
	for i, kn := range kindNames {
		t[len(kn.name)] = append(t[len(kn.name)], uint8(i))
	}
	return t
}()

func kindOf(name []byte) uint8 {
	if len(name) >= len(kindsByLen) {
		return kOther
	}
	for _, i := range kindsByLen[len(name)] {
		if equalLower(name, kindNames[i].name) {
			return kindNames[i].kind
		}
	}
	return kOther
}

// hopByHop reports the kinds never forwarded as received (RFC 9110 7.6.1,
// RFC 7230 6.1): they describe the client's connection to wsgate, not the
// request. Upgrade and Connection are written anew for the backend hop.
func hopByHop(k uint8) bool {
	switch k {
	case kConnection, kUpgrade, kKeepAlive, kProxyConnection, kTE, kTrailer,
		kTransferEncoding, kProxyAuthenticate, kProxyAuthorization:
		return true
	}
	return false
}

// lines walks the lines of a head that HeadEnd delimited. Each line must end
// in CRLF and a bare LF is an error here, because another parser could split
// the same bytes into different lines; a CR inside a line is left to the
// byte checks of whatever parses the line, none of which admits it.
type lines struct {
	head []byte
	pos  int
}

// next returns the next line's start and the index of its CR. more is false
// at the blank line that ends the head, and when bad is set: the line is
// malformed or the head does not end with that blank line.
func (l *lines) next() (start, end int, more bool, bad string) {
	start = l.pos
	i := bytes.IndexByte(l.head[start:], '\n')
	if i < 0 {
		return start, start, false, "incomplete head"
	}
	i += start
	if i == start || l.head[i-1] != '\r' {
		return start, start, false, "bare LF line ending"
	}
	end = i - 1
	l.pos = i + 1
	if end == start {
		if l.pos != len(l.head) {
			return start, end, false, "data after head"
		}
		return start, end, false, ""
	}
	return start, end, true, ""
}

// parseField validates one header line and records it. The rules reject what
// different parsers read differently: leading whitespace (obs-fold, which
// some parsers join to the previous line), whitespace or any non-token byte
// before the colon (which some parsers trim), and control bytes in the value.
func parseField(head []byte, start, end int) (f field, bad string) {
	if isOWS(head[start]) {
		return f, "obs-fold"
	}
	colon := bytes.IndexByte(head[start:end], ':')
	if colon < 0 {
		return f, "header line without colon"
	}
	colon += start
	if colon == start {
		return f, "empty header name"
	}
	if isOWS(head[colon-1]) {
		return f, "whitespace before colon"
	}
	if !isToken(head[start:colon]) {
		return f, "invalid header name"
	}
	for _, c := range head[colon+1 : end] {
		if class[c]&cValue == 0 {
			return f, "invalid byte in header value"
		}
	}
	v0, v1 := colon+1, end
	for v0 < v1 && isOWS(head[v0]) {
		v0++
	}
	for v1 > v0 && isOWS(head[v1-1]) {
		v1--
	}
	return field{
		line:  int32(start),
		colon: int32(colon),
		v0:    int32(v0),
		v1:    int32(v1),
		end:   int32(end),
		kind:  kindOf(head[start:colon]),
	}, ""
}

// containsToken reports whether the comma list v has an element equal to tok
// (lower case) ignoring case, and whether every element is a token.
func containsToken(v []byte, tok string) (found, valid bool) {
	for i := 0; i >= 0; {
		var e []byte
		e, i = nextElem(v, i)
		if len(e) == 0 {
			continue
		}
		if !isToken(e) {
			return found, false
		}
		if equalLower(e, tok) {
			found = true
		}
	}
	return found, true
}

// upgradeHasWebSocket is containsToken for the Upgrade grammar, whose elements
// are protocol-name ["/" protocol-version].
func upgradeHasWebSocket(v []byte) (found, valid bool) {
	for i := 0; i >= 0; {
		var e []byte
		e, i = nextElem(v, i)
		if len(e) == 0 {
			continue
		}
		name, version, slash := e, []byte(nil), false
		if j := bytes.IndexByte(e, '/'); j >= 0 {
			name, version, slash = e[:j], e[j+1:], true
		}
		if !isToken(name) || slash && !isToken(version) {
			return found, false
		}
		if !slash && equalLower(name, "websocket") {
			found = true
		}
	}
	return found, true
}
