#!/bin/sh
# Installs the peer proxies wsbench compares wsgate with (HAProxy, NGINX,
# Caddy) from Debian's packages, then stops and disables the services the
# packages may have started: wsbench starts its own instances, with its own
# configuration, on loopback ports. Needs root (apt-get). Used by
# `make bench-peers`.
#
# Only daemons that the packages started are stopped: those found running
# after the install that were not running before it, whose command line is
# the package's own (its binary in /usr/sbin or /usr/bin, its config in
# /etc/<name>/), each by its PID.
set -eu

PKGS="haproxy nginx caddy"

if [ "$(id -u)" != 0 ]; then
	echo "bench-peers: needs root for apt-get" >&2
	exit 1
fi

# Daemons of these names running before the install: never touched.
before=$(for n in $PKGS; do pgrep -x "$n" 2>/dev/null || true; done | tr '\n' ' ')

apt-get update
for p in $PKGS; do
	echo "== apt-cache policy $p"
	apt-cache policy "$p" | sed -n '1,3p'
done
install=""
for p in $PKGS; do
	if ! apt-cache policy "$p" | grep -q 'Candidate: [0-9]'; then
		echo "bench-peers: no candidate for $p in the package lists: skipped" >&2
	else
		install="$install $p"
	fi
done
if [ -n "$install" ]; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y $install
fi

is_new() {
	for q in $before; do [ "$q" = "$1" ] && return 1; done
	return 0
}

for svc in $PKGS; do
	# Through the init system when there is one.
	if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
		systemctl stop "$svc" 2>/dev/null || true
		systemctl disable "$svc" 2>/dev/null || true
	elif command -v service >/dev/null 2>&1 && [ -x "/etc/init.d/$svc" ]; then
		service "$svc" stop 2>/dev/null || true
		command -v update-rc.d >/dev/null 2>&1 && update-rc.d "$svc" disable 2>/dev/null || true
	fi
	# Pidfiles the packages use.
	for pf in "/run/$svc.pid" "/var/run/$svc.pid"; do
		if [ -f "$pf" ]; then
			pid=$(cat "$pf")
			if is_new "$pid" && kill -0 "$pid" 2>/dev/null; then
				echo "bench-peers: stopping $svc (PID $pid from $pf)"
				kill "$pid" || true
			fi
		fi
	done
	# Whatever is left of the package's own daemon, by PID.
	for pid in $(pgrep -x "$svc" 2>/dev/null || true); do
		is_new "$pid" || continue
		args=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
		case "$args" in
		*"/etc/$svc/"* | "nginx: master process /usr/sbin/nginx"* | "/usr/sbin/$svc "* | "/usr/bin/$svc "*)
			echo "bench-peers: stopping $svc (PID $pid: $args)"
			kill "$pid" || true
			;;
		esac
	done
done

for b in haproxy nginx caddy; do
	if command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ]; then
		echo "bench-peers: $b installed"
	fi
done
