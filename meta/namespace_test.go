package meta_test

import (
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/swapfs/swapfs/meta"
)

func TestCreateLookupErrors(t *testing.T) {
	s, _ := newStore(t, 16<<20)
	f := mustCreate(t, s, meta.RootIno, "f", reg)
	d := mustCreate(t, s, meta.RootIno, "d", dir)
	_, err := s.Create(meta.RootIno, "f", meta.NewInode{Mode: reg})
	wantErrno(t, err, syscall.EEXIST)
	_, err = s.Create(f.Ino, "x", meta.NewInode{Mode: reg})
	wantErrno(t, err, syscall.ENOTDIR)
	_, err = s.Create(meta.RootIno, strings.Repeat("n", 256), meta.NewInode{Mode: reg})
	wantErrno(t, err, syscall.ENAMETOOLONG)
	if _, err := s.Create(meta.RootIno, strings.Repeat("n", 255), meta.NewInode{Mode: reg}); err != nil {
		t.Fatalf("255-byte name: %v", err)
	}
	_, err = s.Lookup(meta.RootIno, "missing")
	wantErrno(t, err, syscall.ENOENT)
	got, err := s.Lookup(meta.RootIno, "d")
	if err != nil || got.Ino != d.Ino || got.Nlink != 2 {
		t.Fatalf("Lookup d = %+v, %v", got, err)
	}
	if root := mustInode(t, s, meta.RootIno); root.Nlink != 3 {
		t.Errorf("root nlink = %d, want 3", root.Nlink)
	}
	_, err = s.Create(meta.RootIno, "l", meta.NewInode{Mode: syscall.S_IFLNK | 0o777, Target: strings.Repeat("t", 4096)})
	wantErrno(t, err, syscall.ENAMETOOLONG)
}

func TestSetgidDirectoryInheritance(t *testing.T) {
	s, _ := newStore(t, 16<<20)
	d, err := s.Create(meta.RootIno, "g", meta.NewInode{Mode: dir | syscall.S_ISGID, Uid: 1, Gid: 50})
	if err != nil {
		t.Fatal(err)
	}
	f, err := s.Create(d.Ino, "f", meta.NewInode{Mode: reg, Uid: 2, Gid: 2})
	must(t, err)
	sub, err := s.Create(d.Ino, "sub", meta.NewInode{Mode: dir, Uid: 2, Gid: 2})
	must(t, err)
	if f.Gid != 50 || sub.Gid != 50 {
		t.Errorf("gids = %d, %d; want 50 from the setgid parent", f.Gid, sub.Gid)
	}
	if sub.Mode&syscall.S_ISGID == 0 || f.Mode&syscall.S_ISGID != 0 {
		t.Errorf("modes %o %o: a subdirectory inherits setgid, a file does not", sub.Mode, f.Mode)
	}
}

func TestUnlinkRmdir(t *testing.T) {
	s, _ := newStore(t, 16<<20)
	d := mustCreate(t, s, meta.RootIno, "d", dir)
	mustCreate(t, s, d.Ino, "f", reg)
	wantErrno(t, s.Rmdir(meta.RootIno, "d"), syscall.ENOTEMPTY)
	wantErrno(t, s.Unlink(meta.RootIno, "d"), syscall.EISDIR)
	wantErrno(t, s.Rmdir(d.Ino, "f"), syscall.ENOTDIR)
	wantErrno(t, s.Unlink(d.Ino, "nope"), syscall.ENOENT)
	if err := s.Unlink(d.Ino, "f"); err != nil {
		t.Fatal(err)
	}
	if err := s.Rmdir(meta.RootIno, "d"); err != nil {
		t.Fatal(err)
	}
	_, err := s.Create(d.Ino, "late", meta.NewInode{Mode: reg})
	wantErrno(t, err, syscall.ENOENT)
	if err := s.Release(d.Ino); err != nil {
		t.Fatal(err)
	}
	if root := mustInode(t, s, meta.RootIno); root.Nlink != 2 {
		t.Errorf("root nlink = %d after rmdir, want 2", root.Nlink)
	}
}

func TestOrphanKeepsDataUntilRelease(t *testing.T) {
	s, _ := newStore(t, 16<<20)
	f := mustCreate(t, s, meta.RootIno, "f", reg)
	if _, _, err := s.WriteAt(f.Ino, []byte("still here"), 0); err != nil {
		t.Fatal(err)
	}
	before := mustStatfs(t, s)
	if err := s.Unlink(meta.RootIno, "f"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	if n, err := s.ReadAt(f.Ino, buf, 0); err != nil || string(buf[:n]) != "still here" {
		t.Fatalf("read of unlinked open file: %q, %v", buf[:n], err)
	}
	mustCheck(t, s)
	if err := s.Release(f.Ino); err != nil {
		t.Fatal(err)
	}
	after := mustStatfs(t, s)
	if after.BlocksFree != before.BlocksFree+1 || after.InodesFree != before.InodesFree+1 {
		t.Errorf("statfs free blocks %d -> %d, inodes %d -> %d: want one more of each",
			before.BlocksFree, after.BlocksFree, before.InodesFree, after.InodesFree)
	}
	_, err := s.GetInode(f.Ino)
	wantErrno(t, err, syscall.ENOENT)
}

func TestOrphansReclaimedAtOpen(t *testing.T) {
	s, dir, closeStore := newStoreNoCleanup(t, 16<<20)
	f := mustCreate(t, s, meta.RootIno, "f", reg)
	mustWrite(t, s, f.Ino, make([]byte, 3*meta.BlockSize), 0)
	must(t, s.Unlink(meta.RootIno, "f"))
	free := mustStatfs(t, s).BlocksFree
	must(t, closeStore())
	s, _ = reopen(t, dir)
	_, err := s.GetInode(f.Ino)
	wantErrno(t, err, syscall.ENOENT)
	if st := mustStatfs(t, s); st.BlocksFree != free+3 {
		t.Errorf("%d blocks free after the orphan's reclaim, want %d", st.BlocksFree, free+3)
	}
	mustCheck(t, s)
}

func TestLinks(t *testing.T) {
	s, _ := newStore(t, 16<<20)
	f := mustCreate(t, s, meta.RootIno, "f", reg)
	d := mustCreate(t, s, meta.RootIno, "d", dir)
	in, err := s.Link(f.Ino, d.Ino, "g")
	if err != nil || in.Nlink != 2 {
		t.Fatalf("Link: %+v %v", in, err)
	}
	_, err = s.Link(d.Ino, meta.RootIno, "dd")
	wantErrno(t, err, syscall.EPERM)
	_, err = s.Link(f.Ino, d.Ino, "g")
	wantErrno(t, err, syscall.EEXIST)
	must(t, s.Unlink(meta.RootIno, "f"))
	got, err := s.Lookup(d.Ino, "g")
	if err != nil || got.Nlink != 1 {
		t.Errorf("after unlink of one name: nlink %d, %v", got.Nlink, err)
	}
}

func TestRename(t *testing.T) {
	cases := []struct {
		name  string
		setup []string // "f:name" or "d:name" or "f:dir/name"
		from  string
		to    string
		flags uint32
		want  syscall.Errno
	}{
		{"plain", []string{"f:a"}, "a", "b", 0, 0},
		{"missing", nil, "a", "b", 0, syscall.ENOENT},
		{"overwrite file", []string{"f:a", "f:b"}, "a", "b", 0, 0},
		{"noreplace", []string{"f:a", "f:b"}, "a", "b", meta.RenameNoreplace, syscall.EEXIST},
		{"exchange missing", []string{"f:a"}, "a", "b", meta.RenameExchange, syscall.ENOENT},
		{"exchange", []string{"f:a", "d:b"}, "a", "b", meta.RenameExchange, 0},
		{"file over dir", []string{"f:a", "d:b"}, "a", "b", 0, syscall.EISDIR},
		{"dir over file", []string{"d:a", "f:b"}, "a", "b", 0, syscall.ENOTDIR},
		{"dir over nonempty", []string{"d:a", "d:b", "f:b/x"}, "a", "b", 0, syscall.ENOTEMPTY},
		{"dir over empty", []string{"d:a", "d:b"}, "a", "b", 0, 0},
		{"dir into itself", []string{"d:a", "d:a/b"}, "a", "a/b/c", 0, syscall.EINVAL},
		{"bad flags", []string{"f:a"}, "a", "b", 1 << 7, syscall.EINVAL},
		{"both flags", []string{"f:a", "f:b"}, "a", "b", meta.RenameExchange | meta.RenameNoreplace, syscall.EINVAL},
		{"same inode", []string{"f:a", "l:a:b"}, "a", "b", 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newStore(t, 16<<20)
			inos := map[string]uint64{"": meta.RootIno}
			for _, spec := range tc.setup {
				parts := strings.Split(spec, ":")
				parent, name := splitPath(inos, parts[1])
				switch parts[0] {
				case "f":
					inos[parts[1]] = mustCreate(t, s, parent, name, reg).Ino
				case "d":
					inos[parts[1]] = mustCreate(t, s, parent, name, dir).Ino
				case "l":
					if _, err := s.Link(inos[parts[1]], meta.RootIno, parts[2]); err != nil {
						t.Fatal(err)
					}
				}
			}
			fp, fn := splitPath(inos, tc.from)
			tp, tn := splitPath(inos, tc.to)
			err := s.Rename(fp, fn, tp, tn, tc.flags)
			if tc.want != 0 {
				wantErrno(t, err, tc.want)
				return
			}
			if err != nil {
				t.Fatalf("Rename: %v", err)
			}
			got, err := s.Lookup(tp, tn)
			if err != nil || got.Ino != inos[tc.from] {
				t.Errorf("after rename %s names %d (%v), want %d", tc.to, got.Ino, err, inos[tc.from])
			}
			if tc.flags&meta.RenameExchange != 0 {
				back, err := s.Lookup(fp, fn)
				if err != nil || back.Ino != inos[tc.to] {
					t.Errorf("exchange: %s names %d, want %d", tc.from, back.Ino, inos[tc.to])
				}
			}
		})
	}
}

func splitPath(inos map[string]uint64, p string) (uint64, string) {
	i := strings.LastIndex(p, "/")
	if i < 0 {
		return meta.RootIno, p
	}
	return inos[p[:i]], p[i+1:]
}

func TestRenameDirectoryAcrossParents(t *testing.T) {
	s, _ := newStore(t, 16<<20)
	a := mustCreate(t, s, meta.RootIno, "a", dir)
	b := mustCreate(t, s, meta.RootIno, "b", dir)
	c := mustCreate(t, s, a.Ino, "c", dir)
	if err := s.Rename(a.Ino, "c", b.Ino, "c", 0); err != nil {
		t.Fatal(err)
	}
	a, b, c = mustInode(t, s, a.Ino), mustInode(t, s, b.Ino), mustInode(t, s, c.Ino)
	if a.Nlink != 2 || b.Nlink != 3 || c.Parent != b.Ino {
		t.Errorf("nlinks a=%d b=%d, c.Parent=%d", a.Nlink, b.Nlink, c.Parent)
	}
}

func TestReadDirCookiesStable(t *testing.T) {
	s, _ := newStore(t, 16<<20)
	for i := 0; i < 100; i++ {
		mustCreate(t, s, meta.RootIno, fmt.Sprintf("f%03d", i), reg)
	}
	var seen []meta.DirEntry
	must(t, s.ReadDir(meta.RootIno, 0, func(e meta.DirEntry) bool {
		seen = append(seen, e)
		return len(seen) < 50
	}))
	// Change the directory under the listing: remove seen and unseen names, add new ones.
	for i := 0; i < 100; i += 2 {
		must(t, s.Unlink(meta.RootIno, fmt.Sprintf("f%03d", i)))
	}
	mustCreate(t, s, meta.RootIno, "new", reg)
	last := seen[len(seen)-1].Cookie
	names := map[string]bool{}
	for _, e := range seen {
		names[e.Name] = true
	}
	err := s.ReadDir(meta.RootIno, last+1, func(e meta.DirEntry) bool {
		if names[e.Name] {
			t.Errorf("%s listed twice", e.Name)
		}
		names[e.Name] = true
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < 100; i += 2 {
		if n := fmt.Sprintf("f%03d", i); !names[n] {
			t.Errorf("%s, present throughout, was skipped", n)
		}
	}
	if !names["new"] {
		t.Error("an entry created during the listing after the position was not listed")
	}
}

func TestXattrs(t *testing.T) {
	s, _ := newStore(t, 16<<20)
	f := mustCreate(t, s, meta.RootIno, "f", reg)
	_, err := s.GetXattr(f.Ino, "user.a")
	wantErrno(t, err, syscall.ENODATA)
	wantErrno(t, s.SetXattr(f.Ino, "user.a", []byte("1"), meta.XattrReplace), syscall.ENODATA)
	if err := s.SetXattr(f.Ino, "user.a", []byte("1"), meta.XattrCreate); err != nil {
		t.Fatal(err)
	}
	wantErrno(t, s.SetXattr(f.Ino, "user.a", []byte("2"), meta.XattrCreate), syscall.EEXIST)
	if err := s.SetXattr(f.Ino, "user.a", []byte("2"), meta.XattrReplace); err != nil {
		t.Fatal(err)
	}
	wantErrno(t, s.SetXattr(f.Ino, "user.big", make([]byte, meta.XattrSizeMax+1), 0), syscall.E2BIG)
	wantErrno(t, s.SetXattr(f.Ino, strings.Repeat("x", 256), nil, 0), syscall.ERANGE)
	must(t, s.SetXattr(f.Ino, "user.b", nil, 0))
	names, err := s.ListXattr(f.Ino)
	if err != nil || strings.Join(names, ",") != "user.a,user.b" {
		t.Errorf("ListXattr = %v, %v", names, err)
	}
	v, err := s.GetXattr(f.Ino, "user.a")
	if err != nil || string(v) != "2" {
		t.Errorf("value %q, %v", v, err)
	}
	wantErrno(t, s.RemoveXattr(f.Ino, "user.c"), syscall.ENODATA)
	if err := s.RemoveXattr(f.Ino, "user.a"); err != nil {
		t.Fatal(err)
	}
}

func TestSymlink(t *testing.T) {
	s, _ := newStore(t, 16<<20)
	l, err := s.Create(meta.RootIno, "l", meta.NewInode{Mode: syscall.S_IFLNK | 0o777, Target: "/some/where"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Readlink(l.Ino); err != nil || got != "/some/where" || l.Size != 11 {
		t.Errorf("Readlink = %q size %d, %v", got, l.Size, err)
	}
	f := mustCreate(t, s, meta.RootIno, "f", reg)
	_, err = s.Readlink(f.Ino)
	wantErrno(t, err, syscall.EINVAL)
}

func TestInodeLimit(t *testing.T) {
	dir := t.TempDir()
	if err := meta.Mkfs(dir, meta.MkfsOptions{Size: 16 << 20, Inodes: 3}); err != nil {
		t.Fatal(err)
	}
	s, err := meta.Open(dir, meta.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { must(t, s.Close()) }()
	mustCreate(t, s, meta.RootIno, "a", reg)
	mustCreate(t, s, meta.RootIno, "b", reg)
	_, err = s.Create(meta.RootIno, "c", meta.NewInode{Mode: reg})
	wantErrno(t, err, syscall.ENOSPC)
	if st := mustStatfs(t, s); st.Inodes != 3 || st.InodesFree != 0 {
		t.Errorf("statfs inodes %d free %d", st.Inodes, st.InodesFree)
	}
}

// TestXattrLimits: an inode's xattr names stay within what listxattr(2) returns (64 KiB) and
// its values within 1 MiB; a set past either is ENOSPC and changes nothing, and replacing a
// value by one of the same size still works at the limit.
func TestXattrLimits(t *testing.T) {
	s, _ := newStore(t, 8<<20)
	f := mustCreate(t, s, meta.RootIno, "names", syscall.S_IFREG|0o644)
	var total int
	for i := 0; ; i++ {
		name := fmt.Sprintf("user.%03d%s", i, strings.Repeat("x", 240))
		err := s.SetXattr(f.Ino, name, []byte("v"), 0)
		if err != nil {
			wantErrno(t, err, syscall.ENOSPC)
			break
		}
		total += len(name) + 1
		if i > 1000 {
			t.Fatal("no limit on the number of xattr names")
		}
	}
	names, err := s.ListXattr(f.Ino)
	must(t, err)
	listed := 0
	for _, n := range names {
		listed += len(n) + 1
	}
	if listed != total || listed > 65536 || listed < 65536-250 {
		t.Errorf("names take %d bytes (set %d), want just under 65536", listed, total)
	}

	g := mustCreate(t, s, meta.RootIno, "values", syscall.S_IFREG|0o644)
	big := make([]byte, meta.XattrSizeMax)
	for i := 0; i < 16; i++ {
		must(t, s.SetXattr(g.Ino, fmt.Sprintf("user.v%d", i), big, 0))
	}
	wantErrno(t, s.SetXattr(g.Ino, "user.one-more", []byte("x"), 0), syscall.ENOSPC)
	must(t, s.SetXattr(g.Ino, "user.v3", big, meta.XattrReplace))
	_, err = s.GetXattr(g.Ino, "user.one-more")
	wantErrno(t, err, syscall.ENODATA)
}

// TestClearSetID: setuid always goes, setgid only with group execute (without it, it marks
// mandatory locking), and a file without either is left alone, ctime included.
func TestClearSetID(t *testing.T) {
	s, _ := newStore(t, 8<<20)
	for _, c := range []struct {
		mode, want uint32
	}{
		{0o6777, 0o777}, {0o4755, 0o755}, {0o2767, 0o2767}, {0o2775, 0o775}, {0o755, 0o755},
	} {
		f := mustCreate(t, s, meta.RootIno, fmt.Sprintf("f%o", c.mode), syscall.S_IFREG|c.mode)
		changed, err := s.ClearSetID(f.Ino)
		must(t, err)
		got := mustInode(t, s, f.Ino)
		if got.Mode&07777 != c.want || changed != (c.mode != c.want) {
			t.Errorf("mode %o: now %o (changed %v), want %o", c.mode, got.Mode&07777, changed, c.want)
		}
		if !changed && !got.Ctime.Equal(f.Ctime) {
			t.Errorf("mode %o: ctime moved though nothing changed", c.mode)
		}
	}
}
