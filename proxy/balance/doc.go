// Package balance decides which backend of a pool gets a new WebSocket
// session. It owns the decision only: no I/O, no goroutines, no timers. The
// caller owns health checking, slow-start ramps, dialling and session
// accounting, and feeds their results in through the Backend setters and
// Acquire/Release.
//
// # Hot path
//
// Pick runs once per handshake from many goroutines. It reads an immutable
// view (the available backends grouped by tier, with each tier's share and
// sampling tables) through an atomic pointer; the Backend setters rebuild
// and republish that view, which costs O(backends) per change and is rare
// next to picks. Session counts change per session, so they are not in the
// view: Pick reads them live, as it rereads health and drain flags to close
// the window before a rebuild lands. Only round robin takes a lock, a short
// one around its credits, because its state is inherently shared. Pick
// allocates nothing.
//
// # Policies
//
// Within a tier, backends get sessions in proportion to Weight × slow-start
// factor:
//
//   - round_robin: NGINX's smooth weighted round robin. Deterministic and
//     exact over any window, with a heavy backend's turns spread out rather
//     than bunched. O(n) per pick under the tier's lock.
//   - least_sessions: the lowest (active+1)/weight, scanning from a random
//     member so ties spread. O(n) per pick; best when sessions are long and
//     uneven, because it looks at every backend.
//   - p2c: two members drawn in proportion to weight (an alias table, O(1)),
//     the one with fewer active sessions per weight kept, the first on a
//     tie. Idle pools split by weight; busy ones steer away from the
//     loaded backend without the herd effect of a global minimum. The
//     choice for large pools.
//   - hash: sticky. The caller extracts the key (header, cookie, query,
//     path or client address); weighted rendezvous hashing maps it. No key
//     means p2c.
//
// Full backends (Active ≥ MaxSessions), draining and unhealthy ones, and
// those the caller's exclude func vetoes are skipped by every policy; a
// sticky key then goes to its next-best backend and returns when its own
// comes back.
//
// # Why rendezvous hashing
//
// Each backend scores -w/ln(u) for u = hash(key, backend) in (0,1) and the
// highest score wins; a backend wins with probability w/Σw. A score depends
// on the key and that backend's address alone, so removing a backend moves
// exactly its keys and adding one moves only the keys it now wins, with no
// ring, virtual nodes or table to keep in step. The hash (xxhash of key and
// address, mixed with MurmurHash3's finaliser) has no per-process seed, so
// proxies with the same view of addresses, weights and health map a key to
// the same backend. A slow-start factor scales the weight, so a warming
// backend only gains keys as it ramps, taking them from the others in
// proportion. It is O(n) per pick; a lower bound on the logarithm
// skips it for almost every backend.
//
// # Locality
//
// A backend's tier is its distance from the proxy: same zone (0), same
// region (1), same cloud (2), anywhere (3). An empty location field matches
// nothing, so an unplaced proxy sees every backend as tier 3.
//
//   - prefer (default): Envoy's priority levels. A tier whose healthy
//     fraction h is its available (healthy, not draining) configured weight
//     over its total configured weight offers min(1, 1.4·h) of the traffic,
//     nearest tier first, and the shortfall spills to the next tiers in
//     order; if all offers sum below 1 they are scaled up. So a zone at 70%
//     health or more keeps all of its traffic, one at 60% keeps 84%. Health
//     is measured on configured weight, not slow-start weight, so a warming
//     backend does not push traffic out of its zone. When the chosen tier
//     has no backend that can take the session (all full or excluded), the
//     other tiers are tried nearest first: capacity beats locality.
//   - strict: prefer over tiers 0 and 1 only. The session never leaves the
//     proxy's region; with nothing available there, Pick returns nil.
//   - off: one tier holding every backend.
//
// The tier is drawn first, then the policy runs inside it. For hash the
// draw comes from the key, so a key keeps its tier (and backend) while the
// health view is unchanged; when a tier's share shrinks, the keys in the
// shrunk part of the draw move to the next tier.
package balance
