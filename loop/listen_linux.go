package loop

import (
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// openListener opens a non-blocking listening socket on addr (host:port, as
// net.Listen takes it: an empty or unspecified host listens on every
// address, IPv6 and IPv4). The socket is wsgate's alone: net.Listen would
// also register it with the runtime's poller, which would then wake for
// every connection a reactor accepts.
func openListener(addr string) (fd int, bound net.Addr, err error) {
	ta, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return -1, nil, err
	}
	ip, _ := netip.AddrFromSlice(ta.IP)
	ip = ip.Unmap()
	wildcard := !ip.IsValid() || ip.IsUnspecified()
	family := unix.AF_INET
	if !ip.Is4() {
		family = unix.AF_INET6
	}
	fd, err = unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil && wildcard && family == unix.AF_INET6 {
		// No IPv6 on this host: every IPv4 address instead.
		family, ip = unix.AF_INET, netip.IPv4Unspecified()
		fd, err = unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	}
	if err != nil {
		return -1, nil, os.NewSyscallError("socket", err)
	}
	defer func() {
		if err != nil {
			unix.Close(fd)
			fd = -1
		}
	}()
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return fd, nil, os.NewSyscallError("setsockopt SO_REUSEADDR", err)
	}
	// Accepted sockets inherit TCP_NODELAY from the listener (Linux copies
	// the listener's options into each child), which saves a system call
	// per client; TestAcceptedClientsHaveNoDelay holds it.
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
		return fd, nil, os.NewSyscallError("setsockopt TCP_NODELAY", err)
	}
	var sa unix.Sockaddr
	if family == unix.AF_INET {
		if !ip.IsValid() {
			ip = netip.IPv4Unspecified()
		}
		sa = &unix.SockaddrInet4{Port: ta.Port, Addr: ip.As4()}
	} else {
		if wildcard {
			// Both families on one socket, as net.Listen does.
			if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0); err != nil {
				return fd, nil, os.NewSyscallError("setsockopt IPV6_V6ONLY", err)
			}
			ip = netip.IPv6Unspecified()
		}
		sa6 := &unix.SockaddrInet6{Port: ta.Port, Addr: ip.As16()}
		if z := ta.Zone; z != "" {
			if sa6.ZoneId, err = zoneIndex(z); err != nil {
				return fd, nil, err
			}
		}
		sa = sa6
	}
	if err := unix.Bind(fd, sa); err != nil {
		return fd, nil, os.NewSyscallError("bind", err)
	}
	if err := unix.Listen(fd, listenBacklog()); err != nil {
		return fd, nil, os.NewSyscallError("listen", err)
	}
	got, err := unix.Getsockname(fd)
	if err != nil {
		return fd, nil, os.NewSyscallError("getsockname", err)
	}
	switch a := got.(type) {
	case *unix.SockaddrInet4:
		return fd, &net.TCPAddr{IP: net.IP(a.Addr[:]).To16(), Port: a.Port}, nil
	case *unix.SockaddrInet6:
		return fd, &net.TCPAddr{IP: net.IP(a.Addr[:]), Port: a.Port, Zone: ta.Zone}, nil
	}
	return fd, ta, nil
}

// listenBacklog is the kernel's limit on a listener's queue of accepted
// connections, which is also what net.Listen asks for.
func listenBacklog() int {
	b, err := os.ReadFile("/proc/sys/net/core/somaxconn")
	if err != nil {
		return unix.SOMAXCONN
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n <= 0 {
		return unix.SOMAXCONN
	}
	return min(n, 1<<16-1)
}

// rawAccept accepts a connection on the listening socket fd, non-blocking
// and close-on-exec, and returns the peer's address without allocating.
func rawAccept(fd int) (int, netip.AddrPort, unix.Errno) {
	var sa unix.RawSockaddrAny
	n := uint32(unix.SizeofSockaddrAny)
	nfd, _, e := unix.RawSyscall6(unix.SYS_ACCEPT4, uintptr(fd), uintptr(unsafe.Pointer(&sa)), uintptr(unsafe.Pointer(&n)),
		unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
	if e != 0 {
		return -1, netip.AddrPort{}, e
	}
	var ap netip.AddrPort
	switch sa.Addr.Family {
	case unix.AF_INET:
		a := (*unix.RawSockaddrInet4)(unsafe.Pointer(&sa))
		ap = netip.AddrPortFrom(netip.AddrFrom4(a.Addr), port(a.Port))
	case unix.AF_INET6:
		a := (*unix.RawSockaddrInet6)(unsafe.Pointer(&sa))
		ap = netip.AddrPortFrom(netip.AddrFrom16(a.Addr).Unmap(), port(a.Port))
	}
	return int(nfd), ap, 0
}

// port reads a port stored in network byte order.
func port(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return uint16(b[0])<<8 | uint16(b[1])
}
