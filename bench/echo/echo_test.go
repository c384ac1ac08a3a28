package echo_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	cws "github.com/coder/websocket"
	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/bench/echo"
)

// start serves an echo server on a loopback port for the test's lifetime.
func start(t *testing.T, cfg echo.Config) (*echo.Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := echo.New(cfg)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, echo.ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
	})
	return srv, ln.Addr().String()
}

func dialGorilla(t *testing.T, addr string, d *websocket.Dialer) *websocket.Conn {
	t.Helper()
	if d == nil {
		d = &websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	}
	c, _, err := d.Dial("ws://"+addr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	return c
}

func TestHealthGET(t *testing.T) {
	_, addr := start(t, echo.Config{})
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "wsecho\n" {
		t.Fatalf("GET / = %d %q", resp.StatusCode, body)
	}
	resp, err = http.Post("http://"+addr+"/", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Fatalf("POST / = %d", resp.StatusCode)
	}
}

func TestEchoGorilla(t *testing.T) {
	_, addr := start(t, echo.Config{})
	c := dialGorilla(t, addr, nil)
	big := make([]byte, 300<<10) // larger than the read buffer: streamed
	rand.Read(big)
	cases := []struct {
		typ  int
		data []byte
	}{
		{websocket.TextMessage, []byte("hello")},
		{websocket.BinaryMessage, []byte{0, 1, 2, 3, 255}},
		{websocket.TextMessage, []byte{}},
		{websocket.BinaryMessage, bytes.Repeat([]byte("x"), 126)},
		{websocket.BinaryMessage, bytes.Repeat([]byte("y"), 70000)},
		{websocket.BinaryMessage, big},
		{websocket.TextMessage, []byte("after the big one")},
	}
	for _, tc := range cases {
		if err := c.WriteMessage(tc.typ, tc.data); err != nil {
			t.Fatal(err)
		}
		typ, got, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if typ != tc.typ || !bytes.Equal(got, tc.data) {
			t.Fatalf("echo of %d bytes type %d: got %d bytes type %d", len(tc.data), tc.typ, len(got), typ)
		}
	}
	// Pipelined messages come back in order.
	for i := range 100 {
		if err := c.WriteMessage(websocket.BinaryMessage, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 100 {
		_, got, err := c.ReadMessage()
		if err != nil || len(got) != 1 || got[0] != byte(i) {
			t.Fatalf("message %d: %v %v", i, got, err)
		}
	}
}

func TestFragmentedGorilla(t *testing.T) {
	_, addr := start(t, echo.Config{})
	// A 256-byte write buffer makes gorilla send a 5000-byte message as
	// many continuation frames.
	c := dialGorilla(t, addr, &websocket.Dialer{WriteBufferSize: 256, HandshakeTimeout: 10 * time.Second})
	msg := bytes.Repeat([]byte("fragment "), 555)
	w, err := c.NextWriter(websocket.TextMessage)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(msg)
	w.Close()
	typ, got, err := c.ReadMessage()
	if err != nil || typ != websocket.TextMessage || !bytes.Equal(got, msg) {
		t.Fatalf("fragmented echo: type %d, %d bytes, %v", typ, len(got), err)
	}
}

func TestPingPongGorilla(t *testing.T) {
	_, addr := start(t, echo.Config{})
	c := dialGorilla(t, addr, nil)
	pong := make(chan string, 1)
	c.SetPongHandler(func(data string) error { pong <- data; return nil })
	if err := c.WriteControl(websocket.PingMessage, []byte("are you there"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	c.WriteMessage(websocket.TextMessage, []byte("after ping"))
	_, got, err := c.ReadMessage() // runs the pong handler on the way
	if err != nil || string(got) != "after ping" {
		t.Fatal(got, err)
	}
	select {
	case p := <-pong:
		if p != "are you there" {
			t.Fatalf("pong payload %q", p)
		}
	default:
		t.Fatal("no pong before the echo")
	}
}

func TestCloseEchoGorilla(t *testing.T) {
	_, addr := start(t, echo.Config{})
	c := dialGorilla(t, addr, nil)
	if err := c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4001, "bye"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	_, _, err := c.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 4001 || ce.Text != "bye" {
		t.Fatalf("close reply: %v", err)
	}
	// The server closes TCP after the closing handshake.
	c.UnderlyingConn().SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, err := c.UnderlyingConn().Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("after close: read %d, %v; want EOF", n, err)
	}
}

func TestSubprotocolGorilla(t *testing.T) {
	_, addr := start(t, echo.Config{})
	c := dialGorilla(t, addr, &websocket.Dialer{Subprotocols: []string{"chat.v2", "other"}, HandshakeTimeout: 10 * time.Second})
	if p := c.Subprotocol(); p != "chat.v2" {
		t.Fatalf("subprotocol %q, want chat.v2", p)
	}
	c2 := dialGorilla(t, addr, nil)
	if p := c2.Subprotocol(); p != "" {
		t.Fatalf("subprotocol %q, want none", p)
	}
}

func TestCoderClient(t *testing.T) {
	_, addr := start(t, echo.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := cws.Dial(ctx, "ws://"+addr+"/", &cws.DialOptions{Subprotocols: []string{"mqtt", "graphql-ws"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	c.SetReadLimit(1 << 20)
	if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != "mqtt" || c.Subprotocol() != "mqtt" {
		t.Fatalf("subprotocol %q / %q", got, c.Subprotocol())
	}
	for _, m := range []struct {
		typ  cws.MessageType
		data []byte
	}{{cws.MessageText, []byte("héllo")}, {cws.MessageBinary, bytes.Repeat([]byte{7}, 40000)}} {
		if err := c.Write(ctx, m.typ, m.data); err != nil {
			t.Fatal(err)
		}
		typ, got, err := c.Read(ctx)
		if err != nil || typ != m.typ || !bytes.Equal(got, m.data) {
			t.Fatalf("echo: %v %d bytes %v", typ, len(got), err)
		}
	}
	// coder's Ping needs a concurrent Read to see the Pong: keep echoing
	// until it returns.
	pinged := make(chan error, 1)
	go func() { pinged <- c.Ping(ctx) }()
	for done := false; !done; {
		c.Write(ctx, cws.MessageText, []byte("."))
		if _, _, err := c.Read(ctx); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-pinged:
			if err != nil {
				t.Fatal(err)
			}
			done = true
		case <-time.After(10 * time.Millisecond):
		}
	}
	// Close performs the closing handshake and fails if it is not answered.
	if err := c.Close(4002, "done"); err != nil {
		t.Fatal(err)
	}
}

// Raw frames, written from RFC 6455 without any WebSocket library, check
// frame-by-frame behaviour: each fragment echoed with its opcode and FIN.

type rawFrame struct {
	fin     bool
	op      byte
	payload []byte
}

func rawDial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(nc, "GET /x HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("handshake: %d %v", resp.StatusCode, resp.Header)
	}
	return nc, br
}

func rawWrite(t *testing.T, w io.Writer, f rawFrame, masked bool) {
	t.Helper()
	b := []byte{f.op}
	if f.fin {
		b[0] |= 0x80
	}
	var mbit byte
	if masked {
		mbit = 0x80
	}
	switch n := len(f.payload); {
	case n < 126:
		b = append(b, mbit|byte(n))
	case n < 65536:
		b = append(b, mbit|126, byte(n>>8), byte(n))
	default:
		b = append(b, mbit|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	p := bytes.Clone(f.payload)
	if masked {
		key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
		b = append(b, key[:]...)
		for i := range p {
			p[i] ^= key[i%4]
		}
	}
	if _, err := w.Write(append(b, p...)); err != nil {
		t.Fatal(err)
	}
}

func rawRead(t *testing.T, r io.Reader) rawFrame {
	t.Helper()
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		t.Fatal(err)
	}
	if h[1]&0x80 != 0 {
		t.Fatal("server frame is masked")
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var e [2]byte
		io.ReadFull(r, e[:])
		n = uint64(binary.BigEndian.Uint16(e[:]))
	case 127:
		var e [8]byte
		io.ReadFull(r, e[:])
		n = binary.BigEndian.Uint64(e[:])
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		t.Fatal(err)
	}
	return rawFrame{fin: h[0]&0x80 != 0, op: h[0] & 0x0f, payload: p}
}

func TestFragmentsRaw(t *testing.T) {
	_, addr := start(t, echo.Config{})
	nc, br := rawDial(t, addr)
	frames := []rawFrame{
		{false, 0x1, []byte("hel")},
		{true, 0x9, []byte("ping!")}, // a control frame between fragments
		{false, 0x0, []byte("lo ")},
		{false, 0x0, bytes.Repeat([]byte("w"), 40000)}, // streamed fragment
		{true, 0x0, []byte("orld")},
		{true, 0x2, []byte{1, 2, 3}},
	}
	var all bytes.Buffer
	for _, f := range frames {
		rawWrite(t, &all, f, true)
	}
	nc.Write(all.Bytes()) // all in one write: the server sees them together
	for i, want := range frames {
		if want.op == 0x9 {
			want.op = 0xA
		}
		got := rawRead(t, br)
		if got.fin != want.fin || got.op != want.op || !bytes.Equal(got.payload, want.payload) {
			t.Fatalf("frame %d: got fin=%v op=%d %d bytes, want fin=%v op=%d %d bytes",
				i, got.fin, got.op, len(got.payload), want.fin, want.op, len(want.payload))
		}
	}
	// Close with an empty payload is answered with an empty Close.
	rawWrite(t, nc, rawFrame{true, 0x8, nil}, true)
	if got := rawRead(t, br); got.op != 0x8 || len(got.payload) != 0 {
		t.Fatalf("close reply %+v", got)
	}
}

func TestProtocolErrorsRaw(t *testing.T) {
	_, addr := start(t, echo.Config{})
	for name, f := range map[string]func(io.Writer){
		"unmasked":         func(w io.Writer) { rawWrite(t, w, rawFrame{true, 0x1, []byte("x")}, false) },
		"bad continuation": func(w io.Writer) { rawWrite(t, w, rawFrame{true, 0x0, []byte("x")}, true) },
		"reserved opcode":  func(w io.Writer) { rawWrite(t, w, rawFrame{true, 0x3, nil}, true) },
		"bad close code":   func(w io.Writer) { rawWrite(t, w, rawFrame{true, 0x8, []byte{0x03, 0xed}}, true) }, // 1005
		"fragmented ping":  func(w io.Writer) { rawWrite(t, w, rawFrame{false, 0x9, nil}, true) },
	} {
		t.Run(name, func(t *testing.T) {
			nc, br := rawDial(t, addr)
			f(nc)
			got := rawRead(t, br)
			if got.op != 0x8 || len(got.payload) < 2 || binary.BigEndian.Uint16(got.payload) != 1002 {
				t.Fatalf("got %+v, want Close 1002", got)
			}
		})
	}
}

func TestPush(t *testing.T) {
	srv, addr := start(t, echo.Config{PushInterval: 20 * time.Millisecond, PushSize: 100})
	c := dialGorilla(t, addr, nil)
	for range 3 {
		typ, got, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if typ != websocket.BinaryMessage || len(got) != 100 {
			t.Fatalf("push: type %d, %d bytes", typ, len(got))
		}
		ts := time.Unix(0, int64(binary.BigEndian.Uint64(got)))
		if d := time.Since(ts); d < 0 || d > 2*time.Second {
			t.Fatalf("push timestamp %v is %v away", ts, d)
		}
	}
	// Echo still works between pushes.
	c.WriteMessage(websocket.TextMessage, []byte("echo me"))
	for {
		typ, got, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if typ == websocket.TextMessage {
			if string(got) != "echo me" {
				t.Fatalf("echo %q", got)
			}
			break
		}
	}
	// The pusher counts a message after its write returns, so the client
	// may hold the third push before the count moves: wait for it.
	deadline := time.Now().Add(2 * time.Second)
	for srv.Stats().Pushed < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if st := srv.Stats(); st.Pushed < 3 || st.Upgraded != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestManyIdleConnections(t *testing.T) {
	srv, addr := start(t, echo.Config{})
	const n = 300
	conns := make([]*websocket.Conn, 0, n)
	for range n {
		conns = append(conns, dialGorilla(t, addr, nil))
	}
	if st := srv.Stats(); st.Active != n {
		t.Fatalf("active %d, want %d", st.Active, n)
	}
	for i, c := range conns {
		c.WriteMessage(websocket.BinaryMessage, []byte{byte(i)})
	}
	for i, c := range conns {
		if _, got, err := c.ReadMessage(); err != nil || got[0] != byte(i) {
			t.Fatalf("conn %d: %v %v", i, got, err)
		}
	}
	for _, c := range conns {
		c.Close()
	}
	deadline := time.Now().Add(3 * time.Second)
	for srv.Stats().Active != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if a := srv.Stats().Active; a != 0 {
		t.Fatalf("%d connections still active after clients closed", a)
	}
}

func TestLargeRequestHead(t *testing.T) {
	_, addr := start(t, echo.Config{})
	h := http.Header{"X-Big": {strings.Repeat("b", 6000)}}
	c, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/", h)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	c.WriteMessage(websocket.TextMessage, []byte("big head"))
	if _, got, err := c.ReadMessage(); err != nil || string(got) != "big head" {
		t.Fatal(got, err)
	}
	// A head larger than the read buffer is refused.
	h = http.Header{"X-Huge": {strings.Repeat("h", 40000)}}
	if _, resp, err := websocket.DefaultDialer.Dial("ws://"+addr+"/", h); err == nil || resp == nil || resp.StatusCode != 431 {
		t.Fatalf("huge head: %v %v", resp, err)
	}
}

// Frames sent in the same write as the upgrade request are not lost.
func TestFramesPipelinedWithHandshake(t *testing.T) {
	_, addr := start(t, echo.Config{})
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	var b bytes.Buffer
	b.WriteString("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: a, b\r\n\r\n")
	rawWrite(t, &b, rawFrame{true, 0x1, []byte("early")}, true)
	rawWrite(t, &b, rawFrame{true, 0x2, []byte("bird")}, true)
	nc.Write(b.Bytes())
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Protocol") != "a" {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	if f := rawRead(t, br); f.op != 1 || string(f.payload) != "early" {
		t.Fatalf("first echo %+v", f)
	}
	if f := rawRead(t, br); f.op != 2 || string(f.payload) != "bird" {
		t.Fatalf("second echo %+v", f)
	}
}
