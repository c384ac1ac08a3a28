package loop

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The reactor's system calls bypass the runtime's syscall bookkeeping
// (entersyscall/exitsyscall). Every one of them returns at once: sockets
// are non-blocking, epoll_wait is called with a zero timeout, and the
// reactor waits for readiness by parking in Go's poller (reactor.run). A
// goroutine the runtime believes to be in a system call has its P taken
// by sysmon after 20 µs and keeps sysmon waking every 20 µs; on the
// proxy's own core those wake-ups preempt the relay, which cost about a
// tenth of its CPU per message before this file existed.

// sockRecv and sockSend use recvfrom and sendto rather than read and write:
// on a socket they go straight to the protocol, skipping the VFS layer
// (rw_verify_area, fsnotify, the iov_iter set-up of read_iter/write_iter),
// which took 5-7% off the CPU per relayed message (bench/RESULTS.md).
// MSG_NOSIGNAL spares a SIGPIPE, and the runtime's signal handling, when
// a peer has gone.
func sockRecv(fd int, b []byte) (int, unix.Errno) {
	if len(b) == 0 {
		return 0, 0
	}
	n, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), 0, 0, 0)
	return int(n), e
}

func sockSend(fd int, b []byte) (int, unix.Errno) {
	if len(b) == 0 {
		return 0, 0
	}
	n, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), unix.MSG_NOSIGNAL, 0, 0)
	return int(n), e
}

// rawRead is for descriptors that are not sockets (the reactor's eventfd).
func rawRead(fd int, b []byte) (int, unix.Errno) {
	n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	return int(n), e
}

// pollEvents returns the events ready in epfd without waiting.
func pollEvents(epfd int, events []unix.EpollEvent) (int, unix.Errno) {
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), 0
}

// waitEventsHeld waits up to ms milliseconds for events, keeping the P:
// the runtime sees a running goroutine. Only for a reactor on a P of its
// own, and only briefly; a signal from the runtime ends it with EINTR.
func waitEventsHeld(epfd int, events []unix.EpollEvent, ms int) (int, unix.Errno) {
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), uintptr(ms), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), 0
}

// waitEvents waits up to ms milliseconds for events as an ordinary system
// call, so the runtime may lend the P out meanwhile.
func waitEvents(epfd int, events []unix.EpollEvent, ms int) (int, unix.Errno) {
	n, _, e := unix.Syscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), uintptr(ms), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), 0
}

func rawEpollCtl(epfd, op, fd int, ev *unix.EpollEvent) unix.Errno {
	_, _, e := unix.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(epfd), uintptr(op), uintptr(fd), uintptr(unsafe.Pointer(ev)), 0, 0)
	return e
}

func rawClose(fd int) {
	_, _, _ = unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0)
}

// rawPeek reads without consuming; -1 with the errno on failure.
func rawPeek(fd int, b []byte) (int, unix.Errno) {
	n, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
	if e != 0 {
		return -1, e
	}
	return int(n), 0
}
