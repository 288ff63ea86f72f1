package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/swapfs/swapfs/meta"
	"github.com/swapfs/swapfs/swap"
)

// The tests here follow ../shared/swap-semantics.md; "item N" refers to its numbered list.

const testSwapSize = 64 << 20

func requireSwapTools(t testing.TB) {
	t.Helper()
	requireEnv(t)
	for _, tool := range []string{"losetup", "mkswap", "swapon", "swapoff"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s (util-linux) is not installed", tool)
		}
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		t.Skipf("no loop devices here: %v", err)
	}
}

// swapDevice is a swap area the test made active; Cleanup removes it.
type swapDevice struct {
	dev  string
	file string
}

// releaseSwap swaps off and detaches dev if they still are active and attached; it is the
// cleanup of every swap area on swapfs, so it must run before the mount's own cleanup
// (t.Cleanup is last-in, first-out: register after mountStore).
func releaseSwap(t testing.TB, dev string) {
	t.Helper()
	if backing := loopBacking(dev); backing != "" {
		removeLoopSwap(t, dev, backing)
	}
}

// swapActive reports whether dev is in /proc/swaps.
func swapActive(dev string) bool {
	_, on := swap.ActiveSwapNamed(dev)
	return on
}

// swaponSwapfs runs "swapfs swapon ARGS FILE" and returns the loop device it printed.
func swaponSwapfs(t testing.TB, m *swapfsMount, file string, args ...string) swapDevice {
	t.Helper()
	r := swapfs(m.logDir, append(append([]string{"swapon"}, args...), file)...)
	dev := strings.TrimSpace(strings.SplitN(r.out, "\n", 2)[0])
	if strings.HasPrefix(dev, "/dev/loop") {
		trackLoop(dev, loopBacking(dev))
		t.Cleanup(func() { releaseSwap(t, dev) })
	}
	if r.err != nil || r.code != 0 || !strings.HasPrefix(dev, "/dev/loop") {
		m.dumpLog()
		t.Fatalf("swapfs swapon %s: exit %d %v\n%s", file, r.code, r.err, r.out)
	}
	return swapDevice{dev: dev, file: file}
}

// swaponRecipe is the plain recipe: losetup --direct-io=on, then swapon(8) on the device.
func swaponRecipe(t testing.TB, file string, sectorSize int) swapDevice {
	t.Helper()
	args := []string{"--direct-io=on", "-f", "--show"}
	if sectorSize != 0 {
		args = append(args, "--sector-size", strconv.Itoa(sectorSize))
	}
	r := runCmd(cmdTimeout, nil, "losetup", append(args, file)...)
	dev := strings.TrimSpace(r.out)
	if r.err != nil || r.code != 0 || !strings.HasPrefix(dev, "/dev/loop") {
		t.Fatalf("losetup %s: exit %d %v\n%s", file, r.code, r.err, r.out)
	}
	trackLoop(dev, loopBacking(dev))
	t.Cleanup(func() { releaseSwap(t, dev) })
	if r := runCmd(cmdTimeout, nil, "swapon", dev); r.err != nil || r.code != 0 {
		t.Fatalf("swapon %s: exit %d %v\n%s", dev, r.code, r.err, r.out)
	}
	return swapDevice{dev: dev, file: file}
}

// swaponRefused runs "swapfs swapon file", which must fail, and returns what it said. If
// it succeeds the swap area is released when t ends and t stops.
func swaponRefused(t testing.TB, m *swapfsMount, file, what string) string {
	t.Helper()
	r := swapfs(m.logDir, "swapon", file)
	if r.code == 0 {
		releaseLoopsOf(t, file)
		t.Fatalf("swapfs swapon of %s succeeded:\n%s", what, r.out)
	}
	return r.out
}

// releaseLoopsOf turns off and detaches, when t ends, every loop device backed by file: what
// a swapon that should have failed made.
func releaseLoopsOf(t testing.TB, file string) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(file, &st); err != nil {
		t.Errorf("stat %s: %v", file, err)
		return
	}
	loops, err := swap.LoopsBacking(st.Dev, st.Ino)
	if err != nil {
		t.Errorf("loop devices of %s: %v", file, err)
	}
	for _, l := range loops {
		trackLoop(l.Device, loopBacking(l.Device))
		t.Cleanup(func() { releaseSwap(t, l.Device) })
	}
}

func mkswapfile(t testing.TB, m *swapfsMount, file string, args ...string) {
	t.Helper()
	r := swapfs(m.logDir, append(append([]string{"mkswapfile"}, args...), file)...)
	if r.err != nil || r.code != 0 {
		m.dumpLog()
		t.Fatalf("swapfs mkswapfile %s: exit %d %v\n%s", file, r.code, r.err, r.out)
	}
}

// checkRotational compares what status said of the rotational flags (gotVol, gotLoop) with
// what the kernel says of the store's data volume and of dev, and returns the latter.
func checkRotational(t testing.TB, m *swapfsMount, dev string, gotVol, gotLoop bool) (vol, loop bool) {
	t.Helper()
	vol, err := swap.Rotational(filepath.Join(m.Store, "data"))
	if err != nil {
		t.Fatal(err)
	}
	if loop, err = swap.Rotational(dev); err != nil {
		t.Fatal(err)
	}
	if gotVol != vol || gotLoop != loop {
		t.Errorf("status says volume rotational %v, %s rotational %v; the kernel says %v and %v", gotVol, dev, gotLoop, vol, loop)
	}
	return vol, loop
}

// statusJSON is the part of "swapfs status --json" the tests read.
type statusJSON struct {
	Swap struct {
		Files []struct {
			Path     string `json:"path"`
			Pinned   bool   `json:"pinned"`
			Active   bool   `json:"active"`
			Loop     string `json:"loop"`
			Extents  int    `json:"extents"`
			Usable   int64  `json:"usable_bytes"`
			Priority int    `json:"priority"`
			VolRota  bool   `json:"volume_rotational"`
			LoopRota bool   `json:"loop_rotational"`
		} `json:"files"`
		IO struct {
			Reads   uint64 `json:"reads"`
			Writes  uint64 `json:"writes"`
			Refused uint64 `json:"refused"`
		} `json:"io"`
	} `json:"swap"`
}

func swapStatus(t testing.TB, m *swapfsMount) statusJSON {
	t.Helper()
	r := swapfs(m.logDir, "status", "--json", m.Dir)
	if r.err != nil || r.code != 0 {
		t.Fatalf("swapfs status --json: exit %d %v\n%s", r.code, r.err, r.out)
	}
	var st statusJSON
	// The reply may be wrapped in a list, one per mount: take the first object.
	out := strings.TrimSpace(r.out)
	if strings.HasPrefix(out, "[") {
		var list []json.RawMessage
		if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) == 0 {
			t.Fatalf("swapfs status --json: %v\n%s", err, out)
		}
		out = string(list[0])
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("swapfs status --json: %v\n%s", err, out)
	}
	return st
}

func errnoOf(err error) syscall.Errno {
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	return 0
}

// wantRefused checks that what returns err was refused with want.
func wantRefused(t testing.TB, what string, err error, want syscall.Errno) {
	t.Helper()
	if got := errnoOf(err); got != want {
		t.Errorf("%s on an active swapfile: %v, want %v", what, err, want)
	}
}

// wantWriteRefused checks that the active swapfile f cannot be written through a new fd:
// the open or the write fails with ETXTBSY.
func wantWriteRefused(t testing.TB, f string) {
	t.Helper()
	if fd, err := unix.Open(f, unix.O_WRONLY, 0); err == nil {
		_, err = unix.Pwrite(fd, []byte("x"), 8192)
		unix.Close(fd)
		wantRefused(t, "write through a new fd", err, syscall.ETXTBSY)
	} else {
		wantRefused(t, "open for writing", err, syscall.ETXTBSY)
	}
}

// wantChangesRefused checks the refusals that show f is treated as active swap, however it
// was activated: truncate and writes (ETXTBSY), unlink and rename (EPERM).
func wantChangesRefused(t testing.TB, f string) {
	t.Helper()
	wantRefused(t, "truncate", os.Truncate(f, 0), syscall.ETXTBSY)
	wantWriteRefused(t, f)
	wantRefused(t, "unlink", os.Remove(f), syscall.EPERM)
	wantRefused(t, "rename", os.Rename(f, f+".moved"), syscall.EPERM)
}

func freeBlocks(t testing.TB, dir string) uint64 {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Bfree
}

// TestSwapfileActiveSemantics: items 1, 2, 5, 6, 7, 8, 10 and 12 on a swapfile made by
// swapfs mkswapfile and activated by swapfs swapon.
func TestSwapfileActiveSemantics(t *testing.T) {
	requireSwapTools(t)
	m := mountStore(t)
	f := filepath.Join(m.Dir, "swapfile")
	freeBefore := freeBlocks(t, m.Dir)
	mkswapfile(t, m, f, "--size", "64M", "--priority", "5", "--label", "itest")

	// Item 1 and 2: 0600, every block allocated, pinned.
	var st unix.Stat_t
	if err := unix.Stat(f, &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&0o7777 != 0o600 || st.Size != testSwapSize || st.Blocks != testSwapSize/512 {
		t.Errorf("mkswapfile made mode %o size %d blocks %d; want 0600, %d bytes, all allocated", st.Mode&0o7777, st.Size, st.Blocks, testSwapSize)
	}
	if out := mustRun(t, "swaplabel", f); !strings.Contains(out, "itest") {
		t.Errorf("swaplabel does not show the label:\n%s", out)
	}
	// Item 7's other half: a swapfile open for writing elsewhere is not attached, so no
	// writable handle but the loop device's can exist while it is active.
	writer, err := os.OpenFile(f, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if r := swapfs(m.logDir, "swapon", f); r.code == 0 {
		dev := strings.TrimSpace(strings.SplitN(r.out, "\n", 2)[0])
		trackLoop(dev, loopBacking(dev))
		t.Cleanup(func() { releaseSwap(t, dev) })
		t.Fatalf("swapfs swapon of a swapfile open for writing elsewhere succeeded")
	}
	writer.Close()
	// A read-only fd from before activation; every change through it must be refused.
	early, err := os.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	defer early.Close()

	sw := swaponSwapfs(t, m, f)
	if !swapActive(sw.dev) {
		t.Fatalf("%s is not in /proc/swaps", sw.dev)
	}
	base := filepath.Base(sw.dev)
	if dio, _ := os.ReadFile("/sys/block/" + base + "/loop/dio"); strings.TrimSpace(string(dio)) != "1" {
		t.Errorf("%s does not do direct I/O (loop/dio = %q)", sw.dev, dio)
	}
	if lbs, _ := os.ReadFile("/sys/block/" + base + "/queue/logical_block_size"); strings.TrimSpace(string(lbs)) != "4096" {
		t.Errorf("%s logical block size %q, want 4096", sw.dev, lbs)
	}
	if a, on := swap.ActiveSwapNamed(sw.dev); !on || a.Priority != 5 {
		t.Errorf("/proc/swaps does not show %s with mkswapfile's priority 5: %s", sw.dev, strings.Join(swapAreas(), "; "))
	}
	status := swapStatus(t, m)
	if len(status.Swap.Files) != 1 || !status.Swap.Files[0].Active || status.Swap.Files[0].Loop != sw.dev || !status.Swap.Files[0].Pinned {
		t.Fatalf("swapfs status does not show the active swapfile: %+v", status.Swap.Files)
	}
	// swapfs swapon gives the loop device the rotational flag of the data volume's
	// storage, as losetup does for a file on a block-device filesystem.
	if vol, loop := checkRotational(t, m, sw.dev, status.Swap.Files[0].VolRota, status.Swap.Files[0].LoopRota); vol != loop {
		t.Errorf("after swapfs swapon, %s says rotational %v; the data volume's storage says %v", sw.dev, loop, vol)
	}

	// Item 5: writes from anything but the loop device, truncate, fallocate, copy_file_range.
	wantWriteRefused(t, f)
	if fd, err := unix.Open(f, unix.O_RDWR|unix.O_DIRECT, 0); err == nil {
		unix.Close(fd)
		t.Error("open O_RDWR|O_DIRECT of an active swapfile succeeded")
	} else {
		wantRefused(t, "open O_DIRECT for writing", err, syscall.ETXTBSY)
	}
	wantRefused(t, "truncate to the same size", os.Truncate(f, testSwapSize), syscall.ETXTBSY)
	wantRefused(t, "truncate to 0", os.Truncate(f, 0), syscall.ETXTBSY)
	// fallocate and copy_file_range into F need a writable fd, which open refuses (above).
	other := filepath.Join(m.Dir, "other")
	if err := os.WriteFile(other, make([]byte, 8192), 0o644); err != nil {
		t.Fatal(err)
	}
	o, err := os.OpenFile(other, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	_, err = unix.CopyFileRange(int(early.Fd()), nil, int(o.Fd()), nil, 4096, 0)
	wantRefused(t, "copy_file_range out of it", err, syscall.ETXTBSY)
	if b, err := unix.Mmap(int(early.Fd()), 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); err == nil {
		unix.Munmap(b)
		t.Error("shared writable mmap of an active swapfile succeeded")
	}

	// Item 6: names stay; metadata and reads work.
	wantRefused(t, "unlink", os.Remove(f), syscall.EPERM)
	wantRefused(t, "rename", os.Rename(f, f+".moved"), syscall.EPERM)
	wantRefused(t, "rename onto", os.Rename(other, f), syscall.EPERM)
	if err := os.Link(f, f+".link"); err != nil {
		t.Errorf("link: %v", err)
	}
	wantRefused(t, "unlink of the second name", os.Remove(f+".link"), syscall.EPERM)
	for what, err := range map[string]error{
		"chmod":  os.Chmod(f, 0o600),
		"chown":  os.Chown(f, 0, 0),
		"utimes": os.Chtimes(f, time.Now(), time.Now()),
	} {
		if err != nil {
			t.Errorf("%s of an active swapfile: %v", what, err)
		}
	}
	head := make([]byte, 4096)
	if _, err := early.ReadAt(head, 0); err != nil || string(head[4086:]) != "SWAPSPACE2" {
		t.Errorf("buffered read of the header: %v", err)
	}
	if fd, err := unix.Open(f, unix.O_RDONLY|unix.O_DIRECT, 0); err != nil {
		t.Errorf("open O_DIRECT for reading: %v", err)
	} else {
		buf := meta.AlignedBuffer(4096)
		if _, err := unix.Pread(fd, buf, 0); err != nil || string(buf[4086:4096]) != "SWAPSPACE2" {
			t.Errorf("O_DIRECT read of the header: %v", err)
		}
		unix.Close(fd)
	}

	// Item 7: no second attachment.
	if r := runCmd(cmdTimeout, nil, "losetup", "--direct-io=on", "-f", "--show", f); r.code == 0 {
		dev := strings.TrimSpace(r.out)
		trackLoop(dev, loopBacking(dev))
		t.Cleanup(func() { releaseSwap(t, dev) })
		t.Errorf("losetup attached the active swapfile a second time (%s)", dev)
	}
	if r := swapfs(m.logDir, "swapon", f); r.code == 0 {
		releaseLoopsOf(t, f)
		t.Errorf("swapfs swapon of an active swapfile succeeded:\n%s", r.out)
	} else if !strings.Contains(r.out, "already active") {
		t.Errorf("swapfs swapon twice: the message does not say why:\n%s", r.out)
	}

	// Item 8: fsync of the file and a flush of the loop device return promptly.
	start := time.Now()
	if err := early.Sync(); err != nil {
		t.Errorf("fsync: %v", err)
	}
	if fd, err := unix.Open(sw.dev, unix.O_RDONLY, 0); err == nil {
		if err := unix.Fsync(fd); err != nil {
			t.Errorf("fsync %s: %v", sw.dev, err)
		}
		unix.Close(fd)
	}
	if d := time.Since(start); d > 10*time.Second { // a metadata commit hung on swap would take far longer
		t.Errorf("fsync of the swapfile and its loop device took %v", d)
	}

	// Item 10: umount is refused while swap is active.
	if err := unix.Unmount(m.Dir, 0); err == nil {
		t.Fatal("umount succeeded under an active swapfile")
	} else if err != unix.EBUSY {
		t.Errorf("umount under an active swapfile: %v, want EBUSY", err)
	}

	if st := swapStatus(t, m); st.Swap.IO.Refused == 0 {
		t.Errorf("status counts no refused operations: %+v", st.Swap.IO)
	}

	// Item 12: after swapoff everything works again and the blocks come back.
	r := swapfs(m.logDir, "swapoff", f)
	if r.err != nil || r.code != 0 {
		t.Fatalf("swapfs swapoff: exit %d %v\n%s", r.code, r.err, r.out)
	}
	if swapActive(sw.dev) || loopBacking(sw.dev) != "" {
		t.Errorf("after swapfs swapoff %s is still active or attached", sw.dev)
	}
	if w, err := os.OpenFile(f, os.O_RDWR, 0); err != nil {
		t.Errorf("open for writing after swapoff: %v", err)
	} else {
		if _, err := w.WriteAt([]byte("x"), 8192); err != nil {
			t.Errorf("write after swapoff: %v", err)
		}
		for _, mode := range []uint32{unix.FALLOC_FL_KEEP_SIZE, unix.FALLOC_FL_PUNCH_HOLE | unix.FALLOC_FL_KEEP_SIZE} {
			if err := unix.Fallocate(int(w.Fd()), mode, 0, 4096); err != nil {
				t.Errorf("fallocate mode %d after swapoff: %v", mode, err)
			}
		}
		w.Close()
	}
	early.Close()
	for _, p := range []string{f + ".link", f} {
		if err := os.Remove(p); err != nil {
			t.Errorf("remove %s after swapoff: %v", p, err)
		}
	}
	o.Close()
	if err := os.Remove(other); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the swapfile's blocks come back", func() bool { return freeBlocks(t, m.Dir) >= freeBefore })
}

func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			t.Errorf("%s: not after %v", what, d)
			return
		}
	}
}

// TestSwapfilePlainRecipe: fallocate + chmod + mkswap, then losetup --direct-io=on and
// swapon(8): swapfs pins the file and enforces the same rules (items 1, 5, 6, 13).
func TestSwapfilePlainRecipe(t *testing.T) {
	requireSwapTools(t)
	m := mountStore(t)
	f := filepath.Join(m.Dir, "swap.img")
	mustRun(t, "fallocate", "-l", "64M", f)
	mustRun(t, "chmod", "600", f)
	mustRun(t, "mkswap", f)
	st := swapStatus(t, m)
	if len(st.Swap.Files) != 1 || !st.Swap.Files[0].Pinned || st.Swap.Files[0].Path != "/swap.img" {
		t.Fatalf("mkswap did not pin the file: %+v", st.Swap.Files)
	}
	extents := st.Swap.Files[0].Extents
	sw := swaponRecipe(t, f, 0) // losetup's default 512-byte sectors
	if err := os.Truncate(f, 0); errnoOf(err) != syscall.ETXTBSY {
		t.Errorf("truncate under the plain recipe: %v, want ETXTBSY", err)
	}
	if err := os.Remove(f); errnoOf(err) != syscall.EPERM {
		t.Errorf("unlink under the plain recipe: %v, want EPERM", err)
	}
	st = swapStatus(t, m)
	if len(st.Swap.Files) != 1 || !st.Swap.Files[0].Active || st.Swap.Files[0].Loop != sw.dev {
		t.Fatalf("status does not see the plain recipe's loop device as active: %+v", st.Swap.Files)
	}
	// losetup cannot see the data volume's disk through FUSE, so its device says
	// non-rotational; status says so when the volume is on rotational storage.
	volRota, loopRota := checkRotational(t, m, sw.dev, st.Swap.Files[0].VolRota, st.Swap.Files[0].LoopRota)
	note := "note: " + sw.dev + " says rotational="
	if human := swapfs(m.logDir, "status", m.Dir).out; strings.Contains(human, note) != (volRota != loopRota) {
		t.Errorf("loop rotational %v, volume rotational %v; swapfs status says:\n%s", loopRota, volRota, human)
	}
	releaseSwap(t, sw.dev)
	// Item 13: across a remount the file stays a swapfile with the same map.
	m.Unmount()
	m2 := mountStore(t, withStore(m.Store))
	st = swapStatus(t, m2)
	if len(st.Swap.Files) != 1 || !st.Swap.Files[0].Pinned || st.Swap.Files[0].Extents != extents {
		t.Errorf("after remount: %+v, want the file pinned with %d extents", st.Swap.Files, extents)
	}
}

// TestSwapfileActiveThroughBindMount: items 5 and 6 when the loop device was attached through
// a bind mount of the swapfs mount (as a container sees it): the kernel shows the backing
// file under the bind mount's path, and swapfs must still know the file is active swap.
func TestSwapfileActiveThroughBindMount(t *testing.T) {
	requireSwapTools(t)
	m := mountStore(t)
	f := filepath.Join(m.Dir, "swapfile")
	mkswapfile(t, m, f, "--size", "16M")
	bind := t.TempDir()
	if err := unix.Mount(m.Dir, bind, "", unix.MS_BIND, ""); err != nil {
		t.Fatalf("bind mount %s on %s: %v", m.Dir, bind, err)
	}
	trackMount(bind)
	t.Cleanup(func() {
		if err := unix.Unmount(bind, 0); err != nil {
			t.Errorf("unmount the bind mount %s: %v", bind, err)
		}
	})
	sw := swaponRecipe(t, filepath.Join(bind, "swapfile"), 4096)
	if !strings.HasPrefix(loopBacking(sw.dev), bind+"/") {
		t.Fatalf("%s's backing file is %q, not under the bind mount %s", sw.dev, loopBacking(sw.dev), bind)
	}
	wantChangesRefused(t, f)
	st := swapStatus(t, m)
	if len(st.Swap.Files) != 1 || !st.Swap.Files[0].Active || st.Swap.Files[0].Loop != sw.dev {
		t.Errorf("status does not show the file active on %s: %+v", sw.dev, st.Swap.Files)
	}
	if r := swapfs(m.logDir, "swapoff", f); r.code != 0 || swapActive(sw.dev) || loopBacking(sw.dev) != "" {
		t.Errorf("swapfs swapoff by the mount's own path: exit %d, %s still swap %v, attached to %q\n%s",
			r.code, sw.dev, swapActive(sw.dev), loopBacking(sw.dev), r.out)
	}
}

// TestSwapfileActiveThroughStackedLoop: swap on a block device stacked on the swapfile's
// loop device (here another loop device; dm-crypt is the same in sysfs, as a slave) makes
// the file active swap: changes are refused as for swap on its own loop device, status
// shows it, and swapfs swapoff takes the stack down.
func TestSwapfileActiveThroughStackedLoop(t *testing.T) {
	requireSwapTools(t)
	m := mountStore(t)
	f := filepath.Join(m.Dir, "swapfile")
	mkswapfile(t, m, f, "--size", "16M")
	inner := losetup(t, f, "--direct-io=on", "--sector-size", "4096")
	outer := losetup(t, inner)
	if r := runCmd(cmdTimeout, nil, "swapon", outer); r.err != nil || r.code != 0 {
		t.Fatalf("swapon %s (over %s over %s): exit %d %v\n%s", outer, inner, f, r.code, r.err, r.out)
	}
	wantChangesRefused(t, f)
	st := swapStatus(t, m)
	if len(st.Swap.Files) != 1 || !st.Swap.Files[0].Active || st.Swap.Files[0].Loop != outer {
		t.Errorf("status does not show the file active on %s: %+v", outer, st.Swap.Files)
	}
	if r := swapfs(m.logDir, "swapoff", f); r.code != 0 || swapActive(outer) || loopBacking(outer) != "" || loopBacking(inner) != "" {
		t.Errorf("swapfs swapoff: exit %d, %s still swap %v, %s attached to %q, %s to %q\n%s",
			r.code, outer, swapActive(outer), outer, loopBacking(outer), inner, loopBacking(inner), r.out)
	}
	if err := os.Truncate(f, 0); err != nil {
		t.Errorf("truncate after swapoff: %v", err)
	}
}

// TestSwapfileActiveThroughDeviceMapper: as through a stacked loop device, with a
// device-mapper target on the loop device (linear, which leaves the header readable, as
// dm-crypt would not), found through sysfs slaves/. swapfs swapoff turns the swap off and
// says that the device-mapper device must go before the loop device can.
func TestSwapfileActiveThroughDeviceMapper(t *testing.T) {
	requireSwapTools(t)
	if _, err := os.Stat("/dev/mapper/control"); err != nil {
		t.Skipf("skipped: this kernel has no device-mapper (/dev/mapper/control: %v)", err)
	}
	if _, err := exec.LookPath("dmsetup"); err != nil {
		t.Skip("skipped: dmsetup is not installed")
	}
	m := mountStore(t)
	f := filepath.Join(m.Dir, "swapfile")
	mkswapfile(t, m, f, "--size", "16M")
	inner := losetup(t, f, "--direct-io=on", "--sector-size", "4096")
	name := fmt.Sprintf("swapfs-test-%d", os.Getpid())
	mustRun(t, "dmsetup", "create", name, "--table", fmt.Sprintf("0 %d linear %s 0", (16<<20)/512, inner))
	node, err := filepath.EvalSymlinks("/dev/mapper/" + name) // /proc/swaps names /dev/dm-N
	if err != nil {
		runCmd(cmdTimeout, nil, "dmsetup", "remove", "--retry", name)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if swapActive(node) {
			if r := runCmd(swapoffTimeout, nil, "swapoff", node); r.code != 0 {
				t.Errorf("swapoff %s: exit %d %v\n%s", node, r.code, r.err, r.out)
			}
		}
		if _, err := os.Stat("/dev/mapper/" + name); err == nil {
			if r := runCmd(cmdTimeout, nil, "dmsetup", "remove", "--retry", name); r.code != 0 {
				t.Errorf("dmsetup remove %s: exit %d %v\n%s", name, r.code, r.err, r.out)
			}
		}
	})
	if r := runCmd(cmdTimeout, nil, "swapon", node); r.err != nil || r.code != 0 {
		t.Fatalf("swapon %s (over %s over %s): exit %d %v\n%s", node, inner, f, r.code, r.err, r.out)
	}
	wantChangesRefused(t, f)
	r := swapfs(m.logDir, "swapoff", f)
	if r.code == 0 || swapActive(node) || loopBacking(inner) == "" || !strings.Contains(r.out, "dmsetup remove") {
		t.Errorf("swapfs swapoff with %s on %s: exit %d, still swap %v, %s attached to %q; want swap off, the loop "+
			"device attached and what to remove said\n%s", node, inner, r.code, swapActive(node), inner, loopBacking(inner), r.out)
	}
	mustRun(t, "dmsetup", "remove", "--retry", name)
	if r := swapfs(m.logDir, "swapoff", f); r.code != 0 || loopBacking(inner) != "" {
		t.Errorf("swapfs swapoff once %s is gone: exit %d, %s attached to %q\n%s", node, r.code, inner, loopBacking(inner), r.out)
	}
}

// losetup attaches a loop device to backing with losetup(8) and args, and detaches it (after
// a swapoff if need be) when t ends.
func losetup(t testing.TB, backing string, args ...string) string {
	t.Helper()
	r := runCmd(cmdTimeout, nil, "losetup", append(append(args, "-f", "--show"), backing)...)
	dev := strings.TrimSpace(r.out)
	if r.err != nil || r.code != 0 || !strings.HasPrefix(dev, "/dev/loop") {
		t.Fatalf("losetup %s: exit %d %v\n%s", backing, r.code, r.err, r.out)
	}
	trackLoop(dev, loopBacking(dev))
	t.Cleanup(func() { releaseSwap(t, dev) })
	return dev
}

// TestMkswapfileENOSPC: item 15: a swapfile larger than the free space fails cleanly.
func TestMkswapfileENOSPC(t *testing.T) {
	requireEnv(t)
	store := filepath.Join(t.TempDir(), "store")
	mkfs(t, store, "--size", "32M")
	m := mountStore(t, withStore(store))
	before := freeBlocks(t, m.Dir)
	f := filepath.Join(m.Dir, "big")
	r := swapfs(m.logDir, "mkswapfile", "--size", "64M", f)
	if r.code == 0 {
		t.Fatalf("mkswapfile of 64 MiB on a 32 MiB volume succeeded:\n%s", r.out)
	}
	if !strings.Contains(r.out, "space") {
		t.Errorf("the message does not say it is about space:\n%s", r.out)
	}
	if _, err := os.Lstat(f); !os.IsNotExist(err) {
		t.Errorf("mkswapfile left %s behind: %v", f, err)
	}
	if after := freeBlocks(t, m.Dir); after != before {
		t.Errorf("free blocks %d -> %d after a failed mkswapfile", before, after)
	}
}

// TestMkswapfileInterrupted: item 15 for Ctrl-C: mkswapfile stopped by SIGINT while it
// writes the file removes it, and every block comes back.
func TestMkswapfileInterrupted(t *testing.T) {
	requireEnv(t)
	m := mountStore(t)
	before := freeBlocks(t, m.Dir)
	f := filepath.Join(m.Dir, "big")
	cmd := exec.Command(swapfsBin, "mkswapfile", "--size", "1G", f)
	cmd.Env = append(os.Environ(), "SWAPFS_LOG_DIR="+m.logDir)
	out, exited := startCommand(t, cmd)
	// The file appears once the signal handler is in; writing 1 GiB takes far longer than
	// this poll.
	for deadline := time.Now().Add(cmdTimeout); ; time.Sleep(time.Millisecond) {
		if _, err := os.Lstat(f); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("mkswapfile never created %s:\n%s", f, out.String())
		}
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err == nil {
			t.Fatalf("mkswapfile finished in spite of SIGINT (too fast for this test?):\n%s", out.String())
		}
	case <-time.After(cmdTimeout):
		cmd.Process.Kill()
		t.Fatalf("mkswapfile did not stop after SIGINT:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "interrupted") {
		t.Errorf("mkswapfile does not say it was interrupted:\n%s", out.String())
	}
	if _, err := os.Lstat(f); !os.IsNotExist(err) {
		t.Errorf("the interrupted mkswapfile left %s behind: %v", f, err)
	}
	eventually(t, 10*time.Second, "the blocks come back", func() bool { return freeBlocks(t, m.Dir) == before })
}

// TestSwaponInterrupted: "swapfs swapon" stopped by SIGINT at any moment leaves either an
// active swap area or nothing: never a loop device attached to the file and not swap, which
// would hold the file's one writer and make the next swapon fail.
func TestSwaponInterrupted(t *testing.T) {
	requireSwapTools(t)
	m := mountStore(t)
	f := filepath.Join(m.Dir, "swapfile")
	mkswapfile(t, m, f, "--size", "16M")
	var st unix.Stat_t
	if err := unix.Stat(f, &st); err != nil {
		t.Fatal(err)
	}
	outcomes := map[string]int{}
	for i := 0; i < 24; i++ {
		cmd := exec.Command(swapfsBin, "swapon", f)
		cmd.Env = append(os.Environ(), "SWAPFS_LOG_DIR="+m.logDir)
		_, exited := startCommand(t, cmd)
		// Spread over the command's life (a few milliseconds), so that some land between
		// the attach and swapon.
		time.Sleep(time.Duration(i%12) * time.Millisecond / 2)
		cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(cmdTimeout):
			cmd.Process.Kill()
			releaseLoopsOf(t, f)
			t.Fatal("swapfs swapon did not stop after SIGINT")
		}
		loops, err := swap.LoopsBacking(st.Dev, st.Ino)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case len(loops) == 0:
			outcomes["nothing attached"]++
		case len(loops) == 1 && swapActive(loops[0].Device):
			outcomes["active swap"]++
			releaseSwap(t, loops[0].Device)
		default:
			for _, l := range loops {
				trackLoop(l.Device, loopBacking(l.Device))
				releaseSwap(t, l.Device)
			}
			t.Fatalf("after SIGINT %d: loop devices %+v attached to the file and not swap", i, loops)
		}
	}
	t.Logf("outcomes: %v", outcomes)
}

// TestSwaponRefusesNonSwapfile: item 4 from the command line: a file without a valid header
// is not attached, and the message says what is wrong.
func TestSwaponRefusesNonSwapfile(t *testing.T) {
	requireSwapTools(t)
	m := mountStore(t)
	f := filepath.Join(m.Dir, "plain")
	if err := os.WriteFile(f, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := swaponRefused(t, m, f, "a file without a swap header"); !strings.Contains(out, "signature") {
		t.Errorf("the refusal does not say what is wrong:\n%s", out)
	}
	var st unix.Stat_t
	if err := unix.Stat(f, &st); err != nil {
		t.Fatal(err)
	}
	if loops, err := swap.LoopsBacking(st.Dev, st.Ino); err != nil || len(loops) != 0 {
		t.Errorf("the refused swapon left loop devices on the file: %+v %v", loops, err)
	}
}

// TestSwapMountOption: swap=PATH:PRIO brings the swapfile up with the mount, as one fstab
// line does at boot.
func TestSwapMountOption(t *testing.T) {
	requireSwapTools(t)
	m := mountStore(t)
	mkswapfile(t, m, filepath.Join(m.Dir, "sw"), "--size", "32M")
	if err := os.Mkdir(filepath.Join(m.Dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	mkswapfile(t, m, filepath.Join(m.Dir, "d", "sw2"), "--size", "16M")
	m.Unmount()

	m2 := mountStore(t, withStore(m.Store), withOptions("swap=sw:7,swap=d/sw2"))
	st := swapStatus(t, m2)
	for _, f := range st.Swap.Files {
		if f.Loop != "" {
			dev := f.Loop
			trackLoop(dev, loopBacking(dev))
			t.Cleanup(func() { releaseSwap(t, dev) })
		}
	}
	if len(st.Swap.Files) != 2 {
		t.Fatalf("status after mount with swap=: %+v", st.Swap.Files)
	}
	for _, f := range st.Swap.Files {
		if !f.Active {
			t.Errorf("%s is not active after the mount: %+v; swap areas: %s", f.Path, f, strings.Join(swapAreas(), "; "))
		}
		if a, on := swap.ActiveSwapNamed(f.Loop); f.Path == "/sw" && (!on || a.Priority != 7) {
			t.Errorf("/sw is not active with priority 7: %s", strings.Join(swapAreas(), "; "))
		}
	}
}

// TestSwapDaemonKilled: item 14. The daemon dies (SIGKILL) while a process has pages in its
// swapfile: swapping those pages in fails loudly (the process is killed or reports the
// error; it never goes on with wrong data), and after cleanup a fresh mount finds the
// swapfile and the rest of the filesystem intact, fsck clean.
func TestSwapDaemonKilled(t *testing.T) {
	requireSwapTools(t)
	requireMemCgroup(t)
	m := mountStore(t)
	keep := filepath.Join(m.Dir, "keep")
	keepData := []byte(strings.Repeat("intact ", 10000))
	if err := os.WriteFile(keep, keepData, 0o644); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(m.Dir, "swapfile")
	mkswapfile(t, m, f, "--size", "256M")
	sw := swaponSwapfs(t, m, f, "-p", strconv.Itoa(testSwapPriority(t)))
	mapBefore := swapStatus(t, m).Swap.Files[0].Extents
	// A second, healthy mount with active swap: a dead mount's loop device must not
	// stop anyone from managing their own swapfiles.
	other := mountStore(t)
	otherFile := filepath.Join(other.Dir, "swapfile")
	mkswapfile(t, other, otherFile, "--size", "16M")
	otherSw := swaponSwapfs(t, other, otherFile, "-p", "-5")

	bin := buildSwapload(t)
	cg := newMemCgroup(t, 64<<20)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := cg.Command(ctx, bin, "-size", "192", "-rounds", "1000", "-timeout", "2m")
	out, done := startCommand(t, cmd)
	// Wait until the workload has pages in the swapfile.
	deadline := time.Now().Add(time.Minute)
	for {
		if a, _ := swap.ActiveSwapNamed(sw.dev); a.UsedKiB<<10 >= 32<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the workload put nothing in %s within a minute:\n%s", sw.dev, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := syscall.Kill(m.pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("the workload ended well although its swap died under it:\n%s", out.String())
		} else {
			t.Logf("the workload failed loudly, as it must: %v\n%s", err, tail(out.String(), 8))
		}
		if strings.Contains(out.String(), `"mismatches":`) && !strings.Contains(out.String(), `"mismatches":0`) {
			t.Errorf("the workload read wrong data instead of failing:\n%s", out.String())
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("the workload neither finished nor failed within 2 minutes of the daemon's death (hung)")
	}

	// Once the kernel's cached attributes expire, the dead mount's loop device answers
	// LOOP_GET_STATUS64 with ENOTCONN.
	var dead swap.LoopInfo
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		loops, err := swap.Loops()
		if err != nil {
			t.Fatalf("listing loop devices beside one over a dead mount: %v", err)
		}
		dead = swap.LoopInfo{}
		for _, l := range loops {
			if l.Device == sw.dev {
				dead = l
			}
		}
		if errors.Is(dead.Err, syscall.ENOTCONN) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("loop device %s over the dead mount listed as %+v for 10 s; want Err ENOTCONN", sw.dev, dead)
		}
	}
	if dead.BackingFile != f || !dead.DirectIO {
		t.Errorf("loop device over the dead mount listed as %+v; want its backing file %s (from sysfs) and dio", dead, f)
	}
	if r := swapfs(other.logDir, "swapoff", otherFile); r.code != 0 || swapActive(otherSw.dev) {
		t.Errorf("swapfs swapoff on a healthy mount beside a dead one: exit %d %v\n%s", r.code, r.err, r.out)
	}

	// Cleanup as an administrator would: swap off, detach, unmount the dead mount.
	releaseSwap(t, sw.dev)
	if err := unmountDir(m.Dir); err != nil {
		t.Fatalf("unmount the dead mount: %v", err)
	}
	m.unmounted = true
	requireClean(t, m.Store)

	m2 := mountStore(t, withStore(m.Store))
	if got, err := os.ReadFile(filepath.Join(m2.Dir, "keep")); err != nil || string(got) != string(keepData) {
		t.Errorf("after the crash the other file reads %d bytes, %v", len(got), err)
	}
	st := swapStatus(t, m2)
	if len(st.Swap.Files) != 1 || !st.Swap.Files[0].Pinned || st.Swap.Files[0].Extents != mapBefore {
		t.Errorf("after the crash the swapfile is %+v; want it pinned with %d extents", st.Swap.Files, mapBefore)
	}
	sw2 := swaponSwapfs(t, m2, filepath.Join(m2.Dir, "swapfile"))
	releaseSwap(t, sw2.dev)
}

// TestSwapDiscardKeepsBlocks: item 9. Discards through the loop device (blkdiscard before
// swapon, swapon --discard) never unmap the swapfile's blocks: st_blocks and the pinned map
// stay as they were.
func TestSwapDiscardKeepsBlocks(t *testing.T) {
	requireSwapTools(t)
	if _, err := exec.LookPath("blkdiscard"); err != nil {
		t.Skip("blkdiscard (util-linux) is not installed")
	}
	m := mountStore(t)
	f := filepath.Join(m.Dir, "swapfile")
	mkswapfile(t, m, f, "--size", "32M")
	var before unix.Stat_t
	if err := unix.Stat(f, &before); err != nil {
		t.Fatal(err)
	}
	extents := swapStatus(t, m).Swap.Files[0].Extents

	r := runCmd(cmdTimeout, nil, "losetup", "--direct-io=on", "--sector-size", "4096", "-f", "--show", f)
	dev := strings.TrimSpace(r.out)
	if r.code != 0 || !strings.HasPrefix(dev, "/dev/loop") {
		t.Fatalf("losetup: exit %d %v\n%s", r.code, r.err, r.out)
	}
	trackLoop(dev, loopBacking(dev))
	t.Cleanup(func() { releaseSwap(t, dev) })
	if max, _ := os.ReadFile("/sys/block/" + filepath.Base(dev) + "/queue/discard_max_bytes"); strings.TrimSpace(string(max)) == "0" {
		t.Skipf("%s does not pass discards on (discard_max_bytes 0): nothing to test", dev)
	}
	mustRun(t, "blkdiscard", dev)
	// The discard zeroed the header with everything else; a new one goes through the loop
	// device, as mkswap on the device does it.
	mustRun(t, "mkswap", dev)
	mustRun(t, "swapon", "--discard", dev)
	mustRun(t, "swapoff", dev)
	var after unix.Stat_t
	if err := unix.Stat(f, &after); err != nil {
		t.Fatal(err)
	}
	st := swapStatus(t, m)
	if after.Blocks != before.Blocks || after.Size != before.Size || len(st.Swap.Files) != 1 || st.Swap.Files[0].Extents != extents || !st.Swap.Files[0].Pinned {
		t.Errorf("after discards: blocks %d -> %d, size %d -> %d, status %+v; want all as before (%d extents, pinned)",
			before.Blocks, after.Blocks, before.Size, after.Size, st.Swap.Files, extents)
	}
}

// TestSwapUsableSizeIsHeaders: item 3. A swapfile grown after mkswap swaps only what its
// header says, and a size that is not a page multiple works.
func TestSwapUsableSizeIsHeaders(t *testing.T) {
	requireSwapTools(t)
	m := mountStore(t)
	f := filepath.Join(m.Dir, "swapfile")
	mustRun(t, "fallocate", "-l", "16M", f)
	mustRun(t, "chmod", "600", f)
	mustRun(t, "mkswap", f)
	// Grow it by a page and a half: the header still says 16 MiB.
	fh, err := os.OpenFile(f, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.Write(make([]byte, 6144)); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	sw := swaponSwapfs(t, m, f)
	st := swapStatus(t, m)
	if len(st.Swap.Files) != 1 || !st.Swap.Files[0].Active || st.Swap.Files[0].Usable != 16<<20 {
		t.Errorf("status %+v: want it active with 16 MiB usable", st.Swap.Files)
	}
	if a, on := swap.ActiveSwapNamed(sw.dev); !on || a.SizeKiB != 16<<10-4 {
		t.Errorf("the kernel swaps %d KiB of %s (on: %v), want %d (the header's pages less the header)", a.SizeKiB, sw.dev, on, 16<<10-4)
	}
}

// TestSwapfileSingleAttach: item 7 before activation: a pinned swapfile takes one loop
// device. A second losetup (two swap areas on the same blocks) is refused even while the
// first is not yet swap.
func TestSwapfileSingleAttach(t *testing.T) {
	requireSwapTools(t)
	m := mountStore(t)
	f := filepath.Join(m.Dir, "swapfile")
	mkswapfile(t, m, f, "--size", "16M")
	first := strings.TrimSpace(mustRun(t, "losetup", "--direct-io=on", "-f", "--show", f))
	trackLoop(first, loopBacking(first))
	t.Cleanup(func() { releaseSwap(t, first) })
	r := runCmd(cmdTimeout, nil, "losetup", "--direct-io=on", "-f", "--show", f)
	if r.code == 0 {
		dev := strings.TrimSpace(r.out)
		trackLoop(dev, loopBacking(dev))
		t.Cleanup(func() { releaseSwap(t, dev) })
		t.Fatalf("a second losetup of a pinned swapfile succeeded (%s and %s)", first, dev)
	}
	if rs := swapfs(m.logDir, "swapon", f); rs.code == 0 {
		releaseLoopsOf(t, f)
		t.Errorf("swapfs swapon of a swapfile attached to %s succeeded:\n%s", first, rs.out)
	}
	releaseSwap(t, first)
	// Detached: it can be attached again.
	sw := swaponSwapfs(t, m, f)
	releaseSwap(t, sw.dev)
}

// TestSwapfileSharedMappingFromBefore: a handle opened for writing before the file became a
// swapfile keeps its page cache, so a shared writable mapping of it is possible, and its
// writeback would reach swapfs on nobody's behalf. Such a handle keeps the file from being
// attached to a loop device at all, so the mapping can never write into active swap.
func TestSwapfileSharedMappingFromBefore(t *testing.T) {
	requireSwapTools(t)
	m := mountStore(t)
	f := filepath.Join(m.Dir, "swapfile")
	mustRun(t, "fallocate", "-l", "16M", f)
	mustRun(t, "chmod", "600", f)
	early, err := os.OpenFile(f, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer early.Close()
	w, err := unix.Mmap(int(early.Fd()), 0, 8192, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatalf("shared writable mapping of an ordinary file: %v", err)
	}
	mustRun(t, "mkswap", f)
	r := runCmd(cmdTimeout, nil, "losetup", "--direct-io=on", "-f", "--show", f)
	if r.code == 0 {
		dev := strings.TrimSpace(r.out)
		trackLoop(dev, loopBacking(dev))
		t.Cleanup(func() { releaseSwap(t, dev) })
		t.Fatalf("losetup attached a swapfile that has a writable shared mapping (%s)", dev)
	}
	unix.Munmap(w)
	early.Close()
	sw := swaponRecipe(t, f, 4096)
	releaseSwap(t, sw.dev)
}

// TestSwapfileWithHoles: item 2 for the sparsest recipe, "truncate -s; mkswap", which leaves
// every block but the header's a hole: pinning allocates and writes them all, the file then
// works as swap through the plain recipe, and the store is consistent afterwards.
func TestSwapfileWithHoles(t *testing.T) {
	requireSwapTools(t)
	m := mountStore(t)
	f := filepath.Join(m.Dir, "sparse.swap")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(f, testSwapSize); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(f, &st); err != nil || st.Blocks != 0 {
		t.Fatalf("before mkswap: %d blocks (%v); want a file of holes", st.Blocks, err)
	}
	mustRun(t, "mkswap", f)
	if err := unix.Stat(f, &st); err != nil || st.Blocks != testSwapSize/512 {
		t.Errorf("after mkswap: %d blocks (%v); want every block allocated, %d", st.Blocks, err, testSwapSize/512)
	}
	status := swapStatus(t, m)
	if len(status.Swap.Files) != 1 || !status.Swap.Files[0].Pinned {
		t.Fatalf("mkswap over holes did not pin the file: %+v", status.Swap.Files)
	}
	// The holes read as zeros, as before, and the header is mkswap's.
	data, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	if string(data[swap.PageSize-10:swap.PageSize]) != "SWAPSPACE2" || strings.Trim(string(data[swap.PageSize:]), "\x00") != "" {
		t.Error("after pinning, the file is not mkswap's header followed by zeros")
	}
	sw := swaponRecipe(t, f, 4096)
	if !swapActive(sw.dev) {
		t.Fatalf("%s is not active", sw.dev)
	}
	releaseSwap(t, sw.dev)
	m.Unmount()
	requireClean(t, m.Store)
}

// TestSwapTruncatedHeader: a swap header cut short (a copy that stopped inside the first
// page) is refused with a message that says so, pins nothing and changes nothing.
func TestSwapTruncatedHeader(t *testing.T) {
	requireSwapTools(t)
	m := mountStore(t)
	whole := filepath.Join(m.Dir, "whole.swap")
	mkswapfile(t, m, whole, "--size", "16M")
	header, err := os.ReadFile(whole)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(m.Dir, "cut.swap")
	if err := os.WriteFile(cut, header[:2000], 0o600); err != nil {
		t.Fatal(err)
	}
	if out := swaponRefused(t, m, cut, "a truncated header"); !strings.Contains(out, "shorter than") {
		t.Errorf("the refusal does not say the header is cut short:\n%s", out)
	}
	for _, fs := range swapStatus(t, m).Swap.Files {
		if fs.Path == "/cut.swap" {
			t.Errorf("the truncated header was pinned: %+v", fs)
		}
	}
	if got, err := os.ReadFile(cut); err != nil || string(got) != string(header[:2000]) {
		t.Errorf("the refused file changed: %d bytes, %v", len(got), err)
	}
	m.Unmount()
	requireClean(t, m.Store)
}
