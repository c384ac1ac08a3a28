package runner

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// findPeer returns the binary of a peer proxy: path if given (and there),
// else name in PATH, /usr/sbin or /usr/bin; "" if none.
func findPeer(name, path string) string {
	if path != "" {
		if isExec(path) {
			return path
		}
		return ""
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"} {
		if p := filepath.Join(dir, name); isExec(p) {
			return p
		}
	}
	return ""
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

// peerVersion returns the first line of the peer's version output.
func peerVersion(name, bin string) string {
	arg := map[string][]string{"haproxy": {"-v"}, "nginx": {"-v"}, "caddy": {"version"}, "wsgate": {"--version"}}[name]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, arg...).CombinedOutput() // nginx -v writes to stderr
	if err != nil && len(out) == 0 {
		return "unknown (" + err.Error() + ")"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(line)
}

// The peers' configurations: what a careful operator would write to proxy
// WebSockets to one backend — one worker or thread, round-robin over the
// backends, long tunnel/idle timeouts so that idle sessions are not cut,
// no access log, enough connections for 9,000+ sessions (two sockets
// each) under a 20,000 open-file limit.

// HaproxyConfig renders the HAProxy configuration (haproxy -db -f FILE).
func HaproxyConfig(listen, backend string) string {
	return fmt.Sprintf(`# Written by wsbench.
global
    nbthread 1
    maxconn 9800

defaults
    mode http
    timeout connect 5s
    timeout client 1h
    timeout server 1h
    # WebSocket sessions are tunnels once upgraded.
    timeout tunnel 1h
    timeout http-request 10s
    timeout client-fin 5s

frontend ws
    bind %s
    default_backend echo

backend echo
    balance roundrobin
    server echo1 %s
`, listen, backend)
}

// NginxConfig renders the NGINX configuration (nginx -c FILE -p PREFIX):
// one master and one worker, in the foreground, everything it writes
// under prefix.
func NginxConfig(listen, backend, prefix string) string {
	return fmt.Sprintf(`# Written by wsbench.
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 20000;
pid %[3]s/nginx.pid;
error_log %[3]s/error.log warn;

events {
    worker_connections 20000;
}

http {
    access_log off;
    client_body_temp_path %[3]s/client_body;
    proxy_temp_path %[3]s/proxy;
    fastcgi_temp_path %[3]s/fastcgi;
    uwsgi_temp_path %[3]s/uwsgi;
    scgi_temp_path %[3]s/scgi;

    upstream echo {
        server %[2]s;
    }

    server {
        listen %[1]s;
        location / {
            proxy_pass http://echo;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_set_header Host $host;
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
        }
    }
}
`, listen, backend, prefix)
}

// CaddyConfig renders the Caddyfile (caddy run --adapter caddyfile, with
// GOMAXPROCS=1). reverse_proxy handles the WebSocket upgrade by itself and
// sets no timeout on upgraded streams.
func CaddyConfig(listen, backend string) string {
	return fmt.Sprintf(`# Written by wsbench.
{
	admin off
	auto_https off
}

http://%s {
	reverse_proxy %s {
		lb_policy round_robin
	}
}
`, listen, backend)
}
