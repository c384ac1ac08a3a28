package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	cws "github.com/coder/websocket"
	"github.com/gorilla/websocket"
)

// TestHandshakeRejected: requests that are not valid WebSocket upgrades get
// the documented status, never reach a backend, and the connection is closed.
func TestHandshakeRejected(t *testing.T) {
	needBinary(t)
	e := sharedEnv(t)
	addr := e.proxy.addr
	b64of8 := "AAECAwQFBgc=" // valid base64, but 8 bytes instead of 16
	cases := []struct {
		name   string
		req    func(path string) []byte
		status []int
		check  func(t *testing.T, resp *http.Response)
	}{
		{"plain-get", func(p string) []byte { return requestBytes("GET", p, "HTTP/1.1", hdr{{"Host", addr}}) }, []int{400}, nil},
		{"connection-keep-alive", func(p string) []byte {
			return requestBytes("GET", p, "HTTP/1.1", upgradeHeaders(addr).set("Connection", "keep-alive"))
		}, []int{400}, nil},
		{"no-upgrade-header", func(p string) []byte {
			return requestBytes("GET", p, "HTTP/1.1", upgradeHeaders(addr).set("Upgrade", ""))
		}, []int{400}, nil},
		{"upgrade-h2c", func(p string) []byte {
			return requestBytes("GET", p, "HTTP/1.1", upgradeHeaders(addr).set("Upgrade", "h2c"))
		}, []int{400}, nil},
		{"missing-key", func(p string) []byte {
			return requestBytes("GET", p, "HTTP/1.1", upgradeHeaders(addr).set("Sec-WebSocket-Key", ""))
		}, []int{400}, nil},
		{"key-not-base64", func(p string) []byte {
			return requestBytes("GET", p, "HTTP/1.1", upgradeHeaders(addr).set("Sec-WebSocket-Key", "!!not*base64!!"))
		}, []int{400}, nil},
		{"key-8-bytes", func(p string) []byte {
			return requestBytes("GET", p, "HTTP/1.1", upgradeHeaders(addr).set("Sec-WebSocket-Key", b64of8))
		}, []int{400}, nil},
		{"http-1.0", func(p string) []byte { return requestBytes("GET", p, "HTTP/1.0", upgradeHeaders(addr)) }, []int{400}, nil},
		{"post", func(p string) []byte {
			return requestBytes("POST", p, "HTTP/1.1", upgradeHeaders(addr).add("Content-Length", "0"))
		}, []int{405, 400}, nil},
		{"garbage", func(string) []byte { return []byte("HELLO THERE\r\n\r\n") }, []int{400}, nil},
		{"version-8", func(p string) []byte {
			return requestBytes("GET", p, "HTTP/1.1", upgradeHeaders(addr).set("Sec-WebSocket-Version", "8"))
		}, []int{426}, func(t *testing.T, resp *http.Response) {
			if got := resp.Header.Values("Sec-WebSocket-Version"); len(got) != 1 || got[0] != "13" {
				t.Errorf("426 response Sec-WebSocket-Version %q, want 13", got)
			}
		}},
		{"no-route", func(p string) []byte {
			return requestBytes("GET", "/nothing/here"+p[strings.Index(p, "?"):], "HTTP/1.1", upgradeHeaders(addr))
		}, []int{404}, nil},
		{"host-route-other-host", func(p string) []byte {
			return requestBytes("GET", "/hostonly/x"+p[strings.Index(p, "?"):], "HTTP/1.1", upgradeHeaders("other.test"))
		}, []int{404}, nil},
		{"headers-over-max_header_bytes", func(p string) []byte {
			return requestBytes("GET", p, "HTTP/1.1", upgradeHeaders(addr).add("X-Big", strings.Repeat("a", 9000)))
		}, []int{431}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pr := newProbe(t)
			c, resp := rawRequest(t, addr, tc.req(pr.q("/g/reject?b=echo")))
			ok := false
			for _, s := range tc.status {
				ok = ok || resp.StatusCode == s
			}
			if !ok {
				t.Errorf("status %d, want %v", resp.StatusCode, tc.status)
			}
			if tc.check != nil {
				tc.check(t, resp)
			}
			io.Copy(io.Discard, resp.Body)
			c.expectEOF(5 * time.Second)
			select {
			case ri := <-pr.reqs:
				t.Errorf("a rejected request reached the backend: %s %s", ri.method, ri.uri)
			case <-time.After(100 * time.Millisecond):
			}
		})
	}
}

// TestHandshakeTimeout: with handshake_timeout = 2s, a client trickling one
// byte every 500ms, or silent, is cut off at ~2s; a slow but complete
// handshake succeeds and the session then outlives the timeout.
func TestHandshakeTimeout(t *testing.T) {
	be := sharedBackends(t)
	p := startProxy(t, map[string]string{"handshake_timeout": `"2s"`},
		[]routeCfg{{"*", "/", "gorilla"}},
		[]poolCfg{{"gorilla", 1, []string{be.gorilla.addr}}})

	cutOff := func(t *testing.T, trickle bool) {
		c := dialTCP(t, p.addr)
		start := time.Now()
		req := requestBytes("GET", "/slow?b=echo", "HTTP/1.1", upgradeHeaders(p.addr))
		stop := make(chan struct{})
		writerDone := make(chan struct{})
		go func() {
			defer close(writerDone)
			if !trickle {
				return
			}
			for i := 0; i < len(req) && i < 20; i++ { // bounded: at most 10s
				c.SetWriteDeadline(time.Now().Add(2 * time.Second))
				if _, err := c.Write(req[i : i+1]); err != nil {
					return
				}
				select {
				case <-stop:
					return
				case <-time.After(500 * time.Millisecond):
				}
			}
		}()
		c.SetReadDeadline(time.Now().Add(8 * time.Second))
		_, err := io.Copy(io.Discard, c) // any response (e.g. 408) is fine; we want the close
		elapsed := time.Since(start)
		close(stop)
		<-writerDone
		if err != nil && !isClosedErr(err) {
			t.Fatalf("connection not closed: %v after %v", err, elapsed)
		}
		if elapsed < 1500*time.Millisecond || elapsed > 3500*time.Millisecond {
			t.Errorf("connection closed after %v, want about handshake_timeout=2s", elapsed)
		}
	}
	t.Run("trickle", func(t *testing.T) { cutOff(t, true) })
	t.Run("silent", func(t *testing.T) { cutOff(t, false) })
	t.Run("slow-but-in-time", func(t *testing.T) {
		c := dialTCP(t, p.addr)
		h := upgradeHeaders(p.addr)
		req := requestBytes("GET", "/slow?b=echo", "HTTP/1.1", h)
		c.Write(req[:len(req)/2])
		time.Sleep(1 * time.Second)
		c.Write(req[len(req)/2:])
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 101 {
			t.Fatalf("slow complete handshake: %v %v", resp, err)
		}
		rc := &rawClient{t: t, conn: c, br: br, resp: resp}
		time.Sleep(2500 * time.Millisecond)
		rc.echo("still here after the handshake timeout")
		rc.send(frame{Fin: true, Op: opClose, Payload: closePayload(1000, "")})
		rc.expectClose(1000, 5*time.Second)
		rc.expectEOF(5 * time.Second)
	})
}

// TestRouting: exact host (case-insensitive, port ignored) and longest path
// prefix select the pool; the request target reaches the backend unchanged.
func TestRouting(t *testing.T) {
	needBinary(t)
	e := sharedEnv(t)
	cases := []struct {
		path, host, backend string
	}{
		{"/g/r?b=echo&x=%2Fy", "", "gorilla"},
		{"/g/deep/r", "", "coder"},
		{"/g/deeper?b=echo", "", "gorilla"},
		{"/c/r", "", "coder"},
		{"/hostonly/r?b=echo", "only.test", "gorilla"},
		{"/hostonly/r?b=echo", "ONLY.TEST:8080", "gorilla"},
	}
	for _, tc := range cases {
		t.Run(tc.path+"@"+tc.host, func(t *testing.T) {
			pr := newProbe(t)
			path := pr.q(tc.path)
			h := upgradeHeaders(e.proxy.addr)
			if tc.host != "" {
				h = h.set("Host", tc.host)
			}
			c := rawUpgrade(t, e.proxy.addr, path, h)
			ri := pr.expectReq(t)
			if ri.backend != tc.backend {
				t.Errorf("routed to the %s backend, want %s", ri.backend, tc.backend)
			}
			if ri.uri != path {
				t.Errorf("backend saw request target %q, want %q", ri.uri, path)
			}
			c.echo("routed")
			c.send(frame{Fin: true, Op: opClose, Payload: closePayload(1000, "")})
			c.expectClose(1000, 5*time.Second)
			c.expectEOF(5 * time.Second)
		})
	}
}

// TestBackendDown: a dead first backend is skipped; all dead gives 502; a
// pool without backends gives 503.
func TestBackendDown(t *testing.T) {
	needBinary(t)
	e := sharedEnv(t)
	m0 := e.proxy.metrics(t)
	t.Run("first-dead-second-up", func(t *testing.T) {
		for i := range 4 {
			c, _ := dialGorilla(t, e.url(fmt.Sprintf("/down/%d?b=echo", i)), nil, nil)
			if err := c.WriteMessage(websocket.TextMessage, []byte("up")); err != nil {
				t.Fatal(err)
			}
			if _, m, err := c.ReadMessage(); err != nil || string(m) != "up" {
				t.Fatalf("echo %q %v", m, err)
			}
			closeGorilla(t, c)
		}
		m1 := e.proxy.metrics(t)
		results := map[string]float64{}
		for _, s := range m1.series("wsgate_upstream_dials_total") {
			if s["pool"] == "down" {
				results[s["result"]] = m1.sum("wsgate_upstream_dials_total", "pool", "down", "result", s["result"]) -
					m0.sum("wsgate_upstream_dials_total", "pool", "down", "result", s["result"])
			}
		}
		grew := 0
		for _, d := range results {
			if d > 0 {
				grew++
			}
		}
		if grew < 2 {
			t.Errorf("wsgate_upstream_dials_total{pool=down} by result grew %v; want both failed and successful dials counted", results)
		}
	})
	for _, tc := range []struct {
		path   string
		status int
	}{{"/alldown/x", 502}, {"/empty/x", 503}} {
		t.Run(tc.path, func(t *testing.T) {
			c, resp := rawRequest(t, e.proxy.addr, requestBytes("GET", tc.path, "HTTP/1.1", upgradeHeaders(e.proxy.addr)))
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
			io.Copy(io.Discard, resp.Body)
			c.expectEOF(5 * time.Second)
		})
	}
}

// TestBackendStatusRelayed: a backend's non-101 answer reaches the client
// with status, headers and body, and the connection then ends.
func TestBackendStatusRelayed(t *testing.T) {
	e := sharedEnv(t)
	for _, code := range []int{401, 403, 404, 500} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			path := fmt.Sprintf("/g/status?b=status&code=%d", code)
			c, resp := rawRequest(t, e.addrFor(path), requestBytes("GET", path, "HTTP/1.1", upgradeHeaders(e.addrFor(path))))
			if resp.StatusCode != code {
				t.Errorf("status %d, want %d", resp.StatusCode, code)
			}
			for k, v := range map[string]string{
				"WWW-Authenticate": `Basic realm="e2e"`,
				"X-Backend-Detail": fmt.Sprintf("status-%d", code),
				"Content-Type":     "text/plain; charset=utf-8",
			} {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			body, err := io.ReadAll(resp.Body)
			want := fmt.Sprintf("backend says %d: %s\n", code, strings.Repeat("z", 300))
			if err != nil || string(body) != want {
				t.Errorf("body %q (err %v), want %q", body, err, want)
			}
			if e.proxy != nil {
				c.expectEOF(5 * time.Second)
			}
		})
	}
	t.Run("raw-close-delimited-verbatim", func(t *testing.T) {
		pr := newProbe(t)
		pr.rawResponse = []byte("HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\nX-Raw: 1\r\nX-Weird-Case: MiXeD\r\n\r\nthe body runs until the backend closes\n")
		path := pr.q("/raw/status?b=status")
		c := dialTCP(t, e.addrFor(path))
		c.Write(requestBytes("GET", path, "HTTP/1.1", upgradeHeaders(e.addrFor(path))))
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, err := io.ReadAll(c)
		if err != nil && !isClosedErr(err) {
			t.Fatalf("reading the relayed response: %v (got %q)", err, got)
		}
		if !bytes.Equal(got, pr.rawResponse) {
			t.Errorf("relayed response differs from the backend's:\n got %q\nwant %q", got, pr.rawResponse)
		}
	})
	t.Run("clients-see-401", func(t *testing.T) {
		path := "/g/status?b=status&code=401"
		_, resp, err := gorillaDialer.Dial(e.url(path), nil)
		if !errors.Is(err, websocket.ErrBadHandshake) || resp == nil || resp.StatusCode != 401 {
			t.Errorf("gorilla: err %v, resp %v", err, resp)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, resp, err = cws.Dial(ctx, e.url(path), &cws.DialOptions{HTTPClient: coderHTTPClient})
		if err == nil || resp == nil || resp.StatusCode != 401 {
			t.Errorf("coder: err %v, resp %v", err, resp)
		}
		if resp != nil && resp.Body != nil {
			resp.Body.Close()
		}
	})
}

// TestForwardedHeaders: the backend gets X-Forwarded-For/-Proto/-Host, keeps
// Upgrade and Connection, and loses the other hop-by-hop headers.
func TestForwardedHeaders(t *testing.T) {
	needBinary(t)
	e := sharedEnv(t)
	pr := newProbe(t)
	path := pr.q("/g/fwd?b=echo")
	h := upgradeHeaders("fwd.example.test:1234").
		set("Connection", "Upgrade, X-Hop").
		add("X-Hop", "secret").
		add("Keep-Alive", "timeout=5").
		add("Proxy-Authorization", "Basic Zm9vOmJhcg==").
		add("Proxy-Connection", "keep-alive").
		add("TE", "trailers").
		add("X-Custom", "kept").
		add("Sec-WebSocket-Protocol", "chat.v1")
	c := rawUpgrade(t, e.proxy.addr, path, h)
	ri := pr.expectReq(t)
	for k, want := range map[string]string{
		"X-Forwarded-For":        "127.0.0.1",
		"X-Forwarded-Proto":      "http",
		"X-Forwarded-Host":       "fwd.example.test:1234",
		"Upgrade":                "websocket",
		"X-Custom":               "kept",
		"Sec-WebSocket-Version":  "13",
		"Sec-WebSocket-Key":      h.get("Sec-WebSocket-Key"),
		"Sec-WebSocket-Protocol": "chat.v1",
	} {
		if got := strings.Join(ri.header.Values(k), ", "); got != want {
			t.Errorf("backend saw %s %q, want %q", k, got, want)
		}
	}
	if conn := strings.ToLower(strings.Join(ri.header.Values("Connection"), ",")); !strings.Contains(conn, "upgrade") || strings.Contains(conn, "x-hop") {
		t.Errorf("backend saw Connection %q, want it to name upgrade (and not the removed x-hop)", conn)
	}
	for _, k := range []string{"X-Hop", "Keep-Alive", "Proxy-Authorization", "Proxy-Connection", "TE"} {
		if v := ri.header.Values(k); len(v) > 0 {
			t.Errorf("hop-by-hop header %s reached the backend: %q", k, v)
		}
	}
	if ri.method != "GET" || ri.proto != "HTTP/1.1" || ri.uri != path {
		t.Errorf("backend saw %s %s %s", ri.method, ri.uri, ri.proto)
	}
	c.echo("forwarded")
	c.send(frame{Fin: true, Op: opClose, Payload: closePayload(1000, "")})
	c.expectClose(1000, 5*time.Second)
	c.expectEOF(5 * time.Second)
}

// TestBackendSelectsUnoffered: a 101 that selects a subprotocol or
// permessage-deflate the client did not offer would make the client fail
// the connection with nothing to say why; wsgate answers 502 and logs the
// backend's mistake. It is not counted against the backend's health: what
// the client leaves out of its request must not get a backend ejected.
func TestBackendSelectsUnoffered(t *testing.T) {
	needBinary(t)
	raw, err := startRawBackend()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(raw.close)
	g := newMCBackend(t, "g", false)
	pools := []mcPool{{
		name: "un", keys: []string{`balance = "round_robin"`, "preconnect = 0"},
		outlier:  []string{"consecutive_failures = 2", `ejection_time = "30s"`, "max_ejected_percent = 50"},
		backends: []mcBE{{addr: raw.addr}, {addr: g.addr}},
	}}
	p := startMC(t, func(l, a string) string { return mcConfig(l, a, nil, nil, pools) })
	for _, tc := range []struct {
		name, offer, selects, logged string
	}{
		{"protocol", "", "Sec-WebSocket-Protocol: chat", "subprotocol the client did not offer"},
		{"other-protocol", "Sec-WebSocket-Protocol: chat.v2", "Sec-WebSocket-Protocol: chat.v1", "subprotocol the client did not offer"},
		{"deflate", "Sec-WebSocket-Extensions: x-other", "Sec-WebSocket-Extensions: permessage-deflate", "permessage-deflate, which the client did not offer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m0 := p.metrics(t)
			off := len(p.logBytes())
			refused := 0
			// Round robin: every other session reaches the raw backend.
			for range 4 {
				pr := newProbe(t)
				path := pr.q("/e?b=status")
				h := upgradeHeaders(p.addr)
				if tc.offer != "" {
					k, v, _ := strings.Cut(tc.offer, ": ")
					h = append(h, [2]string{k, v})
				}
				pr.rawResponse = []byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
					acceptFor(h.get("Sec-WebSocket-Key")) + "\r\n" + tc.selects + "\r\n\r\n")
				c, resp := rawRequest(t, p.addr, requestBytes("GET", path, "HTTP/1.1", h))
				switch resp.StatusCode {
				case 502:
					refused++
					if body, _ := io.ReadAll(resp.Body); string(body) != "wsgate: invalid answer from backend\n" {
						t.Errorf("502 body %q", body)
					}
					c.expectEOF(5 * time.Second)
				case 101: // the other backend
					c.conn.Close()
				default:
					t.Fatalf("status %d, want 502 (or 101 from the other backend)", resp.StatusCode)
				}
			}
			if refused != 2 {
				t.Fatalf("%d sessions refused with 502, want the 2 that reached the raw backend", refused)
			}
			deadline := time.Now().Add(5 * time.Second)
			for !strings.Contains(string(p.logBytes()[off:]), tc.logged) {
				if time.Now().After(deadline) {
					t.Fatalf("no log line with %q after the request", tc.logged)
				}
				time.Sleep(20 * time.Millisecond)
			}
			m1 := p.metrics(t)
			if d := m1.sum("wsgate_sessions_failed_total", "reason", "bad_backend_response") - m0.sum("wsgate_sessions_failed_total", "reason", "bad_backend_response"); d != 2 {
				t.Errorf("wsgate_sessions_failed_total{reason=bad_backend_response} grew by %v, want 2", d)
			}
			if bd, _ := p.pools(t).backend("un", raw.addr); bd.State != "healthy" {
				t.Errorf("raw backend %s after answers the client did not ask for, want healthy (consecutive_failures = 2)", bd.State)
			}
		})
	}
}

// TestBackendBadAnswer: what a backend answers instead of a proper 101 or
// refusal gets the client a precise status, the operator a log line
// naming the cause and a metric, and leaves the proxy serving.
func TestBackendBadAnswer(t *testing.T) {
	e := sharedEnv(t)
	if e.proxy == nil {
		t.Skip("wsgate's own answers: nothing to check against the backend directly")
	}
	bigHead := "HTTP/1.1 101 Switching Protocols\r\nX-Filler: " + strings.Repeat("a", 70<<10) + "\r\n\r\n"
	for _, tc := range []struct {
		name     string
		answer   string
		status   int
		logged   string // in wsgate's log after the request
		reason   string // wsgate_sessions_failed_total{reason}
		wantBody string // for a relayed refusal
	}{
		{"not-http", "SSH-2.0-OpenSSH_9.2\r\n\r\n", 502, `reason="invalid answer from backend"`, "bad_backend_response", ""},
		{"wrong-accept", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: d3Jvbmc=\r\n\r\n", 502, `reason="invalid answer from backend"`, "bad_backend_response", ""},
		{"cut-mid-head", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: webs", 502, "before its response head was complete", "backend_unavailable", ""},
		{"head-too-large", bigHead, 502, "response head too large", "backend_unavailable", ""},
		// An interim response is dropped; the refusal behind it is relayed.
		{"interim-then-refusal", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno", 403, "", "backend_rejected", "no"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m0 := e.proxy.metrics(t)
			off := len(e.proxy.logBytes())
			pr := newProbe(t)
			pr.rawResponse = []byte(tc.answer)
			path := pr.q("/raw/bad?b=status")
			c, resp := rawRequest(t, e.addrFor(path), requestBytes("GET", path, "HTTP/1.1", upgradeHeaders(e.addrFor(path))))
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			body, _ := io.ReadAll(resp.Body)
			if tc.wantBody != "" && string(body) != tc.wantBody {
				t.Errorf("body %q, want %q", body, tc.wantBody)
			}
			c.expectEOF(5 * time.Second)
			if tc.logged != "" {
				deadline := time.Now().Add(5 * time.Second)
				for !strings.Contains(string(e.proxy.logBytes()[off:]), tc.logged) {
					if time.Now().After(deadline) {
						t.Fatalf("no log line with %q after the request", tc.logged)
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
			m1 := e.proxy.metrics(t)
			if d := m1.sum("wsgate_sessions_failed_total", "reason", tc.reason) - m0.sum("wsgate_sessions_failed_total", "reason", tc.reason); d < 1 {
				t.Errorf("wsgate_sessions_failed_total{reason=%q} did not grow", tc.reason)
			}
			// The next session through the same pool still works.
			ok := newProbe(t)
			rc := rawUpgrade(t, e.addrFor("/raw/"), ok.q("/raw/after?b=record"), nil)
			rc.conn.Close()
		})
	}
}

// TestUpgradeAllocations counts the real binary's heap allocations per
// upgrade (request, warm connection, 101, one echo, close) from its own
// go_memstats_mallocs_total. What runs on the reactor costs four: the
// session, the client's and the backend's connection records, and the
// proxy's record of the session. The runtime counts small allocations
// when a span is given up, so the counter lags by up to a few thousand;
// 10,000 upgrades make that a tenth or two of one, and the budget of 5
// leaves room for it and the scrapes' own.
func TestUpgradeAllocations(t *testing.T) {
	raw, err := startRawBackend()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(raw.close)
	pools := []mcPool{{name: "al", keys: []string{"preconnect = 4"}, backends: []mcBE{{addr: raw.addr}}}}
	// One reactor: every warm connection is on the client's reactor, so
	// that each handshake runs there to its end (a handshake on a
	// goroutine allocates for the goroutine's sake).
	over := map[string]string{"log_level": `"info"`}
	p := startMC(t, func(l, a string) string {
		return strings.Replace(mcConfig(l, a, nil, over, pools), "[server]\n", "[server]\nreactors = 1\n", 1)
	})
	mallocs := func() float64 {
		v, ok := p.metrics(t).get("go_memstats_mallocs_total")
		if !ok {
			t.Fatal("no go_memstats_mallocs_total")
		}
		return v
	}
	session := func(i int) {
		pr := newProbe(t)
		c := rawUpgrade(t, p.addr, pr.q("/a?b=record"), nil)
		c.echo("allocations " + strconv.Itoa(i))
		c.send(frame{Fin: true, Op: opClose, Payload: closePayload(1000, "")})
		c.expectClose(1000, 5*time.Second)
		c.expectEOF(5 * time.Second)
	}
	for i := range 500 { // warm the pools, the balancer, the metrics
		session(i)
	}
	const n = 10_000
	m0 := mallocs()
	for i := range n {
		session(i)
	}
	per := (mallocs() - m0) / n
	t.Logf("%.2f allocations per upgrade", per)
	if per > 5 {
		t.Errorf("%.2f allocations per upgrade, budget 5", per)
	}
}
