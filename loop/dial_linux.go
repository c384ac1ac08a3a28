package loop

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"syscall"
	"time"
	"unsafe"

	"github.com/cloudwego/netpoll"
	"golang.org/x/sys/unix"
)

// dialAddrPort connects to a literal address and gives the socket to
// netpoll. netpoll's own dialer resolves even a literal address, doubles
// the allocations of a Dial (42 against 21), and makes 14 system calls
// against 6 here, registering the socket with its poller twice: once to
// wait for the connect, once for the connection. On loopback and fast LANs
// the connect has completed before anyone could wait for it, so this asks
// first and waits only when it must.
func dialAddrPort(ap netip.AddrPort, timeout time.Duration) (netpoll.Connection, error) {
	fd, err := connectTCP(ap, timeout)
	if err != nil {
		return nil, err
	}
	// A failure here is netpoll's failure to register the socket, after
	// which it has closed the connection and so fd.
	return netpoll.NewFDConnection(fd)
}

// connectTCP returns a connected, non-blocking TCP socket to ap, with
// TCP_NODELAY on: netpoll sets it only on connections it dialed itself.
func connectTCP(ap netip.AddrPort, timeout time.Duration) (fd int, err error) {
	deadline := time.Now().Add(timeout)
	ip := ap.Addr().Unmap()
	family := unix.AF_INET
	if ip.Is6() {
		family = unix.AF_INET6
	}
	fd, err = unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	defer func() {
		if err != nil {
			unix.Close(fd)
			fd = -1
		}
	}()
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
		return fd, os.NewSyscallError("setsockopt", err)
	}
	switch err := connect(fd, ip, ap.Port()); err {
	case nil, unix.EISCONN:
		return fd, nil
	case unix.EINPROGRESS, unix.EALREADY, unix.EINTR:
	default:
		return fd, os.NewSyscallError("connect", err)
	}
	revents, err := pollOut(fd)
	if err != nil {
		return fd, err
	}
	if revents == 0 {
		if revents, err = waitWritable(fd, deadline, timeout); err != nil {
			return fd, err
		}
	}
	if revents&(unix.POLLERR|unix.POLLHUP) != 0 || revents&unix.POLLOUT == 0 {
		return fd, connectError(fd)
	}
	// Writable without an error: connected. A socket still in SYN_SENT
	// polls as nothing at all.
	return fd, nil
}

// connect starts a connect with the address on the stack: unix.Connect
// takes a Sockaddr interface, which puts each address on the heap.
func connect(fd int, ip netip.Addr, port uint16) error {
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
		sa, n = unsafe.Pointer(&sa6), unix.SizeofSockaddrInet6
	}
	if _, _, e := syscall.Syscall(unix.SYS_CONNECT, uintptr(fd), uintptr(sa), n); e != 0 {
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

// waitWritable waits until fd is writable or failed, or deadline passes,
// without holding an OS thread: a remote backend may take a round trip of
// 100 ms to answer, with a thousand dials waiting on it. Go's poller takes
// a duplicate of the socket, which an os.File owns and closes; the
// connection and its descriptor stay fd's.
func waitWritable(fd int, deadline time.Time, timeout time.Duration) (int16, error) {
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return 0, os.NewSyscallError("fcntl", err)
	}
	// The duplicate shares fd's O_NONBLOCK, which is what makes NewFile
	// register it with Go's poller.
	f := os.NewFile(uintptr(dup), "connecting socket")
	defer f.Close()
	if err := f.SetWriteDeadline(deadline); err != nil {
		return 0, fmt.Errorf("wait for connect: %w", err)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("wait for connect: %w", err)
	}
	var revents int16
	var perr error
	err = rc.Write(func(s uintptr) bool {
		// Go's poller can wake spuriously: ask the socket itself.
		revents, perr = pollOut(int(s))
		return perr != nil || revents != 0
	})
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return 0, fmt.Errorf("connect: no answer within %v: %w", timeout, context.DeadlineExceeded)
	case err != nil:
		return 0, fmt.Errorf("wait for connect: %w", err)
	}
	return revents, perr
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
