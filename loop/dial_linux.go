package loop

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// startConnect opens a non-blocking TCP socket to ap, with TCP_NODELAY on,
// and starts its connect; connected says whether it completed at once (on
// loopback and fast LANs it has, by the time it is asked). netpoll's
// dialer (which wsgate used before) resolves even a literal address, doubles the allocations of a
// dial, and makes 14 system calls against 5 here.
func startConnect(ap netip.AddrPort) (fd int, connected bool, err error) {
	ip := ap.Addr().Unmap()
	family := unix.AF_INET
	if ip.Is6() {
		family = unix.AF_INET6
	}
	var scope uint32
	if z := ip.Zone(); z != "" {
		if scope, err = zoneIndex(z); err != nil {
			return -1, false, err
		}
	}
	fd, err = unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, false, os.NewSyscallError("socket", err)
	}
	defer func() {
		if err != nil {
			unix.Close(fd)
			fd = -1
		}
	}()
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
		return fd, false, os.NewSyscallError("setsockopt", err)
	}
	switch err := connect(fd, ip, ap.Port(), scope); err {
	case nil, unix.EISCONN:
		return fd, true, nil
	case unix.EINPROGRESS, unix.EALREADY, unix.EINTR:
	default:
		return fd, false, os.NewSyscallError("connect", err)
	}
	revents, err := pollOut(fd)
	if err != nil {
		return fd, false, err
	}
	if revents&(unix.POLLERR|unix.POLLHUP) != 0 {
		return fd, false, connectError(fd)
	}
	// Writable without an error: connected. A socket still in SYN_SENT
	// polls as nothing at all.
	return fd, revents&unix.POLLOUT != 0, nil
}

// zoneIndex is the interface index of an IPv6 zone: a name or a number.
func zoneIndex(zone string) (uint32, error) {
	if ifi, err := net.InterfaceByName(zone); err == nil {
		return uint32(ifi.Index), nil
	}
	n, err := strconv.ParseUint(zone, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("unknown IPv6 zone %q", zone)
	}
	return uint32(n), nil
}

// connect starts a connect with the address on the stack: unix.Connect
// takes a Sockaddr interface, which puts each address on the heap.
func connect(fd int, ip netip.Addr, port uint16, scope uint32) error {
	var (
		sa4 unix.RawSockaddrInet4
		sa6 unix.RawSockaddrInet6
		sa  unsafe.Pointer
		n   uintptr
	)
	if ip.Is4() {
		sa4.Family = unix.AF_INET
		setPort(&sa4.Port, port)
		sa4.Addr = ip.As4()
		sa, n = unsafe.Pointer(&sa4), unix.SizeofSockaddrInet4
	} else {
		sa6.Family = unix.AF_INET6
		setPort(&sa6.Port, port)
		sa6.Addr = ip.As16()
		sa6.Scope_id = scope
		sa, n = unsafe.Pointer(&sa6), unix.SizeofSockaddrInet6
	}
	// Raw: a non-blocking connect returns at once, though on loopback it
	// runs the whole three-way handshake first (10-15 µs), long enough for
	// sysmon to take the P of a goroutine the runtime saw enter a call.
	if _, _, e := syscall.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(sa), n); e != 0 {
		return e
	}
	return nil
}

// setPort stores port in network byte order, whatever the machine's.
func setPort(dst *uint16, port uint16) {
	p := (*[2]byte)(unsafe.Pointer(dst))
	p[0], p[1] = byte(port>>8), byte(port)
}

// pollOut asks, without waiting, whether fd is writable or failed.
func pollOut(fd int) (int16, error) {
	pfd := [1]unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
	var zero unix.Timespec
	for {
		_, err := unix.Ppoll(pfd[:], &zero, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, os.NewSyscallError("poll", err)
		}
		return pfd[0].Revents, nil
	}
}

// connectError is why the connect on fd failed, from SO_ERROR: the errno
// that connect(2) would have returned on a blocking socket.
func connectError(fd int) error {
	v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return os.NewSyscallError("getsockopt", err)
	}
	if v != 0 {
		return os.NewSyscallError("connect", syscall.Errno(v))
	}
	return errors.New("connect: connection closed as it opened")
}
