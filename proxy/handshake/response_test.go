package handshake

import (
	"errors"
	"strings"
	"testing"
)

const testAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" // RFC 6455 1.3's answer to testKey

func resp101(extra ...string) string {
	return head("HTTP/1.1 101 Switching Protocols", append([]string{
		"Upgrade: websocket",
		"Connection: Upgrade",
		"Sec-WebSocket-Accept: " + testAccept,
	}, extra...)...)
}

func TestAcceptFor(t *testing.T) {
	if got := acceptFor([]byte(testKey)); string(got[:]) != testAccept {
		t.Errorf("acceptFor = %s, want %s", got, testAccept)
	}
}

func TestParseResponseValid(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		status   int
		deflate  bool
		cl       int64
		chunked  bool
		protocol string
		http10   bool
	}{
		{"101", resp101(), 101, false, -1, false, "", false},
		{"101 deflate", resp101("Sec-WebSocket-Extensions: permessage-deflate"), 101, true, -1, false, "", false},
		{"101 deflate params", resp101("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=15; server_no_context_takeover"), 101, true, -1, false, "", false},
		{"101 deflate quoted param", resp101("Sec-WebSocket-Extensions: PerMessage-Deflate; server_max_window_bits=\"10\""), 101, true, -1, false, "", false},
		{"101 empty extensions", resp101("Sec-WebSocket-Extensions:"), 101, false, -1, false, "", false},
		{"101 protocol", resp101("Sec-WebSocket-Protocol: chat"), 101, false, -1, false, "chat", false},
		{"101 lower-case tokens", head("HTTP/1.1 101 Switching Protocols", "upgrade: WebSocket", "connection: keep-alive, upgrade", "sec-websocket-accept: "+testAccept), 101, false, -1, false, "", false},
		{"101 without reason", head("HTTP/1.1 101", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Accept: "+testAccept), 101, false, -1, false, "", false},
		{"101 ignores body headers", resp101("Content-Length: 5"), 101, false, -1, false, "", false},
		{"401 with body", head("HTTP/1.1 401 Unauthorized", "Content-Type: text/plain", "Content-Length: 12", "WWW-Authenticate: Bearer"), 401, false, 12, false, "", false},
		{"404 chunked", head("HTTP/1.1 404 Not Found", "Transfer-Encoding: chunked"), 404, false, -1, true, "", false},
		{"500 CHUNKED", head("HTTP/1.1 500 Internal Server Error", "Transfer-Encoding:  CHUNKED "), 500, false, -1, true, "", false},
		{"403 no length", head("HTTP/1.1 403 Forbidden", "Content-Type: text/html"), 403, false, -1, false, "", false},
		{"HTTP/1.0 403", head("HTTP/1.0 403 Forbidden", "Content-Length: 3"), 403, false, 3, false, "", true},
		{"empty reason", head("HTTP/1.1 400 ", "Content-Length: 0"), 400, false, 0, false, "", false},
		{"reason with obs-text", head("HTTP/1.1 400 Mauvaise requ\xc3\xaate", "Content-Length: 0"), 400, false, 0, false, "", false},
		{"103 interim", head("HTTP/1.1 103 Early Hints", "Link: </style.css>; rel=preload"), 103, false, -1, false, "", false},
		{"non-101 with protocol", head("HTTP/1.1 400 Bad Request", "Sec-WebSocket-Protocol: a, b", "Content-Length: 0"), 400, false, 0, false, "", false},
		{"non-101 with unknown extension", head("HTTP/1.1 400 Bad Request", "Sec-WebSocket-Extensions: x-foo", "Content-Length: 0"), 400, false, 0, false, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Response
			if err := ParseResponse([]byte(tt.in), []byte(testKey), &r); err != nil {
				t.Fatalf("ParseResponse(%q): %v", tt.in, err)
			}
			if r.Status != tt.status || r.Deflate != tt.deflate || r.ContentLength != tt.cl || r.Chunked != tt.chunked ||
				string(r.Protocol) != tt.protocol || r.HTTP10 != tt.http10 || string(r.Head) != tt.in {
				t.Errorf("got %+v", r)
			}
			if r.Interim() != (tt.status == 103) {
				t.Errorf("Interim = %v", r.Interim())
			}
		})
	}
}

func TestParseResponseReject(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		key    string
		reason string
	}{
		{"bad accept", strings.Replace(resp101(), testAccept, "x3JJHMbDL1EzLkh9GBhXDw==", 1), testKey, "Sec-WebSocket-Accept does not match key"},
		{"accept for another key", resp101(), "x3JJHMbDL1EzLkh9GBhXDw==", "Sec-WebSocket-Accept does not match key"},
		{"accept case", strings.Replace(resp101(), testAccept, strings.ToLower(testAccept), 1), testKey, "Sec-WebSocket-Accept does not match key"},
		{"missing accept", head("HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade"), testKey, "101 needs exactly one Sec-WebSocket-Accept"},
		{"two accepts", resp101("Sec-WebSocket-Accept: " + testAccept), testKey, "101 needs exactly one Sec-WebSocket-Accept"},
		{"invalid client key", resp101(), "short", "invalid client key"},
		{"no Upgrade", head("HTTP/1.1 101 Switching Protocols", "Connection: Upgrade", "Sec-WebSocket-Accept: "+testAccept), testKey, "101 without Upgrade: websocket"},
		{"Upgrade h2c", head("HTTP/1.1 101 Switching Protocols", "Upgrade: h2c", "Connection: Upgrade", "Sec-WebSocket-Accept: "+testAccept), testKey, "101 without Upgrade: websocket"},
		{"no Connection", head("HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Sec-WebSocket-Accept: "+testAccept), testKey, "101 without Connection: upgrade"},
		{"101 in HTTP/1.0", strings.Replace(resp101(), "HTTP/1.1", "HTTP/1.0", 1), testKey, "101 in HTTP/1.0"},
		{"two protocols", resp101("Sec-WebSocket-Protocol: chat", "Sec-WebSocket-Protocol: superchat"), testKey, "invalid Sec-WebSocket-Protocol"},
		{"protocol list", resp101("Sec-WebSocket-Protocol: chat, superchat"), testKey, "invalid Sec-WebSocket-Protocol"},
		{"empty protocol", resp101("Sec-WebSocket-Protocol:"), testKey, "invalid Sec-WebSocket-Protocol"},
		{"unknown extension", resp101("Sec-WebSocket-Extensions: x-webkit-deflate-frame"), testKey, "unsupported WebSocket extension"},
		{"deflate and unknown", resp101("Sec-WebSocket-Extensions: permessage-deflate, foo"), testKey, "unsupported WebSocket extension"},
		{"deflate twice", resp101("Sec-WebSocket-Extensions: permessage-deflate", "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover"), testKey, "permessage-deflate selected twice"},
		{"malformed extensions", resp101("Sec-WebSocket-Extensions: permessage-deflate;;"), testKey, "malformed Sec-WebSocket-Extensions"},

		{"HTTP/2", "HTTP/2 200 OK\r\n\r\n", testKey, "malformed status line"},
		{"HTTP/1.2", "HTTP/1.2 200 OK\r\n\r\n", testKey, "unsupported HTTP version"},
		{"lower-case proto", "http/1.1 200 OK\r\n\r\n", testKey, "malformed status line"},
		{"two-digit status", "HTTP/1.1 20 OK\r\n\r\n", testKey, "malformed status line"},
		{"four-digit status", "HTTP/1.1 2000 OK\r\n\r\n", testKey, "malformed status line"},
		{"status 099", "HTTP/1.1 099 X\r\n\r\n", testKey, "invalid status code"},
		{"status 600", "HTTP/1.1 600 X\r\n\r\n", testKey, "invalid status code"},
		{"double space", "HTTP/1.1  200 OK\r\n\r\n", testKey, "malformed status line"},
		{"control in reason", "HTTP/1.1 200 O\x01K\r\n\r\n", testKey, "invalid byte in reason phrase"},
		{"empty", "\r\n", testKey, "empty status line"},
		{"bare LF", "HTTP/1.1 200 OK\nContent-Length: 0\n\n", testKey, "bare LF line ending"},
		{"trailing data", "HTTP/1.1 200 OK\r\n\r\nx", testKey, "data after head"},
		{"obs-fold", head("HTTP/1.1 200 OK", "X-A: a", " b"), testKey, "obs-fold"},
		{"space before colon", head("HTTP/1.1 200 OK", "Content-Length : 5"), testKey, "whitespace before colon"},
		{"NUL in value", head("HTTP/1.1 200 OK", "X-A: \x00"), testKey, "invalid byte in header value"},
		{"too many headers", head("HTTP/1.1 200 OK", manyHeaders(MaxHeaders+1)...), testKey, "too many header fields"},

		{"CL and TE", head("HTTP/1.1 401 Unauthorized", "Content-Length: 5", "Transfer-Encoding: chunked"), testKey, "both Transfer-Encoding and Content-Length"},
		{"TE and CL", head("HTTP/1.1 401 Unauthorized", "Transfer-Encoding: chunked", "Content-Length: 5"), testKey, "both Transfer-Encoding and Content-Length"},
		{"TE empty", head("HTTP/1.1 401 Unauthorized", "Transfer-Encoding:"), testKey, "unsupported Transfer-Encoding"},
		{"TE list with empty element", head("HTTP/1.1 401 Unauthorized", "Transfer-Encoding: chunked,"), testKey, "unsupported Transfer-Encoding"},
		{"two CL", head("HTTP/1.1 401 Unauthorized", "Content-Length: 5", "Content-Length: 5"), testKey, "duplicate Content-Length"},
		{"CL list", head("HTTP/1.1 401 Unauthorized", "Content-Length: 5, 5"), testKey, "invalid Content-Length"},
		{"CL sign", head("HTTP/1.1 401 Unauthorized", "Content-Length: +5"), testKey, "invalid Content-Length"},
		{"CL negative", head("HTTP/1.1 401 Unauthorized", "Content-Length: -1"), testKey, "invalid Content-Length"},
		{"CL hex", head("HTTP/1.1 401 Unauthorized", "Content-Length: 0x5"), testKey, "invalid Content-Length"},
		{"CL empty", head("HTTP/1.1 401 Unauthorized", "Content-Length:"), testKey, "invalid Content-Length"},
		{"CL huge", head("HTTP/1.1 401 Unauthorized", "Content-Length: 99999999999999999999"), testKey, "invalid Content-Length"},
		{"chunked twice", head("HTTP/1.1 401 Unauthorized", "Transfer-Encoding: chunked, chunked"), testKey, "unsupported Transfer-Encoding"},
		{"chunked in two headers", head("HTTP/1.1 401 Unauthorized", "Transfer-Encoding: chunked", "Transfer-Encoding: chunked"), testKey, "unsupported Transfer-Encoding"},
		{"chunked then gzip", head("HTTP/1.1 401 Unauthorized", "Transfer-Encoding: chunked", "Transfer-Encoding: gzip"), testKey, "unsupported Transfer-Encoding"},
		{"gzip, chunked", head("HTTP/1.1 401 Unauthorized", "Transfer-Encoding: gzip, chunked"), testKey, "unsupported Transfer-Encoding"},
		{"gzip only", head("HTTP/1.1 401 Unauthorized", "Transfer-Encoding: gzip"), testKey, "unsupported Transfer-Encoding"},
		{"identity", head("HTTP/1.1 401 Unauthorized", "Transfer-Encoding: identity"), testKey, "unsupported Transfer-Encoding"},
		{"chunked with parameter", head("HTTP/1.1 401 Unauthorized", "Transfer-Encoding: chunked;q=1"), testKey, "unsupported Transfer-Encoding"},
		{"TE not token", head("HTTP/1.1 401 Unauthorized", "Transfer-Encoding: chun ked"), testKey, "unsupported Transfer-Encoding"},
		{"TE in HTTP/1.0", head("HTTP/1.0 401 Unauthorized", "Transfer-Encoding: chunked"), testKey, "Transfer-Encoding in HTTP/1.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Response
			err := ParseResponse([]byte(tt.in), []byte(tt.key), &r)
			var rej *Reject
			if !errors.As(err, &rej) {
				t.Fatalf("ParseResponse(%q) = %v, want *Reject", tt.in, err)
			}
			if rej.Status != 502 || rej.Reason != tt.reason {
				t.Errorf("ParseResponse(%q) = %d %q, want 502 %q", tt.in, rej.Status, rej.Reason, tt.reason)
			}
		})
	}
}

func TestCountExtensions(t *testing.T) {
	tests := []struct {
		in             string
		deflate, other int
		ok             bool
	}{
		{"permessage-deflate", 1, 0, true},
		{"permessage-deflate; client_max_window_bits", 1, 0, true},
		{"permessage-deflate;client_max_window_bits=15;server_no_context_takeover", 1, 0, true},
		{"permessage-deflate ; server_max_window_bits=\"10\" , x-foo", 1, 1, true},
		{"x-foo; a=\"q,;\\\"\", permessage-deflate", 1, 1, true},
		{"a,,b,", 0, 2, true},
		{"", 0, 0, true},
		{"a b", 0, 1, false},
		{"a;p=", 0, 1, false},
		{"a;=1", 0, 1, false},
		{"a;p==1", 0, 1, false},
		{"a;;", 0, 1, false},
		{"a;p=\"x", 0, 1, false},
		{"a;p = 1", 0, 1, false},
		{"\"a\"", 0, 0, false},
		{"a;p=\"\\", 0, 1, false},
		{"a;p=\"\x01\"", 0, 1, false},
	}
	for _, tt := range tests {
		d, o, ok := countExtensions([]byte(tt.in))
		if d != tt.deflate || o != tt.other || ok != tt.ok {
			t.Errorf("countExtensions(%q) = %d, %d, %v; want %d, %d, %v", tt.in, d, o, ok, tt.deflate, tt.other, tt.ok)
		}
	}
}
