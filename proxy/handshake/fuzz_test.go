package handshake

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
)

// Seed corpora live in testdata/fuzz/<Name>/ (real browser and library
// requests, backend answers, chunked bodies); f.Add adds only the shapes the
// assertions below care most about.

func FuzzParseRequest(f *testing.F) {
	f.Add([]byte(chromeRequest))
	f.Add([]byte(firefoxRequest))
	f.Add([]byte(minimal("X-Forwarded-For: 192.0.2.1", "Connection: X-A", "X-A: 1")))
	f.Fuzz(checkRequest)
}

// FuzzRequestFields varies the parts of an otherwise valid upgrade, so that
// most inputs are accepted and the cross-checks in checkRequest run (random
// bytes almost never make a valid handshake).
func FuzzRequestFields(f *testing.F) {
	f.Add("/chat?room=1", "example.com:8443", "Cookie", "a=b; c=d", "keep-alive")
	f.Add("/a|b/%2F?q={x}", "[::1]:80", "X-Forwarded-For", "192.0.2.1, 198.51.100.2", "X-Forwarded-For")
	f.Add("/", "h", "Sec-WebSocket-Protocol", "chat, superchat", "Sec-WebSocket-Protocol, TE")
	f.Fuzz(func(t *testing.T, target, host, name, value, connOpts string) {
		checkRequest(t, []byte(head("GET "+target+" HTTP/1.1",
			"Host: "+host,
			"Upgrade: websocket",
			"Connection: Upgrade, "+connOpts,
			"Sec-WebSocket-Version: 13",
			"Sec-WebSocket-Key: "+testKey,
			name+": "+value,
		)))
	})
}

func checkRequest(t *testing.T, data []byte) {
	if n := HeadEnd(data); n == 0 || n > len(data) {
		t.Fatalf("HeadEnd = %d for %d bytes", n, len(data))
	}
	var r Request
	err := r.Parse(data)
	if err != nil {
		var rej *Reject
		if !errors.As(err, &rej) {
			t.Fatalf("error %v is not a *Reject", err)
		}
		switch rej.Status {
		case 400, 426, 431:
		default:
			t.Fatalf("status %d", rej.Status)
		}
		return
	}
	if HeadEnd(data) != len(data) {
		t.Fatalf("accepted a head that HeadEnd ends at %d of %d", HeadEnd(data), len(data))
	}

	// Whatever wsgate accepts, the standard library reads the same way.
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(data)))
	if err != nil {
		t.Fatalf("accepted, but http.ReadRequest: %v\n%q", err, data)
	}
	if req.Method != string(r.Method) || req.Host != string(r.Host) {
		t.Fatalf("method/host: Go %q %q, wsgate %q %q", req.Method, req.Host, r.Method, r.Host)
	}
	if p, err := url.PathUnescape(string(r.Path)); err != nil || p != req.URL.Path {
		t.Fatalf("path: Go %q, wsgate %q (%q, %v)", req.URL.Path, r.Path, p, err)
	}
	if req.URL.RawQuery != string(r.Query) {
		t.Fatalf("query: Go %q, wsgate %q", req.URL.RawQuery, r.Query)
	}
	if req.ContentLength > 0 || len(req.TransferEncoding) > 0 {
		t.Fatalf("accepted a request with a body: %d %v", req.ContentLength, req.TransferEncoding)
	}

	// What wsgate writes to the backend is again a valid upgrade, for
	// wsgate and for Go, with wsgate's forwarding headers and no others.
	fi := ForwardInfo{ClientIP: netip.MustParseAddr("192.0.2.200"), Proto: "https"}
	out := AppendUpstreamRequest(nil, &r, fi)
	if len(out) > UpstreamRequestSize(&r, fi) {
		t.Fatalf("output %d bytes over the bound %d", len(out), UpstreamRequestSize(&r, fi))
	}
	var again Request
	if err := again.Parse(out); err != nil {
		var rej *Reject
		// Adding up to three headers can push a request at the limit
		// over it.
		if !errors.As(err, &rej) || rej.Status != 431 || r.NumHeaders() <= MaxHeaders-3 {
			t.Fatalf("upstream request rejected: %v\n%q", err, out)
		}
	} else if string(again.Target) != string(r.Target) || string(again.Host) != string(r.Host) || string(again.Key) != string(r.Key) {
		t.Fatalf("upstream request changed target/host/key:\n%q\n%q", data, out)
	}
	up, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(out)))
	if err != nil {
		t.Fatalf("http.ReadRequest of upstream request: %v\n%q", err, out)
	}
	if up.Host != string(r.Host) || up.Header.Get("Upgrade") != "websocket" || up.Header.Get("Connection") != "Upgrade" {
		t.Fatalf("upstream request lost its upgrade:\n%q", out)
	}
	if v := up.Header.Values("X-Forwarded-Host"); len(v) != 1 || v[0] != string(r.Host) {
		t.Fatalf("X-Forwarded-Host %q", v)
	}
	if v := up.Header.Values("X-Forwarded-Proto"); len(v) != 1 || v[0] != "https" {
		t.Fatalf("X-Forwarded-Proto %q", v)
	}
	if v := up.Header.Values("X-Forwarded-For"); len(v) != 1 || !strings.HasSuffix(v[0], "192.0.2.200") {
		t.Fatalf("X-Forwarded-For %q", v)
	}
	for _, h := range []string{"Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Proxy-Authorization", "Proxy-Authenticate"} {
		if _, ok := up.Header[h]; ok {
			t.Fatalf("hop-by-hop %s forwarded", h)
		}
	}
}

func FuzzParseResponse(f *testing.F) {
	f.Add([]byte(resp101("Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover", "Sec-WebSocket-Protocol: chat")))
	f.Add([]byte(head("HTTP/1.1 401 Unauthorized", "Content-Length: 12")))
	f.Add([]byte(head("HTTP/1.1 500 Internal Server Error", "Transfer-Encoding: chunked")))
	f.Fuzz(func(t *testing.T, data []byte) {
		var r Response
		err := ParseResponse(data, []byte(testKey), &r)
		if err != nil {
			var rej *Reject
			if !errors.As(err, &rej) || rej.Status != 502 {
				t.Fatalf("error %v is not a 502 *Reject", err)
			}
			return
		}
		if HeadEnd(data) != len(data) {
			t.Fatalf("accepted a head that HeadEnd ends at %d of %d", HeadEnd(data), len(data))
		}
		res, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(data)), nil)
		if err != nil {
			t.Fatalf("accepted, but http.ReadResponse: %v\n%q", err, data)
		}
		if res.StatusCode != r.Status {
			t.Fatalf("status: Go %d, wsgate %d", res.StatusCode, r.Status)
		}
		bodyless := r.Status < 200 || r.Status == 204 || r.Status == 304
		switch {
		case r.Status == 101:
			if !acceptMatches([]byte(res.Header.Get("Sec-WebSocket-Accept")), []byte(testKey)) {
				t.Fatalf("101 accepted with Go seeing accept %q", res.Header.Get("Sec-WebSocket-Accept"))
			}
			if r.Chunked || r.ContentLength != -1 {
				t.Fatalf("101 with a body: %+v", r)
			}
		case bodyless:
		case r.Chunked:
			if len(res.TransferEncoding) == 0 || res.ContentLength != -1 {
				t.Fatalf("chunked: Go sees %v %d", res.TransferEncoding, res.ContentLength)
			}
		case r.ContentLength >= 0:
			if res.ContentLength != r.ContentLength {
				t.Fatalf("length: Go %d, wsgate %d", res.ContentLength, r.ContentLength)
			}
		}
		var b BodyFramer
		b.Init(&r)
		if b.UntilEOF() && (bodyless || r.ContentLength >= 0 || r.Chunked) {
			t.Fatalf("until EOF for %+v", r)
		}
	})
}

func FuzzBodyFramer(f *testing.F) {
	f.Add([]byte("5\r\nhello\r\n0\r\n\r\n"), []byte{3, 1, 7}, true, uint16(0))
	f.Add([]byte("5;a=\"b\"\r\nhello\r\n0\r\nX-T: 1\r\n\r\nrest"), []byte{1}, true, uint16(0))
	f.Add([]byte("unauthorized!"), []byte{4, 4}, false, uint16(12))
	f.Fuzz(func(t *testing.T, data, cuts []byte, chunked bool, cl uint16) {
		resp := &Response{Status: 200, Chunked: chunked, ContentLength: int64(cl)}
		if chunked {
			resp.ContentLength = -1
		}
		n1, done1, err1 := feedPieces(resp, data)
		// The same stream in the pieces cuts describes...
		var pieces [][]byte
		rest := data
		for _, c := range cuts {
			k := min(int(c), len(rest))
			pieces = append(pieces, rest[:k])
			rest = rest[k:]
		}
		pieces = append(pieces, rest)
		n2, done2, err2 := feedPieces(resp, pieces...)
		// ...and one byte at a time.
		var bytewise [][]byte
		for i := range data {
			bytewise = append(bytewise, data[i:i+1])
		}
		bytewise = append(bytewise, nil) // an empty Feed is valid too
		n3, done3, err3 := feedPieces(resp, bytewise...)
		if done1 != done2 || done1 != done3 || err1 != err2 || err1 != err3 ||
			(err1 == nil && (n1 != n2 || n1 != n3)) {
			t.Fatalf("whole: %d %v %v; cut: %d %v %v; bytewise: %d %v %v", n1, done1, err1, n2, done2, err2, n3, done3, err3)
		}
		if !chunked {
			if want := min(int(cl), len(data)); n1 != want || done1 != (len(data) >= int(cl)) {
				t.Fatalf("length %d over %d bytes: n=%d done=%v", cl, len(data), n1, done1)
			}
			return
		}
		// Go's client must frame the body the same way: complete where
		// wsgate found it complete, incomplete where wsgate waits for more.
		if len(data) > 16*1024 || err1 != nil {
			return // Go's reader also limits chunk overhead to 16 KiB
		}
		raw := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + string(data[:n1])
		if done1 {
			raw += "NEXT"
		}
		br := bufio.NewReader(strings.NewReader(raw))
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.ReadAll(res.Body)
		switch {
		case done1 && err != nil:
			t.Fatalf("wsgate complete at %d, Go: %v\n%q", n1, err, data[:n1])
		case done1:
			if left, _ := io.ReadAll(br); string(left) != "NEXT" {
				t.Fatalf("Go ends the body elsewhere, leaving %q\n%q", left, data[:n1])
			}
		case err == nil:
			t.Fatalf("wsgate waits for more, Go finds the body complete\n%q", data)
		}
	})
}
