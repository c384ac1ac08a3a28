package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wsgate/wsgate/bench/echo"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9001,127.0.0.1:9002", "comma-separated addresses to listen on")
	logLevel := flag.String("log", "info", "log level: off, info or debug")
	pushInterval := flag.Duration("push-interval", 0, "send every connection a binary message at this interval (0: never)")
	pushSize := flag.Int("push-size", 64, "payload size of pushed messages (at least 8: the first 8 bytes are a big-endian unix-nano timestamp)")
	hsTimeout := flag.Duration("handshake-timeout", 10*time.Second, "time allowed to receive the HTTP request head")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile to this file until exit")
	flag.Parse()

	logger := log.New(os.Stderr, "", log.LstdFlags|log.Lmicroseconds)
	cfg := echo.Config{
		PushInterval:     *pushInterval,
		PushSize:         *pushSize,
		HandshakeTimeout: *hsTimeout,
	}
	switch *logLevel {
	case "off", "none", "quiet":
	case "debug":
		cfg.Debugf = logger.Printf
		cfg.Logf = logger.Printf
	case "info":
		cfg.Logf = logger.Printf
	default:
		fmt.Fprintf(os.Stderr, "wsecho: unknown -log level %q (off, info, debug)\n", *logLevel)
		os.Exit(2)
	}
	raiseNoFile()

	var lns []net.Listener
	for _, addr := range strings.Split(*listen, ",") {
		addr = strings.TrimSpace(addr)
		if addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			fmt.Fprintf(os.Stderr, "wsecho: %v\n", err)
			os.Exit(1)
		}
		lns = append(lns, ln)
	}
	if len(lns) == 0 {
		fmt.Fprintln(os.Stderr, "wsecho: no address to listen on")
		os.Exit(2)
	}

	if *cpuProfile != "" {
		stop := startProfile(*cpuProfile)
		defer stop()
	}
	srv := echo.New(cfg)
	var wg sync.WaitGroup
	for _, ln := range lns {
		if cfg.Logf != nil {
			if *pushInterval > 0 {
				cfg.Logf("wsecho listening on %s (push %d bytes every %v)", ln.Addr(), *pushSize, *pushInterval)
			} else {
				cfg.Logf("wsecho listening on %s", ln.Addr())
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(ln); err != nil && err != echo.ErrServerClosed {
				logger.Printf("wsecho: serve %s: %v", ln.Addr(), err)
			}
		}()
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	srv.Close()
	wg.Wait()
}

// raiseNoFile lifts the soft limit on open files to the hard limit.
func raiseNoFile() {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil && rl.Cur < rl.Max {
		rl.Cur = rl.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
}

// startProfile starts a CPU profile written to path; the returned func
// stops it.
func startProfile(path string) func() {
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsecho: cpuprofile:", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, "wsecho: cpuprofile:", err)
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
