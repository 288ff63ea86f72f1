package meta

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Store is an open swapfs store: the metadata database and the data volume.
//
// Every metadata change goes into one long-lived bbolt write transaction, the group, which is
// committed every CommitInterval, on Sync, when it grows large, and on Close. So a write(2)
// costs no fsync, and a crash loses at most the changes since the last commit.
type Store struct {
	dir      string
	db       *bolt.DB
	vol      *volume
	log      *slog.Logger
	uuid     []byte
	readOnly bool
	interval time.Duration

	// gate orders data against metadata: a data write holds it shared from the moment it
	// maps blocks until its bytes are on the volume; a commit holds it exclusively, so the
	// metadata it commits never points at blocks whose data is still in flight.
	gate sync.RWMutex

	mu sync.Mutex // guards everything below
	tx *bolt.Tx   // the open group; nil when read-only or closed
	// pendingFree holds blocks freed by the group. They go back to free space only as the
	// group commits, so no block is handed out again while a crash could still resurrect
	// the file that owned it.
	pendingFree []run
	pendingOps  int
	dataDirty   bool  // data written since the last volume fdatasync
	failed      error // set when a commit or a data write failed: the store is read-only since

	locks inodeLocks

	stop chan struct{}
	done chan struct{}
}

// ErrInUse is returned by Open and Fsck when another process (a mount, an fsck) holds the
// store's lock.
var ErrInUse = errors.New("the store is in use by another swapfs (already mounted?)")

// maxGroupOps bounds the memory a group can hold before it is committed early.
const maxGroupOps = 20000

// Mkfs creates a new store in dir (created if missing). It refuses a directory that already
// holds a meta.db, and removes what it created if it fails.
func Mkfs(dir string, opts MkfsOptions) (err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("mkfs: create store directory: %w", err)
	}
	dbPath := filepath.Join(dir, "meta.db")
	if _, err := os.Stat(dbPath); err == nil {
		return fmt.Errorf("mkfs: %s already holds a swapfs store (meta.db exists); refusing to overwrite it", dir)
	}
	vol, volPath, err := createVolume(dir, opts)
	if err != nil {
		return err
	}
	defer vol.Close()
	defer func() {
		if err != nil {
			os.Remove(dbPath)
			if opts.Device == "" {
				os.Remove(volPath)
			}
		}
	}()
	size, err := volumeSize(vol)
	if err != nil {
		return fmt.Errorf("mkfs: size of %s: %w", volPath, err)
	}
	blocks := uint64(size) / BlockSize
	if blocks < minVolumeBlocks {
		return fmt.Errorf("mkfs: data volume %s is %d bytes; at least %d are needed", volPath, size, minVolumeBlocks*BlockSize)
	}
	uuid := make([]byte, 16)
	if _, err := io.ReadFull(rand.Reader, uuid); err != nil {
		return fmt.Errorf("mkfs: uuid: %w", err)
	}
	uuid[6] = uuid[6]&0x0f | 0x40
	uuid[8] = uuid[8]&0x3f | 0x80
	if err := writeLabel(vol, uuid, blocks); err != nil {
		return fmt.Errorf("mkfs: %w", err)
	}
	maxInodes := opts.Inodes
	if maxInodes == 0 {
		maxInodes = max(blocks/4, 1024)
	}
	recorded := ""
	if opts.Device != "" {
		recorded = volPath
	}
	return initDB(dbPath, uuid, blocks, recorded, maxInodes)
}

func createVolume(dir string, opts MkfsOptions) (*os.File, string, error) {
	if opts.Device != "" {
		path, err := filepath.Abs(opts.Device)
		if err != nil {
			return nil, "", fmt.Errorf("mkfs: %w", err)
		}
		f, err := openExclusive(path, os.O_RDWR)
		if err != nil {
			return nil, "", fmt.Errorf("mkfs: open data device: %w", err)
		}
		if !opts.Force {
			label := make([]byte, BlockSize)
			if _, err := f.ReadAt(label, 0); err == nil {
				if uuid, _, err := parseLabel(label); err == nil {
					f.Close()
					return nil, "", fmt.Errorf("mkfs: %s already holds the data volume of swapfs store %s; "+
						"refusing to overwrite it (use --force to destroy that store)", path, formatUUID(uuid))
				}
			}
		}
		return f, path, nil
	}
	path := filepath.Join(dir, "data")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, "", fmt.Errorf("mkfs: create data volume: %w", err)
	}
	if err := f.Truncate(opts.Size / BlockSize * BlockSize); err != nil {
		f.Close()
		os.Remove(path)
		return nil, "", fmt.Errorf("mkfs: size data volume %s to %d bytes: %w", path, opts.Size, err)
	}
	return f, path, nil
}

func initDB(path string, uuid []byte, blocks uint64, volPath string, maxInodes uint64) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("mkfs: create %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		sb := tx.Bucket(bucketSuper)
		vol := make([]byte, 8+len(volPath))
		binary.BigEndian.PutUint64(vol, blocks)
		copy(vol[8:], volPath)
		format := make([]byte, 4)
		binary.BigEndian.PutUint32(format, FormatVersion)
		bs := make([]byte, 4)
		binary.BigEndian.PutUint32(bs, BlockSize)
		for _, kv := range []struct{ k, v []byte }{
			{keyFormat, encodeBytes(format)}, {keyUUID, encodeBytes(uuid)},
			{keyBlockSize, encodeBytes(bs)}, {keyVolume, encodeBytes(vol)},
			{keyNextIno, encodeU64(RootIno + 1)}, {keyMaxInodes, encodeU64(maxInodes)},
			{keyInodes, encodeU64(1)},
		} {
			if err := sb.Put(kv.k, kv.v); err != nil {
				return err
			}
		}
		now := time.Now()
		root := &inodeRec{Inode: Inode{Ino: RootIno, Gen: 1, Mode: syscall.S_IFDIR | 0o755, Nlink: 2,
			Atime: now, Mtime: now, Ctime: now, Btime: now, Parent: RootIno}, dirSeq: firstCookie}
		if err := putInode(tx, root); err != nil {
			return err
		}
		return initFree(tx, 1, blocks-1)
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("mkfs: initialise %s: %w", path, err)
	}
	return nil
}

// superblock is what Open reads from bucket super.
type superblock struct {
	uuid    []byte
	blocks  uint64
	volPath string
}

func readSuper(tx *bolt.Tx) (superblock, error) {
	sb := tx.Bucket(bucketSuper)
	if sb == nil {
		return superblock{}, errors.New("meta.db is not a swapfs store: it has no superblock (bucket \"super\")")
	}
	format, err := decodeBytes(sb.Get(keyFormat), "superblock format")
	if err != nil || len(format) != 4 {
		return superblock{}, fmt.Errorf("meta.db superblock: unreadable format version: %v", err)
	}
	if v := binary.BigEndian.Uint32(format); v != FormatVersion {
		return superblock{}, fmt.Errorf("meta.db has format version %d; this swapfs reads format %d only", v, FormatVersion)
	}
	for _, name := range allBuckets {
		if tx.Bucket(name) == nil {
			return superblock{}, fmt.Errorf("meta.db superblock: bucket %q is missing", name)
		}
	}
	uuid, err := decodeBytes(sb.Get(keyUUID), "superblock uuid")
	if err != nil || len(uuid) != 16 {
		return superblock{}, fmt.Errorf("meta.db superblock: bad uuid: %v", err)
	}
	bs, err := decodeBytes(sb.Get(keyBlockSize), "superblock blocksize")
	if err != nil || len(bs) != 4 || binary.BigEndian.Uint32(bs) != BlockSize {
		return superblock{}, fmt.Errorf("meta.db superblock: block size is not %d (%v)", BlockSize, err)
	}
	vol, err := decodeBytes(sb.Get(keyVolume), "superblock volume")
	if err != nil || len(vol) < 8 {
		return superblock{}, fmt.Errorf("meta.db superblock: bad volume record: %v", err)
	}
	return superblock{uuid: uuid, blocks: binary.BigEndian.Uint64(vol), volPath: string(vol[8:])}, nil
}

// Open opens the store in dir: it checks the format version, the superblock and the data
// volume's identity, takes an exclusive lock (a second Open fails), and reclaims orphans.
// It writes nothing to a store it refuses.
func Open(dir string, opts OpenOptions) (*Store, error) {
	dbPath := filepath.Join(dir, "meta.db")
	st, err := os.Stat(dbPath)
	if err != nil {
		return nil, fmt.Errorf("no swapfs store at %s (create one with 'swapfs mkfs %s'): %w", dir, dir, err)
	}
	if st.Size() == 0 {
		return nil, fmt.Errorf("%s is empty: the store is damaged; refusing to touch it", dbPath)
	}
	// A read-only look first: bbolt may write to a file it opens read-write (a freelist, a
	// fresh meta page), so nothing is opened for writing before it has proved to be ours.
	sb, err := inspect(dbPath)
	if err != nil {
		return nil, err
	}
	s := &Store{dir: dir, log: opts.Logger, uuid: sb.uuid, readOnly: opts.ReadOnly,
		interval: opts.CommitInterval, stop: make(chan struct{}), done: make(chan struct{})}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.interval <= 0 {
		s.interval = DefaultCommitInterval
	}
	volPath := sb.volPath
	if volPath == "" {
		volPath = filepath.Join(dir, "data")
	}
	if s.vol, err = openVolume(volPath, sb.uuid, sb.blocks, opts.ReadOnly); err != nil {
		return nil, err
	}
	if s.db, err = openDB(dbPath, opts.ReadOnly); err != nil {
		s.vol.close()
		return nil, err
	}
	if opts.ReadOnly {
		close(s.done)
		return s, nil
	}
	if err := s.begin(); err != nil {
		s.db.Close()
		s.vol.close()
		return nil, err
	}
	if err := s.reclaimOrphans(); err != nil {
		s.tx.Rollback()
		s.db.Close()
		s.vol.close()
		return nil, err
	}
	go s.committer()
	return s, nil
}

// openDB opens meta.db. The freelist is synced: rebuilding it at open (NoFreelistSync)
// would walk the file in a bbolt goroutine that panics, beyond recovery, on a damaged page.
func openDB(path string, readOnly bool) (db *bolt.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s is damaged: %v", path, r)
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: 200 * time.Millisecond, ReadOnly: readOnly,
		FreelistType: bolt.FreelistMapType})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("%s: %w", path, ErrInUse)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return db, nil
}

// inspect validates the database read-only. bbolt panics on some corrupt pages, so a panic
// here is turned into an error: a damaged store must give a message, not a crash.
func inspect(path string) (sb superblock, err error) {
	db, err := openDB(path, true)
	if err != nil {
		return superblock{}, fmt.Errorf("%w (not a swapfs meta.db, or damaged)", err)
	}
	defer db.Close()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s is damaged: %v", path, r)
		}
	}()
	err = db.View(func(tx *bolt.Tx) error {
		var err error
		sb, err = readSuper(tx)
		return err
	})
	if err == nil {
		err = checkPages(db)
	}
	if err != nil {
		return superblock{}, fmt.Errorf("%s: %w", path, err)
	}
	return sb, nil
}

// checkPages reads every page of every bucket, so damage inside meta.db is found at open
// rather than by a panic in the middle of an operation. bbolt's own tx.Check cannot serve:
// it panics in a goroutine of its own, where no recover reaches.
func checkPages(db *bolt.DB) error {
	return db.View(func(tx *bolt.Tx) error {
		return guard(tx, func(tx *bolt.Tx) error {
			return tx.ForEach(func(_ []byte, b *bolt.Bucket) error { return walkBucket(b) })
		})
	})
}

func walkBucket(b *bolt.Bucket) error {
	return b.ForEach(func(k, v []byte) error {
		if v == nil {
			if nb := b.Bucket(k); nb != nil {
				return walkBucket(nb)
			}
		}
		return nil
	})
}

func (s *Store) begin() error {
	tx, err := s.db.Begin(true)
	if err != nil {
		return fmt.Errorf("begin metadata transaction: %w", err)
	}
	s.tx = tx
	return nil
}

// reclaimOrphans frees inodes that were unlinked while open when the last mount ended: no
// one can hold them open any more.
func (s *Store) reclaimOrphans() error {
	var orphans []uint64
	err := s.tx.Bucket(bucketOrphans).ForEach(func(k, _ []byte) error {
		if len(k) != 8 {
			return fmt.Errorf("orphans: key of %d bytes", len(k))
		}
		orphans = append(orphans, binary.BigEndian.Uint64(k))
		return nil
	})
	if err != nil {
		return err
	}
	for _, ino := range orphans {
		if err := s.freeInode(s.tx, ino); err != nil {
			return fmt.Errorf("reclaim orphan inode %d: %w", ino, err)
		}
	}
	if len(orphans) > 0 {
		s.log.Info("reclaimed orphan inodes", "count", len(orphans))
		s.pendingOps++
	}
	return nil
}

func (s *Store) committer() {
	defer close(s.done)
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if err := s.Sync(); err != nil {
				s.log.Error("periodic commit failed", "err", err)
			}
		}
	}
}

// Close commits everything pending and closes the database and the data volume.
func (s *Store) Close() error {
	if s.readOnly {
		return errors.Join(s.db.Close(), s.vol.close())
	}
	close(s.stop)
	<-s.done
	err := s.Sync()
	s.mu.Lock()
	if s.tx != nil {
		s.tx.Rollback()
		s.tx = nil
	}
	s.mu.Unlock()
	return errors.Join(err, s.db.Close(), s.vol.close())
}

// Sync commits every pending change durably: data volume first, then metadata.
func (s *Store) Sync() error {
	// Flush the bulk of the written data before closing the gate, so writers wait only for
	// what arrives meanwhile, not for the whole interval's data.
	s.mu.Lock()
	dirty := s.dataDirty && s.failed == nil
	s.mu.Unlock()
	if dirty {
		if err := s.vol.sync(); err != nil {
			s.fail(err)
			return err
		}
	}
	s.gate.Lock()
	defer s.gate.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.commitLocked()
}

func (s *Store) commitLocked() error {
	if s.failed != nil {
		return fmt.Errorf("store is read-only after an earlier failure: %w", s.failed)
	}
	if s.tx == nil {
		return nil
	}
	if s.dataDirty {
		if err := s.vol.sync(); err != nil {
			s.failLocked(err)
			return err
		}
		s.dataDirty = false
	}
	if s.pendingOps == 0 && len(s.pendingFree) == 0 {
		return nil
	}
	for _, r := range s.pendingFree {
		if err := release(s.tx, r); err != nil {
			err = fmt.Errorf("return blocks %d+%d to free space: %w", r.pblk, r.len, err)
			s.failLocked(err)
			return err
		}
	}
	if err := s.tx.Commit(); err != nil {
		s.tx = nil
		err = fmt.Errorf("commit metadata: %w", err)
		s.failLocked(err)
		return err
	}
	s.pendingFree, s.pendingOps = s.pendingFree[:0], 0
	if err := s.begin(); err != nil {
		s.failLocked(err)
		return err
	}
	return nil
}

// failLocked makes the store read-only after a failure that leaves the group unusable, as
// ext4 does with errors=remount-ro: the uncommitted group is dropped, what was committed
// stays intact.
func (s *Store) failLocked(err error) {
	if s.failed == nil {
		s.failed = err
		s.log.Error("store failed; it is read-only until remounted; changes since the last commit are lost", "err", err)
	}
	if s.tx != nil {
		s.tx.Rollback()
		s.tx = nil
	}
}

// update runs fn in the group transaction. fn must check every POSIX error (returned as bare
// syscall.Errno) before it changes anything, because a group cannot roll back one
// operation; any other error fails the store.
func (s *Store) update(fn func(tx *bolt.Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.updateLocked(fn)
}

func (s *Store) updateLocked(fn func(tx *bolt.Tx) error) error {
	if s.readOnly {
		return syscall.EROFS
	}
	if s.failed != nil || s.tx == nil {
		return syscall.EROFS
	}
	err := guard(s.tx, fn)
	if _, bare := err.(syscall.Errno); err != nil && !bare {
		s.failLocked(err)
		return err
	}
	if err == nil {
		s.pendingOps++
		if s.pendingOps >= maxGroupOps && s.gate.TryLock() {
			// Only when no data write is in flight; otherwise the timer commits soon.
			err = s.commitLocked()
			s.gate.Unlock()
		}
	}
	return err
}

// view runs fn with a consistent view that includes the uncommitted group.
// After a failure it shows the last committed state, as a read-only filesystem would.
func (s *Store) view(fn func(tx *bolt.Tx) error) error {
	if s.readOnly {
		return s.db.View(func(tx *bolt.Tx) error { return guard(tx, fn) })
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tx == nil {
		return s.db.View(func(tx *bolt.Tx) error { return guard(tx, fn) })
	}
	return guard(s.tx, fn)
}

// guard turns a bbolt panic on a damaged page into an error: a corrupt meta.db must fail
// the operation (and the store), not kill the daemon under a live mount.
func guard(tx *bolt.Tx, fn func(tx *bolt.Tx) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("meta.db is damaged: %v", r)
		}
	}()
	return fn(tx)
}

// UUID is the store's identity, as a string.
func (s *Store) UUID() string { return formatUUID(s.uuid) }

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }
