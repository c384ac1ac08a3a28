package config

import (
	"bytes"
	"errors"
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
		s.MaxBufferedTotal < s.MaxBufferedBytes {
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
	pools := map[string]bool{}
	for _, p := range cfg.Pools {
		if p.Name == "" || pools[p.Name] {
			t.Errorf("pool name %q empty or repeated", p.Name)
		}
		pools[p.Name] = true
		if p.Balance != "round_robin" || p.Preconnect < 0 || p.Preconnect > maxPreconnect || p.DialTimeout <= 0 {
			t.Errorf("pool out of range: %+v", p)
		}
		addrs := map[string]bool{}
		for _, b := range p.Backends {
			if checkBackendAddress(b.Address) != nil || b.Weight < 1 || b.Weight > maxWeight || addrs[strings.ToLower(b.Address)] {
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
