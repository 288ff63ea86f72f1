package meta

import "sync"

// inodeLocks serialises data operations on one file: reads share, writes, truncates and
// fallocates exclude. Entries live only while someone holds them.
type inodeLocks struct {
	mu sync.Mutex
	m  map[uint64]*inodeLock
}

type inodeLock struct {
	sync.RWMutex
	refs int
}

func (l *inodeLocks) get(ino uint64) *inodeLock {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = make(map[uint64]*inodeLock)
	}
	il := l.m[ino]
	if il == nil {
		il = &inodeLock{}
		l.m[ino] = il
	}
	il.refs++
	return il
}

func (l *inodeLocks) put(ino uint64, il *inodeLock) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if il.refs--; il.refs == 0 {
		delete(l.m, ino)
	}
}

// lockInode takes ino's lock, shared or exclusive; the caller calls unlockInode with the
// same arguments.
func (l *inodeLocks) lock(ino uint64, exclusive bool) *inodeLock {
	il := l.get(ino)
	if exclusive {
		il.Lock()
	} else {
		il.RLock()
	}
	return il
}

func (l *inodeLocks) unlock(ino uint64, il *inodeLock, exclusive bool) {
	if exclusive {
		il.Unlock()
	} else {
		il.RUnlock()
	}
	l.put(ino, il)
}
