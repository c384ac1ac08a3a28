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
	Frames              [2]atomic.Uint64 // indexed by Direction
	Bytes               [2]atomic.Uint64
	SlowConsumerCloses  atomic.Uint64
	BufferedTotalCloses atomic.Uint64
	PingsSent           atomic.Uint64
}
