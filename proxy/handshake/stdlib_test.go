package handshake

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// backend is a real HTTP server that answers the way backends do: a
// WebSocket accept from an independent implementation (gorilla), and the
// refusals net/http writes.
func backend(t *testing.T) *httptest.Server {
	mux := http.NewServeMux()
	anyOrigin := func(*http.Request) bool { return true }
	plain := websocket.Upgrader{Subprotocols: []string{"chat"}, CheckOrigin: anyOrigin}
	deflate := websocket.Upgrader{Subprotocols: []string{"chat"}, EnableCompression: true, CheckOrigin: anyOrigin}
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		up := plain
		switch {
		case r.URL.Query().Get("deflate") == "1":
			up = deflate
		case r.URL.Query().Get("strict") == "1":
			up = websocket.Upgrader{} // same-origin only
		}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return // gorilla has answered with an error status
		}
		// Echo one message so the test can check the connection is real.
		if mt, msg, err := c.ReadMessage(); err == nil {
			c.WriteMessage(mt, msg)
		}
		c.Close()
	})
	mux.HandleFunc("/401", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="wsgate"`)
		http.Error(w, "token expired", http.StatusUnauthorized)
	})
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Done")
		w.WriteHeader(http.StatusForbidden)
		for i := 0; i < 5; i++ {
			io.WriteString(w, strings.Repeat("part ", i*1000+1))
			w.(http.Flusher).Flush()
		}
		w.Header().Set("X-Done", "yes")
	})
	mux.HandleFunc("/204", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// exchange sends the client request in, rewritten by AppendUpstreamRequest,
// to the backend at addr and returns the raw response head, the parsed
// response, and the bytes of the body the framer found (for non-101).
func exchange(t *testing.T, addr, in string) (conn net.Conn, raw []byte, resp Response, body []byte) {
	t.Helper()
	var req Request
	if err := req.Parse([]byte(in)); err != nil {
		t.Fatalf("Parse: %v", err)
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fi := ForwardInfo{ClientIP: netip.MustParseAddr("198.51.100.9"), Proto: "https"}
	if _, err := conn.Write(AppendUpstreamRequest(nil, &req, fi)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 0, 4096)
	n := -1
	for n < 0 {
		if len(buf) == cap(buf) {
			t.Fatal("response head too large")
		}
		k, err := conn.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+k]
		if n = HeadEnd(buf); n < 0 && err != nil {
			t.Fatalf("reading head: %v (have %q)", err, buf)
		}
	}
	if err := ParseResponse(buf[:n], req.Key, &resp); err != nil {
		t.Fatalf("ParseResponse(%q): %v", buf[:n], err)
	}
	if resp.Status == http.StatusSwitchingProtocols {
		return conn, buf, resp, nil
	}
	// Relay the body as wsgate would: feed what arrives until done.
	var fr BodyFramer
	fr.Init(&resp)
	rest := buf[n:]
	for {
		k, done, err := fr.Feed(rest)
		if err != nil {
			t.Fatalf("framer: %v", err)
		}
		body = append(body, rest[:k]...)
		if done {
			break
		}
		chunk := make([]byte, 1000) // small reads split chunk headers
		m, rerr := conn.Read(chunk)
		rest = chunk[:m]
		if rerr != nil && m == 0 {
			if errors.Is(rerr, io.EOF) && fr.UntilEOF() {
				break
			}
			t.Fatalf("reading body: %v", rerr)
		}
	}
	return conn, buf[:n], resp, body
}

func upgradeTo(srv *httptest.Server, target string) string {
	host := strings.TrimPrefix(srv.URL, "http://")
	return strings.NewReplacer("/chat?room=1&v=2", target, "example.com:8443", host).Replace(chromeRequest)
}

func TestStdlibBackend101(t *testing.T) {
	srv := backend(t)
	addr := strings.TrimPrefix(srv.URL, "http://")
	for _, deflate := range []bool{false, true} {
		target := "/ws"
		if deflate {
			target = "/ws?deflate=1"
		}
		conn, _, resp, _ := exchange(t, addr, upgradeTo(srv, target))
		if resp.Status != 101 || resp.Deflate != deflate || string(resp.Protocol) != "chat" {
			t.Fatalf("deflate=%v: got %+v", deflate, resp)
		}
		// The connection really switched: a masked text frame is echoed.
		frame := []byte{0x81, 0x82, 1, 2, 3, 4, 'h' ^ 1, 'i' ^ 2}
		if _, err := conn.Write(frame); err != nil {
			t.Fatal(err)
		}
		hdr := make([]byte, 2)
		if _, err := io.ReadFull(conn, hdr); err != nil {
			t.Fatal(err)
		}
		payload := make([]byte, hdr[1]&0x7f)
		if _, err := io.ReadFull(conn, payload); err != nil {
			t.Fatal(err)
		}
		// With permessage-deflate gorilla compresses the echo: RSV1 set,
		// which is what Deflate tells the relay to allow.
		rsv1 := hdr[0]&0x40 != 0
		if hdr[0]&0x8f != 0x81 || rsv1 != deflate || !deflate && string(payload) != "hi" {
			t.Fatalf("deflate=%v: echo %x %x", deflate, hdr, payload)
		}
	}
}

// Non-101 answers written by net/http parse, and the framer ends the body
// exactly where Go's own client does.
func TestStdlibBackendRefusals(t *testing.T) {
	srv := backend(t)
	addr := strings.TrimPrefix(srv.URL, "http://")
	tests := []struct {
		target  string
		status  int
		chunked bool
	}{
		{"/401", 401, false},
		{"/chunked", 403, true},
		{"/204", 204, false},
		{"/missing", 404, false},
	}
	for _, tt := range tests {
		_, head, resp, body := exchange(t, addr, upgradeTo(srv, tt.target))
		if resp.Status != tt.status || resp.Chunked != tt.chunked {
			t.Errorf("%s: got %+v", tt.target, resp)
		}
		raw := append(append(append([]byte(nil), head...), body...), "AFTER"...)
		br := bufio.NewReader(bytes.NewReader(raw))
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: ReadResponse: %v", tt.target, err)
		}
		if _, err := io.ReadAll(res.Body); err != nil {
			t.Fatalf("%s: Go reading the framed body: %v", tt.target, err)
		}
		if left, _ := io.ReadAll(br); string(left) != "AFTER" {
			t.Errorf("%s: body framed at a different byte than Go's: left %q", tt.target, left)
		}
		if tt.chunked && res.Trailer.Get("X-Done") != "yes" {
			t.Errorf("%s: trailer lost: %v", tt.target, res.Trailer)
		}
	}
}

// gorilla's own refusal (a request it finds bad) parses too.
func TestStdlibBackendGorillaRefusal(t *testing.T) {
	srv := backend(t)
	addr := strings.TrimPrefix(srv.URL, "http://")
	// An Origin from elsewhere: gorilla's default CheckOrigin refuses it.
	in := upgradeTo(srv, "/ws?strict=1")
	_, _, resp, body := exchange(t, addr, in)
	if resp.Status != http.StatusForbidden || int64(len(body)) != resp.ContentLength {
		t.Errorf("got %+v, body %q", resp, body)
	}
}
