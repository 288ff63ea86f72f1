package fs

import (
	"context"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
)

func TestAtimePolicyOf(t *testing.T) {
	rel, strict, never := atimeRelative, atimeStrict, atimeNever
	tests := []struct {
		opts       []string
		readOnly   bool
		files, dir atimeMode
	}{
		{nil, false, rel, rel}, // no flags at all: MS_MGC_VAL, the kernel's relatime default
		{[]string{"nosuid"}, false, rel, rel},
		{[]string{"relatime"}, false, rel, rel},
		{[]string{"noatime"}, false, never, never},
		{[]string{"strictatime"}, false, strict, strict},
		{[]string{"nodiratime"}, false, rel, never},
		{[]string{"strictatime", "nodiratime"}, false, strict, never},
		{[]string{"noatime", "relatime"}, false, rel, rel},
		{[]string{"relatime", "noatime"}, false, never, never},
		{[]string{"noatime", "strictatime"}, false, strict, strict},
		{nil, true, never, never},
		{[]string{"strictatime"}, true, never, never},
	}
	for _, tt := range tests {
		flags, err := mountFlags(Options{KernelOptions: tt.opts, ReadOnly: tt.readOnly})
		if err != nil {
			t.Fatal(err)
		}
		if got := atimePolicyOf(flags); got != (atimePolicy{files: tt.files, dirs: tt.dir}) {
			t.Errorf("%q read-only %v: policy %+v, want files %d dirs %d", tt.opts, tt.readOnly, got, tt.files, tt.dir)
		}
	}
}

func TestRelatimeDue(t *testing.T) {
	now := time.Date(2024, 5, 6, 12, 0, 0, 500, time.UTC)
	sec := time.Second
	tests := []struct {
		name                string
		atime, mtime, ctime time.Time
		want                bool
	}{
		{"read since the last change", now.Add(-sec), now.Add(-2 * sec), now.Add(-2 * sec), false},
		{"written since", now.Add(-2 * sec), now.Add(-sec), now.Add(-sec), true},
		{"changed (ctime) since", now.Add(-2 * sec), now.Add(-3 * sec), now.Add(-sec), true},
		{"atime equals mtime", now.Add(-sec), now.Add(-sec), now.Add(-3 * sec), true},
		{"atime equals ctime", now.Add(-sec), now.Add(-3 * sec), now.Add(-sec), true},
		{"just under a day old", now.Add(-relatimeWindow + sec), now.Add(-48 * time.Hour), now.Add(-48 * time.Hour), false},
		{"a day old", now.Add(-relatimeWindow), now.Add(-48 * time.Hour), now.Add(-48 * time.Hour), true},
		{"mtime in the future", now, now.Add(time.Hour), now.Add(-sec), true},
	}
	for _, tt := range tests {
		if got := relatimeDue(tt.atime, tt.mtime, tt.ctime, now); got != tt.want {
			t.Errorf("%s: due %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestReadAtime drives Node.Read without a mount: relatime updates atime on the first read
// after a change only, the quiet state stands in for the store on later reads, and changes
// through the node clear it.
func TestReadAtime(t *testing.T) {
	n := newTestNode(t)
	ctx := context.Background()
	buf := make([]byte, 16)
	read := func(f *fileHandle) {
		t.Helper()
		if _, errno := n.Read(ctx, f, buf, 0); errno != 0 {
			t.Fatal(errno)
		}
	}
	inode := func() (atime, mtime, ctime time.Time) {
		t.Helper()
		in, err := n.fs.store.GetInode(n.ino)
		if err != nil {
			t.Fatal(err)
		}
		return in.Atime, in.Mtime, in.Ctime
	}
	if _, errno := n.Write(ctx, nil, []byte("data"), 0); errno != 0 {
		t.Fatal(errno)
	}
	a0, m0, c0 := inode()
	h := &fileHandle{node: n}
	read(h)
	a1, m1, c1 := inode()
	if !a1.After(m0) || !a1.After(a0) || !m1.Equal(m0) || !c1.Equal(c0) {
		t.Fatalf("first read after a write: atime %v -> %v (mtime %v -> %v, ctime %v -> %v): "+
			"want atime after mtime, mtime and ctime unchanged", a0, a1, m0, m1, c0, c1)
	}
	if q := n.atime.quiet.Load(); q == nil || q.changes != n.atime.changes.Load() {
		t.Fatalf("no quiet state after the update: %+v", q)
	}
	read(h)
	if a2, _, _ := inode(); !a2.Equal(a1) {
		t.Errorf("second read moved atime %v -> %v", a1, a2)
	}

	// O_NOATIME: no update although one is due.
	chmod := &fuse.SetAttrIn{SetAttrInCommon: fuse.SetAttrInCommon{Valid: fuse.FATTR_MODE, Mode: 0o600}}
	if errno := n.Setattr(ctx, nil, chmod, &fuse.AttrOut{}); errno != 0 {
		t.Fatal(errno)
	}
	a3, _, c3 := inode()
	if !c3.After(a1) {
		t.Fatalf("chmod did not move ctime past atime: ctime %v atime %v", c3, a1)
	}
	read(&fileHandle{node: n, noatime: true})
	if a, _, _ := inode(); !a.Equal(a3) {
		t.Errorf("O_NOATIME read moved atime %v -> %v", a3, a)
	}
	read(h) // the chmod changed ctime: due
	if a, _, _ := inode(); !a.After(c3) {
		t.Errorf("read after chmod: atime %v, not after ctime %v", a, c3)
	}

	// noatime: nothing, whatever is due.
	n.fs.atime = atimePolicy{files: atimeNever, dirs: atimeNever}
	if _, errno := n.Write(ctx, nil, []byte("more"), 4); errno != 0 {
		t.Fatal(errno)
	}
	a4, _, _ := inode()
	read(h)
	if a, _, _ := inode(); !a.Equal(a4) {
		t.Errorf("noatime: read moved atime %v -> %v", a4, a)
	}

	// strictatime: every read.
	n.fs.atime = atimePolicy{files: atimeStrict, dirs: atimeStrict}
	read(h)
	a5, _, _ := inode()
	read(h)
	if a6, _, _ := inode(); !a5.After(a4) || !a6.After(a5) {
		t.Errorf("strictatime: atime %v -> %v -> %v, want it to move on every read", a4, a5, a6)
	}
}
