package proxy

import (
	"time"

	"golang.org/x/time/rate"

	"github.com/wsgate/wsgate/loop"
)

// rebalanceTick is how often rebalancing looks at the pools. The pace
// itself is kept by a token bucket per pool, not by the ticks: a tick that
// the scheduler delays is followed at once by the next (a Ticker drops
// late ticks but keeps one), and counting per tick would then close two
// ticks' worth in a few milliseconds.
const rebalanceTick = 100 * time.Millisecond

// rebalanceLimiter returns a token bucket that spends ratePerSec in slices
// of one tick, so closes are spread instead of sent once a second. Any
// window of w seconds then holds at most ratePerSec*w + burst closes.
// golang.org/x/time/rate rather than a budget of our own: it accounts in
// elapsed time, which is what bounds the rate when ticks bunch.
func rebalanceLimiter(ratePerSec int) *rate.Limiter {
	return rate.NewLimiter(rate.Limit(ratePerSec), rebalanceBurst(ratePerSec))
}

func rebalanceBurst(ratePerSec int) int {
	return max(1, int(float64(ratePerSec)*rebalanceTick.Seconds()))
}

// rebalanceLoop moves sessions off overloaded backends in pools with
// rebalance = true. Long-lived sessions stay where they first landed, so
// after a scale-out (or a backend's return) the new capacity would sit
// idle while the old backends stay loaded; closing the excess with 1012
// makes those clients reconnect, and the balancer sends them to the
// emptier backends.
func (s *Server) rebalanceLoop() {
	t := time.NewTicker(rebalanceTick)
	defer t.Stop()
	type paced struct {
		ratePerSec int // as configured, to notice a reload that changes it
		lim        *rate.Limiter
	}
	limiters := map[string]paced{}
	for {
		select {
		case <-s.stopping:
			return
		case <-t.C:
		}
		for _, p := range s.routing.Load().pools {
			if !p.cfg.Rebalance || !s.rebalanceWanted(p.name, false) {
				// A fresh bucket next time: the allowance does not pile up
				// while the pool is balanced.
				delete(limiters, p.name)
				continue
			}
			pl, ok := limiters[p.name]
			if !ok || pl.ratePerSec != p.cfg.RebalanceRate {
				pl = paced{p.cfg.RebalanceRate, rebalanceLimiter(p.cfg.RebalanceRate)}
				limiters[p.name] = pl
			}
			for pl.lim.Allow() {
				if !s.rebalanceOne(p) {
					// Balanced: done until capacity changes again.
					s.rebalanceWanted(p.name, true)
					delete(limiters, p.name)
					break
				}
			}
		}
	}
}

// rebalanceOne closes one session on the backend that is furthest over its
// weighted share, if that is past the threshold. It reports whether it
// closed one.
func (s *Server) rebalanceOne(p *pool) bool {
	type load struct {
		b        *backend
		sessions []*loop.Session // open, not already closing
		weight   float64
	}
	var loads []load
	var total, weights float64
	for _, b := range p.backends {
		if !b.available() {
			continue
		}
		var open []*loop.Session
		for _, ss := range b.liveSessions() {
			if !ss.Done() {
				open = append(open, ss)
			}
		}
		w := float64(b.bb.Load().Weight) * b.bb.Load().WeightFactor()
		loads = append(loads, load{b, open, w})
		total += float64(len(open))
		weights += w
	}
	if len(loads) < 2 || total == 0 || weights == 0 {
		return false
	}
	var worst *load
	worstRatio := 0.0
	for i := range loads {
		l := &loads[i]
		expected := total * l.weight / weights
		if expected <= 0 {
			continue
		}
		if r := float64(len(l.sessions)) / expected; r > worstRatio {
			worst, worstRatio = l, r
		}
	}
	if worst == nil || worstRatio <= p.cfg.RebalanceThreshold || len(worst.sessions) == 0 {
		return false
	}
	// Logged when decided: the session's own end line comes only after the
	// client has answered the close.
	s.log.Debug("rebalance close", "pool", p.name, "backend", worst.b.addr,
		"sessions", len(worst.sessions), "skew", worstRatio, "threshold", p.cfg.RebalanceThreshold)
	worst.sessions[0].Close(loop.CauseRebalance, 1012, 1001)
	s.m.rebalances.WithLabelValues(p.name, worst.b.addr).Inc()
	return true
}

// wantRebalance asks for a rebalance of pool: a backend joined, came back
// from unhealthy or ejected, or was undrained. Rebalancing runs only then,
// until the pool is balanced, so the churn of sessions coming and going
// never triggers it.
func (s *Server) wantRebalance(pool string) {
	s.rebalanceMu.Lock()
	if s.rebalancePools == nil {
		s.rebalancePools = make(map[string]bool)
	}
	s.rebalancePools[pool] = true
	s.rebalanceMu.Unlock()
}

// rebalanceWanted reports whether pool awaits a rebalance, and clears the
// request when clear is set.
func (s *Server) rebalanceWanted(pool string, clear bool) bool {
	s.rebalanceMu.Lock()
	defer s.rebalanceMu.Unlock()
	w := s.rebalancePools[pool]
	if clear {
		delete(s.rebalancePools, pool)
	}
	return w
}
