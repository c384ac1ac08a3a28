package load

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/bench/internal/wsframe"
)

// epoch anchors the monotonic timestamps carried in payloads.
var epoch = time.Now()

// mono returns nanoseconds since epoch on the monotonic clock.
func mono() int64 { return int64(time.Since(epoch)) }

// dial opens a WebSocket session. Bytes the server sent right after its
// handshake response are returned as pre.
func dial(ctx context.Context, cfg *Config) (nc net.Conn, pre []byte, err error) {
	d := ws.Dialer{Timeout: cfg.DialTimeout, Protocols: cfg.Protocols}
	nc, br, _, err := d.Dial(ctx, cfg.URL)
	if err != nil {
		return nil, nil, err
	}
	if br != nil {
		pre = make([]byte, br.Buffered())
		io.ReadFull(br, pre)
		ws.PutReader(br)
	}
	return nc, pre, nil
}

// rng is a xorshift64* generator for masking keys: cheap, not secure (a
// load generator needs no unpredictable masks).
type rng uint64

func (r *rng) mask() (m [4]byte) {
	x := uint64(*r)
	x ^= x >> 12
	x ^= x << 25
	x ^= x >> 27
	*r = rng(x)
	binary.LittleEndian.PutUint32(m[:], uint32((x*2685821657736338717)>>32))
	return m
}

func newRNG() rng {
	r := rng(uint64(time.Now().UnixNano()) | 1)
	r.mask()
	return r
}

// appendFrame appends a masked client frame with the given payload.
func appendFrame(b []byte, op ws.OpCode, payload []byte, r *rng) []byte {
	h := ws.Header{Fin: true, OpCode: op, Length: int64(len(payload)), Masked: true, Mask: r.mask()}
	n := len(b)
	b = append(b, make([]byte, wsframe.Size(h.Length, true))...)
	wsframe.Put(b[n:], h)
	p := len(b)
	b = append(b, payload...)
	ws.Cipher(b[p:], h.Mask, 0)
	return b
}

// closeFrame1000 is the payload of a normal-closure Close frame.
var closeFrame1000 = []byte{0x03, 0xe8}

// frameReader parses server frames out of its own buffer.
type frameReader struct {
	nc   net.Conn
	buf  []byte
	r, w int
}

func newFrameReader(nc net.Conn, size int, pre []byte) *frameReader {
	fr := &frameReader{nc: nc, buf: make([]byte, max(size, len(pre)))}
	fr.w = copy(fr.buf, pre)
	return fr
}

var errFrameTooBig = errors.New("server frame larger than the read buffer")

// next returns the next complete frame already buffered, without reading.
// ok is false when more bytes are needed.
func (fr *frameReader) next() (h ws.Header, payload []byte, ok bool, err error) {
	h, hl, err := wsframe.Parse(fr.buf[fr.r:fr.w])
	if err != nil || hl == 0 {
		return h, nil, false, err
	}
	if h.Masked {
		return h, nil, false, ws.ErrProtocolMaskUnexpected
	}
	total := int64(hl) + h.Length
	if total > int64(len(fr.buf)) {
		return h, nil, false, fmt.Errorf("%w (%d bytes)", errFrameTooBig, total)
	}
	if int64(fr.w-fr.r) < total {
		return h, nil, false, nil
	}
	payload = fr.buf[fr.r+hl : fr.r+int(total)]
	fr.r += int(total)
	return h, payload, true, nil
}

// fill reads at least one more byte, compacting the buffer first if needed.
// Payloads returned by next are invalid afterwards.
func (fr *frameReader) fill() error {
	if fr.r == fr.w {
		fr.r, fr.w = 0, 0
	} else if fr.r > 0 && fr.w > len(fr.buf)/2 {
		fr.w = copy(fr.buf, fr.buf[fr.r:fr.w])
		fr.r = 0
	}
	n, err := fr.nc.Read(fr.buf[fr.w:])
	fr.w += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// readFrame returns the next frame, reading as needed.
func (fr *frameReader) readFrame() (ws.Header, []byte, error) {
	for {
		h, p, ok, err := fr.next()
		if err != nil {
			return h, nil, err
		}
		if ok {
			return h, p, nil
		}
		if err := fr.fill(); err != nil {
			return h, nil, err
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
