package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swapfs/swapfs/swap"
)

// fakeSwap is a swapService with canned answers.
type fakeSwap struct {
	mu     sync.Mutex
	status swap.Status
	pinned []uint64
	active []string
}

func (f *fakeSwap) SwapStatus() swap.Status { return f.status }

func (f *fakeSwap) PinSwapfile(ino uint64) (swap.FileStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ino == 13 {
		return swap.FileStatus{}, errors.New("swap header: no SWAPSPACE2 signature")
	}
	f.pinned = append(f.pinned, ino)
	return swap.FileStatus{Ino: ino, Path: "/swapfile", FileBytes: 64 << 20, UsableBytes: 64 << 20, Extents: 1, Pinned: true}, nil
}

func (f *fakeSwap) ActiveSwapfiles() []string { return f.active }

var testSwapStatus = swap.Status{
	Files: []swap.FileStatus{
		{Ino: 5, Path: "/swap/a", FileBytes: 1 << 30, UsableBytes: 1<<30 - 4096, Extents: 3, Pinned: true,
			Loop: "/dev/loop7", Active: true, Priority: -2, UsedBytes: 12 << 20},
		{Ino: 9, Path: "/swap/b", FileBytes: 64 << 20, UsableBytes: 64 << 20, Extents: 1, Pinned: true},
	},
	IO: swap.IOStats{Reads: 10, Writes: 30, ReadBytes: 40960, WriteBytes: 3 << 20, Refused: 2,
		ReadLatency:  swap.Latency{P50: 100 * time.Microsecond, P99: time.Millisecond, Max: 4 * time.Millisecond},
		WriteLatency: swap.Latency{P50: 200 * time.Microsecond, P99: 2 * time.Millisecond, Max: 8 * time.Millisecond}},
}

// startTestControl serves svc for mountpoint with the socket directory in a temporary one.
func startTestControl(t *testing.T, mountpoint string, svc swapService, h *hardening) *controlServer {
	t.Helper()
	t.Setenv(envRunDir, filepath.Join(t.TempDir(), "run"))
	c, err := startControl(controlSocketPath(mountpoint),
		controlResponse{Pid: 4242, Store: "/srv/store", Mountpoint: mountpoint},
		time.Now().Add(-time.Hour), svc, h, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestControlRoundTrip(t *testing.T) {
	svc := &fakeSwap{status: testSwapStatus}
	h := &hardening{Mlocked: true, OOMScoreAdj: -1000, IOFlusherErr: "EPERM: no CAP_SYS_RESOURCE", GC: "GOGC=off"}
	c := startTestControl(t, "/mnt/swap fs", svc, h)
	if st, err := os.Stat(filepath.Dir(c.path)); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("socket directory: %v, mode %v; want 0700", err, st.Mode())
	}

	resp, err := callDaemon("/mnt/swap fs", controlRequest{Op: "status"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Error != "" || resp.Pid != 4242 || resp.Store != "/srv/store" || resp.Mountpoint != "/mnt/swap fs" ||
		resp.Uptime < time.Hour {
		t.Errorf("status reply: %+v", resp)
	}
	if resp.Swap == nil || !reflect.DeepEqual(*resp.Swap, testSwapStatus) {
		t.Errorf("swap status came back as %+v, want %+v", resp.Swap, testSwapStatus)
	}
	if resp.Hardening == nil || !resp.Hardening.Mlocked || resp.Hardening.IOFlusherErr != h.IOFlusherErr ||
		resp.Hardening.GC != "GOGC=off" || resp.Hardening.Threads == 0 || resp.Hardening.RSSBytes == 0 {
		t.Errorf("hardening reply: %+v", resp.Hardening)
	}

	resp, err = callDaemon("/mnt/swap fs", controlRequest{Op: "pin", Ino: 7})
	if err != nil || resp.Error != "" || resp.File == nil || resp.File.Ino != 7 || !resp.File.Pinned {
		t.Errorf("pin 7: %+v, %v", resp, err)
	}
	if !reflect.DeepEqual(svc.pinned, []uint64{7}) {
		t.Errorf("the service pinned %v, want [7]", svc.pinned)
	}

	for _, tt := range []struct {
		req  controlRequest
		want string
	}{
		{controlRequest{Op: "pin", Ino: 13}, "pin inode 13: swap header: no SWAPSPACE2 signature"},
		{controlRequest{Op: "pin"}, "no inode number"},
		{controlRequest{Op: "format"}, `unknown op "format"`},
	} {
		resp, err := callDaemon("/mnt/swap fs", tt.req)
		if err != nil || !strings.Contains(resp.Error, tt.want) || resp.File != nil || resp.Pid != 4242 {
			t.Errorf("%+v: reply %+v, %v; want an error with %q", tt.req, resp, err, tt.want)
		}
	}
}

func TestControlRejectsGarbage(t *testing.T) {
	c := startTestControl(t, "/mnt/x", &fakeSwap{}, nil)
	conn, err := net.Dial("unix", c.path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "this is not json\n")
	var resp controlResponse
	if err := json.NewDecoder(conn).Decode(&resp); err != nil || !strings.Contains(resp.Error, "cannot read the request") {
		t.Errorf("reply to garbage: %+v, %v", resp, err)
	}
}

func TestControlStaleAndLiveSocket(t *testing.T) {
	t.Setenv(envRunDir, t.TempDir())
	path := controlSocketPath("/mnt/stale")
	// A socket left behind by a daemon that died: nothing listens on it.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the stale socket is not there: %v", err)
	}
	if _, err := callDaemon("/mnt/stale", controlRequest{Op: "status"}); err == nil ||
		!strings.Contains(err.Error(), "is gone") || !strings.Contains(err.Error(), "is swapfs mounted on /mnt/stale?") {
		t.Errorf("calling a stale socket: %v", err)
	}

	base := controlResponse{Mountpoint: "/mnt/stale"}
	c, err := startControl(path, base, time.Now(), &fakeSwap{}, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("a stale socket was not replaced: %v", err)
	}
	// A live one is not taken over.
	if _, err := startControl(path, base, time.Now(), &fakeSwap{}, nil, slog.New(slog.DiscardHandler)); err == nil ||
		!strings.Contains(err.Error(), "in use by another live swapfs daemon") {
		t.Errorf("second daemon on the same socket: %v", err)
	}
	if _, err := callDaemon("/mnt/stale", controlRequest{Op: "status"}); err != nil {
		t.Errorf("the first daemon stopped answering: %v", err)
	}
	c.Close()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the socket is still there after Close: %v", err)
	}
}

func TestCallDaemonNoDaemon(t *testing.T) {
	t.Setenv(envRunDir, t.TempDir())
	_, err := callDaemon("/mnt/nothing", controlRequest{Op: "status"})
	if err == nil || !strings.Contains(err.Error(), "is swapfs mounted on /mnt/nothing?") {
		t.Errorf("no daemon: %v", err)
	}
}

func TestCallDaemonTimeout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mute.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		// Accept and never answer, as a stuck daemon would.
		conn, err := ln.Accept()
		if err == nil {
			time.Sleep(2 * time.Second)
			conn.Close()
		}
	}()
	start := time.Now()
	_, err = callSocket(path, "/mnt/stuck", controlRequest{Op: "status"}, 200*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "did not answer") || !strings.Contains(err.Error(), "/mnt/stuck") {
		t.Errorf("stuck daemon: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("the call took %v with a 200ms timeout", d)
	}
}

func TestControlSocketPath(t *testing.T) {
	t.Setenv(envRunDir, "")
	if got := controlSocketPath("/mnt/swap fs"); got != `/run/swapfs/mnt-swap\x20fs.sock` {
		t.Errorf("controlSocketPath = %q", got)
	}
	long := "/" + strings.Repeat("deep/", 40) + "mnt"
	p1, p2 := controlSocketPath(long), controlSocketPath(long+"2")
	if len(p1) >= 108 || p1 == p2 || filepath.Dir(p1) != defaultRunDir {
		t.Errorf("long mountpoints give %q and %q", p1, p2)
	}
}

func TestRenderStatus(t *testing.T) {
	st := testSwapStatus
	resp := controlResponse{Pid: 4242, Store: "/srv/store", Mountpoint: "/mnt/s", Uptime: 90 * time.Minute, Swap: &st,
		Hardening: &hardeningReport{Mlocked: true, LockedBytes: 50 << 20, VmLckBytes: 2 << 30, OOMScoreAdj: 0,
			OOMErr: "EACCES: lowering oom_score_adj needs CAP_SYS_RESOURCE", IOFlusherErr: "EPERM: no CAP_SYS_RESOURCE",
			GC: "GOGC=off, memory limit 64.0 MiB", RSSBytes: 60 << 20, Threads: 9}}
	var buf bytes.Buffer
	if err := renderStatus(&buf, resp); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"/mnt/s: swapfs store /srv/store, daemon pid 4242, up 1h30m0s",
		"PATH", "SIZE", "USABLE", "EXTENTS", "PINNED", "LOOP", "ACTIVE", "PRIORITY", "USED",
		"/mnt/s/swap/a", "1.0 GiB", "3", "/dev/loop7", "-2", "12.0 MiB",
		"/mnt/s/swap/b", "64.0 MiB",
		"40 requests (10 reads, 40.0 KiB; 30 writes, 3.0 MiB), 0 errors, 2 refused",
		"p50 100µs  p99 1ms  max 4ms", "p50 200µs  p99 2ms  max 8ms",
		"mlockall:      yes (50.0 MiB resident and locked",
		"oom_score_adj: NOT -1000: 0 (EACCES: lowering oom_score_adj needs CAP_SYS_RESOURCE)",
		"IO_FLUSHER:    NOT SET (EPERM: no CAP_SYS_RESOURCE)",
		"GOGC=off, memory limit 64.0 MiB",
		"WARNING: 2 protection(s) missing",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}
	// The file with no loop device shows no loop, priority or use.
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && f[0] == "/mnt/s/swap/b" && strings.Join(f[len(f)-4:], " ") != "- no - -" {
			t.Errorf("row of a file with no loop device: %q, want it to end with LOOP -, ACTIVE no, PRIORITY -, USED -", line)
		}
	}

	buf.Reset()
	resp.Hardening = &hardeningReport{Mlocked: true, LockedBytes: 50 << 20, OOMScoreAdj: -1000, IOFlusher: true,
		Threads: 9, IOFlusherThreads: 9}
	resp.Swap = &swap.Status{}
	renderStatus(&buf, resp)
	out = buf.String()
	for _, want := range []string{"swapfiles: none", "read latency:  -", "IO_FLUSHER:    yes (9 threads)", "oom_score_adj: -1000",
		"data volume:   fit for swap writes"} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "WARNING") || strings.Contains(out, "NOT") {
		t.Errorf("every protection is there, yet:\n%s", out)
	}

	buf.Reset()
	resp.Hardening = &hardeningReport{MlockErr: "EPERM: no CAP_IPC_LOCK", OOMScoreAdj: -1000, IOFlusher: true,
		Threads: 9, IOFlusherThreads: 4, VolumeRisk: "the data volume is in memory (tmpfs)"}
	renderStatus(&buf, resp)
	out = buf.String()
	for _, want := range []string{"mlockall:      NOT LOCKED (EPERM: no CAP_IPC_LOCK)", "IO_FLUSHER:    PARTIAL: 4 of 9 threads",
		"data volume:   AT RISK (the data volume is in memory (tmpfs))", "WARNING: 3 protection(s) missing"} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}
}

func TestPrintStatusJSON(t *testing.T) {
	st := testSwapStatus
	replies := []controlResponse{{Pid: 1, Mountpoint: "/a", Swap: &st, Hardening: &hardeningReport{Mlocked: true}},
		{Pid: 2, Mountpoint: "/b", Swap: &swap.Status{}}}
	var buf bytes.Buffer
	if err := printStatus(&buf, replies[:1], true, true); err != nil {
		t.Fatal(err)
	}
	var one controlResponse
	if err := json.Unmarshal(buf.Bytes(), &one); err != nil || one.Pid != 1 || !reflect.DeepEqual(*one.Swap, st) {
		t.Errorf("one mount as JSON: %v\n%s", err, &buf)
	}
	if !strings.Contains(buf.String(), `"io_flusher": false`) || !strings.Contains(buf.String(), `"mlocked": true`) {
		t.Errorf("the JSON lacks the hardening fields:\n%s", &buf)
	}
	buf.Reset()
	printStatus(&buf, replies, true, false)
	var all []controlResponse
	if err := json.Unmarshal(buf.Bytes(), &all); err != nil || len(all) != 2 || all[1].Mountpoint != "/b" {
		t.Errorf("all mounts as JSON: %v\n%s", err, &buf)
	}
	buf.Reset()
	printStatus(&buf, nil, true, false)
	if strings.TrimSpace(buf.String()) != "[]" {
		t.Errorf("no mounts as JSON: %q, want []", &buf)
	}
}

func TestFindSwapfsMountRefusesOtherDirs(t *testing.T) {
	dir := t.TempDir()
	_, err := findSwapfsMount(dir)
	if err == nil || !strings.Contains(err.Error(), dir+" is not a swapfs mountpoint") {
		t.Errorf("findSwapfsMount(%s): %v", dir, err)
	}
	_, err = findSwapfsMount(filepath.Join(dir, "missing"))
	if err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("findSwapfsMount of a missing dir: %v", err)
	}
}

func TestHumanBytes(t *testing.T) {
	for _, tt := range []struct {
		in   int64
		want string
	}{{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {1536 << 10, "1.5 MiB"}, {64 << 30, "64.0 GiB"}} {
		if got := humanBytes(tt.in); got != tt.want {
			t.Errorf("humanBytes(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestRoundLatency(t *testing.T) {
	for _, tt := range []struct {
		in   time.Duration
		want string
	}{{262144 * time.Nanosecond, "262µs"}, {1025394 * time.Nanosecond, "1.03ms"}, {1500 * time.Millisecond, "1.5s"}, {800, "1µs"}} {
		if got := roundLatency(tt.in).String(); got != tt.want {
			t.Errorf("roundLatency(%v) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// TestPinThroughChecksStore: a daemon that answers for the mountpoint but serves another
// store (a second swapfs mount over the same directory, whose daemon could not take the
// socket) is not asked to pin an inode number that belongs to the other store.
func TestPinThroughChecksStore(t *testing.T) {
	svc := &fakeSwap{}
	startTestControl(t, "/mnt/stacked", svc, &hardening{})
	file := filepath.Join(t.TempDir(), "swapfile")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := pinThrough(swapTarget{path: file, mountpoint: "/mnt/stacked", store: "/srv/other"})
	if err == nil || !strings.Contains(err.Error(), "serves store /srv/store, not /srv/other") || len(svc.pinned) != 0 {
		t.Errorf("pin through the daemon of another store: %v; pinned %v", err, svc.pinned)
	}
	if st, err := pinThrough(swapTarget{path: file, mountpoint: "/mnt/stacked", store: "/srv/store"}); err != nil || !st.Pinned {
		t.Errorf("pin through the right daemon: %+v, %v", st, err)
	}
}
