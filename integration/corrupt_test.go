package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestDamagedStore damages a store in the ways a disk, a careless administrator or another
// program can, and checks that mount and fsck refuse it with a clear message, without a
// panic, and without changing a byte of it.
func TestDamagedStore(t *testing.T) {
	requireEnv(t)
	tests := []struct {
		name   string
		damage func(t *testing.T, store string)
		want   string // the error names this
	}{
		{"random bytes as meta.db", func(t *testing.T, store string) {
			writeFile(t, filepath.Join(store, "meta.db"), randomBytes(t, 256<<10))
		}, "meta.db"},
		{"bbolt database of another program", func(t *testing.T, store string) {
			path := filepath.Join(store, "meta.db")
			os.Remove(path)
			withBolt(t, path, func(tx *bolt.Tx) error {
				for _, name := range []string{"users", "settings"} {
					b, err := tx.CreateBucket([]byte(name))
					if err != nil {
						return err
					}
					if err := b.Put([]byte("key"), []byte("value")); err != nil {
						return err
					}
				}
				return nil
			})
		}, "not a swapfs store"},
		{"format version from the future", func(t *testing.T, store string) {
			// meta/keys.go: super/"format" is recV1 (1), then the format, 4 bytes big-endian.
			withBolt(t, filepath.Join(store, "meta.db"), func(tx *bolt.Tx) error {
				return tx.Bucket([]byte("super")).Put([]byte("format"), []byte{1, 0, 0, 0, 99})
			})
		}, "format version 99"},
		{"empty meta.db", func(t *testing.T, store string) {
			writeFile(t, filepath.Join(store, "meta.db"), nil)
		}, "meta.db"},
		{"missing meta.db", func(t *testing.T, store string) {
			if err := os.Remove(filepath.Join(store, "meta.db")); err != nil {
				t.Fatal(err)
			}
		}, "meta.db"},
		{"missing data file", func(t *testing.T, store string) {
			if err := os.Remove(filepath.Join(store, "data")); err != nil {
				t.Fatal(err)
			}
		}, "data volume"},
		{"truncated data file", func(t *testing.T, store string) {
			if err := os.Truncate(filepath.Join(store, "data"), 32*mib); err != nil {
				t.Fatal(err)
			}
		}, "data volume"},
		{"grown data file", func(t *testing.T, store string) {
			if err := os.Truncate(filepath.Join(store, "data"), 64*mib+4096); err != nil {
				t.Fatal(err)
			}
		}, "data volume"},
		{"data file of another store", func(t *testing.T, store string) {
			other := filepath.Join(t.TempDir(), "other")
			mkfs(t, other, "--size", "64M")
			if err := os.Rename(filepath.Join(other, "data"), filepath.Join(store, "data")); err != nil {
				t.Fatal(err)
			}
		}, "belongs to store"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := filepath.Join(t.TempDir(), "store")
			mkfs(t, store, "--size", "64M")
			m := mountStore(t, withStore(store))
			writeFile(t, filepath.Join(m.Dir, "file"), randomBytes(t, 100000))
			m.Unmount()

			tt.damage(t, store)
			before := hashTree(t, store)
			out := refusedMount(t, store)
			if !strings.Contains(out, tt.want) {
				t.Errorf("swapfs mount does not say %q:\n%s", tt.want, out)
			}
			t.Logf("swapfs mount said: %s", strings.TrimSpace(out))
			assertSameTree(t, store, before)

			r := swapfs(t.TempDir(), "fsck", store)
			if r.err != nil || r.code != 8 {
				t.Errorf("swapfs fsck of a store it cannot open: exit %d %v, want 8:\n%s", r.code, r.err, r.out)
			}
			noCrash(t, r.out)
			assertSameTree(t, store, before)
		})
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// withBolt changes a bbolt database directly, as another program would.
func withBolt(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}
