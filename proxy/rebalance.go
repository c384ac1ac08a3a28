package proxy

import (
	"time"

	"github.com/wsgate/wsgate/loop"
)

// rebalanceTick paces rebalancing: rebalance_rate is spent in tenths of a
// second, so closes are spread instead of sent in bursts once a second.
const rebalanceTick = 100 * time.Millisecond

// rebalanceLoop moves sessions off overloaded backends in pools with
// rebalance = true. Long-lived sessions stay where they first landed, so
// after a scale-out (or a backend's return) the new capacity would sit
// idle while the old backends stay loaded; closing the excess with 1012
// makes those clients reconnect, and the balancer sends them to the
// emptier backends.
func (s *Server) rebalanceLoop() {
	t := time.NewTicker(rebalanceTick)
	defer t.Stop()
	budget := map[string]float64{}
	for {
		select {
		case <-s.stopping:
			return
		case <-t.C:
		}
		for _, p := range s.routing.Load().pools {
			if !p.cfg.Rebalance {
				delete(budget, p.name)
				continue
			}
			budget[p.name] = min(budget[p.name]+float64(p.cfg.RebalanceRate)*rebalanceTick.Seconds(), float64(p.cfg.RebalanceRate))
			for budget[p.name] >= 1 {
				if !s.rebalanceOne(p) {
					break
				}
				budget[p.name]--
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
	worst.sessions[0].Close(loop.CauseRebalance, 1012, 1001)
	s.m.rebalances.WithLabelValues(p.name, worst.b.addr).Inc()
	return true
}
