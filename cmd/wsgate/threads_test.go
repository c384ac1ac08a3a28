package main

import (
	"log/slog"
	"os"
	"runtime"
	"testing"

	"github.com/wsgate/wsgate/loop"
	"github.com/wsgate/wsgate/proxy/config"
)

// TestSizeProcessors: the reactors get Go processors of their own on top of
// the runtime's choice, unless GOMAXPROCS is set in the environment, which
// is then kept; the reactor count is fixed either way.
func TestSizeProcessors(t *testing.T) {
	base := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(base)
	log := slog.New(slog.DiscardHandler)

	t.Setenv("GOMAXPROCS", "") // restored after the test
	os.Unsetenv("GOMAXPROCS")
	var cfg config.Config
	sizeProcessors(&cfg, log)
	if want := loop.DefaultReactors(); cfg.Server.Reactors != want {
		t.Errorf("reactors = %d, want the default %d", cfg.Server.Reactors, want)
	}
	if got, want := runtime.GOMAXPROCS(0), loop.ReactorThreads(base, cfg.Server.Reactors); got != want {
		t.Errorf("GOMAXPROCS = %d, want %d", got, want)
	}

	runtime.GOMAXPROCS(base)
	os.Setenv("GOMAXPROCS", "1")
	cfg.Server.Reactors = 3
	sizeProcessors(&cfg, log)
	if cfg.Server.Reactors != 3 {
		t.Errorf("reactors = %d, want the configured 3", cfg.Server.Reactors)
	}
	if got := runtime.GOMAXPROCS(0); got != base {
		t.Errorf("GOMAXPROCS = %d with GOMAXPROCS set in the environment, want it kept at %d", got, base)
	}
}
