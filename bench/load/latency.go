package load

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/bench/internal/wsframe"
)

// maxBatch bounds the messages an open-loop session writes at once when it
// is behind schedule.
const maxBatch = 64

// OpenLoop ("latency") sends cfg.Rate messages per second in total over
// cfg.Conns sessions, each on a fixed schedule (every Conns/Rate seconds,
// the sessions' schedules staggered), whether or not echoes come back, for
// cfg.Warmup + cfg.Duration. Each message carries its intended send time,
// and latency is measured from it: a session that falls behind sends its
// overdue messages at once, and their wait counts (no coordinated
// omission). Messages scheduled inside the window are counted; after the
// window, echoes are awaited for up to cfg.Drain and those missing are
// reported as lost.
func OpenLoop(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	res := &Result{Scenario: "latency", URL: cfg.URL, Sessions: cfg.Conns, Size: cfg.Size, TargetRate: cfg.Rate}
	live, err := dialSessions(ctx, &cfg, res, func(nc net.Conn, pre []byte, _ int) *olSession {
		return newOLSession(nc, pre, &cfg)
	})
	if err != nil {
		return res, err
	}
	if ctx.Err() != nil {
		for _, s := range live {
			s.nc.Close()
		}
		return res, errInterrupted
	}

	// Every session sends at rate Rate/len(live), starting at staggered
	// offsets so that the total is evenly spread.
	interval := int64(float64(len(live)) / cfg.Rate * 1e9)
	if interval <= 0 {
		interval = 1
	}
	w := newWindow(cfg.Warmup, cfg.Duration)
	first := mono() + int64(10*time.Millisecond)
	mk := startMarkers(&cfg, &w)

	var wg sync.WaitGroup
	for i, s := range live {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.run(ctx, &w, first+int64(i)*interval/int64(len(live)), interval)
		}()
	}
	stop := context.AfterFunc(ctx, func() {
		for _, s := range live {
			s.nc.SetDeadline(time.Now())
		}
	})
	wg.Wait()
	stop()
	windowEnded := mk.finish(&w)

	lag := newHist()
	var scheduled int64
	for _, s := range live {
		scheduled += s.scheduled
		lag.Merge(s.lag)
	}
	hist := sumTallies(live, res)
	if err := windowError(ctx, windowEnded, res); err != nil {
		return res, err
	}
	res.WindowSec = cfg.Duration.Seconds()
	res.MsgsPerSec = float64(res.Messages) / res.WindowSec
	res.MBPerSec = res.MsgsPerSec * float64(cfg.Size) / 1e6
	res.SentPerSec = float64(scheduled) / res.WindowSec
	res.Lost = scheduled - res.Messages
	res.LatencyUS = summarize(hist)
	res.SendLagUS = summarize(lag)
	res.GenCPUSec = mk.cpu()
	if res.Messages > 0 {
		res.GenCPUPerMsgUS = res.GenCPUSec * 1e6 / float64(res.Messages)
	}
	return res, nil
}

// olSession is one open-loop session: a sender goroutine on a schedule and
// a reader (the run goroutine) timing the echoes.
type olSession struct {
	nc      net.Conn
	fr      *frameReader
	cfg     *Config
	wmu     sync.Mutex // sender vs. pongs
	wbuf    []byte
	payload []byte
	rng     rng

	sent       atomic.Int64 // messages written
	received   atomic.Int64 // echoes read
	senderDone atomic.Bool
	sendErr    error

	scheduled int64                   // messages whose intended time is in the window
	lag       *hdrhistogram.Histogram // their actual send time − intended (sender only)
	tally                             // count: their echoes received
}

func newOLSession(nc net.Conn, pre []byte, cfg *Config) *olSession {
	frameLen := wsframe.Size(int64(cfg.Size), true) + cfg.Size
	payload := make([]byte, cfg.Size)
	for i := range payload {
		payload[i] = 'a' + byte(i%26)
	}
	return &olSession{
		nc:      nc,
		fr:      newFrameReader(nc, max(64<<10, 2*(cfg.Size+14)), pre),
		cfg:     cfg,
		wbuf:    make([]byte, 0, maxBatch*frameLen+256),
		payload: payload,
		rng:     newRNG(),
		tally:   tally{hist: newHist()},
		lag:     newHist(),
	}
}

// send writes the messages due by now (at most maxBatch), stamping each
// with its intended time; it returns the next intended time.
func (s *olSession) send(next, now, interval int64, w *window) (int64, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	b := s.wbuf[:0]
	seq := uint64(s.sent.Load())
	n := 0
	for next <= now && next < w.endMono && n < maxBatch {
		binary.BigEndian.PutUint64(s.payload[0:8], uint64(next))
		if len(s.payload) >= 16 {
			binary.BigEndian.PutUint64(s.payload[8:16], seq)
		}
		b = appendFrame(b, ws.OpBinary, s.payload, &s.rng)
		if next >= w.startMono {
			s.scheduled++
			s.lag.RecordValue(min(now-next, 60e9))
		}
		seq++
		n++
		next += interval
	}
	s.wbuf = b
	if n == 0 {
		return next, nil
	}
	_, err := s.nc.Write(b)
	s.sent.Store(int64(seq))
	return next, err
}

func (s *olSession) sender(ctx context.Context, w *window, first, interval int64) {
	defer func() {
		s.senderDone.Store(true)
		// Wake the reader if every echo is already in.
		if s.received.Load() == s.sent.Load() || s.sendErr != nil {
			s.nc.SetReadDeadline(time.Now())
		}
	}()
	next := first
	for next < w.endMono && ctx.Err() == nil {
		if d := next - mono(); d > 0 {
			time.Sleep(time.Duration(d))
		}
		var err error
		if next, err = s.send(next, mono(), interval, w); err != nil {
			s.sendErr = err
			return
		}
	}
	// The session lasts until the window's end, even when its last
	// message was due a little before.
	if d := time.Until(w.end); d > 0 && ctx.Err() == nil {
		time.Sleep(d)
	}
}

func (s *olSession) run(ctx context.Context, w *window, first, interval int64) {
	defer s.nc.Close()
	s.nc.SetWriteDeadline(w.end.Add(s.cfg.Drain))
	s.nc.SetReadDeadline(w.end.Add(s.cfg.Drain))
	senderExited := make(chan struct{})
	go func() {
		defer close(senderExited)
		s.sender(ctx, w, first, interval)
	}()
	s.err = s.read(w)
	<-senderExited
	if s.err == nil && s.sendErr != nil {
		s.err = s.sendErr
	}
	if s.err == nil {
		s.closeErr = closeSession(s.nc, s.fr, &s.rng)
	}
}

// read times echoes until the sender is done and every message sent has
// come back, or the drain deadline passes (the missing ones are lost).
func (s *olSession) read(w *window) error {
	var expect uint64
	for {
		if s.senderDone.Load() && s.received.Load() == s.sent.Load() {
			return nil
		}
		if err := s.fr.fill(); err != nil {
			if isTimeout(err) && s.senderDone.Load() {
				return nil // drained, or gave up waiting: the rest is lost
			}
			return err
		}
		now := mono()
		for {
			h, p, ok, err := s.fr.next()
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			switch h.OpCode {
			case ws.OpPing:
				s.wmu.Lock()
				_, err := s.nc.Write(appendFrame(nil, ws.OpPong, p, &s.rng))
				s.wmu.Unlock()
				if err != nil {
					return err
				}
				continue
			case ws.OpPong:
				continue
			case ws.OpClose:
				return fmt.Errorf("server closed the session: %s", closeReason(p))
			}
			if h.OpCode != ws.OpBinary || !h.Fin || len(p) != s.cfg.Size {
				return fmt.Errorf("unexpected echo: opcode %d fin %v length %d (want binary, fin, %d)", h.OpCode, h.Fin, len(p), s.cfg.Size)
			}
			if len(p) >= 16 {
				if seq := binary.BigEndian.Uint64(p[8:16]); seq != expect {
					return fmt.Errorf("echo out of order or corrupt: sequence %d, want %d", seq, expect)
				}
			}
			expect++
			intended := int64(binary.BigEndian.Uint64(p[0:8]))
			if intended >= w.startMono && intended < w.endMono {
				s.count++
				s.hist.RecordValue(min(max(now-intended, 0), 60e9))
			}
			s.received.Add(1)
		}
	}
}
