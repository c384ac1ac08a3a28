package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// clientViolations are client-side protocol violations: each must get
// Close 1002 to the client and Close 1001 to the backend.
// In WSGATE_E2E_DIRECT=1 mode they are sent straight to the gorilla backend,
// which must answer 1002 too (a check of the test's bytes by an independent
// implementation), except where gorilla does not check.
var clientViolations = []struct {
	name  string
	bytes func() []byte
}{
	{"unmasked-frame", func() []byte {
		return encodeFrame(frame{Fin: true, Op: opText, Masked: false, Payload: []byte("not masked")})
	}},
	{"reserved-opcode-3", func() []byte { return encodeFrame(frame{Fin: true, Op: 0x3, Masked: true, Payload: []byte("x")}) }},
	{"reserved-opcode-7", func() []byte { return encodeFrame(frame{Fin: true, Op: 0x7, Masked: true}) }},
	{"reserved-control-opcode-B", func() []byte { return encodeFrame(frame{Fin: true, Op: 0xB, Masked: true}) }},
	{"reserved-control-opcode-F", func() []byte { return encodeFrame(frame{Fin: true, Op: 0xF, Masked: true}) }},
	{"rsv1-without-deflate", func() []byte {
		return encodeFrame(frame{Fin: true, Rsv: rsv1, Op: opText, Masked: true, Payload: []byte("x")})
	}},
	{"rsv2", func() []byte {
		return encodeFrame(frame{Fin: true, Rsv: rsv2, Op: opBinary, Masked: true, Payload: []byte("x")})
	}},
	{"rsv3", func() []byte {
		return encodeFrame(frame{Fin: true, Rsv: rsv3, Op: opBinary, Masked: true, Payload: []byte("x")})
	}},
	{"fragmented-ping", func() []byte { return encodeFrame(frame{Fin: false, Op: opPing, Masked: true, Payload: []byte("p")}) }},
	{"fragmented-close", func() []byte {
		return encodeFrame(frame{Fin: false, Op: opClose, Masked: true, Payload: closePayload(1000, "")})
	}},
	{"ping-126-bytes", func() []byte {
		return encodeFrame(frame{Fin: true, Op: opPing, Masked: true, Payload: make([]byte, 126)})
	}},
	{"continuation-without-start", func() []byte {
		return encodeFrame(frame{Fin: true, Op: opCont, Masked: true, Payload: []byte("orphan")})
	}},
	{"new-message-inside-fragmented", func() []byte {
		b := encodeFrame(frame{Fin: false, Op: opText, Masked: true, Payload: []byte("first ")})
		return append(b, encodeFrame(frame{Fin: true, Op: opText, Masked: true, Payload: []byte("second")})...)
	}},
	{"non-minimal-length", func() []byte {
		// 5-byte payload with a 16-bit length: RFC 6455 5.2 requires the minimal encoding.
		return []byte{0x81, 0x80 | 126, 0x00, 0x05, 1, 2, 3, 4, 'h' ^ 1, 'e' ^ 2, 'l' ^ 3, 'l' ^ 4, 'o' ^ 1}
	}},
	{"close-1-byte-payload", func() []byte { return encodeFrame(frame{Fin: true, Op: opClose, Masked: true, Payload: []byte{0x03}}) }},
}

var gorillaDoesNotCheck = map[string]bool{"non-minimal-length": true, "close-1-byte-payload": true}

// TestClientProtocolViolations: each offending client frame, sent on a raw
// socket after a good echo, gets Close 1002 to the client and Close 1001 to
// the backend; the connection is then closed.
func TestClientProtocolViolations(t *testing.T) {
	e := sharedEnv(t)
	for _, tc := range clientViolations {
		t.Run(tc.name, func(t *testing.T) {
			if e.proxy == nil && gorillaDoesNotCheck[tc.name] {
				t.Skip("gorilla does not check this; only wsgate is tested for it")
			}
			pr := newProbe(t)
			path := pr.q("/g/violation?b=echo")
			c := rawUpgrade(t, e.addrFor(path), path, nil)
			c.echo("fine so far")
			if err := c.writeRaw(tc.bytes()); err != nil {
				t.Fatalf("write: %v", err)
			}
			c.expectClose(1002, 5*time.Second)
			c.replyClose(1002)
			if e.proxy != nil {
				pr.expectClose(t, 1001, 5*time.Second)
			}
		})
	}
}

// TestBackendProtocolViolations: each offending backend frame gets Close
// 1014 to the client and a masked Close 1002 to the backend.
//
// In WSGATE_E2E_DIRECT=1 mode a gorilla client talks to the raw backend
// directly and must itself answer each frame with a masked Close 1002 (a
// check of the raw backend's bytes by an independent implementation).
func TestBackendProtocolViolations(t *testing.T) {
	e := sharedEnv(t)
	for _, kind := range []string{"masked", "reservedop", "reservedctl", "rsv1", "fragping", "cont", "longping"} {
		t.Run(kind, func(t *testing.T) {
			pr := newProbe(t)
			path := pr.q("/raw/bad?b=bad&kind=" + kind)
			if e.proxy == nil {
				gc, _ := dialGorilla(t, e.url(path), nil, nil)
				gc.WriteMessage(websocket.TextMessage, []byte("go"))
				if _, _, err := gc.ReadMessage(); err == nil {
					t.Fatalf("gorilla accepted the backend's %s frame", kind)
				}
				ci := pr.expectClose(t, 1002, 5*time.Second)
				if !ci.masked {
					t.Errorf("gorilla's Close was not masked")
				}
				return
			}
			c := rawUpgrade(t, e.proxy.addr, path, nil)
			c.sendText("go")
			c.expectClose(1014, 5*time.Second)
			c.replyClose(1014)
			ci := pr.expectClose(t, 1002, 5*time.Second)
			if ci.code == 1002 && !ci.masked {
				t.Errorf("Close 1002 to the backend was not masked (wsgate is the client there)")
			}
		})
	}
}

// TestBackendTCPLost: a backend that drops TCP without a Close (FIN or RST)
// gets Close 1012 sent to the client.
func TestBackendTCPLost(t *testing.T) {
	needBinary(t)
	e := sharedEnv(t)
	for _, rst := range []string{"0", "1"} {
		t.Run("rst="+rst, func(t *testing.T) {
			pr := newProbe(t)
			path := pr.q("/raw/kill?b=kill&rst=" + rst)
			c := rawUpgrade(t, e.proxy.addr, path, nil)
			c.sendText("go")
			pr.expectEvent(t, "killing", 5*time.Second)
			c.expectClose(1012, 5*time.Second)
			c.replyClose(1012)
		})
	}
}

// TestMessageTooBig: with max_message_bytes = 1KiB, 1024 bytes (whole or
// fragmented) pass; 1025 gets 1009 to the sender and 1001 to the other side.
func TestMessageTooBig(t *testing.T) {
	be := sharedBackends(t)
	p := startProxy(t, map[string]string{"max_message_bytes": `"1KiB"`},
		[]routeCfg{{"*", "/", "gorilla"}},
		[]poolCfg{{"gorilla", 1, []string{be.gorilla.addr}}})

	t.Run("exactly-limit-single", func(t *testing.T) {
		c := rawUpgrade(t, p.addr, "/ok?b=echo", nil)
		msg := string(payload(1024, true, 1))
		c.echo(msg)
		c.send(frame{Fin: true, Op: opClose, Payload: closePayload(1000, "")})
		c.expectClose(1000, 5*time.Second)
		c.expectEOF(5 * time.Second)
	})
	t.Run("exactly-limit-fragmented", func(t *testing.T) {
		c := rawUpgrade(t, p.addr, "/ok?b=echo", nil)
		msg := payload(1024, false, 2)
		c.send(frame{Fin: false, Op: opBinary, Payload: msg[:512]})
		c.send(frame{Fin: true, Op: opCont, Payload: msg[512:]})
		f := c.expectFrame(5 * time.Second)
		if f.Op != opBinary || !f.Fin || string(f.Payload) != string(msg) {
			t.Fatalf("echo: %v", f)
		}
		c.send(frame{Fin: true, Op: opClose, Payload: closePayload(1000, "")})
		c.expectClose(1000, 5*time.Second)
		c.expectEOF(5 * time.Second)
	})
	for _, tc := range []struct {
		name  string
		parts []int
	}{{"client-1025-single", []int{1025}}, {"client-1025-fragmented", []int{600, 425}}, {"client-fragments-over-limit", []int{400, 400, 400}}} {
		t.Run(tc.name, func(t *testing.T) {
			pr := newProbe(t)
			c := rawUpgrade(t, p.addr, pr.q("/big?b=echo"), nil)
			c.echo("small is fine")
			for i, n := range tc.parts {
				op := opCont
				if i == 0 {
					op = opBinary
				}
				if err := c.writeRaw(encodeFrame(frame{Fin: i == len(tc.parts)-1, Op: op, Masked: true, Payload: payload(n, false, uint64(i))})); err != nil {
					break // wsgate may stop reading once the limit is crossed
				}
			}
			c.expectClose(1009, 5*time.Second)
			c.replyClose(1009)
			pr.expectClose(t, 1001, 5*time.Second)
		})
	}
	t.Run("backend-1025", func(t *testing.T) {
		pr := newProbe(t)
		c := rawUpgrade(t, p.addr, pr.q("/big?b=sendbig&n=1025"), nil)
		c.sendText("send it")
		c.expectClose(1001, 5*time.Second)
		c.replyClose(1001)
		pr.expectClose(t, 1009, 5*time.Second)
	})
}

// TestIdleTimeout: with idle_timeout = 1s, traffic every 300ms keeps a
// session open; once silent it gets Close 1001 on both sides after ~1s.
func TestIdleTimeout(t *testing.T) {
	be := sharedBackends(t)
	p := startProxy(t, map[string]string{"idle_timeout": `"1s"`},
		[]routeCfg{{"*", "/", "gorilla"}},
		[]poolCfg{{"gorilla", 1, []string{be.gorilla.addr}}})
	pr := newProbe(t)
	c := rawUpgrade(t, p.addr, pr.q("/idle?b=echo"), nil)
	var last time.Time
	for i := range 8 { // 2.4s of activity, longer than idle_timeout
		if i > 0 {
			time.Sleep(300 * time.Millisecond)
		}
		c.echo(fmt.Sprintf("keepalive %d", i))
		last = time.Now()
	}
	c.expectClose(1001, 4*time.Second)
	idle := time.Since(last)
	if idle < 700*time.Millisecond || idle > 2500*time.Millisecond {
		t.Errorf("closed after %v of silence, want about idle_timeout=1s", idle)
	}
	c.replyClose(1001)
	pr.expectClose(t, 1001, 5*time.Second)
}
