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
	offer    handshake.Offer // what a 101 may select
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

func getScratch() *scratch { return scratchPool.Get().(*scratch) }

func putScratch(sc *scratch) {
	sc.req.Reset() // do not keep the client's input alive
	sc.stickKey = nil
	scratchPool.Put(sc)
}

// upgrade is one client's handshake in progress. It runs on the reactor
// that accepted the client for as long as nothing has to wait but the
// backend's answer (StartHandshake), and on a goroutine of its own from
// the first step that would block otherwise (serve), which goes on from
// where the reactor left: both run the same steps on the same state.
type upgrade struct {
	srv   *Server
	c     *loop.ClientConn
	start time.Time

	sc       *scratch
	prepared bool    // the request was read and routed
	rf       refusal // ... and refused (status != 0)
	p        *pool
	request  *bytebufferpool.ByteBuffer // for the backend

	// The backends tried, the last one's error.
	tried    int
	excluded [8]*balance.Backend
	lastErr  error

	// The try at hand: a backend picked and acquired (bb non-nil), its
	// connection (warm: from its pool) and how much of the request it has
	// been sent.
	b    *backend
	bb   *balance.Backend
	up   *loop.Upstream
	warm bool
	sent int
	// A dial the reactor started (dialOnReactor): its error, or a connect
	// still in progress, until dialDeadline.
	dialErr      error
	connecting   bool
	dialDeadline time.Time

	// The method values handed to the loop, made once per pooled upgrade.
	answerFn func(expired bool) bool
	serveFn  func()
}

var upgradePool = sync.Pool{New: func() any { return new(upgrade) }}

func (s *Server) newUpgrade(c *loop.ClientConn) *upgrade {
	s.m.accepted.Inc()
	u := upgradePool.Get().(*upgrade)
	if u.serveFn == nil {
		u.answerFn, u.serveFn = u.answer, u.serve
	}
	u.srv, u.c, u.start = s, c, time.Now()
	return u
}

// release gives back what the upgrade holds; it is done with.
func (u *upgrade) release() {
	if u.sc != nil {
		putScratch(u.sc)
	}
	if u.request != nil {
		bytebufferpool.Put(u.request)
	}
	answerFn, serveFn := u.answerFn, u.serveFn
	*u = upgrade{answerFn: answerFn, serveFn: serveFn}
	upgradePool.Put(u)
}

// ServeHandshake passes one WebSocket upgrade through: it reads and checks
// the request, routes it, sends it to a backend (a warm connection if one
// is ready, else a dial, moving on to the next backend while time is
// left), relays the answer and, on a 101, hands both connections to the
// reactor. It runs on the client connection's goroutine and may block
// until the handshake deadline.
func (s *Server) ServeHandshake(c *loop.ClientConn) {
	s.newUpgrade(c).serve()
}

// StartHandshake is ServeHandshake's fast way, on the reactor that accepted
// the client: with the request whole in the first read, routed to a
// backend with a warm connection on the same reactor that takes the
// request at once, the only wait is for the backend's answer, and the
// reactor awaits it instead of a goroutine. Anything else (a request in
// pieces, a refusal, a dial, an answer other than 101) goes on on a
// goroutine from where it stands.
func (s *Server) StartHandshake(c *loop.ClientConn) {
	u := s.newUpgrade(c)
	if !u.startOnReactor() {
		c.Go(u.serveFn)
	}
}

func (u *upgrade) startOnReactor() (awaiting bool) {
	c := u.c
	limit := u.srv.cfg.Load().Server.MaxHeaderBytes
	if err := c.TryFill(limit + 1); err != nil {
		return false
	}
	buf := c.Buffered()
	end := handshake.HeadEnd(buf)
	if end < 0 || end > limit {
		return false
	}
	if !u.prepare(buf[:end]) || !u.next() {
		return false
	}
	if u.up == nil && !u.dialOnReactor() || !c.SameReactor(u.up) {
		return false
	}
	n, err := u.up.SendNow(u.request.B)
	u.sent = n
	if err != nil || n < len(u.request.B) {
		return false
	}
	c.AwaitAnswer(u.up, u.answerFn)
	return true
}

// dialOnReactor dials the try's backend from the reactor when no warm
// connection was ready and the backend's address is literal: a connect on
// loopback or in a data centre completes at once, so the request can go
// out in the same breath. A connect still in progress, or a name to
// resolve, is for the goroutine.
func (u *upgrade) dialOnReactor() bool {
	b := u.b
	if !b.ap.IsValid() {
		return false
	}
	up, connected, err := u.c.DialNow(b.ap, b.addr)
	if err != nil {
		u.dialErr = u.srv.dialed(b, err)
		return false
	}
	u.up = up
	if !connected {
		u.connecting = true
		u.dialDeadline = time.Now().Add(dialTimeoutFor(b, u.c.Deadline()))
		return false
	}
	u.srv.dialed(b, nil)
	if !up.Claim() {
		// Closed already; the goroutine says so.
		u.up = nil
		u.dialErr = errors.New("backend closed the connection at once")
		return false
	}
	return true
}

// answer is the backend's answer awaited on the reactor: a 101 starts the
// session there; anything else goes on on a goroutine (serve), which finds
// the answer read so far in the upstream's buffer.
func (u *upgrade) answer(expired bool) (more bool) {
	if expired {
		u.c.Go(u.serveFn)
		return false
	}
	up := u.up
	var buf []byte
	end := -1
	for end < 0 {
		// A head in pieces reads on to the socket's end: the edge that
		// brought the last piece may have brought the backend's FIN too,
		// which no edge reports again.
		switch err := up.TryFill(maxResponseHead + 1); err {
		case nil:
		case loop.ErrWouldBlock:
			return true
		default:
			u.c.Go(u.serveFn)
			return false
		}
		buf = up.Buffered()
		if end = handshake.HeadEnd(buf); end < 0 && len(buf) > maxResponseHead {
			u.c.Go(u.serveFn)
			return false
		}
	}
	var resp handshake.Response
	if err := handshake.ParseResponse(buf[:end], u.sc.key[:], &resp); err != nil || resp.Status != 101 || u.sc.offer.Allows(&resp) != nil {
		// The goroutine answers (and logs) what is not a plain upgrade.
		u.c.Go(u.serveFn)
		return false
	}
	u.upgraded(buf[:end], &resp)
	u.release()
	return false
}

// serve runs the handshake to its end on a goroutine, from where it stands.
func (u *upgrade) serve() {
	defer u.release()
	s, c := u.srv, u.c
	if !u.prepared {
		head, reason, status := s.readRequestHead(c)
		if status != 0 {
			s.refuse(c, status, reason, failReasonFor(status, reason))
			return
		}
		u.prepare(head)
	}
	if rf := u.rf; rf.status != 0 {
		if u.p != nil {
			s.refuse(c, rf.status, rf.reason, rf.metric, slog.String("pool", u.p.name))
		} else {
			s.refuse(c, rf.status, rf.reason, rf.metric)
		}
		return
	}
	for u.bb != nil || u.next() {
		if u.try() {
			return
		}
		if errors.Is(u.lastErr, errClientGone) {
			break
		}
	}
	p := u.p
	if u.tried == 0 {
		s.refuse(c, 503, "no backend available", failNoBackend, slog.String("pool", p.name))
		return
	}
	if errors.Is(u.lastErr, errClientGone) {
		s.m.failedBy(failClientGone).Inc()
		return
	}
	lastErr := u.lastErr
	if lastErr == nil {
		lastErr = context.DeadlineExceeded
	}
	// The client learns that no backend answered, not which or why: that
	// is for the operator's log.
	s.refuse(c, 502, "no backend answered", failBackendDown, slog.String("pool", p.name), slog.String("err", lastErr.Error()))
}

// prepare reads the request in head, routes it and writes the request for
// the backend; on a refusal (rf) it returns false and leaves the client's
// input as it is.
func (u *upgrade) prepare(head []byte) bool {
	u.prepared = true
	u.sc = getScratch()
	u.request = bytebufferpool.Get()
	u.p, u.request.B, u.rf = u.srv.routing.Load().prepare(u.sc, head, u.c.RemoteAddrPort(), u.request.B[:0])
	if u.rf.status != 0 {
		return false
	}
	u.c.Consume(len(head))
	return true
}

// next picks the next backend to try, within the handshake's deadline,
// and takes one of its warm connections if it has one ready: the try at
// hand. It returns false when there is none left to try.
//
// The deadline bounds the tries and each dial. It is checked with the
// clock rather than through a context: a context with a deadline costs a
// timer and five allocations per handshake.
func (u *upgrade) next() bool {
	p := u.p
	exclude := func(bb *balance.Backend) bool {
		for _, x := range u.excluded[:min(u.tried, len(u.excluded))] {
			if x == bb {
				return true
			}
		}
		return false
	}
	for u.tried < len(p.backends) && u.tried < len(u.excluded) {
		if !time.Now().Before(u.c.Deadline()) {
			return false
		}
		bb := p.bal.Pick(u.sc.stickKey, exclude)
		if bb == nil {
			return false
		}
		u.excluded[u.tried] = bb
		u.tried++
		b := p.byAddr[bb.Addr]
		if b == nil || !b.available() {
			continue
		}
		bb.Acquire()
		u.b, u.bb = b, bb
		u.up = b.take(u.c)
		u.warm = u.up != nil
		u.sent = 0
		if u.warm {
			p.m.hits.Inc()
		} else {
			p.m.misses.Inc()
		}
		return true
	}
	return false
}

// try runs the try at hand to its end: true when the client has its
// answer; otherwise the backend failed (lastErr) and is let go.
func (u *upgrade) try() (done bool) {
	s, b, bb, p := u.srv, u.b, u.bb, u.p
	var err error
	dialFailed := false
	for {
		if dialFailed, err = u.connect(); err != nil {
			break
		}
		done, err = u.exchange()
		if done || !u.warm || errors.Is(err, errClientGone) {
			break
		}
		// A warm connection can go stale while it waits (the backend
		// closed it just as it was taken): that says nothing about the
		// backend, so it gets a fresh dial before the next backend is
		// tried, and a sticky key stays where it belongs.
		u.warm, u.up = false, nil
	}
	u.b, u.bb, u.up = nil, nil, nil
	if done {
		return true
	}
	bb.Release()
	u.lastErr = err
	if errors.Is(err, errClientGone) {
		return false
	}
	b.failed(p)
	result := upgradeError
	if dialFailed {
		result = upgradeDialError
	}
	b.upgrades(result).Inc()
	s.log.Warn("backend failed", "pool", p.name, "backend", b.addr, "err", err)
	return false
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
	req.Offer(&sc.offer)
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

// connect gives the try at hand a connection to its backend, unless it has
// one: a dial the reactor started goes on here, else a new dial. dialFailed
// tells a failed dial from a backend that hung up as it was reached.
func (u *upgrade) connect() (dialFailed bool, err error) {
	switch {
	case u.dialErr != nil:
		err, u.dialErr = u.dialErr, nil
		return true, err
	case u.connecting:
		u.connecting = false
		up := u.up
		u.up = nil
		if err := u.srv.dialed(u.b, up.AwaitConnected(u.dialDeadline)); err != nil {
			return true, err
		}
		return u.claim(up)
	case u.up != nil:
		return false, nil
	}
	up, err := u.srv.dial(u.c.Deadline(), u.b)
	if err != nil {
		return true, err
	}
	return u.claim(up)
}

// claim makes up, just connected, the try's connection.
func (u *upgrade) claim(up *loop.Upstream) (dialFailed bool, err error) {
	if !up.Claim() {
		up.Close()
		return false, errors.New("backend closed the connection at once")
	}
	u.up, u.sent = up, 0
	return false, nil
}

// exchange sends the request (what is left of it) to the try's backend
// and relays its answer. done is false when the backend failed before
// answering anything, so that the next backend can be tried.
func (u *upgrade) exchange() (done bool, err error) {
	s, c, p, b, bb, up := u.srv, u.c, u.p, u.b, u.bb, u.up
	deadline := c.Deadline()
	if u.sent < len(u.request.B) {
		if err := up.Send(u.request.B[u.sent:], deadline); err != nil {
			up.Close()
			return false, err
		}
		u.sent = len(u.request.B)
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
		if perr := handshake.ParseResponse(head, u.sc.key[:], &resp); perr != nil {
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
	if err := u.sc.offer.Allows(&resp); err != nil {
		// The backend's fault, but not a sign of its health: it answered
		// what this client's request did not offer, and a client could
		// otherwise have a backend ejected by what it leaves out.
		up.Close()
		bb.Release()
		b.upgrades(upgradeError).Inc()
		s.refuse(c, 502, "invalid answer from backend", failBadResponse,
			slog.String("pool", p.name), slog.String("backend", b.addr), slog.String("err", err.Error()))
		return true, nil
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
	u.upgraded(head, &resp)
	return true, nil
}

// upgraded starts the session of the try at hand, whose backend answered
// 101 with head (in the upstream's buffer).
func (u *upgrade) upgraded(head []byte, resp *handshake.Response) {
	s, c, p, b, bb, up := u.srv, u.c, u.p, u.b, u.bb, u.up
	// The session's reactor writes the 101 to the client from up's input,
	// or from a copy Upgrade makes (SessionParams.Head).
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
		OnEnd:   t,
		Attrs:   t.attrs[:],
	})
	if err != nil {
		return
	}
	b.track(t, sess)
	b.succeeded()
	b.upgrades(upgradeOK).Inc()
	s.m.upgraded.Inc()
	s.m.handshake.Observe(time.Since(u.start).Seconds())
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
