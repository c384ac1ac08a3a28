package handshake

import (
	"bufio"
	"bytes"
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

var testFI = ForwardInfo{ClientIP: netip.MustParseAddr("203.0.113.7"), Proto: "https"}

func upstream(t *testing.T, in string, fi ForwardInfo) string {
	t.Helper()
	r := mustParse(t, in)
	return string(AppendUpstreamRequest(nil, r, fi))
}

func TestAppendUpstreamRequestChrome(t *testing.T) {
	want := head("GET /chat?room=1&v=2 HTTP/1.1",
		"Host: example.com:8443",
		"Pragma: no-cache",
		"Cache-Control: no-cache",
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
		"Origin: https://example.com",
		"Sec-WebSocket-Version: 13",
		"Accept-Encoding: gzip, deflate, br",
		"Accept-Language: en-US,en;q=0.9",
		"Cookie: session=abc123; theme=dark; _ga=GA1.2.3.4",
		"Sec-WebSocket-Key: "+testKey,
		"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
		"Sec-WebSocket-Protocol: chat, superchat",
		"Upgrade: websocket",
		"Connection: Upgrade",
		"X-Forwarded-For: 203.0.113.7",
		"X-Forwarded-Proto: https",
		"X-Forwarded-Host: example.com:8443",
	)
	if got := upstream(t, chromeRequest, testFI); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestAppendUpstreamRequest(t *testing.T) {
	const tail = "Upgrade: websocket\r\nConnection: Upgrade\r\n"
	base := []string{"Host: example.com", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: " + testKey}
	// keep is what is copied of base.
	keep := "GET /ws HTTP/1.1\r\nHost: example.com\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + testKey + "\r\n"
	tests := []struct {
		name  string
		in    string
		fi    ForwardInfo
		want  string
		notIn []string
	}{
		{
			name: "minimal",
			in:   head("GET /ws HTTP/1.1", base...),
			fi:   testFI,
			want: keep + tail + "X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: example.com\r\n\r\n",
		},
		{
			name: "hop-by-hop removed, end-to-end kept in order",
			in: head("GET /ws HTTP/1.1", append(base,
				"Keep-Alive: timeout=5",
				"X-A: 1",
				"Proxy-Connection: keep-alive",
				"TE: trailers",
				"X-B: 2",
				"Trailer: X-T",
				"Proxy-Authorization: Basic Zm9vOmJhcg==",
				"Proxy-Authenticate: Basic",
				"X-A: 3",
				"Authorization: Bearer tok",
				"upgrade: websocket",
				"Content-Length: 0",
			)...),
			fi:    testFI,
			want:  keep + "X-A: 1\r\nX-B: 2\r\nX-A: 3\r\nAuthorization: Bearer tok\r\nContent-Length: 0\r\n" + tail + "X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: example.com\r\n\r\n",
			notIn: []string{"Keep-Alive", "Proxy-", "TE:", "Trailer", "upgrade:"},
		},
		{
			name: "headers named in Connection removed",
			in: head("GET /ws HTTP/1.1", "Host: example.com", "Upgrade: websocket",
				"Connection: Upgrade, X-Secret, x-forwarded-for", "X-Secret: s", "X-Other: o",
				"Connection: keep-alive, COOKIE", "Cookie: a=b", "X-Forwarded-For: 1.1.1.1",
				"Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: "+testKey, "x-secret: again"),
			fi: testFI,
			want: "GET /ws HTTP/1.1\r\nHost: example.com\r\nX-Other: o\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + testKey + "\r\n" +
				tail + "X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: example.com\r\n\r\n",
		},
		{
			name: "X-Forwarded-For appended to the client's, merged",
			in:   head("GET /ws HTTP/1.1", append(base, "X-Forwarded-For: 192.0.2.1", "X-A: 1", "x-forwarded-for:  198.51.100.2, 192.0.2.9 ")...),
			fi:   testFI,
			want: keep + "X-A: 1\r\n" + tail + "X-Forwarded-For: 192.0.2.1, 198.51.100.2, 192.0.2.9, 203.0.113.7\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: example.com\r\n\r\n",
		},
		{
			name: "empty client X-Forwarded-For skipped",
			in:   head("GET /ws HTTP/1.1", append(base, "X-Forwarded-For:", "X-Forwarded-For: 192.0.2.1")...),
			fi:   testFI,
			want: keep + tail + "X-Forwarded-For: 192.0.2.1, 203.0.113.7\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: example.com\r\n\r\n",
		},
		{
			name: "spoofed proto and host replaced",
			in:   head("GET /ws HTTP/1.1", append(base, "X-Forwarded-Proto: https", "X-Forwarded-Host: admin.internal", "X-Forwarded-Host: other")...),
			fi:   ForwardInfo{ClientIP: netip.MustParseAddr("203.0.113.7"), Proto: "http"},
			want: keep + tail + "X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: example.com\r\n\r\n",
		},
		{
			name: "no proto: client's dropped, none sent",
			in:   head("GET /ws HTTP/1.1", append(base, "X-Forwarded-Proto: https")...),
			fi:   ForwardInfo{ClientIP: netip.MustParseAddr("203.0.113.7")},
			want: keep + tail + "X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Host: example.com\r\n\r\n",
		},
		{
			name: "proto that would inject is not sent",
			in:   head("GET /ws HTTP/1.1", base...),
			fi:   ForwardInfo{ClientIP: netip.MustParseAddr("203.0.113.7"), Proto: "https\r\nX-Admin: 1"},
			want: keep + tail + "X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Host: example.com\r\n\r\n",
		},
		{
			name: "IPv6 client",
			in:   head("GET /ws HTTP/1.1", base...),
			fi:   ForwardInfo{ClientIP: netip.MustParseAddr("2001:db8::7"), Proto: "https"},
			want: keep + tail + "X-Forwarded-For: 2001:db8::7\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: example.com\r\n\r\n",
		},
		{
			name: "IPv4-mapped client written as IPv4, zone dropped",
			in:   head("GET /ws HTTP/1.1", append(base, "X-Forwarded-For: 192.0.2.1")...),
			fi:   ForwardInfo{ClientIP: netip.MustParseAddr("::ffff:203.0.113.7"), Proto: "https"},
			want: keep + tail + "X-Forwarded-For: 192.0.2.1, 203.0.113.7\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: example.com\r\n\r\n",
		},
		{
			name: "zone dropped",
			in:   head("GET /ws HTTP/1.1", base...),
			fi:   ForwardInfo{ClientIP: netip.MustParseAddr("fe80::1%eth0"), Proto: "https"},
			want: keep + tail + "X-Forwarded-For: fe80::1\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: example.com\r\n\r\n",
		},
		{
			name: "no client IP keeps the client's list",
			in:   head("GET /ws HTTP/1.1", append(base, "X-Forwarded-For: 192.0.2.1")...),
			fi:   ForwardInfo{Proto: "https"},
			want: keep + tail + "X-Forwarded-For: 192.0.2.1\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: example.com\r\n\r\n",
		},
		{
			name: "no client IP and no list: no header",
			in:   head("GET /ws HTTP/1.1", base...),
			fi:   ForwardInfo{Proto: "https"},
			want: keep + tail + "X-Forwarded-Proto: https\r\nX-Forwarded-Host: example.com\r\n\r\n",
		},
		{
			name: "values copied byte for byte, OWS included",
			in: head("GET /ws HTTP/1.1", append(base,
				"Sec-WebSocket-Protocol:  chat ,superchat\t",
				"Sec-WebSocket-Extensions: permessage-deflate;client_max_window_bits, x-webkit-deflate-frame",
				"Cookie:a=\"b c\";  d=e",
				"Origin: null",
				"X-Forwarded-Port: 1",
				"Forwarded: for=192.0.2.60;proto=http",
			)...),
			fi: testFI,
			want: keep + "Sec-WebSocket-Protocol:  chat ,superchat\t\r\nSec-WebSocket-Extensions: permessage-deflate;client_max_window_bits, x-webkit-deflate-frame\r\nCookie:a=\"b c\";  d=e\r\nOrigin: null\r\nX-Forwarded-Port: 1\r\nForwarded: for=192.0.2.60;proto=http\r\n" +
				tail + "X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: example.com\r\n\r\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := upstream(t, tt.in, tt.fi)
			if got != tt.want {
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
			for _, s := range tt.notIn {
				if strings.Contains(got, s) {
					t.Errorf("output contains %q", s)
				}
			}
		})
	}
}

func TestAppendUpstreamRequestAppends(t *testing.T) {
	r := mustParse(t, minimal())
	dst := []byte("prefix")
	out := AppendUpstreamRequest(dst, r, testFI)
	if !bytes.HasPrefix(out, []byte("prefixGET /ws HTTP/1.1\r\n")) {
		t.Errorf("did not append: %q", out)
	}
}

func TestUpstreamRequestSize(t *testing.T) {
	for _, in := range []string{chromeRequest, firefoxRequest, minimal(), minimal("X-Forwarded-For: 1.2.3.4", "X-Forwarded-For: 5.6.7.8")} {
		r := mustParse(t, in)
		fi := ForwardInfo{ClientIP: netip.MustParseAddr("2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff"), Proto: "https"}
		if got, max := len(AppendUpstreamRequest(nil, r, fi)), UpstreamRequestSize(r, fi); got > max {
			t.Errorf("output %d bytes > bound %d", got, max)
		}
	}
}

// The backend is most likely a Go server or something equally picky: what
// wsgate writes must read back with the standard library's parser, with the
// headers wsgate meant.
func TestUpstreamRequestStdlib(t *testing.T) {
	for _, in := range []string{chromeRequest, firefoxRequest, minimal("X-Forwarded-For: 192.0.2.1", "X-Forwarded-Host: evil", "Connection: X-Drop", "X-Drop: 1")} {
		r := mustParse(t, in)
		out := AppendUpstreamRequest(nil, r, testFI)
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(out)))
		if err != nil {
			t.Fatalf("http.ReadRequest(%q): %v", out, err)
		}
		if req.Method != "GET" || req.Host != string(r.Host) || req.URL.RequestURI() != string(r.Target) {
			t.Errorf("method %q host %q uri %q", req.Method, req.Host, req.URL.RequestURI())
		}
		h := req.Header
		if h.Get("Upgrade") != "websocket" || h.Get("Connection") != "Upgrade" {
			t.Errorf("Upgrade %q Connection %q", h.Get("Upgrade"), h.Get("Connection"))
		}
		if h.Get("Sec-WebSocket-Key") != string(r.Key) || h.Get("Sec-WebSocket-Version") != "13" {
			t.Errorf("key %q version %q", h.Get("Sec-WebSocket-Key"), h.Get("Sec-WebSocket-Version"))
		}
		if v := h.Values("X-Forwarded-For"); len(v) != 1 || !strings.HasSuffix(v[0], "203.0.113.7") {
			t.Errorf("X-Forwarded-For %q", v)
		}
		if v := h.Values("X-Forwarded-Host"); len(v) != 1 || v[0] != string(r.Host) {
			t.Errorf("X-Forwarded-Host %q", v)
		}
		if v := h.Values("X-Forwarded-Proto"); len(v) != 1 || v[0] != "https" {
			t.Errorf("X-Forwarded-Proto %q", v)
		}
		if h.Get("X-Drop") != "" {
			t.Errorf("X-Drop forwarded")
		}
		if req.ContentLength != 0 || len(req.TransferEncoding) != 0 {
			t.Errorf("request has a body: %d %v", req.ContentLength, req.TransferEncoding)
		}
		for _, name := range []string{"Cookie", "Origin", "Sec-WebSocket-Extensions", "Sec-WebSocket-Protocol", "User-Agent"} {
			if got, want := h.Get(name), string(r.Header(name)); got != want {
				t.Errorf("%s = %q, want %q", name, got, want)
			}
		}
		// And it is still a valid upgrade for wsgate's own parser (a chain
		// of two wsgates must work).
		var again Request
		if err := again.Parse(out); err != nil {
			t.Errorf("re-parse: %v", err)
		}
	}
}
