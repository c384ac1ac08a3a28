package load

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
)

// Idle opens cfg.Idle sessions, holds them for cfg.Hold, then checks one
// echo on each and closes them.
func Idle(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	res := &Result{Scenario: "idle", URL: cfg.URL, Sessions: cfg.Idle}
	cpu0 := cpuTime()

	sessions := make([]*idleSession, cfg.Idle)
	var dialErrs errSamples
	var wg sync.WaitGroup // session readers
	res.DialFailures = dialAll(ctx, cfg.Idle, cfg.DialConcurrency, func(ctx context.Context, i int) error {
		nc, pre, err := dial(ctx, &cfg)
		if err != nil {
			return err
		}
		s := &idleSession{
			nc:     nc,
			fr:     newFrameReader(nc, 512, pre),
			rng:    newRNG(),
			echoed: make(chan error, 1),
			done:   make(chan struct{}),
		}
		binary.BigEndian.PutUint64(s.msg[:], uint64(i))
		sessions[i] = s
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.read()
		}()
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
	defer func() {
		for _, s := range live {
			s.nc.Close()
		}
		wg.Wait()
	}()

	cfg.Marker(fmt.Sprintf("WSLOAD READY established=%d failed=%d", res.Established, res.DialFailures))
	if cfg.ReadyFile != "" {
		if err := os.WriteFile(cfg.ReadyFile, fmt.Appendf(nil, "%d\n", res.Established), 0o644); err != nil {
			return res, err
		}
	}
	holdStart := time.Now()
	hold := time.NewTimer(cfg.Hold)
	select {
	case <-hold.C:
	case <-cfg.HoldEnd:
		hold.Stop()
	case <-ctx.Done():
		hold.Stop()
	}
	res.HoldSec = time.Since(holdStart).Seconds()
	for _, s := range live {
		if s.ended.Load() {
			res.DroppedDuringHold++
		}
	}
	cfg.Marker("WSLOAD HOLD-END")
	if ctx.Err() != nil {
		return res, errInterrupted
	}

	// One echo per session, then a closing handshake, with bounded
	// concurrency.
	var echoErrs errSamples
	var mu sync.Mutex
	sem := make(chan struct{}, cfg.DialConcurrency)
	var vwg sync.WaitGroup
	for _, s := range live {
		sem <- struct{}{}
		vwg.Add(1)
		go func() {
			defer vwg.Done()
			defer func() { <-sem }()
			echoErr, closeErr := s.verify(cfg.EchoTimeout)
			echoErrs.add(echoErr)
			mu.Lock()
			if echoErr == nil {
				res.EchoOK++
			} else {
				res.EchoFailed++
			}
			if closeErr != nil {
				res.CloseFailed++
			}
			mu.Unlock()
		}()
	}
	vwg.Wait()
	res.Errors = echoErrs.samples
	res.SessionErrors = echoErrs.n
	res.GenCPUSec = (cpuTime() - cpu0).Seconds()
	return res, nil
}

// idleSession is one held session. Its reader goroutine answers pings and
// reports the echo and the server's Close.
type idleSession struct {
	nc  net.Conn
	fr  *frameReader
	wmu sync.Mutex
	rng rng
	msg [16]byte // the echo check payload: session index, then zeros

	ended  atomic.Bool // the reader has returned
	echoed chan error  // result of the echo check
	done   chan struct{}
	endErr error // why the reader returned (valid after done)
}

func (s *idleSession) write(op ws.OpCode, p []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_, err := s.nc.Write(appendFrame(nil, op, p, &s.rng))
	return err
}

var errClosedByServer = errors.New("closed by server")

func (s *idleSession) read() {
	defer close(s.done)
	defer s.ended.Store(true)
	for {
		h, p, err := s.fr.readFrame()
		if err != nil {
			s.endErr = err
			return
		}
		switch h.OpCode {
		case ws.OpPing:
			s.write(ws.OpPong, p)
		case ws.OpPong:
		case ws.OpClose:
			// Either the reply to our Close (after the echo check) or the
			// server ending the session.
			s.endErr = fmt.Errorf("%w: %s", errClosedByServer, closeReason(p))
			return
		default:
			var err error
			if !h.Fin || string(p) != string(s.msg[:]) {
				err = fmt.Errorf("bad echo: opcode %d fin %v %d bytes", h.OpCode, h.Fin, len(p))
			}
			select {
			case s.echoed <- err:
			default:
			}
		}
	}
}

// verify sends the echo check, waits for its echo, then closes the session
// with a closing handshake.
func (s *idleSession) verify(timeout time.Duration) (echoErr, closeErr error) {
	if s.ended.Load() {
		<-s.done
		return fmt.Errorf("session ended during the hold: %w", s.endErr), nil
	}
	if err := s.write(ws.OpBinary, s.msg[:]); err != nil {
		return err, nil
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case echoErr = <-s.echoed:
	case <-s.done:
		echoErr = fmt.Errorf("session ended before its echo: %w", s.endErr)
	case <-t.C:
		echoErr = errors.New("no echo within the timeout")
	}
	if echoErr != nil {
		return echoErr, nil
	}
	s.write(ws.OpClose, closeFrame1000)
	t.Reset(closeTimeout)
	select {
	case <-s.done:
		if !errors.Is(s.endErr, errClosedByServer) {
			closeErr = s.endErr
		}
	case <-t.C:
		closeErr = errors.New("no Close reply within the timeout")
	}
	return nil, closeErr
}
