package handshake

import (
	"errors"
	"strings"
	"testing"
)

// head joins a start line and header lines into a head with CRLF endings.
func head(start string, headers ...string) string {
	var b strings.Builder
	b.WriteString(start)
	b.WriteString("\r\n")
	for _, h := range headers {
		b.WriteString(h)
		b.WriteString("\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

const testKey = "dGhlIHNhbXBsZSBub25jZQ==" // RFC 6455 1.3's example key

// wsHeaders are the four headers of a minimal valid upgrade besides Host.
var wsHeaders = []string{
	"Upgrade: websocket",
	"Connection: Upgrade",
	"Sec-WebSocket-Version: 13",
	"Sec-WebSocket-Key: " + testKey,
}

func minimal(extra ...string) string {
	return head("GET /ws HTTP/1.1", append(append([]string{"Host: example.com"}, wsHeaders...), extra...)...)
}

// without returns minimal's headers with those named (prefix match) removed
// and extra appended.
func without(names []string, extra ...string) string {
	var hs []string
	for _, h := range append(append([]string{"Host: example.com"}, wsHeaders...), extra...) {
		keep := true
		for _, n := range names {
			if strings.HasPrefix(h, n+":") {
				keep = false
			}
		}
		if keep {
			hs = append(hs, h)
		}
	}
	return head("GET /ws HTTP/1.1", hs...)
}

// chromeRequest is what Chrome 120 sends for new WebSocket(url, ["chat", "superchat"]).
var chromeRequest = head("GET /chat?room=1&v=2 HTTP/1.1",
	"Host: example.com:8443",
	"Connection: Upgrade",
	"Pragma: no-cache",
	"Cache-Control: no-cache",
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
	"Upgrade: websocket",
	"Origin: https://example.com",
	"Sec-WebSocket-Version: 13",
	"Accept-Encoding: gzip, deflate, br",
	"Accept-Language: en-US,en;q=0.9",
	"Cookie: session=abc123; theme=dark; _ga=GA1.2.3.4",
	"Sec-WebSocket-Key: "+testKey,
	"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
	"Sec-WebSocket-Protocol: chat, superchat",
)

// firefoxRequest is what Firefox 121 sends.
var firefoxRequest = head("GET /socket HTTP/1.1",
	"Host: app.example.org",
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
	"Accept: */*",
	"Accept-Language: en-US,en;q=0.5",
	"Accept-Encoding: gzip, deflate, br",
	"Sec-WebSocket-Version: 13",
	"Origin: https://app.example.org",
	"Sec-WebSocket-Extensions: permessage-deflate",
	"Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==",
	"Connection: keep-alive, Upgrade",
	"Cookie: id=42",
	"Sec-Fetch-Dest: empty",
	"Sec-Fetch-Mode: websocket",
	"Sec-Fetch-Site: same-origin",
	"Pragma: no-cache",
	"Cache-Control: no-cache",
	"Upgrade: websocket",
)

func TestHeadEnd(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{"", -1},
		{"GET / HTTP/1.1\r\n", -1},
		{"GET / HTTP/1.1\r\nHost: a\r\n", -1},
		{"GET / HTTP/1.1\r\nHost: a\r\n\r", -1},
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 27},
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\nrest", 27},
		{"GET / HTTP/1.1\r\n\r\n", 18},
		// Bare LF ends the head too, so the parser can refuse it at once.
		{"GET / HTTP/1.1\nHost: a\n\n", 24},
		{"GET / HTTP/1.1\r\nHost: a\r\n\n", 26},
		{"GET / HTTP/1.1\r\nHost: a\n\r\n", 26},
		{"\r\n", 2},
		{"\n", 1},
		// A CR alone is not a line ending.
		{"GET / HTTP/1.1\r\r\r\r", -1},
		{"a\r\nb\r\r\n", -1},
	}
	for _, tt := range tests {
		if got := HeadEnd([]byte(tt.in)); got != tt.want {
			t.Errorf("HeadEnd(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

// The head arrives in pieces; HeadEnd must see it complete only once the
// blank line is all there, wherever the cut falls.
func TestHeadEndSplit(t *testing.T) {
	for _, in := range []string{chromeRequest, firefoxRequest, minimal()} {
		full := []byte(in + "\x81\x05hello")
		want := len(in)
		for i := 0; i <= len(full); i++ {
			got := HeadEnd(full[:i])
			if i < want && got != -1 {
				t.Fatalf("prefix %d: HeadEnd = %d, want -1", i, got)
			}
			if i >= want && got != want {
				t.Fatalf("prefix %d: HeadEnd = %d, want %d", i, got, want)
			}
		}
	}
}

func mustParse(t *testing.T, in string) *Request {
	t.Helper()
	var r Request
	if err := ParseRequest([]byte(in), &r); err != nil {
		t.Fatalf("ParseRequest(%q): %v", in, err)
	}
	return &r
}

func TestParseRequestValid(t *testing.T) {
	tests := []struct {
		name                                string
		in                                  string
		target, path, query, host, hostname string
		key                                 string
	}{
		{"minimal", minimal(), "/ws", "/ws", "", "example.com", "example.com", testKey},
		{"chrome", chromeRequest, "/chat?room=1&v=2", "/chat", "room=1&v=2", "example.com:8443", "example.com", testKey},
		{"firefox", firefoxRequest, "/socket", "/socket", "", "app.example.org", "app.example.org", "x3JJHMbDL1EzLkh9GBhXDw=="},
		{"root", strings.Replace(minimal(), "/ws", "/", 1), "/", "/", "", "example.com", "example.com", testKey},
		{"empty query", strings.Replace(minimal(), "/ws", "/ws?", 1), "/ws?", "/ws", "", "example.com", "example.com", testKey},
		{"ipv6 host", strings.Replace(minimal(), "example.com", "[2001:db8::1]:8080", 1), "/ws", "/ws", "", "[2001:db8::1]:8080", "2001:db8::1", testKey},
		{"ipv4 host", strings.Replace(minimal(), "example.com", "10.0.0.1", 1), "/ws", "/ws", "", "10.0.0.1", "10.0.0.1", testKey},
		{"browser-raw path bytes", strings.Replace(minimal(), "/ws", "/a|b^c[d]/%2F%41/...x/.../~user?q={x}|`\\", 1),
			"/a|b^c[d]/%2F%41/...x/.../~user?q={x}|`\\", "/a|b^c[d]/%2F%41/...x/.../~user", "q={x}|`\\", "example.com", "example.com", testKey},
		{"dot inside segments", strings.Replace(minimal(), "/ws", "/a./.b/a.b/..c", 1), "/a./.b/a.b/..c", "/a./.b/a.b/..c", "", "example.com", "example.com", testKey},
		{"query may hold dots and bad escapes", strings.Replace(minimal(), "/ws", "/ws?p=../x&d=100%", 1), "/ws?p=../x&d=100%", "/ws", "p=../x&d=100%", "example.com", "example.com", testKey},
		{"OWS around values", head("GET /ws HTTP/1.1", "Host: \t example.com \t", "Upgrade:websocket", "Connection:   Upgrade   ", "Sec-WebSocket-Version:13", "Sec-WebSocket-Key:\t"+testKey+"\t"),
			"/ws", "/ws", "", "example.com", "example.com", testKey},
		{"case-insensitive names and tokens", head("GET /ws HTTP/1.1", "HOST: example.com", "upgrade: WebSocket", "connection: UPGRADE", "sec-websocket-version: 13", "SEC-WEBSOCKET-KEY: "+testKey),
			"/ws", "/ws", "", "example.com", "example.com", testKey},
		{"token lists", head("GET /ws HTTP/1.1", "Host: example.com", "Upgrade: h2c, websocket", "Upgrade: foo/2", "Connection: keep-alive,, Upgrade ,", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: "+testKey),
			"/ws", "/ws", "", "example.com", "example.com", testKey},
		{"split Connection", head("GET /ws HTTP/1.1", "Host: example.com", "Connection: keep-alive", "Upgrade: websocket", "Connection: upgrade", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: "+testKey),
			"/ws", "/ws", "", "example.com", "example.com", testKey},
		{"Content-Length 0", minimal("Content-Length: 0"), "/ws", "/ws", "", "example.com", "example.com", testKey},
		{"obs-text in value", minimal("X-Name: caf\xc3\xa9"), "/ws", "/ws", "", "example.com", "example.com", testKey},
		{"non-canonical key bits", strings.Replace(minimal(), testKey, "dGhlIHNhbXBsZSBub25jZR==", 1), "/ws", "/ws", "", "example.com", "example.com", "dGhlIHNhbXBsZSBub25jZR=="},
		{"underscore host and port 0", strings.Replace(minimal(), "example.com", "my_host.local:0", 1), "/ws", "/ws", "", "my_host.local:0", "my_host.local", testKey},
		{"MaxHeaders fields", minimal(manyHeaders(MaxHeaders - 5)...), "/ws", "/ws", "", "example.com", "example.com", testKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustParse(t, tt.in)
			check := func(what string, got []byte, want string) {
				t.Helper()
				if string(got) != want {
					t.Errorf("%s = %q, want %q", what, got, want)
				}
			}
			check("Method", r.Method, "GET")
			check("Target", r.Target, tt.target)
			check("Path", r.Path, tt.path)
			check("Query", r.Query, tt.query)
			check("Host", r.Host, tt.host)
			check("Hostname", r.Hostname(), tt.hostname)
			check("Key", r.Key, tt.key)
			check("Head", r.Head, tt.in)
		})
	}
}

func manyHeaders(n int) []string {
	hs := make([]string, n)
	for i := range hs {
		hs[i] = "X-H: v"
	}
	return hs
}

func TestParseRequestQueryNil(t *testing.T) {
	r := mustParse(t, minimal())
	if r.Query != nil {
		t.Errorf("Query = %q, want nil", r.Query)
	}
}

func TestParseRequestReject(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		status int
		reason string
	}{
		// Line structure.
		{"bare LF everywhere", strings.ReplaceAll(minimal(), "\r\n", "\n"), 400, "bare LF line ending"},
		{"bare LF in one header", strings.Replace(minimal(), "Upgrade: websocket\r\n", "Upgrade: websocket\n", 1), 400, "bare LF line ending"},
		{"bare LF at end", strings.TrimSuffix(minimal(), "\r\n") + "\n", 400, "bare LF line ending"},
		{"CR inside value", minimal("X-A: a\rb"), 400, "invalid byte in header value"},
		{"CR inside request line", strings.Replace(minimal(), "/ws", "/w\rs", 1), 400, "invalid byte in path"},
		{"incomplete", strings.TrimSuffix(minimal(), "\r\n"), 400, "incomplete head"},
		{"data after head", minimal() + "x", 400, "data after head"},
		{"empty request line", "\r\n", 400, "empty request line"},
		{"leading CRLF", "\r\n" + minimal(), 400, "empty request line"},

		// Request line.
		{"method POST", strings.Replace(minimal(), "GET", "POST", 1), 400, "method must be GET"},
		{"method lower-case", strings.Replace(minimal(), "GET", "get", 1), 400, "method must be GET"},
		{"method CONNECT", head("CONNECT example.com:443 HTTP/1.1", "Host: example.com:443"), 400, "method must be GET"},
		{"method not a token", strings.Replace(minimal(), "GET", "G(T", 1), 400, "malformed request line"},
		{"double space", strings.Replace(minimal(), "GET /ws", "GET  /ws", 1), 400, "malformed request line"},
		{"tab separator", strings.Replace(minimal(), "GET /ws", "GET\t/ws", 1), 400, "malformed request line"},
		{"leading space", " " + minimal(), 400, "malformed request line"},
		{"trailing space", strings.Replace(minimal(), "HTTP/1.1\r\n", "HTTP/1.1 \r\n", 1), 400, "malformed request line"},
		{"two fields", strings.Replace(minimal(), "GET /ws HTTP/1.1", "GET /ws", 1), 400, "malformed request line"},
		{"HTTP/1.0", strings.Replace(minimal(), "HTTP/1.1", "HTTP/1.0", 1), 400, "HTTP version not 1.1"},
		{"HTTP/2.0", strings.Replace(minimal(), "HTTP/1.1", "HTTP/2.0", 1), 400, "HTTP version not 1.1"},
		{"lower-case version", strings.Replace(minimal(), "HTTP/1.1", "http/1.1", 1), 400, "malformed request line"},
		{"HTTP/1.10", strings.Replace(minimal(), "HTTP/1.1", "HTTP/1.10", 1), 400, "malformed request line"},

		// Request-target.
		{"absolute-form", strings.Replace(minimal(), "/ws", "http://example.com/ws", 1), 400, "request-target not origin-form"},
		{"ws absolute-form", strings.Replace(minimal(), "/ws", "ws://example.com/ws", 1), 400, "request-target not origin-form"},
		{"asterisk-form", strings.Replace(minimal(), "/ws", "*", 1), 400, "request-target not origin-form"},
		{"authority-form", strings.Replace(minimal(), "/ws", "example.com:80", 1), 400, "request-target not origin-form"},
		{"fragment", strings.Replace(minimal(), "/ws", "/ws#frag", 1), 400, "invalid byte in path"},
		{"fragment in query", strings.Replace(minimal(), "/ws", "/ws?a#frag", 1), 400, "invalid byte in query"},
		{"NUL in path", strings.Replace(minimal(), "/ws", "/w\x00s", 1), 400, "invalid byte in path"},
		{"non-ASCII in path", strings.Replace(minimal(), "/ws", "/caf\xc3\xa9", 1), 400, "invalid byte in path"},
		{"DEL in query", strings.Replace(minimal(), "/ws", "/ws?\x7f", 1), 400, "invalid byte in query"},
		{"bad escape", strings.Replace(minimal(), "/ws", "/w%zz", 1), 400, "invalid percent-encoding in path"},
		{"short escape", strings.Replace(minimal(), "/ws", "/w%4", 1), 400, "invalid percent-encoding in path"},
		{"escape at end", strings.Replace(minimal(), "/ws", "/w%", 1), 400, "invalid percent-encoding in path"},
		{"escape before query", strings.Replace(minimal(), "/ws", "/w%4?x", 1), 400, "invalid percent-encoding in path"},
		{"backslash", strings.Replace(minimal(), "/ws", "/a\\..\\admin", 1), 400, "backslash in path"},
		{"dot segment", strings.Replace(minimal(), "/ws", "/a/./b", 1), 400, "dot-segment in path"},
		{"dot-dot segment", strings.Replace(minimal(), "/ws", "/public/../admin", 1), 400, "dot-segment in path"},
		{"trailing dot-dot", strings.Replace(minimal(), "/ws", "/a/..", 1), 400, "dot-segment in path"},
		{"trailing dot-dot before query", strings.Replace(minimal(), "/ws", "/a/..?x", 1), 400, "dot-segment in path"},
		{"leading dot", strings.Replace(minimal(), "/ws", "/.", 1), 400, "dot-segment in path"},
		{"encoded dot-dot", strings.Replace(minimal(), "/ws", "/a/%2e%2E/b", 1), 400, "dot-segment in path"},
		{"half-encoded dot-dot", strings.Replace(minimal(), "/ws", "/a/.%2e/b", 1), 400, "dot-segment in path"},
		{"encoded dot", strings.Replace(minimal(), "/ws", "/a/%2E/b", 1), 400, "dot-segment in path"},

		// Header lines.
		{"obs-fold", minimal("X-A: a", " folded"), 400, "obs-fold"},
		{"obs-fold tab", minimal("X-A: a", "\tfolded"), 400, "obs-fold"},
		{"space before colon", minimal("X-A : a"), 400, "whitespace before colon"},
		{"space before colon on Host", strings.Replace(minimal(), "Host:", "Host :", 1), 400, "whitespace before colon"},
		{"tab before colon", minimal("X-A\t: a"), 400, "whitespace before colon"},
		{"no colon", minimal("X-A a"), 400, "header line without colon"},
		{"empty name", minimal(": a"), 400, "empty header name"},
		{"space in name", minimal("X A: a"), 400, "invalid header name"},
		{"non-token name", minimal("X@A: a"), 400, "invalid header name"},
		{"non-ASCII name", minimal("X\xc3\xa9: a"), 400, "invalid header name"},
		{"NUL in value", minimal("X-A: a\x00b"), 400, "invalid byte in header value"},
		{"DEL in value", minimal("X-A: a\x7f"), 400, "invalid byte in header value"},
		{"control in value", minimal("X-A: a\x01"), 400, "invalid byte in header value"},
		{"too many headers", minimal(manyHeaders(MaxHeaders - 4)...), 431, "too many header fields"},

		// Framing.
		{"Content-Length 5", minimal("Content-Length: 5"), 400, "request body not allowed"},
		{"Content-Length 00", minimal("Content-Length: 00"), 400, "request body not allowed"},
		{"Content-Length list", minimal("Content-Length: 0, 0"), 400, "request body not allowed"},
		{"Content-Length twice", minimal("Content-Length: 0", "Content-Length: 0"), 400, "duplicate Content-Length"},
		{"Content-Length empty", minimal("Content-Length:"), 400, "request body not allowed"},
		{"Transfer-Encoding chunked", minimal("Transfer-Encoding: chunked"), 400, "Transfer-Encoding not allowed"},
		{"Transfer-Encoding identity", minimal("Transfer-Encoding: identity"), 400, "Transfer-Encoding not allowed"},
		{"Transfer-Encoding with CL 0", minimal("Content-Length: 0", "transfer-encoding: chunked"), 400, "Transfer-Encoding not allowed"},

		// Host.
		{"missing Host", without([]string{"Host"}), 400, "missing Host"},
		{"duplicate Host", minimal("Host: example.com"), 400, "duplicate Host"},
		{"duplicate Host other value", minimal("host: evil.com"), 400, "duplicate Host"},
		{"empty Host", strings.Replace(minimal(), "Host: example.com", "Host: ", 1), 400, "invalid Host"},
		{"Host with userinfo", strings.Replace(minimal(), "example.com", "user@example.com", 1), 400, "invalid Host"},
		{"Host with path", strings.Replace(minimal(), "example.com", "example.com/x", 1), 400, "invalid Host"},
		{"Host with space", strings.Replace(minimal(), "example.com", "example.com evil.com", 1), 400, "invalid Host"},
		{"Host list", strings.Replace(minimal(), "example.com", "a.com,b.com", 1), 400, "invalid Host"},
		{"Host empty port", strings.Replace(minimal(), "example.com", "example.com:", 1), 400, "invalid Host"},
		{"Host big port", strings.Replace(minimal(), "example.com", "example.com:65536", 1), 400, "invalid Host"},
		{"Host long port", strings.Replace(minimal(), "example.com", "example.com:000080", 1), 400, "invalid Host"},
		{"Host bad port", strings.Replace(minimal(), "example.com", "example.com:8a", 1), 400, "invalid Host"},
		{"Host percent", strings.Replace(minimal(), "example.com", "ex%61mple.com", 1), 400, "invalid Host"},
		{"Host unclosed IPv6", strings.Replace(minimal(), "example.com", "[::1", 1), 400, "invalid Host"},
		{"Host empty IPv6", strings.Replace(minimal(), "example.com", "[]", 1), 400, "invalid Host"},
		{"Host IPv6 zone", strings.Replace(minimal(), "example.com", "[fe80::1%25eth0]", 1), 400, "invalid Host"},
		{"Host IPv6 junk after", strings.Replace(minimal(), "example.com", "[::1]x", 1), 400, "invalid Host"},
		{"Host non-ASCII", strings.Replace(minimal(), "example.com", "ex\xc3\xa4mple.com", 1), 400, "invalid Host"},

		// Upgrade and Connection.
		{"plain GET", head("GET / HTTP/1.1", "Host: example.com"), 400, "not a WebSocket upgrade"},
		{"missing Upgrade", without([]string{"Upgrade"}), 400, "not a WebSocket upgrade"},
		{"Upgrade h2c", strings.Replace(minimal(), "Upgrade: websocket", "Upgrade: h2c", 1), 400, "not a WebSocket upgrade"},
		{"Upgrade websocket/13", strings.Replace(minimal(), "Upgrade: websocket", "Upgrade: websocket/13", 1), 400, "not a WebSocket upgrade"},
		{"Upgrade substring", strings.Replace(minimal(), "Upgrade: websocket", "Upgrade: websockets", 1), 400, "not a WebSocket upgrade"},
		{"Upgrade malformed", strings.Replace(minimal(), "Upgrade: websocket", "Upgrade: websocket, \"x\"", 1), 400, "malformed Upgrade"},
		{"Upgrade empty version", strings.Replace(minimal(), "Upgrade: websocket", "Upgrade: websocket/", 1), 400, "malformed Upgrade"},
		{"missing Connection", without([]string{"Connection"}), 400, "Connection lacks upgrade"},
		{"Connection keep-alive", strings.Replace(minimal(), "Connection: Upgrade", "Connection: keep-alive", 1), 400, "Connection lacks upgrade"},
		{"Connection substring", strings.Replace(minimal(), "Connection: Upgrade", "Connection: upgrader", 1), 400, "Connection lacks upgrade"},
		{"Connection malformed", strings.Replace(minimal(), "Connection: Upgrade", "Connection: Upgrade, a b", 1), 400, "malformed Connection"},
		{"Connection names Host", strings.Replace(minimal(), "Connection: Upgrade", "Connection: Upgrade, Host", 1), 400, "Connection names a required header"},
		{"Connection names key", strings.Replace(minimal(), "Connection: Upgrade", "Connection: Upgrade, sec-websocket-key", 1), 400, "Connection names a required header"},
		{"Connection names version", strings.Replace(minimal(), "Connection: Upgrade", "Connection: Upgrade, Sec-WebSocket-Version", 1), 400, "Connection names a required header"},

		// Version.
		{"missing version", without([]string{"Sec-WebSocket-Version"}), 426, "unsupported Sec-WebSocket-Version"},
		{"version 8", strings.Replace(minimal(), "Version: 13", "Version: 8", 1), 426, "unsupported Sec-WebSocket-Version"},
		{"version list", strings.Replace(minimal(), "Version: 13", "Version: 13, 8", 1), 426, "unsupported Sec-WebSocket-Version"},
		{"version 013", strings.Replace(minimal(), "Version: 13", "Version: 013", 1), 426, "unsupported Sec-WebSocket-Version"},
		{"version twice", minimal("Sec-WebSocket-Version: 13"), 400, "duplicate Sec-WebSocket-Version"},

		// Key.
		{"missing key", without([]string{"Sec-WebSocket-Key"}), 400, "missing Sec-WebSocket-Key"},
		{"key twice", minimal("Sec-WebSocket-Key: " + testKey), 400, "duplicate Sec-WebSocket-Key"},
		{"key short", strings.Replace(minimal(), testKey, "dGhlIHNhbXBsZQ==", 1), 400, "invalid Sec-WebSocket-Key"},
		{"key no padding", strings.Replace(minimal(), testKey, "dGhlIHNhbXBsZSBub25jZQAA", 1), 400, "invalid Sec-WebSocket-Key"},
		{"key url alphabet", strings.Replace(minimal(), testKey, "dGhlIHNhbXBsZSBub25jZ-==", 1), 400, "invalid Sec-WebSocket-Key"},
		{"key 17 bytes", strings.Replace(minimal(), testKey, "dGhlIHNhbXBsZSBub25jZQE=", 1), 400, "invalid Sec-WebSocket-Key"},
		{"key empty", strings.Replace(minimal(), testKey, "", 1), 400, "invalid Sec-WebSocket-Key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Request
			err := ParseRequest([]byte(tt.in), &r)
			var rej *Reject
			if !errors.As(err, &rej) {
				t.Fatalf("ParseRequest(%q) = %v, want *Reject %d", tt.in, err, tt.status)
			}
			if rej.Status != tt.status || rej.Reason != tt.reason {
				t.Errorf("ParseRequest(%q) = %d %q, want %d %q", tt.in, rej.Status, rej.Reason, tt.status, tt.reason)
			}
		})
	}
}

func TestRequestHeaderAccess(t *testing.T) {
	r := mustParse(t, chromeRequest)
	if got := string(r.Header("cookie")); got != "session=abc123; theme=dark; _ga=GA1.2.3.4" {
		t.Errorf("Header(cookie) = %q", got)
	}
	if got := string(r.Header("SEC-WEBSOCKET-PROTOCOL")); got != "chat, superchat" {
		t.Errorf("Header(SEC-WEBSOCKET-PROTOCOL) = %q", got)
	}
	if got := r.Header("X-Missing"); got != nil {
		t.Errorf("Header(X-Missing) = %q, want nil", got)
	}
	if r.NumHeaders() != 14 {
		t.Errorf("NumHeaders = %d, want 14", r.NumHeaders())
	}
	var names []string
	r.VisitHeaders(func(name, value []byte) bool {
		names = append(names, string(name))
		return len(names) < 3
	})
	if strings.Join(names, ",") != "Host,Connection,Pragma" {
		t.Errorf("VisitHeaders stopped wrongly or out of order: %v", names)
	}
}

// A Request parsed into again must show only the second request.
func TestParseRequestReuse(t *testing.T) {
	var r Request
	if err := r.Parse([]byte(chromeRequest)); err != nil {
		t.Fatal(err)
	}
	if err := r.Parse([]byte(minimal())); err != nil {
		t.Fatal(err)
	}
	if r.Query != nil || r.Header("Cookie") != nil || r.NumHeaders() != 5 {
		t.Errorf("state from the previous parse leaked: query %q, headers %d", r.Query, r.NumHeaders())
	}
	if err := r.Parse([]byte("garbage\r\n\r\n")); err == nil {
		t.Fatal("garbage accepted")
	}
	if err := r.Parse([]byte(firefoxRequest)); err != nil {
		t.Fatal(err)
	}
	if string(r.Path) != "/socket" {
		t.Errorf("Path = %q", r.Path)
	}
}
