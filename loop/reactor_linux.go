package loop

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// readChunk bounds one read from a socket. A direction whose receiver
	// stops reading holds at most one read's worth; the rest waits in the
	// kernel, where TCP flow control pushes back on the sender.
	readChunk = 64 << 10
	// tickEvery is the period of the session timers (idle, keepalive,
	// closing deadlines) and of the stall check of blocked receivers.
	tickEvery = int64(250 * time.Millisecond)
	// maxEvents bounds one epoll_wait batch.
	maxEvents = 256
)

// reactor is one epoll instance and the goroutine that serves it. A session
// belongs to one reactor for its whole life, and only that goroutine touches
// its state, so the relay takes no locks: other goroutines (drains, the
// handshake, Shutdown) hand it work through post.
//
// Why not netpoll here: netpoll hands every read event to a pooled
// goroutine, keeps two buffers, a write barrier and timers per connection,
// and cannot stop reading a socket whose receiver is full. The relay needs
// none of that: one read into the reactor's scratch buffer, frames walked
// in place, one write to the other socket, and when that socket is full the
// remainder parked and the source taken out of EPOLLIN, so that TCP itself
// slows the sender. (The reactors accept and watch the handshakes too:
// see listener.go.)
type reactor struct {
	l    *Loop
	epfd int
	// onThread: the reactor waits in epoll_wait itself, on a P of its own
	// (serveOnThread); otherwise it parks in Go's poller (serveParked).
	onThread bool
	// epFile is epfd in Go's poller, where a reactor not on its own thread
	// parks when nothing is ready; nil on a thread.
	epFile *os.File
	wakefd int
	woken  atomic.Bool

	mu     sync.Mutex
	closed bool // under mu: the epoll and event descriptors are gone

	// watched are the sockets in the epoll set that no session has (yet),
	// by descriptor: listening sockets, clients in their handshake,
	// upstreams being dialed or waiting warm. Their owners add and remove
	// them from other goroutines, hence the lock; the reactor looks one up
	// only for their few edges (accept, request, connected, response,
	// hang-up).
	watchMu sync.Mutex
	watched map[int]edgeWatcher
	cmds    []func()
	run_    []func() // the batch being run; swapped with cmds

	// Owned by the reactor goroutine.
	peers    []*peer // by file descriptor
	sessions indexed[*Session]
	waiting  indexed[*Session] // adopted one socket, waiting for the other
	blocked  indexed[*peer]    // peers with unsent bytes
	scratch  []byte
	relayed  *relayCounts // this reactor's share of Stats
	// fresh are accepted clients that have sent nothing yet; tick closes
	// those past their handshake deadline.
	fresh indexed[*ClientConn]
	// awaiting are upstreams whose backend's answer a handshake awaits on
	// the reactor (ClientConn.AwaitAnswer); tick expires them.
	awaiting indexed[*Upstream]
	// pausedAccepts are listeners out of the set since accept ran out of
	// descriptors; tick puts them back.
	pausedAccepts []*acceptWatch
	// readied: the batch at hand made a handshake's goroutine runnable
	// (serveOnThread yields to it).
	readied bool
	// more: the kernel may hold more ready sockets than the batch at hand
	// took (it filled the events array, or a listener accepted one of
	// several pending).
	more bool
	// rereads are peers to read again without an edge (peer.inputDue,
	// peer.hangUp, a read that filled scratch): the set is edge-triggered.
	rereads, rereadsRun []*peer
	now                 int64
	lastTick            int64
	stopping            bool

	buffered atomic.Int64 // unsent bytes over all blocked peers, as of the last tick
	done     chan struct{}
}

func newReactor(l *Loop, onThread bool) (*reactor, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wakefd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(wakefd)
		return nil, fmt.Errorf("epoll_ctl eventfd: %w", err)
	}
	var epFile *os.File
	if !onThread {
		if err := unix.SetNonblock(epfd, true); err != nil {
			unix.Close(epfd)
			unix.Close(wakefd)
			return nil, fmt.Errorf("epoll fd non-blocking: %w", err)
		}
		// Non-blocking, so os.NewFile registers it with the runtime's
		// poller. A reactor on its own thread must not be registered
		// there: every new readiness in its set would wake a thread
		// sleeping in the runtime's poller for nothing.
		epFile = os.NewFile(uintptr(epfd), "reactor-epoll")
	}
	chunk := readChunk
	if mb := l.cfg.MaxBufferedBytes; mb > 0 && mb < int64(chunk) {
		chunk = int(mb)
	}
	r := &reactor{
		l:        l,
		epfd:     epfd,
		onThread: onThread,
		epFile:   epFile,
		wakefd:   wakefd,
		scratch:  make([]byte, chunk),
		relayed:  new(relayCounts),
		watched:  make(map[int]edgeWatcher),
		now:      time.Now().UnixNano(),
		done:     make(chan struct{}),
	}
	r.lastTick = r.now
	sessIdx := func(s *Session) *int { return &s.idx }
	r.sessions.idx, r.waiting.idx = sessIdx, sessIdx
	r.blocked.idx = func(p *peer) *int { return &p.blockedIdx }
	r.fresh.idx = func(c *ClientConn) *int { return &c.freshIdx }
	r.awaiting.idx = func(u *Upstream) *int { return &u.awaitIdx }
	return r, nil
}

// post runs f on the reactor goroutine, after the events at hand.
func (r *reactor) post(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.cmds = append(r.cmds, f)
	if !r.woken.Swap(true) {
		one := [8]byte{1}
		_, _ = unix.Write(r.wakefd, one[:])
	}
}

// run serves the reactor until it is stopped.
func (r *reactor) run() {
	defer close(r.done)
	events := make([]unix.EpollEvent, maxEvents)
	if r.onThread {
		r.serveOnThread(events)
	} else {
		r.serveParked(events)
	}
	r.shutdown()
}

// busyWaitMillis bounds a wait in which a reactor on its own thread holds
// its P (see serveOnThread).
const busyWaitMillis = 20

// quietAfter is how long a reactor on its own thread goes on waiting with
// its P held after its last event; a reactor that found nothing for this
// long waits as an ordinary system call from then on.
//
// Each pause in the traffic that ends the held waits pays for it: sysmon
// takes the P 10 ms into the system call and, having taken one, or woken
// from its sleep by the call's return, polls every 20 µs for a millisecond
// before it backs off — about 60 wake-ups, some preempting the reactor on
// its own core: about 2 ms of CPU per pause here. Held waits cost instead a
// wake-up per busyWaitMillis and a preemption signal from sysmon every 10
// ms, about 8 ms of CPU per second. Holding for as long as a switch costs,
// 2 ms / 8 ms per second, is never more than twice the cheaper of the two
// whatever the pause (bench/RESULTS.md, 2026-12-07). Traffic pauses for a
// few milliseconds all the time (at 2 ms, the switches cost a tenth of the
// CPU per message at 20,000 messages/s), and for 100 ms between the pushes
// of a bursty backend (at 20 ms, 8-12% of such a fan-out's CPU).
const quietAfter = int64(250 * time.Millisecond)

// serveOnThread waits for readiness in epoll_wait itself, the way an event
// loop in C does: a wake-up costs the kernel's wake of this thread and
// nothing in Go's scheduler. It is chosen when GOMAXPROCS leaves a P for
// the rest of the process besides the reactors (cmd/wsgate raises
// GOMAXPROCS for that); see bench/RESULTS.md for what it saves.
//
// While busy, the wait is a raw system call, so the runtime believes the
// reactor is running and leaves it its P: no sysmon hand-off, no
// reacquiring a P after each wait. Such a wait is bounded by busyWaitMillis
// so that an oversubscribed process gets the P back soon, and the runtime
// interrupts it with a signal (EINTR) when it stops the world or preempts
// the reactor; the reactor then yields. A reactor that found nothing for
// quietAfter waits as an ordinary system call until the next tick: the
// runtime may lend its P out, and sysmon and the thread can sleep, so an
// idle proxy wakes as seldom as one that parks.
func (r *reactor) serveOnThread(events []unix.EpollEvent) {
	busy := true
	lastEvents := r.now
	for !r.stopping {
		wait := int((r.lastTick + tickEvery - r.now + int64(time.Millisecond) - 1) / int64(time.Millisecond))
		var n int
		var e unix.Errno
		// Peers to read again (input left) must not wait for an edge.
		polled := wait <= 0 || len(r.rereads) > 0
		switch {
		case polled:
			n, e = pollEvents(r.epfd, events)
		case busy:
			n, e = waitEventsHeld(r.epfd, events, min(wait, busyWaitMillis))
		default:
			n, e = waitEvents(r.epfd, events, wait)
		}
		switch e {
		case 0:
		case unix.EINTR:
			runtime.Gosched()
		default:
			// Not expected while the descriptor is open; do not spin on it.
			r.l.log.Error("reactor wait", "err", fmt.Errorf("epoll_wait: %w", e).Error())
			time.Sleep(10 * time.Millisecond)
		}
		r.now = time.Now().UnixNano()
		if n > 0 {
			busy, lastEvents = true, r.now
		} else if e == 0 && !polled && r.now-lastEvents >= quietAfter {
			busy = false
		}
		r.more = n == len(events)
		for i := range n {
			r.dispatch(&events[i])
		}
		r.runCommands()
		r.runRereads()
		if r.now-r.lastTick >= tickEvery {
			r.lastTick = r.now
			r.tick()
		}
		if r.readied {
			// A handshake's goroutine the batch made runnable waits in
			// this P's run queue, where another thread can take it only
			// after being woken and backing off (3 µs) from a P that
			// is running. Yielding runs it here at once, as an event
			// loop in C would run its callback; this P or another takes
			// the reactor back. It took a fifth off an upgrade's CPU.
			r.readied = false
			runtime.Gosched()
		}
	}
}

// serveParked takes ready events without waiting (pollEvents) for as long
// as there may be more (yielding the processor between batches when it is
// the only one, so that handshakes move on), and parks in Go's poller, on
// the epoll descriptor itself, when there are none: every new readiness in
// the set makes the epoll descriptor readable. It is chosen when the
// reactors have no P of their own to block in epoll_wait with: a blocked
// system call would hold the processor until sysmon takes it back, every
// time the reactor idles.
func (r *reactor) serveParked(events []unix.EpollEvent) {
	rc, err := r.epFile.SyscallConn()
	if err != nil {
		r.l.log.Error("reactor cannot wait on its epoll descriptor", "err", err.Error())
		return
	}
	// With a single P, handshakes on the same core get it only when the
	// reactor yields; with more, yielding only invites another thread to
	// take the reactor's goroutine over.
	yield := runtime.GOMAXPROCS(0) == 1
	var failed unix.Errno
	serve := func(uintptr) bool {
		for {
			n, e := pollEvents(r.epfd, events)
			if e != 0 && e != unix.EINTR {
				failed = e
				return true
			}
			if n == 0 && len(r.rereads) == 0 {
				return false // park until epfd is readable or the tick is due
			}
			r.now = time.Now().UnixNano()
			r.more = n == len(events)
			for i := 0; i < n; i++ {
				r.dispatch(&events[i])
			}
			r.runCommands()
			r.runRereads()
			if r.stopping || r.now-r.lastTick >= tickEvery {
				return true
			}
			if !r.more && len(r.rereads) == 0 {
				// Every socket of the batch was read to the end of what it
				// had: readiness from now on is new, and each new readiness
				// wakes Go's poller on epfd, so asking epoll again now
				// would, as a rule, find nothing (a system call per wake-up).
				return false
			}
			if yield {
				runtime.Gosched()
			}
		}
	}
	for {
		_ = r.epFile.SetReadDeadline(time.Unix(0, r.lastTick+tickEvery))
		err := rc.Read(serve)
		r.now = time.Now().UnixNano()
		if failed != 0 {
			err, failed = fmt.Errorf("epoll_wait: %w", failed), 0
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			// Not expected while the descriptor is open; do not spin on it.
			r.l.log.Error("reactor wait", "err", err.Error())
			time.Sleep(10 * time.Millisecond)
		}
		r.runCommands()
		if r.stopping {
			return
		}
		if r.now-r.lastTick >= tickEvery {
			r.lastTick = r.now
			r.tick()
		}
	}
}

func (r *reactor) dispatch(ev *unix.EpollEvent) {
	fd := int(ev.Fd)
	if fd == r.wakefd {
		var b [8]byte
		r.woken.Store(false)
		_, _ = rawRead(fd, b[:])
		return
	}
	var p *peer
	if fd < len(r.peers) {
		p = r.peers[fd]
	}
	if p == nil {
		r.watchMu.Lock()
		w := r.watched[fd]
		r.watchMu.Unlock()
		if w != nil {
			w.onEdge(ev.Events)
		}
		// Else closed earlier in this batch.
		return
	}
	e := ev.Events
	if e&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) != 0 && p.out != nil {
		p.onWritable()
		if p.fd != fd {
			return
		}
	}
	if e&(unix.EPOLLIN|unix.EPOLLERR|unix.EPOLLHUP) != 0 {
		p.onReadable(e)
	}
}

func (r *reactor) runCommands() {
	r.mu.Lock()
	batch := r.cmds
	r.cmds = r.run_[:0]
	r.mu.Unlock()
	for i, f := range batch {
		f()
		batch[i] = nil
	}
	r.run_ = batch
}

// register adds p's socket to the epoll set, readable.
func (r *reactor) register(p *peer, fd int) error {
	return r.own(p, fd, unix.EPOLL_CTL_ADD)
}

// attach makes p the owner of fd, which is in the epoll set already (a
// socket watched through its handshake). The modification also reports
// input that arrived while nobody watched; a quiet socket (hsSocket.quiet)
// is watched as a session's socket is already and needs none. fd is the
// socket's only descriptor.
func (r *reactor) attach(p *peer, fd int, quiet bool) error {
	if quiet {
		return r.own(p, fd, -1)
	}
	return r.own(p, fd, unix.EPOLL_CTL_MOD)
}

// peerIn is what a session's socket is watched for while it is read, edge
// -triggered like a handshake's (hsEvents), so that one joins a session
// with no epoll_ctl, and a ready socket is not polled again by every wait
// after it was read.
const peerIn = unix.EPOLLIN | unix.EPOLLRDHUP

func (r *reactor) own(p *peer, fd, op int) error {
	ev := unix.EpollEvent{Events: peerIn | unix.EPOLLET, Fd: int32(fd)}
	if op >= 0 {
		if e := rawEpollCtl(r.epfd, op, fd, &ev); e != 0 {
			name := "add"
			if op == unix.EPOLL_CTL_MOD {
				name = "mod"
			}
			return fmt.Errorf("epoll_ctl %s fd %d: %w", name, fd, e)
		}
	}
	if fd >= len(r.peers) {
		n := 2 * len(r.peers)
		if n <= fd {
			n = fd + 64
		}
		grown := make([]*peer, n)
		copy(grown, r.peers)
		r.peers = grown
	}
	r.peers[fd] = p
	p.fd = fd
	p.interest = peerIn
	return nil
}

// reread has p read again after the batch at hand, without an edge.
func (r *reactor) reread(p *peer) {
	if !p.rereadQueued {
		p.rereadQueued = true
		r.rereads = append(r.rereads, p)
	}
}

// runRereads reads the peers queued for it; those that queue themselves
// again (input still left) are read again after the next poll, so that
// one busy socket does not starve the others.
func (r *reactor) runRereads() {
	if len(r.rereads) == 0 {
		return
	}
	batch := r.rereads
	r.rereads = r.rereadsRun[:0]
	for i, p := range batch {
		batch[i] = nil
		p.rereadQueued = false
		if p.fd >= 0 {
			p.onReadable(unix.EPOLLIN)
		}
	}
	r.rereadsRun = batch[:0]
}

// watch adds a socket that no session owns to the epoll set.
func (r *reactor) watch(fd int, w edgeWatcher, events uint32) error {
	r.watchMu.Lock()
	r.watched[fd] = w
	r.watchMu.Unlock()
	ev := unix.EpollEvent{Events: events, Fd: int32(fd)}
	if e := rawEpollCtl(r.epfd, unix.EPOLL_CTL_ADD, fd, &ev); e != 0 {
		r.unwatch(fd, w)
		return fmt.Errorf("epoll_ctl add fd %d: %w", fd, e)
	}
	return nil
}

// rewatch changes the events a watched socket is watched for.
func (r *reactor) rewatch(fd int, events uint32) {
	ev := unix.EpollEvent{Events: events, Fd: int32(fd)}
	if e := rawEpollCtl(r.epfd, unix.EPOLL_CTL_MOD, fd, &ev); e != 0 {
		r.l.log.Warn("epoll_ctl mod", "fd", fd, "err", e.Error())
	}
}

// unwatch forgets w's socket: it is closing or joining a session. It stays
// in the epoll set until closed or attached.
func (r *reactor) unwatch(fd int, w edgeWatcher) {
	r.watchMu.Lock()
	if r.watched[fd] == w {
		delete(r.watched, fd)
	}
	r.watchMu.Unlock()
}

// modify sets the events p's socket is watched for.
func (r *reactor) modify(p *peer, events uint32) {
	ev := unix.EpollEvent{Events: events | unix.EPOLLET, Fd: int32(p.fd)}
	if e := rawEpollCtl(r.epfd, unix.EPOLL_CTL_MOD, p.fd, &ev); e != 0 {
		r.l.log.Warn("epoll_ctl mod", "fd", p.fd, "err", e.Error())
	}
	p.interest = events
}

// closeFd closes p's socket, which also takes it out of the epoll set: a
// session's sockets have no other descriptor.
func (r *reactor) closeFd(p *peer) {
	fd := p.fd
	if fd < 0 {
		return
	}
	rawClose(fd)
	r.peers[fd] = nil
	p.fd = -1
}

// indexed is a list whose elements know their index, so that removal is
// O(1) by moving the last element into the hole. The reactor keeps its
// sessions, the sessions waiting for their second socket, and its blocked
// peers in such lists.
type indexed[T any] struct {
	items []T
	idx   func(T) *int
}

func (l *indexed[T]) add(x T) {
	*l.idx(x) = len(l.items)
	l.items = append(l.items, x)
}

func (l *indexed[T]) remove(x T) {
	i := *l.idx(x)
	if i < 0 {
		return
	}
	last := len(l.items) - 1
	l.items[i] = l.items[last]
	*l.idx(l.items[i]) = i
	var zero T
	l.items[last] = zero
	l.items = l.items[:last]
	*l.idx(x) = -1
}

// stop makes the reactor cut its sessions and exit.
func (r *reactor) stop() {
	r.post(func() { r.stopping = true })
	<-r.done
}

func (r *reactor) shutdown() {
	for len(r.sessions.items) > 0 {
		r.sessions.items[len(r.sessions.items)-1].finish()
	}
	// The second socket of these can no longer arrive (post refuses it
	// from now on): close what was handed over and report them.
	for len(r.waiting.items) > 0 {
		s := r.waiting.items[len(r.waiting.items)-1]
		r.waiting.remove(s)
		for _, p := range [2]*peer{&s.client, &s.backend} {
			if p.pendingFd >= 0 {
				unix.Close(p.pendingFd)
				p.pendingFd = -1
			}
		}
		s.started = true
		s.setCause(CauseShutdown)
		s.finish()
	}
	r.closeFresh()
	r.closeAwaiting()
	r.mu.Lock()
	r.closed = true
	r.cmds = nil
	r.closeDescriptors()
	r.mu.Unlock()
}

// closeDescriptors closes the epoll and event descriptors. A registered
// epoll descriptor is closed through its os.File, whose finalizer would
// otherwise close the number again later, by then maybe another socket's.
func (r *reactor) closeDescriptors() {
	if r.epFile != nil {
		r.epFile.Close()
	} else {
		unix.Close(r.epfd)
	}
	unix.Close(r.wakefd)
}

// each runs fn on every session of the reactor, on its goroutine.
func (r *reactor) each(fn func(*Session)) {
	r.post(func() {
		// fn may end sessions, which reorders the list.
		for i := len(r.sessions.items) - 1; i >= 0; i-- {
			if i < len(r.sessions.items) {
				fn(r.sessions.items[i])
			}
		}
	})
}
