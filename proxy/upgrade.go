package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/valyala/bytebufferpool"

	"github.com/wsgate/wsgate/loop"
	"github.com/wsgate/wsgate/proxy/balance"
	"github.com/wsgate/wsgate/proxy/handshake"
)

// maxResponseHead bounds a backend's response head; a longer one is a
// broken backend and the client gets 502.
const maxResponseHead = 64 << 10

// scratch is what a handshake needs beyond its stack, pooled so that a
// handshake neither allocates it nor carries it in its frame: the parsed
// request, whose field list keeps its capacity from one handshake to the
// next, the sticky key and the client's Sec-WebSocket-Key.
type scratch struct {
	req      handshake.Request
	keyBuf   [128]byte
	stickKey []byte // in keyBuf (or, for a longer key, its own); nil: none
	key      [24]byte
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

func getScratch() *scratch { return scratchPool.Get().(*scratch) }

func putScratch(sc *scratch) {
	sc.req.Reset() // do not keep the client's input alive
	sc.stickKey = nil
	scratchPool.Put(sc)
}

// ServeHandshake passes one WebSocket upgrade through: it reads and checks
// the request, routes it, sends it to a backend (a warm connection if one
// is ready, else a dial, moving on to the next backend while time is
// left), relays the answer and, on a 101, hands both connections to the
// reactor. It runs on the client connection's goroutine and may block
// until the handshake deadline.
func (s *Server) ServeHandshake(c *loop.ClientConn) {
	start := time.Now()
	s.m.accepted.Inc()

	head, reason, status := s.readRequestHead(c)
	if status != 0 {
		s.refuse(c, status, reason, failReasonFor(status, reason))
		return
	}
	sc := getScratch()
	defer putScratch(sc)
	out := bytebufferpool.Get()
	defer bytebufferpool.Put(out)
	p, upstream, rf := s.routing.Load().prepare(sc, head, c.RemoteAddrPort(), out.B[:0])
	out.B = upstream
	if rf.status != 0 {
		if p != nil {
			s.refuse(c, rf.status, rf.reason, rf.metric, slog.String("pool", p.name))
		} else {
			s.refuse(c, rf.status, rf.reason, rf.metric)
		}
		return
	}
	stickKey, key := sc.stickKey, sc.key[:]
	c.Consume(len(head))

	// The handshake deadline bounds the tries and each dial. It is checked
	// with the clock rather than through a context: a context with a
	// deadline costs a timer and five allocations per handshake.
	deadline := c.Deadline()
	var lastErr error
	tried := 0
	var excluded [8]*balance.Backend
	exclude := func(bb *balance.Backend) bool {
		for _, x := range excluded[:min(tried, len(excluded))] {
			if x == bb {
				return true
			}
		}
		return false
	}
	for tried < len(p.backends) && tried < len(excluded) {
		if !time.Now().Before(deadline) {
			break
		}
		bb := p.bal.Pick(stickKey, exclude)
		if bb == nil {
			break
		}
		excluded[tried] = bb
		tried++
		b := p.byAddr[bb.Addr]
		if b == nil || !b.available() {
			continue
		}
		bb.Acquire()
		up := b.take()
		warm := up != nil
		if warm {
			p.m.hits.Inc()
		} else {
			p.m.misses.Inc()
		}
		var done, dialFailed bool
		var err error
		for {
			if up == nil {
				if up, err = s.dial(deadline, b); err != nil {
					dialFailed = true
					break
				}
				if !up.Claim() {
					up.Close()
					up, err = nil, errors.New("backend closed the connection at once")
					break
				}
			}
			done, err = s.exchange(c, p, b, bb, up, out.B, key, start)
			if done || !warm || errors.Is(err, errClientGone) {
				break
			}
			// A warm connection can go stale while it waits (the backend
			// closed it just as it was taken): that says nothing about the
			// backend, so it gets a fresh dial before the next backend is
			// tried, and a sticky key stays where it belongs.
			warm, up = false, nil
		}
		if done {
			return
		}
		bb.Release()
		lastErr = err
		if errors.Is(err, errClientGone) {
			break
		}
		b.failed(p)
		result := upgradeError
		if dialFailed {
			result = upgradeDialError
		}
		b.upgrades(result).Inc()
		s.log.Warn("backend failed", "pool", p.name, "backend", b.addr, "err", err)
	}
	if tried == 0 {
		s.refuse(c, 503, "no backend available", failNoBackend, slog.String("pool", p.name))
		return
	}
	if errors.Is(lastErr, errClientGone) {
		s.m.failedBy(failClientGone).Inc()
		return
	}
	if lastErr == nil {
		lastErr = context.DeadlineExceeded
	}
	// The client learns that no backend answered, not which or why: that
	// is for the operator's log.
	s.refuse(c, 502, "no backend answered", failBackendDown, slog.String("pool", p.name), slog.String("err", lastErr.Error()))
}

var errClientGone = errors.New("client closed the connection")

// refusal is an answer to a request that will not be passed on: status 0
// means none.
type refusal struct {
	status         int
	reason, metric string
}

// prepare parses a request head into sc, routes it, and appends to dst the
// request to send upstream. Everything the rest of the handshake needs
// from the request is copied out of head (into sc and dst), so that the
// client's input can be released. On a refusal p is the pool when one was
// found (its name goes in the log line).
func (rt *routing) prepare(sc *scratch, head []byte, client netip.AddrPort, dst []byte) (p *pool, upstream []byte, rf refusal) {
	req := &sc.req
	defer req.Reset() // nothing may point into head once it is released
	if err := req.Parse(head); err != nil {
		var rej *handshake.Reject
		if errors.As(err, &rej) {
			return nil, dst, refusal{rej.Status, rej.Reason, failReasonFor(rej.Status, rej.Reason)}
		}
		return nil, dst, refusal{400, err.Error(), failBadRequest}
	}
	p = rt.router.match(req.Hostname(), req.Path)
	if p == nil {
		return nil, dst, refusal{404, "no route for host and path", failNoRoute}
	}
	if len(p.backends) == 0 {
		return p, dst, refusal{503, "no backend available", failNoBackend}
	}
	sc.stickKey = stickyKey(sc.keyBuf[:0], p, req, client)
	copy(sc.key[:], req.Key)
	return p, handshake.AppendUpstreamRequest(dst, req, forwardInfo(client)), refusal{}
}

// readRequestHead waits for a complete request head within the deadline and
// the size limit. On failure it returns the status to answer.
func (s *Server) readRequestHead(c *loop.ClientConn) (head []byte, reason string, status int) {
	limit := s.cfg.Load().Server.MaxHeaderBytes
	for {
		buf := c.Buffered()
		if end := handshake.HeadEnd(buf); end >= 0 {
			if end > limit {
				return nil, "request head over max_header_bytes", 431
			}
			return buf[:end], "", 0
		}
		if len(buf) >= limit {
			return nil, "request head over max_header_bytes", 431
		}
		// One byte over the limit tells a head that ends right at it from
		// a longer one.
		if err := c.Fill(limit + 1); err != nil {
			switch {
			case errors.Is(err, os.ErrDeadlineExceeded):
				return nil, "request head not complete within handshake_timeout", 408
			case errors.Is(err, io.EOF):
				return nil, "client closed before its request was complete", -1
			}
			return nil, err.Error(), -1
		}
	}
}

// exchange sends the request to one backend and relays its answer. done is
// false when the backend failed before answering anything, so that the
// next backend can be tried.
func (s *Server) exchange(c *loop.ClientConn, p *pool, b *backend, bb *balance.Backend, up *loop.Upstream, request, key []byte, start time.Time) (done bool, err error) {
	deadline := c.Deadline()
	if err := up.Send(request, deadline); err != nil {
		up.Close()
		return false, err
	}
	var resp handshake.Response
	var head []byte
	for {
		n, herr := readResponseHead(up, deadline)
		if herr != nil {
			up.Close()
			if !c.Alive() {
				return false, errClientGone
			}
			return false, herr
		}
		head = up.Buffered()[:n]
		if perr := handshake.ParseResponse(head, key, &resp); perr != nil {
			up.Close()
			bb.Release()
			b.failed(p)
			s.refuse(c, 502, "invalid answer from backend", failBadResponse,
				slog.String("pool", p.name), slog.String("backend", b.addr), slog.String("err", perr.Error()))
			return true, nil
		}
		if !resp.Interim() {
			break
		}
		// 100 Continue or 103 Early Hints: not for a WebSocket client.
		up.Consume(n)
	}
	if resp.Status != 101 {
		if err := c.Write(head); err != nil {
			up.Close()
			bb.Release()
			s.m.failedBy(failClientGone).Inc()
			return true, nil
		}
		up.Consume(len(head))
		bb.Release()
		if resp.Status >= 500 {
			b.failed(p)
		}
		b.upgrades(upgradeRefused).Inc()
		s.relayBody(c, up, &resp)
		s.m.failedBy(failBackendRejected).Inc()
		if s.log.Enabled(context.Background(), slog.LevelDebug) {
			s.log.Debug("backend refused upgrade", "pool", p.name, "backend", b.addr, "status", resp.Status)
		}
		return true, nil
	}
	// The session's reactor writes the 101 to the client (SessionParams.Head).
	head = append([]byte(nil), head...)
	up.Consume(len(head))
	// One allocation carries what the session's end needs and its log
	// attributes; the client's address is formatted only if a log line
	// that carries it is written.
	t := &trackedSession{b: b, bb: bb, client: c.RemoteAddrPort()}
	t.attrs = [3]slog.Attr{
		slog.String("pool", p.name),
		slog.String("backend", b.addr),
		slog.Any("client", (*clientAddr)(t)),
	}
	b.active.Add(1)
	sess, err := c.Upgrade(up, loop.SessionParams{
		Head:    head,
		Deflate: resp.Deflate,
		OnEnd:   t.end,
		Attrs:   t.attrs[:],
	})
	if err != nil {
		return true, nil
	}
	b.track(t, sess)
	b.succeeded()
	b.upgrades(upgradeOK).Inc()
	s.m.upgraded.Inc()
	s.m.handshake.Observe(time.Since(start).Seconds())
	return true, nil
}

func (s *Server) sessionEnded(r loop.EndReport) {
	s.m.closedBy(r.Cause).Inc()
}

// clientAddr is a session's client address as a log attribute's value: a
// pointer (so that making it an attribute does not allocate) that formats
// the address only when a handler resolves it.
type clientAddr trackedSession

func (c *clientAddr) LogValue() slog.Value { return slog.StringValue(c.String()) }
func (c *clientAddr) String() string       { return c.client.String() }

// readResponseHead waits for a complete response head from a backend and
// returns its length; the head is up.Buffered()[:n].
func readResponseHead(up *loop.Upstream, deadline time.Time) (int, error) {
	for {
		buf := up.Buffered()
		if end := handshake.HeadEnd(buf); end >= 0 {
			return end, nil
		}
		if len(buf) >= maxResponseHead {
			return 0, errors.New("response head too large")
		}
		if err := up.Fill(deadline, maxResponseHead+1); err != nil {
			if errors.Is(err, io.EOF) {
				return 0, errors.New("backend closed the connection before its response head was complete")
			}
			return 0, err
		}
	}
}

// relayBody copies a refused upgrade's body to the client, as far as its
// framing says and until the handshake's deadline, and ends both
// connections.
func (s *Server) relayBody(c *loop.ClientConn, up *loop.Upstream, resp *handshake.Response) {
	defer up.Close()
	var bf handshake.BodyFramer
	bf.Init(resp)
	if _, done, _ := bf.Feed(nil); done {
		return
	}
	for {
		buf := up.Buffered()
		if len(buf) == 0 {
			if err := up.Fill(c.Deadline(), maxResponseHead); err != nil {
				return // EOF ends an unframed body; anything else cuts it
			}
			continue
		}
		k, done, ferr := bf.Feed(buf)
		if k > 0 && c.Write(buf[:k]) != nil {
			return
		}
		up.Consume(len(buf))
		if done || ferr != nil {
			return
		}
	}
}

// refuse answers the client with an HTTP error and logs why. A negative
// status means there is nobody left to answer.
func (s *Server) refuse(c *loop.ClientConn, status int, reason, metric string, attrs ...slog.Attr) {
	s.m.failedBy(metric).Inc()
	level, msg := slog.LevelWarn, "upgrade refused"
	if status < 0 {
		level, msg = slog.LevelDebug, "upgrade abandoned"
	}
	if s.log.Enabled(context.Background(), level) {
		attrs = append(attrs, slog.String("client", c.RemoteAddr().String()), slog.String("reason", reason))
		if status >= 0 {
			attrs = append(attrs, slog.Int("status", status))
		}
		s.log.LogAttrs(context.Background(), level, msg, attrs...)
	}
	if status < 0 {
		return
	}
	buf := bytebufferpool.Get()
	buf.B = handshake.AppendErrorResponse(buf.B[:0], status, reason)
	_ = c.Write(buf.B)
	bytebufferpool.Put(buf)
}

func failReasonFor(status int, reason string) string {
	switch status {
	case 426:
		return failVersion
	case 431:
		return failHeaderTooLarge
	case 408:
		return failTimeout
	case -1:
		return failClientGone
	}
	return failBadRequest
}

func forwardInfo(a netip.AddrPort) handshake.ForwardInfo {
	return handshake.ForwardInfo{Proto: "http", ClientIP: a.Addr().Unmap()}
}
