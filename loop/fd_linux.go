package loop

import (
	"fmt"

	"github.com/cloudwego/netpoll"
	"golang.org/x/sys/unix"
)

// bytesAcked reads how many bytes the peer of socket fd has acknowledged
// (TCP_INFO tcpi_bytes_acked): it grows while the peer reads, however full
// the socket's send queue stays.
func bytesAcked(fd int) (uint64, bool) {
	if fd < 0 {
		return 0, false
	}
	ti, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		return 0, false
	}
	return ti.Bytes_acked, true
}

// takeOver gives the reactor its own descriptor of conn's socket, and the
// input netpoll read but nobody consumed. It runs in conn's close callback:
// netpoll has taken the socket out of its epoll set by then and closes its
// own descriptor right after, so the duplicate is the socket's only one.
func takeOver(conn netpoll.Connection) (int, []byte, error) {
	var leftover []byte
	r := conn.Reader()
	if n := r.Len(); n > 0 {
		if b, err := r.Next(n); err == nil {
			leftover = append([]byte(nil), b...)
		}
		r.Release()
	}
	fc, ok := conn.(interface{ Fd() int })
	if !ok {
		return -1, leftover, fmt.Errorf("connection %T has no descriptor", conn)
	}
	fd, err := unix.FcntlInt(uintptr(fc.Fd()), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return -1, leftover, fmt.Errorf("dup fd %d: %w", fc.Fd(), err)
	}
	return fd, leftover, nil
}
