package proxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wsgate/wsgate/loop"
	"github.com/wsgate/wsgate/proxy/config"
)

// startAdmin serves /healthz, /readyz and /metrics on addr. It is plain
// net/http: it is off the data path and sees a scrape every few seconds.
func (s *Server) startAdmin(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("admin listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.Ready() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.m.reg, promhttp.HandlerOpts{}))
	// State and mutations live only here, on the admin listener: the
	// WebSocket listener never routes to them.
	mux.HandleFunc("GET /pools", s.handlePools)
	mux.HandleFunc("POST /pools/{pool}/backends/{address}/drain", s.handleDrain(true))
	mux.HandleFunc("POST /pools/{pool}/backends/{address}/undrain", s.handleDrain(false))
	mux.HandleFunc("POST /reload", s.handleReload)
	// Profiles are how per-message and per-session costs are found; the
	// admin listener is loopback unless an operator says otherwise.
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	s.admin = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	s.adminLn = ln
	go func() {
		if err := s.admin.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("admin listener stopped", "err", err)
		}
	}()
	return nil
}

type backendStatus struct {
	Address     string `json:"address"`
	State       string `json:"state"` // healthy, unhealthy, ejected, draining, removed
	Sessions    int64  `json:"active_sessions"`
	Weight      int    `json:"weight"`
	Tier        int    `json:"locality_tier"` // 0 zone, 1 region, 2 cloud, 3 anywhere
	Cloud       string `json:"cloud,omitempty"`
	Region      string `json:"region,omitempty"`
	Zone        string `json:"zone,omitempty"`
	Warm        int    `json:"warm_connections"`
	MaxSessions int64  `json:"max_sessions,omitempty"`
}

type poolStatus struct {
	Name     string          `json:"name"`
	Balance  string          `json:"balance"`
	Locality string          `json:"locality"`
	Backends []backendStatus `json:"backends"`
}

func (s *Server) poolsStatus() []poolStatus {
	rt := s.routing.Load()
	out := make([]poolStatus, 0, len(rt.pools))
	for _, p := range rt.pools {
		ps := poolStatus{Name: p.name, Balance: p.bal.Policy().String(), Locality: p.cfg.Locality, Backends: []backendStatus{}}
		for _, b := range p.backends {
			bb := b.bb.Load()
			ps.Backends = append(ps.Backends, backendStatus{
				Address: b.addr, State: b.state(), Sessions: b.active.Load(), Weight: bb.Weight,
				Tier: p.bal.Tier(bb), Cloud: bb.Loc.Cloud, Region: bb.Loc.Region, Zone: bb.Loc.Zone,
				Warm: b.warmCount(), MaxSessions: bb.MaxSessions,
			})
		}
		out = append(out, ps)
	}
	return out
}

func (s *Server) handlePools(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(map[string]any{"pools": s.poolsStatus()})
}

func (s *Server) handleDrain(drain bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p := s.routing.Load().byName[r.PathValue("pool")]
		if p == nil {
			http.Error(w, "no such pool", http.StatusNotFound)
			return
		}
		b := p.byAddr[r.PathValue("address")]
		if b == nil {
			http.Error(w, "no such backend in pool "+p.name, http.StatusNotFound)
			return
		}
		if drain {
			if !b.draining.Load() {
				b.drain(p.drainPeriod, loop.CauseDrain)
				b.syncState()
			}
		} else {
			b.undrain()
			b.syncState()
			s.wantRebalance(p.name)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"pool": p.name, "backend": b.addr, "state": b.state(), "active_sessions": b.active.Load()})
	}
}

func (s *Server) handleReload(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	notes, err := s.Reload(s.ConfigPath())
	if err != nil {
		var errs []string
		var ce config.Errors
		if errors.As(err, &ce) {
			for _, e := range ce {
				errs = append(errs, e.Error())
			}
		} else {
			errs = append(errs, err.Error())
		}
		w.WriteHeader(http.StatusUnprocessableEntity)
		json.NewEncoder(w).Encode(map[string]any{"reloaded": false, "errors": errs})
		return
	}
	if notes == nil {
		notes = []string{}
	}
	json.NewEncoder(w).Encode(map[string]any{"reloaded": true, "notes": notes})
}
