package load

import (
	"context"
	"fmt"
	"net"
	"time"
)

// newWindow returns the measurement window that starts warmup after now.
func newWindow(warmup, duration time.Duration) window {
	w := window{start: time.Now().Add(warmup)}
	w.end = w.start.Add(duration)
	w.startMono = int64(w.start.Sub(epoch))
	w.endMono = int64(w.end.Sub(epoch))
	return w
}

// markers emits WSLOAD MEASURE-START and MEASURE-END at the window's edges
// and reads the generator's CPU time there.
type markers struct {
	cpuStart, cpuEnd   time.Duration
	startDone, endDone chan struct{}
	tStart, tEnd       *time.Timer
}

func startMarkers(cfg *Config, w *window) *markers {
	m := &markers{startDone: make(chan struct{}), endDone: make(chan struct{})}
	m.tStart = time.AfterFunc(time.Until(w.start), func() {
		m.cpuStart = cpuTime()
		cfg.Marker("WSLOAD MEASURE-START")
		close(m.startDone)
	})
	m.tEnd = time.AfterFunc(time.Until(w.end), func() {
		m.cpuEnd = cpuTime()
		cfg.Marker("WSLOAD MEASURE-END")
		close(m.endDone)
	})
	return m
}

// finish waits for both markers once the window is over, or cancels them
// if it is not (every session failed, or the run was interrupted). It
// reports whether the window ended.
func (m *markers) finish(w *window) bool {
	if !time.Now().Before(w.end) {
		<-m.startDone
		<-m.endDone
		return true
	}
	m.tStart.Stop()
	m.tEnd.Stop()
	return false
}

func (m *markers) cpu() float64 { return (m.cpuEnd - m.cpuStart).Seconds() }

// dialSessions opens cfg.Conns sessions and returns those established,
// filling res's dial fields.
func dialSessions[S any](ctx context.Context, cfg *Config, res *Result, mk func(nc net.Conn, pre []byte, i int) S) ([]S, error) {
	sessions := make([]S, cfg.Conns)
	ok := make([]bool, cfg.Conns)
	var dialErrs errSamples
	res.DialFailures = dialAll(ctx, cfg.Conns, cfg.DialConcurrency, func(ctx context.Context, i int) error {
		nc, pre, err := dial(ctx, cfg)
		if err != nil {
			return err
		}
		sessions[i] = mk(nc, pre, i)
		ok[i] = true
		return nil
	}, &dialErrs)
	res.DialErrors = dialErrs.samples
	var live []S
	for i, s := range sessions {
		if ok[i] {
			live = append(live, s)
		}
	}
	res.Established = len(live)
	if len(live) == 0 {
		return nil, fmt.Errorf("no session could be established: %v", res.DialErrors)
	}
	return live, nil
}
