package load

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/bench/internal/wsframe"
)

// closeTimeout bounds the closing handshake at the end of a session.
const closeTimeout = 5 * time.Second

// Throughput keeps cfg.InFlight messages of cfg.Size bytes in flight on each
// of cfg.Conns sessions for cfg.Warmup + cfg.Duration, counting and timing
// the echoes received in the last cfg.Duration.
func Throughput(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	res := &Result{Scenario: "throughput", URL: cfg.URL, Sessions: cfg.Conns, InFlight: cfg.InFlight, Size: cfg.Size}

	sessions := make([]*tpSession, cfg.Conns)
	var dialErrs errSamples
	res.DialFailures = dialAll(ctx, cfg.Conns, cfg.DialConcurrency, func(ctx context.Context, i int) error {
		nc, pre, err := dial(ctx, &cfg)
		if err != nil {
			return err
		}
		sessions[i] = newTPSession(nc, pre, &cfg)
		return nil
	}, &dialErrs)
	res.DialErrors = dialErrs.samples
	live := sessions[:0]
	for _, s := range sessions {
		if s != nil {
			live = append(live, s)
		}
	}
	res.Established = len(live)
	if len(live) == 0 {
		return res, fmt.Errorf("no session could be established: %v", res.DialErrors)
	}
	if ctx.Err() != nil {
		for _, s := range live {
			s.nc.Close()
		}
		return res, errInterrupted
	}

	start := time.Now()
	w := window{start: start.Add(cfg.Warmup)}
	w.end = w.start.Add(cfg.Duration)
	w.startMono = int64(w.start.Sub(epoch))
	w.endMono = int64(w.end.Sub(epoch))

	// Markers and the generator's CPU time at the window's edges.
	var cpuStart, cpuEnd time.Duration
	startDone, endDone := make(chan struct{}), make(chan struct{})
	tStart := time.AfterFunc(time.Until(w.start), func() {
		cpuStart = cpuTime()
		cfg.Marker("WSLOAD MEASURE-START")
		close(startDone)
	})
	tEnd := time.AfterFunc(time.Until(w.end), func() {
		cpuEnd = cpuTime()
		cfg.Marker("WSLOAD MEASURE-END")
		close(endDone)
	})

	runSessions(ctx, live, &w)
	// Sessions end normally only once the window is over; its markers are
	// then due (or done): wait for them. Before that, every session failed
	// or the run was interrupted.
	windowEnded := !time.Now().Before(w.end)
	if windowEnded {
		<-startDone
		<-endDone
	} else {
		tStart.Stop()
		tEnd.Stop()
	}

	hist := sumTallies(live, res)
	if err := windowError(ctx, windowEnded, res); err != nil {
		return res, err
	}
	res.WindowSec = cfg.Duration.Seconds()
	res.MsgsPerSec = float64(res.Messages) / res.WindowSec
	res.MBPerSec = res.MsgsPerSec * float64(cfg.Size) / 1e6
	res.LatencyUS = summarize(hist)
	res.GenCPUSec = (cpuEnd - cpuStart).Seconds()
	if res.Messages > 0 {
		res.GenCPUPerMsgUS = res.GenCPUSec * 1e6 / float64(res.Messages)
	}
	return res, nil
}

// window is the measurement window, in wall time and in mono() units.
type window struct {
	start, end         time.Time
	startMono, endMono int64
}

// tpSession is one throughput session. Everything it needs per message is
// allocated up front.
type tpSession struct {
	nc       net.Conn
	fr       *frameReader
	cfg      *Config
	wbuf     []byte // outgoing frames of one batch
	payload  []byte // payload template (filler), copied into each frame
	rng      rng
	sent     uint64 // sequence number of the next message sent
	received uint64 // sequence number expected next
	pending  []byte // pong payloads to send (control frames from the server)

	tally
}

func newTPSession(nc net.Conn, pre []byte, cfg *Config) *tpSession {
	frameLen := wsframe.Size(int64(cfg.Size), true) + cfg.Size
	payload := make([]byte, cfg.Size)
	for i := range payload {
		payload[i] = 'a' + byte(i%26)
	}
	return &tpSession{
		nc:      nc,
		fr:      newFrameReader(nc, max(64<<10, 2*(cfg.Size+14)), pre),
		cfg:     cfg,
		wbuf:    make([]byte, 0, cfg.InFlight*frameLen+256),
		payload: payload,
		rng:     newRNG(),
		tally:   tally{hist: newHist()},
	}
}

// send writes n new messages in one write, plus any pending pongs.
func (s *tpSession) send(n int) error {
	b := s.wbuf[:0]
	if len(s.pending) > 0 {
		b = appendFrame(b, ws.OpPong, s.pending, &s.rng)
		s.pending = s.pending[:0]
	}
	now := mono()
	for range n {
		binary.BigEndian.PutUint64(s.payload[0:8], uint64(now))
		if len(s.payload) >= 16 {
			binary.BigEndian.PutUint64(s.payload[8:16], s.sent)
		}
		s.sent++
		b = appendFrame(b, ws.OpBinary, s.payload, &s.rng)
	}
	s.wbuf = b
	_, err := s.nc.Write(b)
	return err
}

// check validates an echo and returns its send time.
func (s *tpSession) check(h ws.Header, p []byte) (sentAt int64, err error) {
	if h.OpCode != ws.OpBinary || !h.Fin || len(p) != s.cfg.Size {
		return 0, fmt.Errorf("unexpected echo: opcode %d fin %v length %d (want binary, fin, %d)", h.OpCode, h.Fin, len(p), s.cfg.Size)
	}
	if len(p) >= 16 {
		if seq := binary.BigEndian.Uint64(p[8:16]); seq != s.received {
			return 0, fmt.Errorf("echo out of order or corrupt: sequence %d, want %d", seq, s.received)
		}
		if last := len(p) - 1; last >= 16 && p[last] != 'a'+byte(last%26) {
			return 0, errors.New("echo payload corrupt")
		}
	}
	s.received++
	return int64(binary.BigEndian.Uint64(p[0:8])), nil
}

func (s *tpSession) run(w *window) {
	defer s.nc.Close()
	s.nc.SetReadDeadline(w.end)
	s.nc.SetWriteDeadline(w.end.Add(10 * time.Second))
	if s.err = s.send(s.cfg.InFlight); s.err != nil {
		return
	}
	for {
		if err := s.fr.fill(); err != nil {
			if isTimeout(err) && !time.Now().Before(w.end) {
				break // the window is over
			}
			s.err = err
			return
		}
		now := mono()
		in := now >= w.startMono && now < w.endMono
		echoes := 0
		for {
			h, p, ok, err := s.fr.next()
			if err != nil {
				s.err = err
				return
			}
			if !ok {
				break
			}
			switch h.OpCode {
			case ws.OpPing:
				s.pending = append(s.pending[:0], p...)
				continue
			case ws.OpPong:
				continue
			case ws.OpClose:
				s.err = fmt.Errorf("server closed the session: %s", closeReason(p))
				return
			}
			sentAt, err := s.check(h, p)
			if err != nil {
				s.err = err
				return
			}
			echoes++
			if in {
				s.count++
				s.hist.RecordValue(min(now-sentAt, 60e9))
			}
		}
		if now >= w.endMono {
			break
		}
		if echoes > 0 || len(s.pending) > 0 {
			if s.err = s.send(echoes); s.err != nil {
				return
			}
		}
	}
	s.closeErr = closeSession(s.nc, s.fr, &s.rng)
}

// closeSession performs the client side of the closing handshake: Close
// 1000, then read (discarding data) until the server's Close.
func closeSession(nc net.Conn, fr *frameReader, r *rng) error {
	nc.SetDeadline(time.Now().Add(closeTimeout))
	if _, err := nc.Write(appendFrame(nil, ws.OpClose, closeFrame1000, r)); err != nil {
		return err
	}
	for {
		h, _, err := fr.readFrame()
		if err != nil {
			return err
		}
		if h.OpCode == ws.OpClose {
			return nil
		}
	}
}

func closeReason(p []byte) string {
	if len(p) < 2 {
		return "no status code"
	}
	code := binary.BigEndian.Uint16(p)
	return fmt.Sprintf("code %d %q", code, bytes.ToValidUTF8(p[2:], nil))
}
