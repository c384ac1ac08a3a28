package loop

import "sync/atomic"

// Direction names one half of a session.
type Direction uint8

const (
	ClientToBackend Direction = iota
	BackendToClient
)

func (d Direction) String() string {
	if d == ClientToBackend {
		return "client_to_backend"
	}
	return "backend_to_client"
}

// Stats are the loop's counters, read by the metrics collector at scrape
// time so that the relay pays one atomic add per batch and nothing else.
type Stats struct {
	SessionsActive      atomic.Int64
	SlowConsumerCloses  atomic.Uint64
	BufferedTotalCloses atomic.Uint64
	PingsSent           atomic.Uint64

	// relayed has one entry per reactor, fixed before the reactors run.
	relayed []*relayCounts
}

// relayCounts are what one reactor relayed. The relay adds to them for
// every write: were the counts shared, reactors on different cores would
// pass one cache line back and forth for every message. Each reactor has
// its own, padded to a line of its own, and readers add them up.
type relayCounts struct {
	frames, bytes [2]atomic.Uint64 // indexed by Direction
	_             [64 - 4*8]byte
}

// Frames is the number of frames relayed in direction d.
func (s *Stats) Frames(d Direction) uint64 {
	var n uint64
	for _, c := range s.relayed {
		n += c.frames[d].Load()
	}
	return n
}

// Bytes is the number of bytes (headers and payloads) relayed in
// direction d.
func (s *Stats) Bytes(d Direction) uint64 {
	var n uint64
	for _, c := range s.relayed {
		n += c.bytes[d].Load()
	}
	return n
}
