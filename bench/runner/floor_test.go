package runner

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// buildFloor compiles wsfloor (bench/floor/relay.c) into a temporary
// directory, or skips the test when there is no C compiler.
func buildFloor(t *testing.T) string {
	t.Helper()
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Skip("no C compiler: wsfloor cannot be built")
	}
	out := filepath.Join(t.TempDir(), "wsfloor")
	build := exec.Command(cc, "-O2", "-Wall", "-Werror", "-o", out, filepath.Join("..", "floor", "relay.c"))
	if msg, err := build.CombinedOutput(); err != nil {
		t.Fatalf("cc: %v\n%s", err, msg)
	}
	return out
}

// TestFloor runs the scenarios through the real wsfloor, as target floor,
// and checks that every message and session came through it.
func TestFloor(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the commands")
	}
	o := smallOptions(t, "floor")
	o.Floor = buildFloor(t)
	o.Scenarios = []string{"throughput", "idle", "latency", "handshake"}
	r, runs, _ := executeAll(t, o)
	tp, idle, lat, hs := runs[0], runs[1], runs[2], runs[3]
	if tp.Load.Messages == 0 || tp.Load.SessionErrors != 0 || tp.TargetCPUSec <= 0 {
		t.Fatalf("throughput run %+v / %+v", tp, tp.Load)
	}
	if idle.Load.Established != 100 || idle.Load.EchoOK != 100 || idle.TargetRSSHoldKB <= 0 {
		t.Fatalf("idle run %+v / %+v", idle, idle.Load)
	}
	if lat.Load.Messages == 0 || lat.Load.Lost != 0 {
		t.Fatalf("latency run %+v / %+v", lat, lat.Load)
	}
	if hs.Load.Upgrades == 0 || hs.Load.SessionErrors != 0 || hs.TargetCPUPerUpgradeUS <= 0 {
		t.Fatalf("handshake run %+v / %+v", hs, hs.Load)
	}
	var md bytes.Buffer
	Markdown(&md, o, ThisHost(), r.Pinned(), runs)
	if !strings.Contains(md.String(), "| floor | 1/1 |") {
		t.Fatalf("markdown lacks the floor's rows:\n%s", md.String())
	}
}

// TestFloorReleasesSessions holds sessions through wsfloor, ends them from
// either side, and counts its open descriptors: a relay that kept a
// session's sockets would inflate the idle scenario's memory per session.
func TestFloorReleasesSessions(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the commands")
	}
	bin := buildCommands(t)
	floorBin := buildFloor(t)
	backend, listen := freeAddr(t), freeAddr(t)
	start := func(cmd *exec.Cmd) {
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
		})
	}
	echo := exec.Command(filepath.Join(bin, "wsecho"), "-listen", backend)
	echo.Stderr = os.Stderr
	start(echo)
	waitListening(t, backend)
	// wsfloor says so once it listens; a probe connection would be a
	// session of its own, still being released when counting starts.
	floor := exec.Command(floorBin, listen, backend)
	stderr, err := floor.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	start(floor)
	if line, err := bufio.NewReader(stderr).ReadString('\n'); err != nil || !strings.HasPrefix(line, "wsfloor: relaying") {
		t.Fatalf("wsfloor did not start: %q, %v", line, err)
	}
	fds := func() int {
		ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", floor.Process.Pid))
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	before := fds()

	const n = 50
	conns := make([]*websocket.Conn, n)
	for i := range conns {
		c, _, err := websocket.DefaultDialer.Dial("ws://"+listen+"/", nil)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		conns[i] = c
		msg := []byte(fmt.Sprintf("session %d", i))
		if err := c.WriteMessage(websocket.BinaryMessage, msg); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, got, err := c.ReadMessage(); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("echo %d: %q, %v", i, got, err)
		}
	}
	if got := fds(); got != before+2*n {
		t.Fatalf("%d descriptors with %d sessions, want %d", got, n, before+2*n)
	}
	// Half end with a closing handshake (the backend closes its side after
	// echoing the Close), half by dropping the TCP connection.
	for i, c := range conns {
		if i%2 == 0 {
			c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, _, err := c.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
				t.Fatalf("session %d: close answered with %v", i, err)
			}
		}
		c.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for fds() != before {
		if time.Now().After(deadline) {
			t.Fatalf("%d descriptors after the sessions ended, %d before", fds(), before)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
