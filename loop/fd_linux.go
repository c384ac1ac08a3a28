package loop

import (
	"syscall"

	"github.com/cloudwego/netpoll"
	"golang.org/x/sys/unix"
)

// stopReading shuts down the read side of conn's socket. netpoll then sees
// end of input and detaches the socket from epoll, which is the only way to
// stop it from buffering a flooding peer's bytes (it has no read
// backpressure). Writing still works, so the peer can be sent its Close.
func stopReading(conn netpoll.Connection) {
	if fc, ok := conn.(interface{ Fd() int }); ok {
		_ = syscall.Shutdown(fc.Fd(), syscall.SHUT_RD)
	}
}

// bytesAcked reads how many bytes the peer of conn's socket has
// acknowledged (TCP_INFO tcpi_bytes_acked): it grows while the peer reads,
// however full the socket's send queue stays.
func bytesAcked(conn netpoll.Connection) (uint64, bool) {
	fc, ok := conn.(interface{ Fd() int })
	if !ok || !conn.IsActive() {
		return 0, false
	}
	ti, err := unix.GetsockoptTCPInfo(fc.Fd(), unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		return 0, false
	}
	return ti.Bytes_acked, true
}
