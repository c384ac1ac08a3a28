package loop

import (
	"syscall"

	"github.com/cloudwego/netpoll"
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
