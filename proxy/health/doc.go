// Package health runs active health checks against wsgate backends and
// reports when a backend crosses its healthy or unhealthy threshold.
//
// Passive signals (a failed dial while proxying a session) only arrive when
// a client happens to be routed to a dead backend, so a backend that died
// between sessions would keep receiving new ones. Active checks find it
// within unhealthy_threshold intervals instead.
//
// Three kinds of check exist, in rising order of how much of the backend
// they exercise: TCP (something accepts connections), HTTP (the server's
// request loop answers GET path with a 2xx) and WebSocket (a full upgrade,
// a Ping answered by a Pong, and a Close handshake). WebSocket is the only
// one that catches a backend whose HTTP side is alive but whose WebSocket
// side is wedged, which is the failure wsgate cares most about.
//
// # Semantics
//
//   - A target is healthy or unhealthy. It moves to unhealthy after
//     UnhealthyThreshold consecutive failed checks and back to healthy after
//     HealthyThreshold consecutive successful checks; a single result of the
//     opposite sign resets the streak. Delegate.StateChanged is called once
//     per transition, never for a check that does not change the state.
//   - The initial state is Config.InitiallyHealthy. DefaultConfig sets it to
//     true: a proxy restarting must not refuse all traffic for the seconds it
//     takes to prove every backend healthy, and a dead backend is caught
//     after UnhealthyThreshold intervals anyway.
//   - Healthy reports false for a target that was never added or was removed,
//     so a caller cannot route to a backend nobody watches.
//   - Every check is bounded by Config.Timeout; a backend that accepts TCP
//     but never answers counts as a failure when the timeout expires.
//   - Checks of different proxies must not line up on a backend: each delay
//     between checks is Interval ± up to 10 % drawn at random, and the first
//     check of a target is drawn uniformly from the first Interval. Delays
//     are measured from the start of the previous check, so a slow failing
//     check does not stretch detection time; a target never has two checks
//     in flight.
//   - One scheduler goroutine keeps a timer heap of due checks and hands
//     them to a fixed pool of workers, so thousands of backends cost a heap
//     entry each rather than a sleeping goroutine each, and the number of
//     sockets the checker opens at once is capped.
//   - Delegate methods for one target are called in order from one worker at
//     a time; methods for different targets may run concurrently. After
//     Remove(target) returns no more calls arrive for that target, and after
//     Stop returns none arrive at all. A Delegate must not call Add, Remove
//     or Stop (they wait for callbacks to finish); Healthy is fine.
package health
