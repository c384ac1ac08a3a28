package e2e

// A deliberately small RFC 6455 implementation of our own, independent of
// wsgate's frame package, used by raw clients and raw backends to send exact
// (and deliberately wrong) bytes and to see every frame as it is on the wire.

import (
	"bufio"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	opCont   byte = 0x0
	opText   byte = 0x1
	opBinary byte = 0x2
	opClose  byte = 0x8
	opPing   byte = 0x9
	opPong   byte = 0xA

	rsv1 byte = 0x4
	rsv2 byte = 0x2
	rsv3 byte = 0x1
)

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// frame is one WebSocket frame. Payload is always unmasked here; Masked
// tells whether it was (reading) or should be (writing) masked on the wire.
type frame struct {
	Fin     bool
	Rsv     byte // RSV1<<2 | RSV2<<1 | RSV3
	Op      byte
	Masked  bool
	Payload []byte
}

func (f frame) String() string {
	p := f.Payload
	suffix := ""
	if len(p) > 32 {
		p, suffix = p[:32], "..."
	}
	return fmt.Sprintf("frame{fin=%v rsv=%d op=%#x masked=%v len=%d payload=%q%s}", f.Fin, f.Rsv, f.Op, f.Masked, len(f.Payload), p, suffix)
}

// encodeFrame encodes f with the minimal length encoding, masking the payload
// with a random key when f.Masked.
func encodeFrame(f frame) []byte {
	b0 := f.Op&0x0f | (f.Rsv&0x7)<<4
	if f.Fin {
		b0 |= 0x80
	}
	n := len(f.Payload)
	out := make([]byte, 0, 14+n)
	out = append(out, b0)
	var b1 byte
	if f.Masked {
		b1 = 0x80
	}
	switch {
	case n <= 125:
		out = append(out, b1|byte(n))
	case n <= 0xffff:
		out = append(out, b1|126)
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	default:
		out = append(out, b1|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	if !f.Masked {
		return append(out, f.Payload...)
	}
	var key [4]byte
	if _, err := rand.Read(key[:]); err != nil {
		panic(err)
	}
	out = append(out, key[:]...)
	start := len(out)
	out = append(out, f.Payload...)
	for i := range n {
		out[start+i] ^= key[i&3]
	}
	return out
}

// readFrame reads one frame, refusing declared payloads over maxLen.
func readFrame(r io.Reader, maxLen int64) (frame, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return frame{}, err
	}
	f := frame{
		Fin:    h[0]&0x80 != 0,
		Rsv:    (h[0] >> 4) & 0x7,
		Op:     h[0] & 0x0f,
		Masked: h[1]&0x80 != 0,
	}
	n := int64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return frame{}, err
		}
		n = int64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return frame{}, err
		}
		u := binary.BigEndian.Uint64(b[:])
		if u>>63 != 0 {
			return frame{}, fmt.Errorf("64-bit length with MSB set")
		}
		n = int64(u)
	}
	if n > maxLen {
		return frame{}, fmt.Errorf("frame declares %d payload bytes, over the test's limit %d", n, maxLen)
	}
	var key [4]byte
	if f.Masked {
		if _, err := io.ReadFull(r, key[:]); err != nil {
			return frame{}, err
		}
	}
	f.Payload = make([]byte, n)
	if _, err := io.ReadFull(r, f.Payload); err != nil {
		return frame{}, err
	}
	if f.Masked {
		for i := range f.Payload {
			f.Payload[i] ^= key[i&3]
		}
	}
	return f, nil
}

func closePayload(code int, reason string) []byte {
	p := binary.BigEndian.AppendUint16(nil, uint16(code))
	return append(p, reason...)
}

// parseClosePayload returns the code (1005 when the payload is empty) and reason.
func parseClosePayload(p []byte) (int, string, error) {
	switch {
	case len(p) == 0:
		return 1005, "", nil
	case len(p) == 1:
		return 0, "", fmt.Errorf("1-byte close payload")
	}
	return int(binary.BigEndian.Uint16(p)), string(p[2:]), nil
}

func newKey() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return base64.StdEncoding.EncodeToString(b[:])
}

func acceptFor(key string) string {
	h := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// isClosedErr reports whether err means the peer closed the TCP connection
// (FIN or RST), as opposed to a timeout.
func isClosedErr(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	return false
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded)
}

// hdr is an ordered header list for hand-written requests.
type hdr [][2]string

// upgradeHeaders is a valid WebSocket upgrade request's header list.
func upgradeHeaders(host string) hdr {
	return hdr{
		{"Host", host},
		{"Upgrade", "websocket"},
		{"Connection", "Upgrade"},
		{"Sec-WebSocket-Key", newKey()},
		{"Sec-WebSocket-Version", "13"},
	}
}

func (h hdr) get(k string) string {
	for _, kv := range h {
		if strings.EqualFold(kv[0], k) {
			return kv[1]
		}
	}
	return ""
}

// set replaces k's value, or appends it. An empty value removes it.
func (h hdr) set(k, v string) hdr {
	out := make(hdr, 0, len(h)+1)
	done := false
	for _, kv := range h {
		if strings.EqualFold(kv[0], k) {
			if !done && v != "" {
				out = append(out, [2]string{kv[0], v})
			}
			done = true
			continue
		}
		out = append(out, kv)
	}
	if !done && v != "" {
		out = append(out, [2]string{k, v})
	}
	return out
}

func (h hdr) add(k, v string) hdr { return append(append(hdr{}, h...), [2]string{k, v}) }

func requestBytes(method, target, proto string, h hdr) []byte {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s %s %s\r\n", method, target, proto)
	for _, kv := range h {
		fmt.Fprintf(&sb, "%s: %s\r\n", kv[0], kv[1])
	}
	sb.WriteString("\r\n")
	return []byte(sb.String())
}

// rawClient is a client speaking WebSocket by hand over a TCP connection.
type rawClient struct {
	t    testing.TB
	conn net.Conn
	br   *bufio.Reader
	resp *http.Response
}

// dialTCP connects to addr with an overall 30s deadline and closes the
// connection at the end of the test.
func dialTCP(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

// rawRequest sends request bytes on a new connection and reads the response
// head (and body per its framing). The connection stays open.
func rawRequest(t testing.TB, addr string, req []byte) (*rawClient, *http.Response) {
	t.Helper()
	c := dialTCP(t, addr)
	if _, err := c.Write(req); err != nil {
		t.Fatalf("write request: %v", err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read response to %q: %v", firstLine(req), err)
	}
	return &rawClient{t: t, conn: c, br: br, resp: resp}, resp
}

func firstLine(b []byte) string {
	s := string(b)
	if i := strings.Index(s, "\r\n"); i >= 0 {
		return s[:i]
	}
	return s
}

// rawUpgrade performs a WebSocket handshake by hand and requires a 101 with
// the right Sec-WebSocket-Accept.
func rawUpgrade(t testing.TB, addr, target string, h hdr) *rawClient {
	t.Helper()
	if h == nil {
		h = upgradeHeaders(addr)
	}
	rc, resp := rawRequest(t, addr, requestBytes("GET", target, "HTTP/1.1", h))
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		t.Fatalf("upgrade %s: status %d, want 101; body %q", target, resp.StatusCode, body)
	}
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), acceptFor(h.get("Sec-WebSocket-Key")); got != want {
		t.Fatalf("upgrade %s: Sec-WebSocket-Accept %q, want %q", target, got, want)
	}
	return rc
}

func (c *rawClient) writeRaw(b []byte) error {
	c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := c.conn.Write(b)
	return err
}

// send writes f masked (as a client must) unless noMask.
func (c *rawClient) send(f frame) {
	c.t.Helper()
	f.Masked = true
	if err := c.writeRaw(encodeFrame(f)); err != nil {
		c.t.Fatalf("write %v: %v", f, err)
	}
}

func (c *rawClient) sendText(s string) {
	c.t.Helper()
	c.send(frame{Fin: true, Op: opText, Payload: []byte(s)})
}

// next reads the next frame within d.
func (c *rawClient) next(d time.Duration) (frame, error) {
	c.conn.SetReadDeadline(time.Now().Add(d))
	return readFrame(c.br, 64<<20)
}

// expectFrame reads the next frame and requires it to be a server frame
// (unmasked).
func (c *rawClient) expectFrame(d time.Duration) frame {
	c.t.Helper()
	f, err := c.next(d)
	if err != nil {
		c.t.Fatalf("reading frame: %v", err)
	}
	if f.Masked {
		c.t.Fatalf("server-to-client frame is masked: %v", f)
	}
	return f
}

// expectData reads the next frame and requires an unfragmented data frame.
func (c *rawClient) expectData(op byte, payload string) {
	c.t.Helper()
	f := c.expectFrame(10 * time.Second)
	if !f.Fin || f.Op != op || f.Rsv != 0 || string(f.Payload) != payload {
		c.t.Fatalf("got %v, want fin op=%#x payload %q", f, op, payload)
	}
}

// echo sends a text message and requires it back.
func (c *rawClient) echo(s string) {
	c.t.Helper()
	c.sendText(s)
	c.expectData(opText, s)
}

// expectClose reads the next frame within d and requires a Close with code.
// It returns the reason.
func (c *rawClient) expectClose(code int, d time.Duration) string {
	c.t.Helper()
	f, err := c.next(d)
	if err != nil {
		c.t.Fatalf("want Close %d, got read error: %v", code, err)
	}
	if f.Masked {
		c.t.Errorf("Close frame to the client is masked")
	}
	if f.Op != opClose {
		c.t.Fatalf("want Close %d, got %v", code, f)
	}
	got, reason, err := parseClosePayload(f.Payload)
	if err != nil {
		c.t.Fatalf("Close payload: %v", err)
	}
	if got != code {
		c.t.Fatalf("got Close %d %q, want Close %d", got, reason, code)
	}
	return reason
}

// replyClose answers a received Close (write errors are ignored: after a
// protocol error the peer may already have closed the connection) and
// requires the TCP connection to be closed by the peer within 5s.
func (c *rawClient) replyClose(code int) {
	c.t.Helper()
	_ = c.writeRaw(encodeFrame(frame{Fin: true, Op: opClose, Masked: true, Payload: closePayload(code, "")}))
	c.expectEOF(5 * time.Second)
}

// expectEOF requires the peer to close the TCP connection within d with no
// further frames.
func (c *rawClient) expectEOF(d time.Duration) {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(d))
	b := make([]byte, 512)
	n, err := c.br.Read(b)
	if n > 0 {
		c.t.Fatalf("want the connection closed, got %d more bytes: %q", n, b[:n])
	}
	if !isClosedErr(err) {
		c.t.Fatalf("want the connection closed within %v, got %v", d, err)
	}
}

// expectOpen requires that nothing arrives and the connection stays open for d.
func (c *rawClient) expectOpen(d time.Duration) {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(d))
	b := make([]byte, 1)
	n, err := c.br.Read(b)
	if n > 0 || !isTimeout(err) {
		c.t.Fatalf("connection should stay open and quiet for %v, got n=%d err=%v", d, n, err)
	}
}
