package load

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
)

// Handshake opens new sessions as fast as it can with cfg.Conns workers
// for cfg.Warmup + cfg.Duration (and at most cfg.MaxSessions in all). Each
// session is a TCP connect and upgrade, one echo of cfg.Size bytes, and a
// closing handshake after which the client waits for the server to close
// the TCP connection first (so TIME_WAIT stays on the server side and the
// client's ports are not used up). Sessions that complete inside the
// window are counted: upgrades/s, handshake latency (connect + upgrade) in
// LatencyUS and the first echo's in EchoLatencyUS.
func Handshake(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	res := &Result{Scenario: "handshake", URL: cfg.URL, Sessions: cfg.Conns, Size: cfg.Size}
	w := newWindow(cfg.Warmup, cfg.Duration)
	mk := startMarkers(&cfg, &w)

	var (
		started  atomic.Int64
		wg       sync.WaitGroup
		dialErrs errSamples
		sessErrs errSamples
		mu       sync.Mutex
		hs, echo = newHist(), newHist()
	)
	for range cfg.Conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			payload := make([]byte, cfg.Size)
			for i := range payload {
				payload[i] = 'a' + byte(i%26)
			}
			r := newRNG()
			hsH, echoH := newHist(), newHist()
			var n, dialFailed, failed int64
			defer func() {
				mu.Lock()
				hs.Merge(hsH)
				echo.Merge(echoH)
				res.Upgrades += n
				res.DialFailures += int(dialFailed)
				res.SessionErrors += int(failed)
				mu.Unlock()
			}()
			for ctx.Err() == nil && time.Now().Before(w.end) && started.Add(1) <= int64(cfg.MaxSessions) {
				t0 := time.Now()
				hsDur, echoDur, err := oneSession(ctx, &cfg, payload, &r)
				if err != nil {
					if errors.Is(err, errDial) {
						dialFailed++
						dialErrs.add(err)
					} else {
						failed++
						sessErrs.add(err)
					}
					continue
				}
				if end := t0.Add(hsDur + echoDur); !end.Before(w.start) && end.Before(w.end) {
					n++
					hsH.RecordValue(min(hsDur.Nanoseconds(), 60e9))
					echoH.RecordValue(min(echoDur.Nanoseconds(), 60e9))
				}
			}
		}()
	}
	wg.Wait()
	windowEnded := mk.finish(&w)
	res.DialErrors = dialErrs.samples
	res.Errors = sessErrs.samples
	if ctx.Err() != nil {
		return res, errInterrupted
	}
	if !windowEnded {
		return res, errors.New("the session limit was reached before the window's end: raise -max-sessions or shorten -d")
	}
	if res.Upgrades == 0 {
		return res, fmt.Errorf("no session completed: dial errors %v, errors %v", res.DialErrors, res.Errors)
	}
	res.Established = int(res.Upgrades)
	res.WindowSec = cfg.Duration.Seconds()
	res.UpgradesPerS = float64(res.Upgrades) / res.WindowSec
	res.LatencyUS = summarize(hs)
	res.EchoLatencyUS = summarize(echo)
	res.GenCPUSec = mk.cpu()
	res.GenCPUPerMsgUS = res.GenCPUSec * 1e6 / float64(res.Upgrades)
	return res, nil
}

var errDial = errors.New("dial")

// oneSession runs one short session: upgrade, one echo, closing
// handshake, wait for the server's FIN. It returns the time of the
// handshake (connect + upgrade) and of the echo.
func oneSession(ctx context.Context, cfg *Config, payload []byte, r *rng) (hsDur, echoDur time.Duration, err error) {
	t0 := time.Now()
	nc, pre, err := dial(ctx, cfg)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: %w", errDial, err)
	}
	defer nc.Close()
	t1 := time.Now()
	hsDur = t1.Sub(t0)
	nc.SetDeadline(t1.Add(cfg.DialTimeout + closeTimeout))
	fr := newFrameReader(nc, max(4096, 2*(len(payload)+14)), pre)
	binary.BigEndian.PutUint64(payload, uint64(t1.UnixNano()))
	if _, err := nc.Write(appendFrame(nil, ws.OpBinary, payload, r)); err != nil {
		return hsDur, 0, err
	}
	for {
		h, p, err := fr.readFrame()
		if err != nil {
			return hsDur, 0, err
		}
		if h.OpCode == ws.OpPing {
			nc.Write(appendFrame(nil, ws.OpPong, p, r))
			continue
		}
		if h.OpCode == ws.OpClose {
			return hsDur, 0, fmt.Errorf("server closed the session: %s", closeReason(p))
		}
		if h.OpCode != ws.OpBinary || len(p) != len(payload) || string(p[8:]) != string(payload[8:]) {
			return hsDur, 0, fmt.Errorf("bad echo: opcode %d, %d bytes", h.OpCode, len(p))
		}
		break
	}
	echoDur = time.Since(t1)
	if err := closeSession(nc, fr, r); err != nil {
		return hsDur, echoDur, fmt.Errorf("closing handshake: %w", err)
	}
	// Wait (briefly) for the server to close first.
	nc.SetReadDeadline(time.Now().Add(time.Second))
	var b [64]byte
	for {
		if _, err := nc.Read(b[:]); err != nil {
			break // io.EOF, or the deadline
		}
	}
	return hsDur, echoDur, nil
}
