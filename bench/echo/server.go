package echo

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/gobwas/httphead"
	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/bench/internal/wsframe"
)

const (
	// readBufSize is the size of the pooled read buffer. Frames up to this
	// size (header included) are echoed in place; larger ones are streamed.
	readBufSize = 32 << 10
	// joinMax is the largest echoed frame that is moved to sit right after
	// the previous one so both go out as one segment. Larger frames become
	// their own writev segment, without a copy.
	joinMax = 2 << 10
	// maxIOV bounds the number of pending output segments before a flush.
	maxIOV = 64

	defaultHandshakeTimeout = 10 * time.Second
	pushWriteTimeout        = 5 * time.Second
	nShards                 = 32
)

// ErrServerClosed is returned by Serve after Close.
var ErrServerClosed = errors.New("echo: server closed")

// errDone ends a connection's loop after a close handshake or a protocol
// error has been answered.
var errDone = errors.New("echo: connection done")

var bufPool = sync.Pool{New: func() any {
	b := make([]byte, readBufSize)
	return &b
}}

// hsBufSize is the size of the buffer a request head is first read into;
// a larger head moves to a read buffer (so heads up to readBufSize are
// accepted). Many handshakes at once then cost little memory.
const hsBufSize = 4 << 10

var hsPool = sync.Pool{New: func() any {
	b := make([]byte, hsBufSize)
	return &b
}}

// Config configures a Server. The zero value is a plain echo server.
type Config struct {
	// PushInterval, when > 0, makes the server send every upgraded
	// connection an unsolicited binary message at this interval.
	PushInterval time.Duration
	// PushSize is the payload size of pushed messages (at least 8).
	PushSize int
	// HandshakeTimeout bounds the time to receive the HTTP request head.
	// Default 10s.
	HandshakeTimeout time.Duration
	// Logf, if set, receives server-level messages (accept errors).
	Logf func(format string, args ...any)
	// Debugf, if set, receives one line per connection event.
	Debugf func(format string, args ...any)
}

// Stats are counters of a Server.
type Stats struct {
	Accepted int64 // TCP connections accepted
	Upgraded int64 // WebSocket handshakes completed
	Active   int64 // connections currently open
	Pushed   int64 // pushed messages written
}

// Server is a WebSocket echo server. Use New, then Serve on one or more
// listeners, then Close.
type Server struct {
	cfg Config

	mu     sync.Mutex
	lns    map[net.Listener]struct{}
	closed bool
	done   chan struct{}

	shards   [nShards]shard
	nextID   atomic.Uint64
	pushOnce sync.Once
	wg       sync.WaitGroup

	accepted, upgraded, active, pushed atomic.Int64
}

type shard struct {
	mu sync.Mutex
	m  map[*conn]struct{}
}

// New returns a Server with the given configuration.
func New(cfg Config) *Server {
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = defaultHandshakeTimeout
	}
	if cfg.PushSize < 8 {
		cfg.PushSize = 8
	}
	s := &Server{cfg: cfg, lns: make(map[net.Listener]struct{}), done: make(chan struct{})}
	for i := range s.shards {
		s.shards[i].m = make(map[*conn]struct{})
	}
	return s
}

// Serve echoes on a listener with a zero Config until the listener fails.
func Serve(ln net.Listener) error { return New(Config{}).Serve(ln) }

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	return Stats{
		Accepted: s.accepted.Load(),
		Upgraded: s.upgraded.Load(),
		Active:   s.active.Load(),
		Pushed:   s.pushed.Load(),
	}
}

// Serve accepts connections on ln and serves each on its own goroutine. It
// returns ErrServerClosed after Close, or the listener's error.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.lns[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.lns, ln)
		s.mu.Unlock()
	}()
	if s.cfg.PushInterval > 0 {
		s.pushOnce.Do(func() { go s.pushLoop() })
	}

	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.isClosed() {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// EMFILE, ECONNABORTED and the like: back off and go on.
			if delay == 0 {
				delay = 5 * time.Millisecond
			} else if delay *= 2; delay > time.Second {
				delay = time.Second
			}
			s.logf("echo: accept on %s: %v; retrying in %v", ln.Addr(), err, delay)
			select {
			case <-time.After(delay):
			case <-s.done:
				return ErrServerClosed
			}
			continue
		}
		delay = 0
		s.accepted.Add(1)
		c := s.newConn(nc)
		if c == nil {
			nc.Close()
			return ErrServerClosed
		}
		go c.serve()
	}
}

// Close stops all listeners, closes every connection and waits for their
// goroutines to end.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	for ln := range s.lns {
		ln.Close()
	}
	s.mu.Unlock()
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for c := range sh.m {
			c.nc.Close()
		}
		sh.mu.Unlock()
	}
	s.wg.Wait()
	return nil
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *Server) logf(format string, args ...any) {
	if s.cfg.Logf != nil {
		s.cfg.Logf(format, args...)
	}
}

func (s *Server) debugf(format string, args ...any) {
	if s.cfg.Debugf != nil {
		s.cfg.Debugf(format, args...)
	}
}

// newConn registers a connection; nil if the server is closing.
func (s *Server) newConn(nc net.Conn) *conn {
	c := &conn{s: s, nc: nc, id: s.nextID.Add(1)}
	if sc, ok := nc.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			c.rc = rc
			c.readFn = c.rawRead
		}
	}
	sh := &s.shards[c.id%nShards]
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.wg.Add(1)
	s.mu.Unlock()
	sh.mu.Lock()
	sh.m[c] = struct{}{}
	sh.mu.Unlock()
	s.active.Add(1)
	return c
}

func (s *Server) dropConn(c *conn) {
	sh := &s.shards[c.id%nShards]
	sh.mu.Lock()
	delete(sh.m, c)
	sh.mu.Unlock()
	s.active.Add(-1)
	s.wg.Done()
}

// pushLoop writes a binary message to every upgraded connection at each
// tick. A tick that comes while the previous fan-out is still running is
// dropped by the ticker.
func (s *Server) pushLoop() {
	size := s.cfg.PushSize
	hl := wsframe.Size(int64(size), false)
	tmpl := make([]byte, hl+size)
	wsframe.Put(tmpl, ws.Header{Fin: true, OpCode: ws.OpBinary, Length: int64(size)})

	workers := 4 * runtime.GOMAXPROCS(0)
	t := time.NewTicker(s.cfg.PushInterval)
	defer t.Stop()
	var conns []*conn
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		conns = conns[:0]
		for i := range s.shards {
			sh := &s.shards[i]
			sh.mu.Lock()
			for c := range sh.m {
				if c.upgraded.Load() {
					conns = append(conns, c)
				}
			}
			sh.mu.Unlock()
		}
		if len(conns) == 0 {
			continue
		}
		var next atomic.Int64
		var wg sync.WaitGroup
		for range min(workers, len(conns)) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				frame := bytes.Clone(tmpl)
				for {
					i := int(next.Add(1) - 1)
					if i >= len(conns) {
						return
					}
					if conns[i].push(frame, hl) {
						s.pushed.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		clear(conns)
	}
}

// conn is one client connection.
type conn struct {
	s  *Server
	nc net.Conn
	id uint64
	rc syscall.RawConn // nil when nc is not a syscall.Conn

	readFn func(fd uintptr) bool // c.rawRead, bound once
	rn     int                   // result of the last rawRead
	rerr   error

	bufp     *[]byte    // pooled read buffer, nil while idle
	bufPool  *sync.Pool // where bufp comes from
	buf      []byte
	r, w     int  // unread bytes are buf[r:w]
	inHeader bool // reading the request head: use the small buffers

	// Pending output: segments of buf (or other memory) not yet written.
	// outStart:outEnd is the extent in buf of the last segment, so the next
	// echoed frame can be joined to it; outEnd < 0 when there is none.
	iov              [][]byte
	wbufs            net.Buffers
	outStart, outEnd int

	state    ws.State
	wmu      sync.Mutex // serialises writes (echo vs. push)
	upgraded atomic.Bool
}

func (c *conn) acquire() {
	if c.buf == nil {
		c.bufPool = &bufPool
		if c.inHeader {
			c.bufPool = &hsPool
		}
		c.bufp = c.bufPool.Get().(*[]byte)
		c.buf = *c.bufp
		c.r, c.w = 0, 0
	}
}

func (c *conn) release() {
	if c.buf != nil {
		c.bufPool.Put(c.bufp)
		c.bufp, c.buf = nil, nil
		c.r, c.w = 0, 0
	}
}

// moveToReadBuf moves the unread bytes from a head buffer to a read buffer.
func (c *conn) moveToReadBuf() {
	if c.buf == nil || c.bufPool == &bufPool {
		return
	}
	if c.r == c.w {
		c.release()
		return
	}
	bp := bufPool.Get().(*[]byte)
	n := copy(*bp, c.buf[c.r:c.w])
	c.bufPool.Put(c.bufp)
	c.bufp, c.bufPool, c.buf = bp, &bufPool, *bp
	c.r, c.w = 0, n
}

// rawRead is called by RawConn.Read when the socket may be readable. It
// reads into the buffer, taking one from the pool first; on EAGAIN with no
// pending bytes it gives the buffer back before the goroutine parks.
func (c *conn) rawRead(fd uintptr) bool {
	c.acquire()
	for {
		n, err := syscall.Read(int(fd), c.buf[c.w:])
		switch {
		case err == nil:
			if n == 0 {
				c.rerr = io.EOF
			} else {
				c.rn = n
			}
			return true
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			if c.r == c.w {
				c.release()
			}
			return false
		default:
			c.rerr = &net.OpError{Op: "read", Net: "tcp", Err: err}
			return true
		}
	}
}

// fill reads more bytes into buf[w:]. The caller makes sure there is room.
func (c *conn) fill() error {
	if c.rc != nil {
		c.rn, c.rerr = 0, nil
		if err := c.rc.Read(c.readFn); err != nil {
			return err
		}
		if c.rerr != nil {
			return c.rerr
		}
		c.w += c.rn
		return nil
	}
	c.acquire()
	n, err := c.nc.Read(c.buf[c.w:])
	c.w += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

func (c *conn) serve() {
	defer c.finish()
	if !c.handshake() {
		return
	}
	c.upgraded.Store(true)
	c.s.upgraded.Add(1)
	c.state = ws.StateServerSide
	c.outEnd = -1
	for {
		need, err := c.process()
		if err == nil {
			err = c.flush()
		}
		if err != nil {
			if err != errDone {
				c.s.debugf("echo: conn %d (%s): %v", c.id, c.nc.RemoteAddr(), err)
			}
			return
		}
		// Make room for the rest of a partial frame (need bytes from r).
		switch {
		case c.r == c.w:
			c.r, c.w = 0, 0
		case c.r > 0 && c.r+need > len(c.buf):
			c.w = copy(c.buf, c.buf[c.r:c.w])
			c.r = 0
		}
		if err := c.fill(); err != nil {
			if err != io.EOF {
				c.s.debugf("echo: conn %d (%s): %v", c.id, c.nc.RemoteAddr(), err)
			}
			return
		}
	}
}

func (c *conn) finish() {
	c.nc.Close()
	c.release()
	c.iov = nil
	c.s.dropConn(c)
	c.s.debugf("echo: conn %d closed", c.id)
}

// process handles every complete frame in buf[r:w], queueing replies. It
// returns the number of bytes (from r) that the next frame needs, or errDone.
func (c *conn) process() (need int, err error) {
	for {
		h, hl, err := wsframe.Parse(c.buf[c.r:c.w])
		if err != nil {
			return 0, c.fail(ws.StatusProtocolError)
		}
		if hl == 0 {
			return ws.MaxHeaderSize, nil
		}
		if err := ws.CheckHeader(h, c.state); err != nil {
			c.s.debugf("echo: conn %d: %v", c.id, err)
			return 0, c.fail(ws.StatusProtocolError)
		}
		total := int64(hl) + h.Length
		if int64(c.w-c.r) < total {
			if total <= int64(len(c.buf)) {
				return int(total), nil
			}
			if err := c.stream(h, hl); err != nil {
				return 0, err
			}
			continue
		}
		start, end := c.r, c.r+int(total)
		payload := c.buf[start+hl : end]
		ws.Cipher(payload, h.Mask, 0)
		c.r = end
		switch h.OpCode {
		case ws.OpText, ws.OpBinary, ws.OpContinuation:
			c.setFragmented(h)
			c.emit(start, hl, end, h.OpCode, h.Fin)
		case ws.OpPing:
			c.emit(start, hl, end, ws.OpPong, true)
		case ws.OpPong:
		case ws.OpClose:
			return 0, c.closeReply(start, hl, end, payload)
		}
		if len(c.iov) >= maxIOV {
			if err := c.flush(); err != nil {
				return 0, err
			}
		}
	}
}

func (c *conn) setFragmented(h ws.Header) {
	if h.Fin {
		c.state = c.state.Clear(ws.StateFragmented)
	} else {
		c.state = c.state.Set(ws.StateFragmented)
	}
}

// emit queues the echo of the frame at buf[start:end] whose masked header
// is hl bytes long and whose payload is already unmasked: the unmasked
// header is written just before the payload.
func (c *conn) emit(start, hl, end int, op ws.OpCode, fin bool) {
	n := end - start - hl
	oh := wsframe.Size(int64(n), false)
	pos := start + hl - oh
	wsframe.Put(c.buf[pos:], ws.Header{Fin: fin, OpCode: op, Length: int64(n)})
	switch {
	case c.outEnd == pos:
		c.outEnd = end
		c.iov[len(c.iov)-1] = c.buf[c.outStart:c.outEnd]
	case c.outEnd >= 0 && end-pos <= joinMax:
		c.outEnd += copy(c.buf[c.outEnd:], c.buf[pos:end])
		c.iov[len(c.iov)-1] = c.buf[c.outStart:c.outEnd]
	default:
		c.iov = append(c.iov, c.buf[pos:end])
		c.outStart, c.outEnd = pos, end
	}
}

// flush writes the pending output.
func (c *conn) flush() error {
	if len(c.iov) == 0 {
		return nil
	}
	c.wmu.Lock()
	var err error
	if len(c.iov) == 1 {
		_, err = c.nc.Write(c.iov[0])
	} else {
		// writev; WriteTo consumes c.wbufs (a field, so nothing escapes).
		c.wbufs = c.iov
		_, err = c.wbufs.WriteTo(c.nc)
		c.wbufs = nil
	}
	c.wmu.Unlock()
	clear(c.iov)
	c.iov = c.iov[:0]
	c.outEnd = -1
	return err
}

// stream echoes a data frame too large for the read buffer chunk by chunk.
// buf[r:] starts with its hl-byte header.
func (c *conn) stream(h ws.Header, hl int) error {
	if err := c.flush(); err != nil {
		return err
	}
	c.setFragmented(h)
	oh := wsframe.Size(h.Length, false)
	pos := c.r + hl - oh
	wsframe.Put(c.buf[pos:], ws.Header{Fin: h.Fin, OpCode: h.OpCode, Length: h.Length})
	c.r += hl
	// Hold the write lock for the whole frame so no pushed message lands
	// inside it.
	c.wmu.Lock()
	defer c.wmu.Unlock()
	remaining, offset, from := h.Length, 0, pos
	for {
		n := int(min(int64(c.w-c.r), remaining))
		ws.Cipher(c.buf[c.r:c.r+n], h.Mask, offset)
		if _, err := c.nc.Write(c.buf[from : c.r+n]); err != nil {
			return err
		}
		c.r += n
		offset += n
		remaining -= int64(n)
		if remaining == 0 {
			return nil
		}
		c.r, c.w = 0, 0
		if err := c.fill(); err != nil {
			return err
		}
		from = 0
	}
}

// closeReply answers a Close frame: the payload (code and reason) is echoed
// if valid, an empty Close with an empty one, Close 1002 otherwise.
func (c *conn) closeReply(start, hl, end int, payload []byte) error {
	if len(payload) >= 2 {
		code := ws.StatusCode(binary.BigEndian.Uint16(payload))
		if ws.CheckCloseFrameData(code, "") != nil || !utf8.Valid(payload[2:]) {
			return c.fail(ws.StatusProtocolError)
		}
	} else if len(payload) == 1 {
		return c.fail(ws.StatusProtocolError)
	}
	c.emit(start, hl, end, ws.OpClose, true)
	c.flush()
	return errDone
}

// fail flushes pending echoes, then sends Close with code.
func (c *conn) fail(code ws.StatusCode) error {
	if err := c.flush(); err != nil {
		return errDone
	}
	var f [4]byte
	f[0] = 0x80 | byte(ws.OpClose)
	f[1] = 2
	binary.BigEndian.PutUint16(f[2:], uint16(code))
	c.wmu.Lock()
	c.nc.Write(f[:])
	c.wmu.Unlock()
	return errDone
}

// push writes a pushed message, stamping its payload; false on failure (the
// connection is then closed).
func (c *conn) push(frame []byte, off int) bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	now := time.Now()
	binary.BigEndian.PutUint64(frame[off:], uint64(now.UnixNano()))
	c.nc.SetWriteDeadline(now.Add(pushWriteTimeout))
	_, err := c.nc.Write(frame)
	c.nc.SetWriteDeadline(time.Time{})
	if err != nil {
		c.nc.Close()
		return false
	}
	return true
}

var crlf2 = []byte("\r\n\r\n")

// handshake reads the request head and answers it: the WebSocket upgrade
// through ws.Upgrader, a plain GET with 200 "wsecho". It reports whether
// the connection is now a WebSocket; bytes after the head stay in buf.
func (c *conn) handshake() bool {
	c.nc.SetReadDeadline(time.Now().Add(c.s.cfg.HandshakeTimeout))
	c.inHeader = true
	defer func() {
		c.inHeader = false
		c.moveToReadBuf()
	}()
	var head []byte
	for {
		if c.buf != nil {
			if i := bytes.Index(c.buf[:c.w], crlf2); i >= 0 {
				head = c.buf[:i+4]
				break
			}
			if c.w == len(c.buf) {
				if c.bufPool == &bufPool {
					c.plainResponse("431 Request Header Fields Too Large", "")
					c.lingerClose()
					return false
				}
				c.moveToReadBuf()
			}
		}
		if err := c.fill(); err != nil {
			return false
		}
	}

	lineEnd := bytes.Index(head, []byte("\r\n"))
	req, ok := httphead.ParseRequestLine(head[:lineEnd])
	if !ok {
		c.plainResponse("400 Bad Request", "")
		return false
	}
	upgrade := false
	for rest := head[lineEnd+2:]; len(rest) > 2; {
		i := bytes.Index(rest, []byte("\r\n"))
		k, v, ok := httphead.ParseHeaderLine(rest[:i])
		rest = rest[i+2:]
		if ok && bytes.EqualFold(k, []byte("Upgrade")) && bytes.EqualFold(bytes.TrimSpace(v), []byte("websocket")) {
			upgrade = true
		}
	}
	if !upgrade {
		switch string(req.Method) {
		case "GET":
			c.plainResponse("200 OK", "wsecho\n")
		case "HEAD":
			c.plainResponse("200 OK", "")
		default:
			c.plainResponse("405 Method Not Allowed", "")
		}
		return false
	}

	u := ws.Upgrader{
		// Accept the first offered subprotocol, whatever it is.
		Protocol: func([]byte) bool { return true },
	}
	rw := struct {
		io.Reader
		io.Writer
	}{bytes.NewReader(head), c.nc}
	if _, err := u.Upgrade(rw); err != nil {
		c.s.debugf("echo: conn %d: handshake: %v", c.id, err)
		return false
	}
	c.r = len(head)
	c.nc.SetReadDeadline(time.Time{})
	c.s.debugf("echo: conn %d (%s) upgraded", c.id, c.nc.RemoteAddr())
	return true
}

// lingerClose half-closes the connection and discards what the client is
// still sending (bounded in time and bytes), so that closing with unread
// input does not reset the connection before the client has read our
// response.
func (c *conn) lingerClose() {
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	c.nc.SetReadDeadline(time.Now().Add(time.Second))
	var b [4096]byte
	for n := 0; n < 1<<20; {
		m, err := c.nc.Read(b[:])
		n += m
		if err != nil {
			return
		}
	}
}

func (c *conn) plainResponse(status, body string) {
	fmt.Fprintf(c.nc, "HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		status, len(body), body)
}
