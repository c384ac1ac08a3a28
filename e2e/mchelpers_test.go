package e2e

// Helpers for the multi-cloud pool tests (multicloud_test.go, reload_test.go):
// backends that say who they are and can be killed and restarted on the same
// address, a config writer for [node], [[pool]] with locality, health,
// outlier and backend locations, /pools and admin mutations, and fleets of
// clients that reconnect.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// ---------------------------------------------------------------- backends

// mcBackend is a gorilla/websocket echo server bound to a loopback "host"
// (127.0.0.2, 127.0.0.3, ...) that answers the text message "whoami" with
// its id and sets X-Backend-Id on its 101. GET /healthz answers 200 (for
// http checks), /wshealth upgrades and closes (websocket checks). With
// stall=true it accepts TCP and reads, but never answers anything.
type mcBackend struct {
	id    string
	addr  string
	stall bool

	mu    sync.Mutex
	ln    net.Listener
	srv   *http.Server
	conns map[net.Conn]struct{} // upgraded (hijacked) or stalled connections
	up    bool
	wg    sync.WaitGroup

	upgrades atomic.Int64 // client sessions upgraded (not health probes)
	checks   atomic.Int64 // health requests seen
}

var mcHostSeq atomic.Int32

// newMCBackend starts a backend on the next loopback host and closes it at
// the end of the test.
func newMCBackend(t testing.TB, id string, stall bool) *mcBackend {
	t.Helper()
	host := fmt.Sprintf("127.0.0.%d", 2+mcHostSeq.Add(1)%200)
	b := &mcBackend{id: id, stall: stall, conns: map[net.Conn]struct{}{}}
	if err := b.listen(host + ":0"); err != nil {
		t.Fatalf("backend %s: %v", id, err)
	}
	t.Cleanup(b.kill)
	return b
}

func (b *mcBackend) listen(addr string) error {
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ {
		ln, err = net.Listen("tcp", addr)
		if err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ln = ln
	b.addr = ln.Addr().String()
	b.up = true
	if b.stall {
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				if !b.track(c) {
					c.Close()
					return
				}
				b.wg.Add(1)
				go func() {
					defer b.wg.Done()
					defer b.untrack(c)
					c.SetReadDeadline(time.Now().Add(60 * time.Second))
					io.Copy(io.Discard, c) // never answers
				}()
			}
		}()
		return nil
	}
	b.srv = &http.Server{Handler: http.HandlerFunc(b.serveHTTP)}
	srv := b.srv
	b.wg.Add(1)
	go func() { defer b.wg.Done(); srv.Serve(ln) }()
	return nil
}

func (b *mcBackend) track(c net.Conn) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.up {
		return false
	}
	b.conns[c] = struct{}{}
	return true
}

func (b *mcBackend) untrack(c net.Conn) {
	c.Close()
	b.mu.Lock()
	delete(b.conns, c)
	b.mu.Unlock()
}

var mcUpgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

func (b *mcBackend) serveHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/healthz":
		b.checks.Add(1)
		w.Write([]byte("ok\n"))
		return
	case "/wshealth":
		b.checks.Add(1)
		c, err := mcUpgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		// wsgate's websocket check sends a Ping, wants its Pong (gorilla's
		// default ping handler), then closes.
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				break
			}
		}
		c.Close()
		return
	}
	c, err := mcUpgrader.Upgrade(w, r, http.Header{"X-Backend-Id": {b.id}})
	if err != nil {
		return
	}
	nc := c.UnderlyingConn()
	if !b.track(nc) {
		nc.Close()
		return
	}
	b.upgrades.Add(1)
	defer b.untrack(nc)
	c.SetReadDeadline(time.Now().Add(120 * time.Second))
	for {
		mt, msg, err := c.ReadMessage()
		if err != nil {
			return
		}
		if mt == websocket.TextMessage && string(msg) == "whoami" {
			msg = []byte(b.id)
		}
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := c.WriteMessage(mt, msg); err != nil {
			return
		}
	}
}

// kill closes the listener and drops every connection without a Close, as
// a crashed backend would.
func (b *mcBackend) kill() {
	b.mu.Lock()
	if !b.up {
		b.mu.Unlock()
		return
	}
	b.up = false
	ln, srv := b.ln, b.srv
	conns := make([]net.Conn, 0, len(b.conns))
	for c := range b.conns {
		conns = append(conns, c)
	}
	b.mu.Unlock()
	ln.Close()
	if srv != nil {
		srv.Close()
	}
	for _, c := range conns {
		c.Close()
	}
	b.wg.Wait()
}

// restart listens again on the same address.
func (b *mcBackend) restart(t testing.TB) {
	t.Helper()
	if err := b.listen(b.addr); err != nil {
		t.Fatalf("restart backend %s on %s: %v", b.id, b.addr, err)
	}
}

// closedAddr is a loopback address where nothing listens, until the test
// ends (see bindClosed).
func closedAddr(t testing.TB) string {
	t.Helper()
	fd, addr, err := bindClosed([4]byte{127, 0, 0, byte(2 + mcHostSeq.Add(1)%200)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Close(fd) })
	return addr
}

// ---------------------------------------------------------------- config

type mcNode struct{ cloud, region, zone string }

type mcBE struct {
	addr  string
	extra []string // TOML lines of the [[pool.backend]], e.g. `weight = 200`
}

type mcPool struct {
	name     string
	prefix   string   // route path prefix
	keys     []string // TOML lines of the [[pool]]
	health   []string // lines of [pool.health]; nil: none
	outlier  []string // lines of [pool.outlier]; nil: none
	backends []mcBE
}

func loc(cloud, region, zone string) []string {
	var l []string
	if cloud != "" {
		l = append(l, fmt.Sprintf("cloud = %q", cloud))
	}
	if region != "" {
		l = append(l, fmt.Sprintf("region = %q", region))
	}
	if zone != "" {
		l = append(l, fmt.Sprintf("zone = %q", zone))
	}
	return l
}

func mcConfig(listen, admin string, node *mcNode, over map[string]string, pools []mcPool) string {
	var b strings.Builder
	b.WriteString("[server]\n")
	fmt.Fprintf(&b, "listen = %q\nadmin_listen = %q\n", listen, admin)
	for _, k := range serverKeys {
		v := serverDefaults[k]
		if o, ok := over[k]; ok {
			v = o
		}
		fmt.Fprintf(&b, "%s = %s\n", k, v)
	}
	if node != nil {
		fmt.Fprintf(&b, "\n[node]\nname = \"e2e\"\n")
		for _, l := range loc(node.cloud, node.region, node.zone) {
			b.WriteString(l + "\n")
		}
	}
	for _, p := range pools {
		prefix := p.prefix
		if prefix == "" {
			prefix = "/"
		}
		fmt.Fprintf(&b, "\n[[route]]\nhost = \"*\"\npath_prefix = %q\npool = %q\n", prefix, p.name)
	}
	for _, p := range pools {
		fmt.Fprintf(&b, "\n[[pool]]\nname = %q\n", p.name)
		for _, l := range p.keys {
			b.WriteString(l + "\n")
		}
		if p.health != nil {
			b.WriteString("  [pool.health]\n")
			for _, l := range p.health {
				b.WriteString("  " + l + "\n")
			}
		}
		if p.outlier != nil {
			b.WriteString("  [pool.outlier]\n")
			for _, l := range p.outlier {
				b.WriteString("  " + l + "\n")
			}
		}
		for _, be := range p.backends {
			fmt.Fprintf(&b, "  [[pool.backend]]\n  address = %q\n", be.addr)
			for _, l := range be.extra {
				b.WriteString("  " + l + "\n")
			}
		}
	}
	return b.String()
}

// startMC starts a wsgate dedicated to t with a config from mk, with the
// same cleanups as startProxy.
func startMC(t *testing.T, mk func(listen, admin string) string) *proxyProc {
	t.Helper()
	needBinary(t)
	p, err := launchProxy(t, t.TempDir(), 5*time.Second, mk)
	if err != nil {
		t.Fatal(err)
	}
	p.stopAtCleanup(t)
	p.trackBaseline(t, 8*time.Second)
	return p
}

// writeConfig replaces the running proxy's config file (for a reload).
func (p *proxyProc) writeConfig(t testing.TB, mk func(listen, admin string) string) string {
	t.Helper()
	text := mk(p.addr, p.admin)
	tmp := p.cfgPath + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p.cfgPath); err != nil {
		t.Fatal(err)
	}
	return text
}

func (p *proxyProc) sighup(t testing.TB) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatalf("SIGHUP: %v", err)
	}
}

func (p *proxyProc) adminPost(path string) (int, []byte, error) {
	req, _ := http.NewRequest("POST", "http://"+p.admin+path, nil)
	req.Close = true
	resp, err := adminClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

type reloadResult struct {
	Reloaded bool     `json:"reloaded"`
	Notes    []string `json:"notes"`
	Errors   []string `json:"errors"`
}

func (p *proxyProc) postReload(t testing.TB) (int, reloadResult) {
	t.Helper()
	code, body, err := p.adminPost("/reload")
	if err != nil {
		t.Fatalf("POST /reload: %v", err)
	}
	var rr reloadResult
	if err := json.Unmarshal(body, &rr); err != nil {
		t.Fatalf("POST /reload: status %d, body not JSON: %v: %q", code, err, body)
	}
	return code, rr
}

func (p *proxyProc) drainBackend(t testing.TB, pool, addr string, drain bool) {
	t.Helper()
	verb := "drain"
	if !drain {
		verb = "undrain"
	}
	code, body, err := p.adminPost("/pools/" + pool + "/backends/" + addr + "/" + verb)
	if err != nil || code != 200 {
		t.Fatalf("POST %s %s/%s: status %d err %v: %s", verb, pool, addr, code, err, body)
	}
}

// ---------------------------------------------------------------- /pools

type poolsDoc struct {
	Pools []poolDoc `json:"pools"`
}

type poolDoc struct {
	Name     string       `json:"name"`
	Balance  string       `json:"balance"`
	Locality string       `json:"locality"`
	Backends []backendDoc `json:"backends"`
}

type backendDoc struct {
	Address  string `json:"address"`
	State    string `json:"state"`
	Sessions int64  `json:"active_sessions"`
	Weight   int    `json:"weight"`
	Tier     int    `json:"locality_tier"`
	Warm     int    `json:"warm_connections"`
}

func (p *proxyProc) pools(t testing.TB) poolsDoc {
	t.Helper()
	code, body, err := p.adminGet("/pools")
	if err != nil || code != 200 {
		t.Fatalf("GET /pools: status %d err %v: %s", code, err, body)
	}
	var d poolsDoc
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatalf("GET /pools: %v: %s", err, body)
	}
	return d
}

func (d poolsDoc) backend(pool, addr string) (backendDoc, bool) {
	for _, p := range d.Pools {
		if p.Name != pool {
			continue
		}
		for _, b := range p.Backends {
			if b.Address == addr {
				return b, true
			}
		}
	}
	return backendDoc{}, false
}

// waitState polls /pools until the backend is in state, and returns how
// long that took; it fails t after d.
func (p *proxyProc) waitState(t testing.TB, pool, addr, state string, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	last := ""
	for time.Since(start) < d {
		if b, ok := p.pools(t).backend(pool, addr); ok {
			if b.State == state {
				return time.Since(start)
			}
			last = b.State
		} else {
			last = "(absent)"
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Errorf("/pools: %s/%s state %q, want %q within %v", pool, addr, last, state, d)
	return time.Since(start)
}

// ---------------------------------------------------------------- clients

type mcConn struct {
	c       *websocket.Conn
	backend string
}

// mcDial opens a session and asks the backend who it is. local, when not
// empty, is the client's source IP.
func mcDial(url string, h http.Header, local string) (*mcConn, *http.Response, error) {
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, Proxy: nil}
	if local != "" {
		nd := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
		d.NetDialContext = nd.DialContext
	}
	c, resp, err := d.Dial(url, h)
	if err != nil {
		return nil, resp, err
	}
	mc := &mcConn{c: c}
	id, err := mc.roundTrip("whoami", 10*time.Second)
	if err != nil {
		c.Close()
		return nil, resp, fmt.Errorf("whoami: %w", err)
	}
	mc.backend = id
	return mc, resp, nil
}

func (m *mcConn) roundTrip(s string, d time.Duration) (string, error) {
	m.c.SetWriteDeadline(time.Now().Add(d))
	if err := m.c.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		return "", err
	}
	m.c.SetReadDeadline(time.Now().Add(d))
	_, msg, err := m.c.ReadMessage()
	return string(msg), err
}

func (m *mcConn) echo(s string) error {
	got, err := m.roundTrip(s, 10*time.Second)
	if err != nil {
		return err
	}
	if got != s {
		return fmt.Errorf("echo of %q: got %q", s, got)
	}
	return nil
}

// close ends the session with a closing handshake (bounded), then TCP.
func (m *mcConn) close() {
	m.c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(2*time.Second))
	m.c.SetReadDeadline(time.Now().Add(2 * time.Second))
	for {
		if _, _, err := m.c.ReadMessage(); err != nil {
			break
		}
	}
	m.c.Close()
}

// awaitClose reads until the session ends and returns the Close code the
// client received (-1 without a Close) and when.
func (m *mcConn) awaitClose(d time.Duration) (int, time.Time) {
	m.c.SetReadDeadline(time.Now().Add(d))
	for {
		_, _, err := m.c.ReadMessage()
		if err == nil {
			continue
		}
		at := time.Now()
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code, at
		}
		return -1, at
	}
}

// landings opens n short sessions (conc at a time) on url and counts the
// backends they landed on; hdr, when not nil, gives each session's headers.
// Failed sessions are counted under "error: ..." keys.
func landings(n, conc int, url func(i int) string, hdr func(i int) http.Header) map[string]int {
	var mu sync.Mutex
	out := map[string]int{}
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; i < n && time.Now().Before(deadline); i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			var h http.Header
			if hdr != nil {
				h = hdr(i)
			}
			m, resp, err := mcDial(url(i), h, "")
			key := ""
			if err != nil {
				st := 0
				if resp != nil {
					st = resp.StatusCode
				}
				key = fmt.Sprintf("error: status %d", st)
			} else {
				key = m.backend
				m.close()
			}
			mu.Lock()
			out[key]++
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	return out
}

func errorsIn(m map[string]int) int {
	n := 0
	for k, v := range m {
		if strings.HasPrefix(k, "error") {
			n += v
		}
	}
	return n
}

func fmtCounts(m map[string]int) string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	var b strings.Builder
	for i, k := range ks {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s=%d", k, m[k])
	}
	return b.String()
}

// openSessions opens n long-lived sessions, conc at a time; it fails t if
// any does not open. They are closed (TCP) at the end of the test.
func openSessions(t testing.TB, n, conc int, url string) []*mcConn {
	t.Helper()
	out := make([]*mcConn, n)
	errs := make([]error, n)
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out[i], _, errs[i] = mcDial(url, nil, "")
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, m := range out {
			if m != nil {
				m.c.Close()
			}
		}
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("session %d of %d did not open: %v", i, n, err)
		}
	}
	return out
}

// echoAll has every session echo once, conc at a time, and returns the
// failures.
func echoAll(ms []*mcConn, conc int, tag string) []error {
	var mu sync.Mutex
	var errs []error
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	for i, m := range ms {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := m.echo(fmt.Sprintf("%s %d", tag, i)); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("session %d (on %s): %v", i, m.backend, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errs
}

// ---------------------------------------------------------------- fleets

type closeEvent struct {
	code    int // -1: no Close frame (EOF or error)
	at      time.Time
	backend string
}

// fleet is n clients that each keep one session open, and when it ends
// (Close or EOF) reconnect after a random 0-200ms backoff.
type fleet struct {
	n        int
	url      string
	stopping atomic.Bool
	wg       sync.WaitGroup

	mu      sync.Mutex
	where   []string // backend of each client's current session; "" while out
	conns   []*websocket.Conn
	closes  []closeEvent
	dialErr int
}

func startFleet(t testing.TB, n int, url string) *fleet {
	f := &fleet{n: n, url: url, where: make([]string, n), conns: make([]*websocket.Conn, n)}
	sem := make(chan struct{}, 50) // initial dials, 50 at a time
	deadline := time.Now().Add(90 * time.Second)
	for i := range n {
		f.wg.Add(1)
		go f.run(i, sem, deadline)
	}
	t.Cleanup(f.stop)
	return f
}

func (f *fleet) run(i int, sem chan struct{}, deadline time.Time) {
	defer f.wg.Done()
	first := true
	for attempt := 0; attempt < 200 && !f.stopping.Load() && time.Now().Before(deadline); attempt++ {
		if first {
			sem <- struct{}{}
		}
		m, resp, err := mcDial(f.url, nil, "")
		if first {
			<-sem
			first = false
		}
		if err != nil {
			f.mu.Lock()
			f.dialErr++
			// Upgraded, then closed before it answered whoami: a session
			// that ended all the same (its backend from the 101 header).
			var ce *websocket.CloseError
			if resp != nil && resp.StatusCode == http.StatusSwitchingProtocols && errors.As(err, &ce) && !f.stopping.Load() {
				f.closes = append(f.closes, closeEvent{ce.Code, time.Now(), resp.Header.Get("X-Backend-Id")})
			}
			f.mu.Unlock()
			time.Sleep(time.Duration(rand.IntN(200)) * time.Millisecond)
			continue
		}
		f.mu.Lock()
		if f.stopping.Load() {
			f.mu.Unlock()
			m.c.Close()
			return
		}
		f.where[i] = m.backend
		f.conns[i] = m.c
		f.mu.Unlock()
		code, at := m.awaitClose(time.Until(deadline))
		m.c.Close()
		f.mu.Lock()
		f.where[i] = ""
		f.conns[i] = nil
		if !f.stopping.Load() {
			f.closes = append(f.closes, closeEvent{code, at, m.backend})
		}
		f.mu.Unlock()
		time.Sleep(time.Duration(rand.IntN(200)) * time.Millisecond)
	}
}

// counts returns how many clients are in session, by backend.
func (f *fleet) counts() (in int, by map[string]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	by = map[string]int{}
	for _, w := range f.where {
		if w != "" {
			in++
			by[w]++
		}
	}
	return in, by
}

func (f *fleet) closeEvents() []closeEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]closeEvent(nil), f.closes...)
}

// waitAll waits until every client is in session and ok holds for the
// counts; it returns when that first held, or false after d.
func (f *fleet) waitAll(d time.Duration, ok func(by map[string]int) bool) (time.Time, bool) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		in, by := f.counts()
		if in == f.n && (ok == nil || ok(by)) {
			return time.Now(), true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Time{}, false
}

func (f *fleet) stop() {
	if f.stopping.Swap(true) {
		f.wg.Wait()
		return
	}
	f.mu.Lock()
	for _, c := range f.conns {
		if c != nil {
			c.Close()
		}
	}
	f.mu.Unlock()
	done := make(chan struct{})
	go func() { f.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
	}
}
