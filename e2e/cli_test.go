package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// runWsgate runs the binary with args in dir and returns combined output and
// the exit code.
func runWsgate(t *testing.T, dir string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, wsgateBin, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("wsgate %v did not finish within 20s", args)
	}
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("wsgate %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return stdout.String(), stderr.String(), code
}

const validConfig = `[server]
listen = "127.0.0.1:18080"
admin_listen = "127.0.0.1:18081"
handshake_timeout = "5s"
idle_timeout = "300s"
ping_interval = "0s"
ping_timeout = "10s"
drain_timeout = "30s"
max_header_bytes = 8192
max_message_bytes = "16MiB"
max_buffered_bytes = "1MiB"
max_buffered_total = "6GiB"
log_level = "debug"

[[route]]
host = "*"
path_prefix = "/"
pool = "echo"

[[route]]
host = "api.example.test"
path_prefix = "/v1/"
pool = "echo"

[[pool]]
name = "echo"
balance = "round_robin"
preconnect = 2
dial_timeout = "2s"
  [[pool.backend]]
  address = "127.0.0.1:9001"
  [[pool.backend]]
  address = "127.0.0.1:9002"
`

// invalidConfig has four semantic errors, on lines 4, 6, 11 and 19.
const invalidConfig = `[server]
listen = "127.0.0.1:18080"
admin_listen = "127.0.0.1:18081"
handshake_timeout = "soon"
idle_timeout = "300s"
max_message_bytes = "lots"

[[route]]
host = "*"
path_prefix = "/"
pool = "nowhere"

[[pool]]
name = "echo"
balance = "round_robin"
preconnect = 2
dial_timeout = "2s"
  [[pool.backend]]
  address = "no-port-here"
`

var invalidLines = []struct {
	line int
	key  string
}{{4, "handshake_timeout"}, {6, "max_message_bytes"}, {11, "pool"}, {19, "address"}}

// errLine matches `FILE:LINE: key: what is wrong`, allowing the key to be
// qualified by its table (server.idle_timeout, route[0].pool, ...).
func errLine(file string, line int, key string) *regexp.Regexp {
	return regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(file) + `:` + fmt.Sprint(line) + `: (?:[A-Za-z0-9_\[\]]+\.)*` + regexp.QuoteMeta(key) + `: \S`)
}

func TestCheckValidConfig(t *testing.T) {
	needBinary(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "good.toml"), []byte(validConfig), 0o644)
	stdout, stderr, code := runWsgate(t, dir, "check", "--config", "good.toml")
	if code != 0 {
		t.Errorf("wsgate check on a valid config: exit %d, want 0\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if regexp.MustCompile(`good\.toml:\d+:`).MatchString(stdout + stderr) {
		t.Errorf("wsgate check reported errors on a valid config:\n%s%s", stdout, stderr)
	}
}

func TestCheckInvalidConfig(t *testing.T) {
	needBinary(t)
	dir := t.TempDir()
	abs := filepath.Join(dir, "bad.toml")
	os.WriteFile(abs, []byte(invalidConfig), 0o644)
	for _, name := range []string{"bad.toml", abs} {
		t.Run(filepath.Base(filepath.Dir(name))+"/"+filepath.Base(name), func(t *testing.T) {
			stdout, stderr, code := runWsgate(t, dir, "check", "--config", name)
			out := stdout + stderr
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			for _, want := range invalidLines {
				if re := errLine(name, want.line, want.key); !re.MatchString(out) {
					t.Errorf("no line matching %s", re)
				}
			}
			if t.Failed() {
				t.Logf("output:\n%s", out)
			}
		})
	}
	t.Run("toml-syntax-error", func(t *testing.T) {
		os.WriteFile(filepath.Join(dir, "syntax.toml"), []byte("[server]\nlisten = \"127.0.0.1:18080\"\nadmin_listen = \n"), 0o644)
		stdout, stderr, code := runWsgate(t, dir, "check", "--config", "syntax.toml")
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		if !regexp.MustCompile(`(?m)^syntax\.toml:3: `).MatchString(stdout + stderr) {
			t.Errorf("no syntax.toml:3: error line in:\n%s%s", stdout, stderr)
		}
	})
}

func TestVersion(t *testing.T) {
	needBinary(t)
	stdout, stderr, code := runWsgate(t, t.TempDir(), "version")
	if code != 0 {
		t.Errorf("wsgate version: exit %d, want 0 (stderr %q)", code, stderr)
	}
	if strings.TrimSpace(stdout) == "" {
		t.Errorf("wsgate version printed nothing on stdout (stderr %q)", stderr)
	}
}
