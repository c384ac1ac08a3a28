package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cws "github.com/coder/websocket"
	"github.com/gorilla/websocket"
)

// Backends choose their behaviour from the query string, which wsgate passes
// through untouched: b=<behaviour>, p=<probe id>, plus per-behaviour values.
// A probe lets the test see what the backend saw.

// ---------------------------------------------------------------- probes

type reqInfo struct {
	backend string // "gorilla", "coder" or "raw"
	method  string
	uri     string
	host    string
	proto   string
	header  http.Header
}

// closeInfo is how a backend session ended: the Close it received (code,
// text; code 1005 for an empty Close), or code -1 with err when it ended
// without a Close frame.
type closeInfo struct {
	code   int
	text   string
	masked bool // raw backends: whether the Close frame was masked
	err    error
}

type probe struct {
	id      string
	reqs    chan reqInfo
	closes  chan closeInfo
	pings   chan string
	frames  chan frame    // raw backends: every frame received
	events  chan string   // free-form backend events
	release chan struct{} // closed by the test to let a backend go on
	relOnce sync.Once

	rawResponse []byte // raw backend, b=status: bytes to answer with
}

var (
	probes   sync.Map // id -> *probe
	probeSeq atomic.Int64
)

func newProbe(t testing.TB) *probe {
	p := &probe{
		id:      strconv.FormatInt(probeSeq.Add(1), 10),
		reqs:    make(chan reqInfo, 64),
		closes:  make(chan closeInfo, 64),
		pings:   make(chan string, 64),
		frames:  make(chan frame, 1024),
		events:  make(chan string, 64),
		release: make(chan struct{}),
	}
	probes.Store(p.id, p)
	t.Cleanup(func() {
		p.releaseNow()
		probes.Delete(p.id)
	})
	return p
}

func (p *probe) releaseNow() { p.relOnce.Do(func() { close(p.release) }) }

func lookupProbe(q string) *probe {
	if v, ok := probes.Load(q); ok {
		return v.(*probe)
	}
	return nil
}

// The record methods never block: a probe nobody looks at must not stall a
// backend.
func (p *probe) recordReq(ri reqInfo) {
	if p != nil {
		select {
		case p.reqs <- ri:
		default:
		}
	}
}

func (p *probe) recordClose(ci closeInfo) {
	if p != nil {
		select {
		case p.closes <- ci:
		default:
		}
	}
}

func (p *probe) recordPing(s string) {
	if p != nil {
		select {
		case p.pings <- s:
		default:
		}
	}
}

func (p *probe) recordFrame(f frame) {
	if p != nil {
		select {
		case p.frames <- f:
		default:
		}
	}
}

func (p *probe) event(s string) {
	if p != nil {
		select {
		case p.events <- s:
		default:
		}
	}
}

// q appends the probe id to a query string.
func (p *probe) q(path string) string {
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	return path + sep + "p=" + p.id
}

func (p *probe) expectReq(t testing.TB) reqInfo {
	t.Helper()
	select {
	case ri := <-p.reqs:
		return ri
	case <-time.After(10 * time.Second):
		t.Fatalf("backend never received the request (probe %s)", p.id)
	}
	return reqInfo{}
}

// expectClose waits for the backend session to end and requires that it
// received a Close with code.
func (p *probe) expectClose(t testing.TB, code int, d time.Duration) closeInfo {
	t.Helper()
	select {
	case ci := <-p.closes:
		if ci.code != code {
			t.Errorf("backend received close code %d (%q, err %v), want %d", ci.code, ci.text, ci.err, code)
		}
		return ci
	case <-time.After(d):
		t.Errorf("backend session did not end within %v (want it to receive Close %d)", d, code)
	}
	return closeInfo{}
}

func (p *probe) expectEvent(t testing.TB, want string, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case ev := <-p.events:
			if ev == want {
				return
			}
		case <-deadline:
			t.Fatalf("backend event %q did not happen within %v", want, d)
		}
	}
}

func infoFromRequest(backend string, r *http.Request) reqInfo {
	return reqInfo{backend: backend, method: r.Method, uri: r.RequestURI, host: r.Host, proto: r.Proto, header: r.Header.Clone()}
}

// ---------------------------------------------------------------- backends

type httpBackend struct {
	name string
	addr string
	srv  *http.Server
	ln   net.Listener
}

func (b *httpBackend) close() {
	b.srv.Close()
}

type backends struct {
	gorilla *httpBackend
	coder   *httpBackend
	raw     *rawBackend
}

func (b *backends) close() {
	b.gorilla.close()
	b.coder.close()
	b.raw.close()
}

func sharedBackends(t testing.TB) *backends {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.be == nil {
		g, err := startHTTPBackend("gorilla", http.HandlerFunc(gorillaHandler))
		if err != nil {
			t.Fatal(err)
		}
		c, err := startHTTPBackend("coder", http.HandlerFunc(coderHandler))
		if err != nil {
			t.Fatal(err)
		}
		r, err := startRawBackend()
		if err != nil {
			t.Fatal(err)
		}
		shared.be = &backends{gorilla: g, coder: c, raw: r}
	}
	return shared.be
}

func startHTTPBackend(name string, h http.Handler) (*httpBackend, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	// No timeouts: wsgate keeps idle pre-connected TCP connections to its
	// backends, which must stay open until used.
	srv := &http.Server{Handler: h, ErrorLog: nil}
	go srv.Serve(ln)
	return &httpBackend{name: name, addr: ln.Addr().String(), srv: srv, ln: ln}, nil
}

var gorillaUpgrader = websocket.Upgrader{
	ReadBufferSize:  32 << 10,
	WriteBufferSize: 32 << 10,
	Subprotocols:    []string{"chat.v1", "chat.v2"},
	CheckOrigin:     func(*http.Request) bool { return true },
}

var gorillaDeflateUpgrader = func() websocket.Upgrader {
	u := gorillaUpgrader
	u.EnableCompression = true
	return u
}()

// gorillaHandler is the gorilla/websocket backend. Behaviours (b=):
//
//	echo (default)  echo every message with its type
//	status          answer code=<n> with a fixed body instead of upgrading
//	close           after the first message, send Close code=<n> reason=<s>
//	push            send 64 KiB binary messages until max=<bytes> or an error
//	sink            do not read until the test releases the probe, then read all
//	sendbig         after the first message, send a message of n=<bytes>
//	slowread        read one message at ~3 MB/s, answer "got <n>", then echo
//
// deflate=1 enables permessage-deflate; setcookie=1 adds a Set-Cookie.
func gorillaHandler(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	pr := lookupProbe(q.Get("p"))
	pr.recordReq(infoFromRequest("gorilla", r))
	b := q.Get("b")
	if b == "status" {
		code, _ := strconv.Atoi(q.Get("code"))
		w.Header().Set("WWW-Authenticate", `Basic realm="e2e"`)
		w.Header().Set("X-Backend-Detail", "status-"+q.Get("code"))
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(code)
		fmt.Fprintf(w, "backend says %d: %s\n", code, strings.Repeat("z", 300))
		return
	}
	up := gorillaUpgrader
	if q.Get("deflate") == "1" {
		up = gorillaDeflateUpgrader
	}
	var respHdr http.Header
	if q.Get("setcookie") == "1" {
		respHdr = http.Header{"Set-Cookie": {"srv=xyz; Path=/"}}
	}
	conn, err := up.Upgrade(w, r, respHdr)
	if err != nil {
		pr.event("upgrade failed: " + err.Error())
		return
	}
	defer conn.Close()
	conn.SetReadLimit(64 << 20)
	deadline := time.Now().Add(90 * time.Second)
	conn.SetReadDeadline(deadline)
	conn.SetPingHandler(func(s string) error {
		pr.recordPing(s)
		err := conn.WriteControl(websocket.PongMessage, []byte(s), time.Now().Add(5*time.Second))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		return err
	})
	recordErr := func(err error) {
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			pr.recordClose(closeInfo{code: ce.Code, text: ce.Text, masked: true})
			return
		}
		pr.recordClose(closeInfo{code: -1, err: err})
	}

	switch b {
	case "close":
		if _, _, err := conn.ReadMessage(); err != nil {
			recordErr(err)
			return
		}
		code, _ := strconv.Atoi(q.Get("code"))
		conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, q.Get("reason")), time.Now().Add(5*time.Second))
		pr.event("close sent")
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				recordErr(err)
				return
			}
		}
	case "push":
		max, _ := strconv.ParseInt(q.Get("max"), 10, 64)
		readDone := make(chan struct{})
		go func() {
			defer close(readDone)
			for {
				if _, _, err := conn.ReadMessage(); err != nil {
					recordErr(err)
					return
				}
			}
		}()
		msg := make([]byte, 64<<10)
		var sent int64
		stop := time.Now().Add(30 * time.Second)
		for sent < max && time.Now().Before(stop) {
			conn.SetWriteDeadline(time.Now().Add(20 * time.Second))
			if err := conn.WriteMessage(websocket.BinaryMessage, msg); err != nil {
				break
			}
			sent += int64(len(msg))
		}
		pr.event(fmt.Sprintf("push stopped after %d bytes", sent))
		<-readDone
	case "sink":
		pr.event("sinking")
		select {
		case <-pr.release:
		case <-time.After(60 * time.Second):
		}
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				recordErr(err)
				return
			}
		}
	case "slowread":
		// Read one message at about 3 MB/s (32 KiB every 10ms), answer
		// "got <n>", then echo. A slow reader is still a reader.
		_, r, err := conn.NextReader()
		if err != nil {
			recordErr(err)
			return
		}
		buf := make([]byte, 32<<10)
		total := 0
		for {
			n, err := r.Read(buf)
			total += n
			if err == io.EOF {
				break
			}
			if err != nil {
				recordErr(err)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		conn.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf("got %d", total)))
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				recordErr(err)
				return
			}
		}
	case "sendbig":
		n, _ := strconv.Atoi(q.Get("n"))
		if _, _, err := conn.ReadMessage(); err != nil {
			recordErr(err)
			return
		}
		conn.WriteMessage(websocket.BinaryMessage, make([]byte, n))
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				recordErr(err)
				return
			}
		}
	default: // echo
		for {
			mt, msg, err := conn.ReadMessage()
			if err != nil {
				recordErr(err)
				return
			}
			if err := conn.WriteMessage(mt, msg); err != nil {
				pr.event("write failed: " + err.Error())
				// keep reading to see how the session ends
			}
		}
	}
}

// coderHandler is the coder/websocket backend: an echo server.
func coderHandler(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	pr := lookupProbe(q.Get("p"))
	pr.recordReq(infoFromRequest("coder", r))
	c, err := cws.Accept(w, r, &cws.AcceptOptions{
		Subprotocols:       []string{"chat.v1", "chat.v2"},
		InsecureSkipVerify: true,
	})
	if err != nil {
		pr.event("accept failed: " + err.Error())
		return
	}
	defer c.CloseNow()
	c.SetReadLimit(64 << 20)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for {
		typ, data, err := c.Read(ctx)
		if err != nil {
			code := int(cws.CloseStatus(err))
			if code == -1 {
				pr.recordClose(closeInfo{code: -1, err: err})
			} else {
				var ce cws.CloseError
				errors.As(err, &ce)
				pr.recordClose(closeInfo{code: code, text: ce.Reason, masked: true})
			}
			return
		}
		if err := c.Write(ctx, typ, data); err != nil {
			pr.event("write failed: " + err.Error())
		}
	}
}

// ---------------------------------------------------------------- raw backend

// rawBackend is a hand-written WebSocket server over TCP, able to misbehave.
// Behaviours (b=) after a correct 101:
//
//	record      echo every frame back as is (unmasked), recording it; on Close,
//	            echo it and wait for EOF
//	kill        after the first frame, close TCP without a Close (rst=1: RST)
//	bad         after the first frame, send the frame given by
//	            kind=<masked|reservedop|reservedctl|rsv1|fragping|cont|longping>,
//	            then record the Close received
//	status      do not upgrade: write probe.rawResponse and close
type rawBackend struct {
	ln    net.Listener
	addr  string
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func startRawBackend() (*rawBackend, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	rb := &rawBackend{ln: ln, addr: ln.Addr().String(), conns: map[net.Conn]struct{}{}}
	rb.wg.Add(1)
	go func() {
		defer rb.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			rb.mu.Lock()
			rb.conns[c] = struct{}{}
			rb.mu.Unlock()
			rb.wg.Add(1)
			go func() {
				defer rb.wg.Done()
				defer func() {
					c.Close()
					rb.mu.Lock()
					delete(rb.conns, c)
					rb.mu.Unlock()
				}()
				rb.serve(c)
			}()
		}
	}()
	return rb, nil
}

func (rb *rawBackend) close() {
	rb.ln.Close()
	rb.mu.Lock()
	for c := range rb.conns {
		c.Close()
	}
	rb.mu.Unlock()
	rb.wg.Wait()
}

func (rb *rawBackend) serve(c net.Conn) {
	br := bufio.NewReader(c)
	// A pre-connected idle connection waits here until wsgate uses it.
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	c.SetDeadline(time.Now().Add(60 * time.Second))
	q := req.URL.Query()
	pr := lookupProbe(q.Get("p"))
	pr.recordReq(infoFromRequest("raw", req))
	if q.Get("b") == "status" {
		if pr != nil {
			c.Write(pr.rawResponse)
		}
		return
	}
	key := req.Header.Get("Sec-WebSocket-Key")
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + acceptFor(key) + "\r\n\r\n"
	if _, err := c.Write([]byte(resp)); err != nil {
		return
	}
	send := func(f frame) error {
		_, err := c.Write(encodeFrame(f))
		return err
	}
	// awaitClose reads until a Close, records it, answers it and waits for EOF.
	awaitClose := func() {
		for {
			f, err := readFrame(br, 64<<20)
			if err != nil {
				pr.recordClose(closeInfo{code: -1, err: err})
				return
			}
			pr.recordFrame(f)
			if f.Op == opClose {
				code, reason, perr := parseClosePayload(f.Payload)
				if perr != nil {
					code = -1
				}
				pr.recordClose(closeInfo{code: code, text: reason, masked: f.Masked, err: perr})
				// Answer and close TCP first, as a server should (RFC 6455 7.1.1).
				send(frame{Fin: true, Op: opClose, Payload: f.Payload})
				return
			}
		}
	}
	// next reads and records a frame; ok is false once the connection
	// has ended (recorded as a close without a Close frame).
	next := func() (f frame, ok bool) {
		f, err := readFrame(br, 64<<20)
		if err != nil {
			pr.recordClose(closeInfo{code: -1, err: err})
			return f, false
		}
		pr.recordFrame(f)
		return f, true
	}
	switch q.Get("b") {
	case "mute":
		// Records what comes, Close included, and never answers: the
		// closing handshake is left to wsgate's close_timeout.
		for {
			if _, ok := next(); !ok {
				return
			}
		}
	case "record":
		for {
			f, ok := next()
			if !ok {
				return
			}
			if f.Op == opClose {
				code, reason, perr := parseClosePayload(f.Payload)
				if perr != nil {
					code = -1
				}
				pr.recordClose(closeInfo{code: code, text: reason, masked: f.Masked, err: perr})
				// Answer and close TCP first, as a server should (RFC 6455 7.1.1).
				send(frame{Fin: true, Op: opClose, Payload: f.Payload})
				return
			}
			echo := f
			echo.Masked = false
			if err := send(echo); err != nil {
				return
			}
		}
	case "kill":
		f, err := readFrame(br, 64<<20)
		if err != nil {
			return
		}
		pr.recordFrame(f)
		if q.Get("rst") == "1" {
			c.(*net.TCPConn).SetLinger(0)
		}
		pr.event("killing")
		return // deferred Close
	case "bad":
		f, err := readFrame(br, 64<<20)
		if err != nil {
			pr.recordClose(closeInfo{code: -1, err: err})
			return
		}
		pr.recordFrame(f)
		var bad frame
		switch q.Get("kind") {
		case "masked":
			bad = frame{Fin: true, Op: opText, Masked: true, Payload: []byte("masked by backend")}
		case "reservedop":
			bad = frame{Fin: true, Op: 0x3, Payload: []byte("op3")}
		case "reservedctl":
			bad = frame{Fin: true, Op: 0xB, Payload: []byte("opB")}
		case "rsv1":
			bad = frame{Fin: true, Rsv: rsv1, Op: opText, Payload: []byte("rsv1")}
		case "fragping":
			bad = frame{Fin: false, Op: opPing, Payload: []byte("frag")}
		case "cont":
			bad = frame{Fin: true, Op: opCont, Payload: []byte("orphan")}
		case "longping":
			bad = frame{Fin: true, Op: opPing, Payload: make([]byte, 126)}
		default:
			pr.event("unknown kind")
			return
		}
		if err := send(bad); err != nil {
			pr.recordClose(closeInfo{code: -1, err: err})
			return
		}
		awaitClose()
	default:
		awaitClose()
	}
}
