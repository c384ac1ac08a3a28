package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/wsgate/wsgate/proxy"
	"github.com/wsgate/wsgate/proxy/config"
)

const usage = `usage:
  wsgate run --config FILE     run the proxy
  wsgate check --config FILE   validate a configuration file
  wsgate version               print the version
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "wsgate", version())
		return 0
	case "check":
		cfg, code := loadConfig("check", args[1:], stderr)
		if cfg == nil {
			return code
		}
		fmt.Fprintf(stdout, "%s: ok\n", cfg.Path)
		return 0
	case "run":
		cfg, code := loadConfig("run", args[1:], stderr)
		if cfg == nil {
			return code
		}
		return serve(cfg, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "wsgate: unknown command %q\n%s", args[0], usage)
	return 2
}

// loadConfig parses the flags of run and check and loads the file. It
// returns nil and the exit code when that fails.
func loadConfig(cmd string, args []string, stderr io.Writer) (*config.Config, int) {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration `FILE` (TOML)")
	if err := fs.Parse(args); err != nil {
		return nil, 2
	}
	if *path == "" || fs.NArg() > 0 {
		fmt.Fprintf(stderr, "wsgate %s: --config FILE is required\n", cmd)
		return nil, 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return nil, 1
	}
	return cfg, 0
}

func serve(cfg *config.Config, stderr io.Writer) int {
	log := newLogger(cfg.Server, stderr)
	sizeProcessors(cfg, log)
	srv, err := proxy.New(cfg, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	if err := srv.Start(); err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	var got os.Signal
	for got = range sig {
		if got != syscall.SIGHUP {
			break
		}
		// Errors are logged by Reload; the running configuration stays.
		srv.Reload(cfg.Path)
	}
	signal.Stop(sig)
	log.Info("draining", "signal", got.String(), "sessions", srv.Sessions(), "drain_timeout", cfg.Server.DrainTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Server.DrainTimeout)
	defer cancel()
	cut := srv.Shutdown(ctx)
	if cut > 0 {
		log.Warn("drain timeout: sessions cut", "sessions", cut)
	}
	log.Info("stopped")
	return 0
}

func newLogger(sc config.Server, w io.Writer) *slog.Logger {
	var level slog.Level
	switch strings.ToLower(sc.LogLevel) {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if sc.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// version reports the module version and VCS revision the binary was built
// from, as recorded by the Go toolchain.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " " + s.Value[:12]
		}
		if s.Key == "vcs.modified" && s.Value == "true" {
			v += "+dirty"
		}
	}
	return v + " " + bi.GoVersion
}
