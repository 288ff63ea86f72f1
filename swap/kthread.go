package swap

import (
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// pfKthread is PF_KTHREAD in include/linux/sched.h: the task is a kernel thread.
const pfKthread = 0x00200000

// kthreadTTL bounds how long a pid stays known as a kernel thread. Pids are recycled, and a
// user process that got the pid of a dead kworker must not pass as the loop driver; the
// kernel hands out pids in increasing order, so reuse within a second needs a full wrap.
const kthreadTTL = time.Second

// maxKnownKthreads is the size at which expired entries are dropped.
const maxKnownKthreads = 256

// KernelThreads tells requests made by kernel threads from those made by processes. The loop
// driver submits its direct I/O from its workers, which are kernel threads; nothing else
// reaches a swapfile from a kernel thread (swapfs does not negotiate a writeback cache, and
// a swapfile's shared mappings are refused), so on an active swapfile "from a kernel thread"
// means "from its loop device".
type KernelThreads struct {
	mu    sync.RWMutex
	known map[uint32]int64 // pid -> unix nanoseconds until which it is known as a kthread
}

// Is reports whether pid is a kernel thread. Pid 0 is not: FUSE sends it for requests made
// on nobody's behalf (the writeback of a shared mapping) and for callers outside the
// daemon's pid namespace, and neither is the loop driver. After a pid has been seen once,
// the answer costs a map lookup; it never allocates once the pid is known.
func (k *KernelThreads) Is(pid uint32) bool {
	if pid == 0 {
		return false
	}
	now := time.Now().UnixNano()
	k.mu.RLock()
	until, ok := k.known[pid]
	k.mu.RUnlock()
	if ok && now < until {
		return true
	}
	if !isKthread(pid) {
		return false
	}
	k.mu.Lock()
	if k.known == nil {
		k.known = make(map[uint32]int64)
	}
	if len(k.known) >= maxKnownKthreads {
		// kworkers come and go: drop the expired, so the map stays small.
		for p, until := range k.known {
			if until <= now {
				delete(k.known, p)
			}
		}
	}
	k.known[pid] = now + int64(kthreadTTL)
	k.mu.Unlock()
	return true
}

// isKthread reads the flags field of /proc/PID/stat without allocating: the path and the
// contents live on the stack.
func isKthread(pid uint32) bool {
	var path [32]byte
	n := copy(path[:], "/proc/")
	n += putUint(path[n:], uint64(pid))
	n += copy(path[n:], "/stat\x00")
	atFdcwd := unix.AT_FDCWD
	fd, _, errno := unix.Syscall6(unix.SYS_OPENAT, uintptr(atFdcwd), uintptr(unsafe.Pointer(&path[0])),
		uintptr(unix.O_RDONLY|unix.O_CLOEXEC), 0, 0, 0)
	if errno != 0 {
		return false // gone already: a process that exited is not the loop driver
	}
	var buf [512]byte
	r, err := unix.Read(int(fd), buf[:])
	unix.Close(int(fd))
	if err != nil || r <= 0 {
		return false
	}
	flags, ok := statFlags(buf[:r])
	return ok && flags&pfKthread != 0
}

// statFlags returns field 9 (flags) of a /proc/PID/stat line. The command name, field 2,
// may hold spaces and parentheses, so fields are counted from the last ')'.
func statFlags(stat []byte) (uint64, bool) {
	i := len(stat) - 1
	for i >= 0 && stat[i] != ')' {
		i--
	}
	if i < 0 {
		return 0, false
	}
	field := 2
	for i++; i < len(stat); i++ {
		if stat[i] != ' ' {
			continue
		}
		field++
		if field == 9 {
			var v uint64
			j := i + 1
			for ; j < len(stat) && stat[j] >= '0' && stat[j] <= '9'; j++ {
				v = v*10 + uint64(stat[j]-'0')
			}
			return v, j > i+1
		}
	}
	return 0, false
}

func putUint(b []byte, v uint64) int {
	var tmp [20]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = byte('0' + v%10)
		if v /= 10; v == 0 {
			break
		}
	}
	return copy(b, tmp[i:])
}
