package proxy

import (
	"github.com/wsgate/wsgate/loop"
	"github.com/wsgate/wsgate/proxy/config"
)

// Reload applies a new configuration without a restart: routes, pools,
// backends, weights, policies and health settings change in place. Sessions
// on backends that stay are not touched; backends that leave are drained
// over their pool's drain_period; warm pools follow. Settings of [server]
// and [node] other than those apply only at the next start, and are
// reported. On an invalid file nothing changes and the errors are
// returned.
func (s *Server) Reload(path string) (notes []string, err error) {
	cfg, err := config.Load(path)
	if err != nil {
		s.log.Error("reload refused: invalid configuration", "file", path, "errors", err.Error())
		return nil, err
	}
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	old := s.cfg.Load()
	if cfg.Server.Reactors == 0 {
		// "One per core": what the running loop started with.
		cfg.Server.Reactors = s.loop.Config().Reactors
	}
	if cfg.Server != old.Server {
		notes = append(notes, "[server] changes take effect at the next restart")
	}
	if cfg.Node != old.Node {
		notes = append(notes, "[node] changes take effect at the next restart")
		cfg.Node = old.Node
	}
	cfg.Server = old.Server
	oldRt := s.routing.Load()
	rt := s.buildRouting(cfg, oldRt)
	s.cfg.Store(cfg)
	s.routing.Store(rt)
	for _, p := range rt.pools {
		op := oldRt.byName[p.name]
		for _, b := range p.backends {
			b.refill()
			if op == nil || op.byAddr[b.addr] != b {
				// A backend that joins starts cold, and the sessions
				// piled on the others may move over to it.
				b.slowStart()
				s.wantRebalance(p.name)
			}
		}
	}
	s.applyDrains(rt, oldRt)
	s.checkers.sync(rt)
	// Backends that left: no new sessions, warm connections closed, live
	// sessions drained.
	removed := 0
	for _, op := range oldRt.pools {
		np := rt.byName[op.name]
		for _, b := range op.backends {
			if np != nil && np.byAddr[b.addr] == b {
				continue
			}
			removed++
			b.removed.Store(true)
			b.syncState()
			b.close()
			b.drain(op.drainPeriod, loop.CauseBackendRemoved)
		}
	}
	for _, n := range notes {
		s.log.Warn("reload", "note", n)
	}
	s.log.Info("configuration reloaded", "file", path, "pools", len(rt.pools), "backends_removed", removed)
	return notes, nil
}

// applyDrains starts or stops drains that the configuration asks for with
// drain = true, comparing with the previous configuration so that a drain
// is not restarted by an unrelated reload.
func (s *Server) applyDrains(rt, old *routing) {
	for _, p := range rt.pools {
		for i, bc := range p.cfg.Backends {
			b := p.backends[i]
			was := false
			if old != nil {
				if op := old.byName[p.name]; op != nil && op.byAddr[b.addr] == b {
					for _, obc := range op.cfg.Backends {
						if obc.Address == bc.Address {
							was = obc.Drain
						}
					}
				}
			}
			switch {
			case bc.Drain && !was:
				b.drain(p.drainPeriod, loop.CauseDrain)
				b.syncState()
			case !bc.Drain && was:
				b.undrain()
				b.syncState()
				s.wantRebalance(p.name)
			}
		}
	}
}

// Path of the configuration file the server runs.
func (s *Server) ConfigPath() string { return s.cfg.Load().Path }
