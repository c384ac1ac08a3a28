package load

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"time"

	"github.com/gobwas/ws"
)

// Fanout holds cfg.Conns sessions open for cfg.Warmup + cfg.Duration and
// counts the messages the server pushes to them (wsecho -push-interval):
// each pushed payload starts with the server's send time (8 bytes,
// big-endian Unix nanoseconds, wall clock — same machine), and the time
// from it to receipt goes into the latency histogram. Messages received
// inside the window are counted.
func Fanout(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	res := &Result{Scenario: "fanout", URL: cfg.URL, Sessions: cfg.Conns}
	live, err := dialSessions(ctx, &cfg, res, func(nc net.Conn, pre []byte, _ int) *fanSession {
		return &fanSession{nc: nc, fr: newFrameReader(nc, 64<<10, pre), rng: newRNG(), tally: tally{hist: newHist()}}
	})
	if err != nil {
		return res, err
	}
	w := newWindow(cfg.Warmup, cfg.Duration)
	mk := startMarkers(&cfg, &w)
	runSessions(ctx, live, &w)
	windowEnded := mk.finish(&w)

	hist := sumTallies(live, res)
	if err := windowError(ctx, windowEnded, res); err != nil {
		return res, err
	}
	res.WindowSec = cfg.Duration.Seconds()
	res.MsgsPerSec = float64(res.Messages) / res.WindowSec
	res.LatencyUS = summarize(hist)
	res.GenCPUSec = mk.cpu()
	if res.Messages > 0 {
		res.GenCPUPerMsgUS = res.GenCPUSec * 1e6 / float64(res.Messages)
	}
	if res.Messages == 0 {
		return res, fmt.Errorf("no pushed message received in the window (is the server pushing? wsecho -push-interval)")
	}
	return res, nil
}

type fanSession struct {
	nc  net.Conn
	fr  *frameReader
	rng rng
	tally
}

func (s *fanSession) run(w *window) {
	defer s.nc.Close()
	s.nc.SetReadDeadline(w.end)
	for {
		if err := s.fr.fill(); err != nil {
			if isTimeout(err) && !time.Now().Before(w.end) {
				break
			}
			s.err = err
			return
		}
		now := time.Now()
		in := !now.Before(w.start) && now.Before(w.end)
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
				if _, err := s.nc.Write(appendFrame(nil, ws.OpPong, p, &s.rng)); err != nil {
					s.err = err
					return
				}
				continue
			case ws.OpPong:
				continue
			case ws.OpClose:
				s.err = fmt.Errorf("server closed the session: %s", closeReason(p))
				return
			}
			if len(p) < 8 {
				s.err = fmt.Errorf("pushed message of %d bytes: no timestamp", len(p))
				return
			}
			if in {
				s.count++
				sent := int64(binary.BigEndian.Uint64(p[0:8]))
				s.hist.RecordValue(min(max(now.UnixNano()-sent, 0), 60e9))
			}
		}
		if !now.Before(w.end) {
			break
		}
	}
	s.closeErr = closeSession(s.nc, s.fr, &s.rng)
}
