package main

import (
	"log/slog"
	"os"
	"runtime"

	"github.com/wsgate/wsgate/loop"
	"github.com/wsgate/wsgate/proxy/config"
)

// sizeProcessors fixes the number of reactors (cfg.Server.Reactors, 0
// meaning one per core the process may use) and gives each a Go processor
// of its own on top of those the runtime chose, so that a reactor can wait
// in epoll_wait holding its P while the handshakes and timers go on with
// the others (loop.ReactorThreads). A GOMAXPROCS set in
// the environment is the operator's choice and is kept; the reactors then
// park in Go's poller unless it leaves them a P besides the rest.
//
// Setting GOMAXPROCS stops the runtime from following later changes of
// the cgroup's CPU limit; the reactors are fixed at start anyway.
func sizeProcessors(cfg *config.Config, log *slog.Logger) {
	base := runtime.GOMAXPROCS(0)
	if cfg.Server.Reactors <= 0 {
		cfg.Server.Reactors = loop.DefaultReactors()
	}
	if _, set := os.LookupEnv("GOMAXPROCS"); !set {
		runtime.GOMAXPROCS(loop.ReactorThreads(base, cfg.Server.Reactors))
	}
	log.Info("processors", "reactors", cfg.Server.Reactors, "gomaxprocs", runtime.GOMAXPROCS(0), "cores", runtime.NumCPU())
}
