package load

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// tally is what every measuring session (throughput, latency, fanout)
// reports: the messages it counted, their latencies, and how it ended.
type tally struct {
	count    int64
	hist     *hdrhistogram.Histogram
	err      error
	closeErr error
}

func (t *tally) tallied() *tally { return t }

// sumTallies adds the sessions' tallies to res and returns their merged
// latency histogram.
func sumTallies[S interface{ tallied() *tally }](live []S, res *Result) *hdrhistogram.Histogram {
	var sessErrs, closeErrs errSamples
	hist := newHist()
	for _, s := range live {
		t := s.tallied()
		res.Messages += t.count
		hist.Merge(t.hist)
		sessErrs.add(t.err)
		if t.err == nil && t.closeErr != nil {
			res.CloseFailed++
			closeErrs.add(fmt.Errorf("closing handshake: %w", t.closeErr))
		}
	}
	res.SessionErrors = sessErrs.n
	res.Errors = append(sessErrs.samples, closeErrs.samples...)
	return hist
}

// windowError says why a measured run has no result: it was interrupted,
// or every session ended before the measurement window did.
func windowError(ctx context.Context, windowEnded bool, res *Result) error {
	if ctx.Err() != nil {
		return errInterrupted
	}
	if !windowEnded {
		return fmt.Errorf("all sessions ended before the measurement window closed: %v", res.Errors)
	}
	return nil
}

// runSessions runs every session until it ends, on its own goroutine; an
// interrupted ctx ends them all by expiring their read deadlines.
func runSessions[S interface {
	run(*window)
	conn() net.Conn
}](ctx context.Context, live []S, w *window) {
	var wg sync.WaitGroup
	for _, s := range live {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.run(w)
		}()
	}
	stop := context.AfterFunc(ctx, func() {
		for _, s := range live {
			s.conn().SetReadDeadline(time.Now())
		}
	})
	wg.Wait()
	stop()
}

func (s *tpSession) conn() net.Conn  { return s.nc }
func (s *fanSession) conn() net.Conn { return s.nc }
