package config

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse checks that no input makes Parse panic, that every error is
// one line pointing inside the file, and that an accepted configuration
// holds the invariants the rest of wsgate relies on. The seed corpus is
// testdata/fuzz/FuzzParse plus the example files.
func FuzzParse(f *testing.F) {
	examples, _ := filepath.Glob("../../examples/*.toml")
	for _, name := range examples {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const name = "fuzz.toml"
		cfg, err := Parse(name, data)
		if err != nil {
			if cfg != nil {
				t.Fatal("config returned with errors")
			}
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("error %T %v is not a non-empty Errors", err, err)
			}
			lines := bytes.Count(data, []byte("\n")) + 1
			for _, e := range errs {
				if e.File != name || e.Line < 0 || e.Line > lines || e.Msg == "" {
					t.Errorf("bad error %#v (file has %d lines)", e, lines)
				}
				if strings.ContainsAny(e.Error(), "\n\r") {
					t.Errorf("error spans lines: %q", e.Error())
				}
			}
			_, again := Parse(name, data)
			if again == nil || again.Error() != err.Error() {
				t.Errorf("errors differ between runs:\n%v\n---\n%v", err, again)
			}
			return
		}
		checkInvariants(t, cfg)
	})
}

func checkInvariants(t *testing.T, cfg *Config) {
	t.Helper()
	s := cfg.Server
	if s.Listen == "" || s.HandshakeTimeout <= 0 || s.IdleTimeout < 0 || s.PingInterval < 0 ||
		s.PingTimeout < 0 || (s.PingInterval > 0 && s.PingTimeout == 0) || s.DrainTimeout < 0 ||
		s.MaxHeaderBytes < minMaxHeaderBytes || s.MaxHeaderBytes > maxMaxHeaderBytes ||
		s.MaxMessageBytes < 0 || s.MaxBufferedBytes < minMaxBuffered ||
		s.MaxBufferedTotal < s.MaxBufferedBytes || s.Reactors < 0 || s.Reactors > maxReactors {
		t.Errorf("server out of range: %+v", s)
	}
	if checkListen(s.Listen) != nil || (s.AdminListen != "" && checkListen(s.AdminListen) != nil) {
		t.Errorf("bad listen address: %+v", s)
	}
	switch s.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		t.Errorf("log level %q", s.LogLevel)
	}
	if s.LogFormat != "text" && s.LogFormat != "json" {
		t.Errorf("log format %q", s.LogFormat)
	}
	if !nested(cfg.Node.Cloud, cfg.Node.Region, cfg.Node.Zone) {
		t.Errorf("bad node %+v", cfg.Node)
	}
	pools := map[string]bool{}
	for _, p := range cfg.Pools {
		if p.Name == "" || pools[p.Name] {
			t.Errorf("pool name %q empty or repeated", p.Name)
		}
		pools[p.Name] = true
		if p.Preconnect < 0 || p.Preconnect > maxPreconnect || p.DialTimeout <= 0 ||
			p.SlowStart < 0 || p.DrainPeriod < 0 || !(p.RebalanceThreshold > 1) ||
			math.IsInf(p.RebalanceThreshold, 0) || p.RebalanceRate < 1 {
			t.Errorf("pool out of range: %+v", p)
		}
		switch p.Balance {
		case "round_robin", "least_sessions", "p2c":
			if p.HashKey != "" || p.HashKeySource != "" || p.HashKeyName != "" {
				t.Errorf("hash key without balance = hash: %+v", p)
			}
		case "hash":
			src, name, err := parseHashKey(p.HashKey)
			if err != nil || src != p.HashKeySource || name != p.HashKeyName {
				t.Errorf("bad hash key: %+v", p)
			}
		default:
			t.Errorf("balance %q", p.Balance)
		}
		switch p.Locality {
		case "prefer", "off":
		case "strict":
			if cfg.Node.Cloud == "" || cfg.Node.Region == "" || (len(p.Backends) > 0 && !inRegion(p.Backends, &cfg.Node)) {
				t.Errorf("strict pool %q unreachable from node %+v", p.Name, cfg.Node)
			}
		default:
			t.Errorf("locality %q", p.Locality)
		}
		if h := p.Health; h != nil {
			if (h.Type != "tcp" && h.Type != "http" && h.Type != "websocket") || !strings.HasPrefix(h.Path, "/") ||
				h.Interval <= 0 || h.Timeout <= 0 || h.Timeout >= h.Interval ||
				h.HealthyThreshold < 1 || h.HealthyThreshold > maxHealthThreshold ||
				h.UnhealthyThreshold < 1 || h.UnhealthyThreshold > maxHealthThreshold {
				t.Errorf("bad health: %+v", *h)
			}
		}
		if o := p.Outlier; o.ConsecutiveFailures < 0 || o.EjectionTime <= 0 || o.MaxEjectionTime < o.EjectionTime ||
			o.MaxEjectedPercent < 0 || o.MaxEjectedPercent > 100 {
			t.Errorf("bad outlier: %+v", o)
		}
		addrs := map[string]bool{}
		for _, b := range p.Backends {
			if checkBackendAddress(b.Address) != nil || b.Weight < 1 || b.Weight > maxWeight || addrs[strings.ToLower(b.Address)] ||
				b.MaxSessions < 0 || !nested(b.Cloud, b.Region, b.Zone) {
				t.Errorf("bad backend %+v", b)
			}
			addrs[strings.ToLower(b.Address)] = true
		}
	}
	if len(cfg.Routes) == 0 {
		t.Error("no routes")
	}
	type match struct{ host, prefix string }
	routes := map[match]bool{}
	for _, r := range cfg.Routes {
		if !pools[r.Pool] || !strings.HasPrefix(r.PathPrefix, "/") || r.Host != strings.ToLower(r.Host) ||
			checkRouteHost(r.Host) != nil || routes[match{r.Host, r.PathPrefix}] {
			t.Errorf("bad route %+v", r)
		}
		routes[match{r.Host, r.PathPrefix}] = true
	}
}

// nested reports whether a location names a zone only within a region and
// a region only within a cloud.
func nested(cloud, region, zone string) bool {
	return (zone == "" || region != "") && (region == "" || cloud != "")
}
