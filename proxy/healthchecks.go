package proxy

import (
	"sync"
	"time"

	"github.com/wsgate/wsgate/proxy/config"
	"github.com/wsgate/wsgate/proxy/health"
)

// checkers runs one active health checker per pool that has [pool.health],
// and keeps them in step with the configuration across reloads.
type checkers struct {
	srv *Server
	mu  sync.Mutex
	by  map[string]*poolChecker // by pool name
}

type poolChecker struct {
	cfg     config.Health
	c       *health.Checker
	targets map[string]bool
}

// sync makes the checkers match rt: new pools get one, changed health
// settings restart it, backends are added and removed.
func (cs *checkers) sync(rt *routing) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.by == nil {
		cs.by = make(map[string]*poolChecker)
	}
	seen := make(map[string]bool)
	for _, p := range rt.pools {
		hc := p.cfg.Health
		pc := cs.by[p.name]
		if hc == nil {
			continue
		}
		seen[p.name] = true
		if pc != nil && pc.cfg != *hc {
			pc.c.Stop()
			pc = nil
		}
		if pc == nil {
			kind, _ := health.ParseKind(hc.Type)
			hcfg := health.Config{
				Kind: kind, Path: hc.Path, Interval: hc.Interval, Timeout: hc.Timeout,
				HealthyThreshold: hc.HealthyThreshold, UnhealthyThreshold: hc.UnhealthyThreshold,
				InitiallyHealthy: true,
			}
			pc = &poolChecker{cfg: *hc, c: health.New(hcfg, &healthDelegate{srv: cs.srv, pool: p.name}, health.DefaultMaxConcurrent), targets: map[string]bool{}}
			cs.by[p.name] = pc
		}
		want := make(map[string]bool, len(p.backends))
		for _, b := range p.backends {
			want[b.addr] = true
			if !pc.targets[b.addr] {
				pc.c.Add(b.addr)
				pc.targets[b.addr] = true
			}
		}
		for t := range pc.targets {
			if !want[t] {
				pc.c.Remove(t)
				delete(pc.targets, t)
			}
		}
	}
	for name, pc := range cs.by {
		if !seen[name] {
			pc.c.Stop()
			delete(cs.by, name)
			if p := rt.byName[name]; p != nil {
				// Checks were turned off: nothing vouches against its
				// backends any more.
				for _, b := range p.backends {
					b.checkedUp.Store(true)
					b.syncState()
				}
			}
		}
	}
}

func (cs *checkers) stop() {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for name, pc := range cs.by {
		pc.c.Stop()
		delete(cs.by, name)
	}
}

// healthDelegate applies a checker's verdicts to the current backends.
type healthDelegate struct {
	srv  *Server
	pool string
}

func (d *healthDelegate) StateChanged(target string, healthy bool, reason string) {
	p := d.srv.routing.Load().byName[d.pool]
	if p == nil {
		return
	}
	b := p.byAddr[target]
	if b == nil {
		return
	}
	b.checkedUp.Store(healthy)
	b.syncState()
	if healthy {
		d.srv.log.Info("backend healthy", "pool", d.pool, "backend", target, "reason", reason)
		b.slowStart()
		d.srv.wantRebalance(d.pool)
	} else {
		d.srv.log.Warn("backend unhealthy", "pool", d.pool, "backend", target, "reason", reason)
	}
}

func (d *healthDelegate) Checked(target string, ok bool, latency time.Duration, err error) {
	res := "ok"
	if !ok {
		res = "fail"
	}
	d.srv.m.checks.WithLabelValues(d.pool, target, res).Observe(latency.Seconds())
}

// Passive health (outlier detection): consecutive failed dials and upgrades
// eject a backend for ejection_time, doubling on repeated ejections up to
// max_ejection_time, never ejecting more than max_ejected_percent of the
// pool. A session that upgrades resets the count.

func (b *backend) succeeded() {
	// Every upgrade ends here: loads first, so that a healthy backend's
	// counters are not written (and their cache line not bounced between
	// cores) once per session.
	if b.failures.Load() != 0 {
		b.failures.Store(0)
	}
	if b.ejections.Load() != 0 {
		b.ejections.Store(0)
	}
}

func (b *backend) failed(p *pool) {
	o := p.cfg.Outlier
	if o.ConsecutiveFailures <= 0 {
		return
	}
	if int(b.failures.Add(1)) < o.ConsecutiveFailures || !b.up() {
		return
	}
	ejected := 0
	for _, ob := range p.backends {
		if ob.ejectedUntil.Load() > time.Now().UnixNano() {
			ejected++
		}
	}
	if (ejected+1)*100 > o.MaxEjectedPercent*len(p.backends) {
		return
	}
	n := b.ejections.Add(1)
	d := o.EjectionTime
	for i := int32(1); i < n && d < o.MaxEjectionTime; i++ {
		d *= 2
	}
	if o.MaxEjectionTime > 0 && d > o.MaxEjectionTime {
		d = o.MaxEjectionTime
	}
	b.failures.Store(0)
	b.ejectedUntil.Store(time.Now().Add(d).UnixNano())
	b.syncState()
	b.srv.m.ejections.WithLabelValues(p.name, b.addr).Inc()
	b.srv.log.Warn("backend ejected", "pool", p.name, "backend", b.addr, "for", d)
	time.AfterFunc(d, func() {
		b.syncState()
		b.slowStart()
		b.srv.wantRebalance(b.pool.Load().name)
	})
}

// slowStart ramps the backend's share of new sessions from 10% to 100%
// over the pool's slow_start, so a cold backend is not handed its full
// share at once.
func (b *backend) slowStart() {
	p := b.pool.Load()
	period := p.cfg.SlowStart
	bb := b.bb.Load()
	if period <= 0 {
		bb.SetWeightFactor(1)
		return
	}
	const steps = 20
	bb.SetWeightFactor(0.1)
	go func() {
		t := time.NewTicker(period / steps)
		defer t.Stop()
		for i := 1; i <= steps; i++ {
			select {
			case <-t.C:
			case <-b.srv.stopping:
				return
			}
			bb.SetWeightFactor(0.1 + 0.9*float64(i)/steps)
		}
	}()
}
