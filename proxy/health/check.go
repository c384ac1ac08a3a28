package health

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gobwas/ws"
)

const (
	// maxHeadBytes caps the status line and headers we are willing to read:
	// a backend streaming an endless header must fail, not eat memory until
	// the timeout.
	maxHeadBytes = 16 << 10
	// maxSkipFrames and maxSkipBytes bound what a WebSocket check discards
	// while waiting for its Pong: a backend that greets every connection
	// with data is fine, one that floods it is not healthy.
	maxSkipFrames = 64
	maxSkipBytes  = 1 << 20
	// closeWait is how long a WebSocket check waits for the backend's Close
	// after its Pong already proved the backend alive. It only spares the
	// backend an abnormal-closure log line, so it is short and never fails
	// the check.
	closeWait = 250 * time.Millisecond
	userAgent = "wsgate-health/1"
)

// websocketGUID is the fixed suffix of RFC 6455 section 1.3.
const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// Check runs one check of kind against target (host:port) and returns nil
// if the backend passed. It is bounded by ctx; a ctx without a deadline gets
// DefaultTimeout so an admin call cannot hang on a silent backend.
func Check(ctx context.Context, kind Kind, target, path string) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	var err error
	switch kind {
	case TCP:
		err = checkTCP(ctx, target)
	case HTTP:
		err = checkHTTP(ctx, target, path)
	case WebSocket:
		err = checkWebSocket(ctx, target, path)
	default:
		err = errors.New("unknown check kind")
	}
	if err != nil {
		return fmt.Errorf("%s check %s: %w", kind, target, err)
	}
	return nil
}

// dial connects and ties the connection's deadline to ctx, so every later
// read and write on it fails once ctx is done, not only the dial.
func dial(ctx context.Context, target string) (net.Conn, func(), error) {
	d := net.Dialer{KeepAlive: -1} // probes are short-lived
	conn, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		return nil, nil, stageErr(ctx, "connect", err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	// A cancel without a deadline (Checker.Stop) must interrupt blocked
	// reads too; a deadline in the past does that.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	cleanup := func() {
		stop()
		_ = conn.Close()
	}
	return conn, cleanup, nil
}

// stageErr names the step that failed and, when the real cause is the
// check's context, wraps ctx.Err() so callers can tell a timeout from a
// refusal with errors.Is instead of parsing "i/o timeout".
func stageErr(ctx context.Context, stage string, err error) error {
	cerr := ctx.Err()
	// The socket deadline equals the context deadline, and the socket can
	// notice first: the context's own timer may not have fired yet.
	var ne net.Error
	if dl, ok := ctx.Deadline(); cerr == nil && ok && !time.Now().Before(dl) &&
		errors.As(err, &ne) && ne.Timeout() {
		cerr = context.DeadlineExceeded
	}
	if cerr != nil {
		return fmt.Errorf("%s: %w (%v)", stage, cerr, err)
	}
	return fmt.Errorf("%s: %w", stage, err)
}

func checkTCP(ctx context.Context, target string) error {
	_, cleanup, err := dial(ctx, target)
	if err != nil {
		return err
	}
	cleanup()
	return nil
}

func checkHTTP(ctx context.Context, target, path string) error {
	if path == "" {
		path = DefaultPath
	}
	if err := validatePath(path); err != nil {
		return err
	}
	conn, cleanup, err := dial(ctx, target)
	if err != nil {
		return err
	}
	defer cleanup()

	// Written by hand rather than through http.Client: a pooled transport
	// would reuse a connection and hide a backend that stopped accepting,
	// and Connection: close lets us drop the socket without reading a body.
	req := "GET " + path + " HTTP/1.1\r\nHost: " + target +
		"\r\nUser-Agent: " + userAgent + "\r\nAccept: */*\r\nConnection: close\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		return stageErr(ctx, "write request", err)
	}
	lr := &io.LimitedReader{R: conn, N: maxHeadBytes}
	resp, err := http.ReadResponse(bufio.NewReader(lr), nil)
	if err != nil {
		return stageErr(ctx, "read response", headErr(lr, err))
	}
	// The body is deliberately left unread; closing the connection
	// discards it whatever its size.
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("GET %s: status %s, want 2xx", path, resp.Status)
	}
	return nil
}

func headErr(lr *io.LimitedReader, err error) error {
	if lr.N <= 0 {
		return fmt.Errorf("response head exceeds %d bytes", maxHeadBytes)
	}
	return err
}

func checkWebSocket(ctx context.Context, target, path string) error {
	if path == "" {
		path = DefaultPath
	}
	if err := validatePath(path); err != nil {
		return err
	}
	conn, cleanup, err := dial(ctx, target)
	if err != nil {
		return err
	}
	defer cleanup()

	var nonce [16 + 8]byte     // Sec-WebSocket-Key, then the Ping payload
	_, _ = rand.Read(nonce[:]) // documented never to return an error since Go 1.24
	key := base64.StdEncoding.EncodeToString(nonce[:16])
	req := "GET " + path + " HTTP/1.1\r\nHost: " + target +
		"\r\nUser-Agent: " + userAgent +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
		"\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		return stageErr(ctx, "write upgrade", err)
	}

	// One LimitedReader serves both phases: its budget is the head limit
	// while parsing the 101, then the frame budget. The bufio.Reader must
	// be kept, since it may already hold the first frames.
	lr := &io.LimitedReader{R: conn, N: maxHeadBytes}
	br := bufio.NewReader(lr)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return stageErr(ctx, "read upgrade response", headErr(lr, err))
	}
	if err := validateUpgrade(resp, key); err != nil {
		return err
	}
	lr.N = maxSkipBytes

	// A random payload tells our Pong from an unsolicited one, which RFC
	// 6455 lets a backend send as a heartbeat.
	payload := nonce[16:]
	if err := writeFrame(conn, ws.NewPingFrame(bytes.Clone(payload))); err != nil {
		return stageErr(ctx, "write ping", err)
	}
	if err := awaitPong(br, payload); err != nil {
		if lr.N <= 0 {
			err = fmt.Errorf("more than %d bytes before pong", maxSkipBytes)
		}
		return stageErr(ctx, "await pong", err)
	}

	// Courtesy close: the backend is already proven alive, so failures
	// here are ignored. The wait is shortened so a backend that never
	// answers Close costs closeWait, not the rest of the timeout.
	closeDeadline := time.Now().Add(closeWait)
	if dl, ok := ctx.Deadline(); ok && dl.Before(closeDeadline) {
		closeDeadline = dl
	}
	_ = conn.SetDeadline(closeDeadline)
	body := ws.NewCloseFrameBody(ws.StatusNormalClosure, "")
	if writeFrame(conn, ws.NewCloseFrame(body)) == nil {
		awaitClose(br)
	}
	return nil
}

func validateUpgrade(resp *http.Response, key string) error {
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return fmt.Errorf("upgrade: status %s, want 101", resp.Status)
	}
	if !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
		return fmt.Errorf("upgrade: Upgrade header %q, want websocket", resp.Header.Get("Upgrade"))
	}
	if !headerHasToken(resp.Header, "Connection", "upgrade") {
		return fmt.Errorf("upgrade: Connection header %q lacks upgrade", resp.Header.Values("Connection"))
	}
	// A wrong accept means something other than a WebSocket server (or a
	// caching middlebox) answered; RFC 6455 section 4.1 says fail it.
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), acceptKey(key); got != want {
		return fmt.Errorf("upgrade: Sec-WebSocket-Accept %q, want %q", got, want)
	}
	// We offered no extension or subprotocol, so a backend choosing one
	// would frame data we cannot read.
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
		return fmt.Errorf("upgrade: unrequested extension %q", ext)
	}
	return nil
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

func acceptKey(key string) string {
	sum := sha1.Sum([]byte(key + websocketGUID))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// writeFrame masks (clients must, RFC 6455 section 5.3) and sends f in one
// write so a frame is never split across segments by us.
func writeFrame(w io.Writer, f ws.Frame) error {
	b, err := ws.CompileFrame(ws.MaskFrameInPlace(f))
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// awaitPong reads frames until the Pong carrying payload, skipping data
// frames and unrelated control frames within the skip budget.
func awaitPong(br *bufio.Reader, payload []byte) error {
	for range maxSkipFrames {
		h, p, err := readFrame(br)
		if err != nil {
			return err
		}
		switch h.OpCode {
		case ws.OpPong:
			if bytes.Equal(p, payload) {
				return nil
			}
		case ws.OpClose:
			code, reason := ws.ParseCloseFrameData(p)
			return fmt.Errorf("backend closed before pong: %d %q", code, reason)
		}
	}
	return fmt.Errorf("no pong within %d frames", maxSkipFrames)
}

// awaitClose waits for the backend's Close and then for its end of the TCP
// connection, so the backend closes first and keeps the TIME_WAIT state
// rather than the proxy. Errors just end the wait.
func awaitClose(br *bufio.Reader) {
	for range maxSkipFrames {
		h, _, err := readFrame(br)
		if err != nil {
			return
		}
		if h.OpCode == ws.OpClose {
			_, _ = br.ReadByte() // EOF once the backend closed
			return
		}
	}
}

// readFrame returns the next frame's header and, for control frames, its
// payload; data payloads are discarded since a check has no use for them.
func readFrame(br *bufio.Reader) (ws.Header, []byte, error) {
	h, err := ws.ReadHeader(br)
	if err != nil {
		return h, nil, err
	}
	if h.Masked {
		return h, nil, errors.New("backend sent a masked frame")
	}
	if h.Rsv != 0 {
		return h, nil, errors.New("backend set RSV bits without an extension")
	}
	if h.OpCode.IsReserved() {
		return h, nil, fmt.Errorf("backend sent reserved opcode %#x", byte(h.OpCode))
	}
	if h.OpCode.IsControl() {
		if h.Length > 125 || !h.Fin {
			return h, nil, errors.New("backend sent a malformed control frame")
		}
		p := make([]byte, h.Length)
		if _, err := io.ReadFull(br, p); err != nil {
			return h, nil, err
		}
		return h, p, nil
	}
	if h.Length > maxSkipBytes {
		return h, nil, fmt.Errorf("backend sent a %d-byte frame before pong", h.Length)
	}
	if _, err := io.CopyN(io.Discard, br, h.Length); err != nil {
		return h, nil, err
	}
	return h, nil, nil
}
