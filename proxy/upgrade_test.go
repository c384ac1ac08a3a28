package proxy

import (
	"bytes"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/valyala/bytebufferpool"

	"github.com/wsgate/wsgate/loop"
	"github.com/wsgate/wsgate/proxy/config"
	"github.com/wsgate/wsgate/proxy/handshake"
)

const browserRequest = "GET /chat?room=1&v=2 HTTP/1.1\r\n" +
	"Host: example.com:8443\r\n" +
	"Connection: Upgrade\r\n" +
	"Pragma: no-cache\r\n" +
	"Cache-Control: no-cache\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36\r\n" +
	"Upgrade: websocket\r\n" +
	"Origin: https://example.com\r\n" +
	"Sec-WebSocket-Version: 13\r\n" +
	"Accept-Encoding: gzip, deflate, br\r\n" +
	"Accept-Language: en-US,en;q=0.9\r\n" +
	"Cookie: session=abc123; theme=dark; _ga=GA1.2.3.4\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
	"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" +
	"Sec-WebSocket-Protocol: chat, superchat\r\n" +
	"\r\n"

// testRouting routes every request to one sticky pool (cookie "session")
// with a backend, and /empty to a pool without backends.
func testRouting() *routing {
	chat := &pool{name: "chat", hashSource: "cookie", hashName: "session", backends: []*backend{{addr: "127.0.0.1:9001"}}}
	empty := &pool{name: "empty"}
	pools := map[string]*pool{"chat": chat, "empty": empty}
	return &routing{
		router: newRouter([]config.Route{
			{Host: "*", PathPrefix: "/", Pool: "chat"},
			{Host: "*", PathPrefix: "/empty", Pool: "empty"},
		}, pools),
		pools:  []*pool{chat, empty},
		byName: pools,
	}
}

var testClient = netip.MustParseAddrPort("192.0.2.7:50123")

func TestPrepare(t *testing.T) {
	rt := testRouting()
	sc := getScratch()
	defer putScratch(sc)
	head := []byte(browserRequest)
	p, up, rf := rt.prepare(sc, head, testClient, nil)
	if rf.status != 0 || p == nil || p.name != "chat" {
		t.Fatalf("prepare: pool %v, refusal %+v", p, rf)
	}
	if string(sc.stickKey) != "abc123" || string(sc.key[:]) != "dGhlIHNhbXBsZSBub25jZQ==" {
		t.Fatalf("sticky key %q, key %q", sc.stickKey, sc.key[:])
	}
	// The same bytes as the handshake package's writer on its own.
	var req handshake.Request
	if err := req.Parse([]byte(browserRequest)); err != nil {
		t.Fatal(err)
	}
	want := handshake.AppendUpstreamRequest(nil, &req, forwardInfo(testClient))
	if !bytes.Equal(up, want) {
		t.Fatalf("upstream request:\n%s\nwant:\n%s", up, want)
	}
	if !strings.Contains(string(up), "X-Forwarded-For: 192.0.2.7\r\n") {
		t.Fatalf("no X-Forwarded-For in\n%s", up)
	}
	// Nothing in the scratch points into the client's input any more.
	if sc.req.Head != nil || sc.req.Key != nil || sc.req.Host != nil {
		t.Fatal("scratch request still points into the head")
	}
	for i := range head {
		head[i] = 'x'
	}
	if string(sc.stickKey) != "abc123" || string(sc.key[:]) != "dGhlIHNhbXBsZSBub25jZQ==" {
		t.Fatal("sticky key or key aliased the head")
	}

	for _, tc := range []struct {
		head   string
		status int
		metric string
		pool   string
	}{
		{strings.Replace(browserRequest, "Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8", 1), 426, failVersion, ""},
		{strings.Replace(browserRequest, "Upgrade: websocket", "Upgrade: h2c", 1), 400, failBadRequest, ""},
		{strings.Replace(browserRequest, "GET /chat?", "GET /empty?", 1), 503, failNoBackend, "empty"},
	} {
		p, _, rf := rt.prepare(sc, []byte(tc.head), testClient, nil)
		if rf.status != tc.status || rf.metric != tc.metric || (p == nil) != (tc.pool == "") || (p != nil && p.name != tc.pool) {
			t.Errorf("%.40q: pool %v, refusal %+v; want %d %s %q", tc.head, p, rf, tc.status, tc.metric, tc.pool)
		}
	}
	noRoute := &routing{router: newRouter([]config.Route{{Host: "other.example", PathPrefix: "/", Pool: "chat"}}, rt.byName)}
	if p, _, rf := noRoute.prepare(sc, []byte(browserRequest), testClient, nil); p != nil || rf.status != 404 || rf.metric != failNoRoute {
		t.Errorf("no route: pool %v, refusal %+v", p, rf)
	}
}

// The handshake's share of the work per upgrade request — parse, route,
// sticky key, rewrite into a pooled buffer — allocates nothing once the
// pools are warm.
func TestPrepareAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items at random")
	}
	rt := testRouting()
	head := []byte(browserRequest)
	run := func() {
		sc := getScratch()
		out := bytebufferpool.Get()
		p, up, rf := rt.prepare(sc, head, testClient, out.B[:0])
		if p == nil || rf.status != 0 {
			t.Fatal(rf)
		}
		out.B = up
		bytebufferpool.Put(out)
		putScratch(sc)
	}
	run()
	if a := testing.AllocsPerRun(500, run); a != 0 {
		t.Errorf("prepare: %v allocs per request, want 0", a)
	}
}

func BenchmarkPrepare(b *testing.B) {
	rt := testRouting()
	head := []byte(browserRequest)
	b.SetBytes(int64(len(head)))
	b.ReportAllocs()
	for b.Loop() {
		sc := getScratch()
		out := bytebufferpool.Get()
		_, up, _ := rt.prepare(sc, head, testClient, out.B[:0])
		out.B = up
		bytebufferpool.Put(out)
		putScratch(sc)
	}
}

// A session's client attribute is formatted only when it is logged, and
// then reads as the address.
func TestClientAttr(t *testing.T) {
	ts := &trackedSession{client: testClient}
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	log.LogAttrs(t.Context(), slog.LevelDebug, "session end", slog.Any("client", (*clientAddr)(ts)))
	if !strings.Contains(buf.String(), "client=192.0.2.7:50123") {
		t.Fatalf("log line %q", buf.String())
	}
	buf.Reset()
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", slog.Any("client", (*clientAddr)(ts)))
	if !strings.Contains(buf.String(), `"client":"192.0.2.7:50123"`) {
		t.Fatalf("json log line %q", buf.String())
	}
	if a := testing.AllocsPerRun(100, func() { _ = slog.Any("client", (*clientAddr)(ts)) }); a != 0 {
		t.Errorf("client attribute: %v allocs", a)
	}
}

// The pre-resolved metric children are the series the vectors hold.
func TestResolvedMetrics(t *testing.T) {
	m := newMetrics(&loop.Stats{})
	for _, c := range loop.Causes() {
		if m.closedBy(c) != m.closed.WithLabelValues(c.String()) {
			t.Errorf("closedBy(%v) is not the vector's child", c)
		}
	}
	for _, r := range failReasons {
		if m.failedBy(r) != m.failed.WithLabelValues(r) {
			t.Errorf("failedBy(%s) is not the vector's child", r)
		}
	}
	pm := m.forPool("chat")
	if pm.hits != m.poolHits.WithLabelValues("chat") || pm.misses != m.poolMisses.WithLabelValues("chat") {
		t.Error("pool hit/miss children")
	}
	for i, r := range dialResults {
		if pm.dials[i] != m.dials.WithLabelValues("chat", r) {
			t.Errorf("dials %s", r)
		}
	}
	srv := &Server{m: m}
	b := &backend{addr: "127.0.0.1:9001", srv: srv}
	b.pool.Store(&pool{name: "chat"})
	for i, r := range upgradeResults {
		if b.upgrades(i) != m.backendUpgrades.WithLabelValues("chat", b.addr, r) || b.upgrades(i) != b.upgrades(i) {
			t.Errorf("upgrades %s", r)
		}
	}
}
