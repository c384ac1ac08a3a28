package loop

import "golang.org/x/sys/unix"

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
