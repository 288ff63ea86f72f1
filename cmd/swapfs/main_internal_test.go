package main

import (
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestParseMountOptions(t *testing.T) {
	tests := []struct {
		in      string
		sloppy  bool
		want    mountOptions
		wantErr string
	}{
		{in: "", want: mountOptions{}},
		{in: "rw,noatime", want: mountOptions{kernel: []string{"noatime"}}},
		{in: "ro", want: mountOptions{readOnly: true}},
		{in: "ro,rw", want: mountOptions{}},
		{in: "debug,commit=5", want: mountOptions{debug: true, commit: 5 * time.Second}},
		{in: "nosuid,nodev,noexec,sync,dirsync,relatime,nodiratime",
			want: mountOptions{kernel: []string{"nosuid", "nodev", "noexec", "sync", "dirsync", "relatime", "nodiratime"}}},
		{in: "defaults,auto,noauto,user,nouser,_netdev,nofail,x-systemd.automount,comment=x=y",
			want: mountOptions{ignored: []string{"defaults", "auto", "noauto", "user", "nouser", "_netdev",
				"nofail", "x-systemd.automount", "comment=x=y"}}},
		{in: ",,rw,", want: mountOptions{}},
		{in: "nousers,noowner,nogroup,user=alice,helper=udisks2,uhelper=udisks2,X-mount.mkdir,allow_other,default_permissions,mand",
			want: mountOptions{ignored: []string{"nousers", "noowner", "nogroup", "user=alice", "helper=udisks2",
				"uhelper=udisks2", "X-mount.mkdir", "allow_other", "default_permissions", "mand"}}},
		{in: "lazytime,norelatime,nostrictatime,nosymfollow",
			want: mountOptions{kernel: []string{"lazytime", "norelatime", "nostrictatime", "nosymfollow"}}},
		// libmount quotes a value holding commas; the quotes are not part of it.
		{in: `swap="sw,ap:3",comment="a,b"`, want: mountOptions{swaps: []swapOption{{path: "sw,ap", priority: 3}},
			ignored: []string{`comment="a,b"`}}},
		{in: `context="system_u:object_r:t:s0:c1,c2"`, wantErr: `unknown mount option "context=\"system_u:object_r:t:s0:c1,c2\""`},
		{in: "bogus", wantErr: `unknown mount option "bogus"`},
		{in: "bogus", sloppy: true, want: mountOptions{ignored: []string{"bogus"}}},
		{in: "commit=0", wantErr: "commit=0"},
		{in: "commit=abc", wantErr: "commit=abc"},
		{in: "commit", wantErr: `unknown mount option "commit"`},
		{in: "debug=1", wantErr: `unknown mount option "debug=1"`},
	}
	for _, tt := range tests {
		got, err := parseMountOptions(tt.in, tt.sloppy)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseMountOptions(%q) error %v, want one containing %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseMountOptions(%q): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseMountOptions(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestMountOptionsRoundTrip(t *testing.T) {
	for _, in := range []string{"rw", "ro", "debug,rw,commit=7,noatime,nodev", `swap="a,b:4",swap=c`} {
		o, err := parseMountOptions(in, false)
		if err != nil {
			t.Fatalf("parse %q: %v", in, err)
		}
		back, err := parseMountOptions(o.String(), false)
		if err != nil {
			t.Fatalf("parse %q (from %q): %v", o.String(), in, err)
		}
		if !reflect.DeepEqual(back, o) {
			t.Errorf("%q -> %q -> %+v, want %+v", in, o.String(), back, o)
		}
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"4096", 4096}, {"64M", 64 << 20}, {"64m", 64 << 20}, {"1G", 1 << 30}, {"2g", 2 << 30},
		{"512K", 512 << 10}, {"1T", 1 << 40}, {"16GiB", 16 << 30}, {"8MB", 8 << 20}, {" 3G ", 3 << 30},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "G", "1.5G", "-1M", "0", "12X", "99999999999T", "M64"} {
		if got, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", bad, got)
		}
	}
}

func TestParseInterleaved(t *testing.T) {
	fset := newFlagSet("test")
	fake := fset.Bool("f", false, "")
	var o optionList
	fset.Var(&o, "o", "")
	pos, err := parseInterleaved(fset, []string{"/store", "-o", "rw", "/mnt", "-f", "-o", "noatime"})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(pos, []string{"/store", "/mnt"}) || !*fake || o.String() != "rw,noatime" {
		t.Errorf("got pos %q, -f %v, -o %q", pos, *fake, o.String())
	}
}

func TestEscapePath(t *testing.T) {
	tests := map[string]string{
		"/":              "-",
		"/mnt/swapfs":    "mnt-swapfs",
		"/mnt/swapfs/":   "mnt-swapfs",
		"/mnt/swap fs":   `mnt-swap\x20fs`,
		"/srv/.hidden-x": `srv-.hidden\x2dx`,
		"/.x":            `\x2ex`,
	}
	for in, want := range tests {
		if got := escapePath(in); got != want {
			t.Errorf("escapePath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestInspectStore(t *testing.T) {
	dir := t.TempDir()
	mk := func(name string, files ...string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if err := os.WriteFile(filepath.Join(p, f), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return p
	}
	tests := []struct {
		path string
		want storeState
	}{
		{filepath.Join(dir, "missing"), storeNew},
		{mk("empty"), storeNew},
		{mk("logonly", "swapfs.log"), storeNew},
		{mk("store", "meta.db", "data"), storeExists},
		{mk("other", "notes.txt"), storeForeign},
	}
	for _, tt := range tests {
		got, err := inspectStore(tt.path)
		if err != nil || got != tt.want {
			t.Errorf("inspectStore(%s) = %v, %v; want %v", tt.path, got, err, tt.want)
		}
	}
}

func TestDefaultSize(t *testing.T) {
	size, err := defaultSize(filepath.Join(t.TempDir(), "not", "yet"))
	if err != nil {
		t.Fatal(err)
	}
	if size < minDefaultSize || size > maxDefaultSize || size%(1<<20) != 0 {
		t.Errorf("defaultSize = %d, want a whole number of MiB in [%d, %d]", size, minDefaultSize, maxDefaultSize)
	}
}

// TestCheckNotInUseWaitsForClosingDaemon: a store locked but mounted nowhere is being closed
// by the daemon of a mount just unmounted; a new mount (or fsck) waits for that daemon to let
// go instead of failing "in use".
func TestCheckNotInUseWaitsForClosingDaemon(t *testing.T) {
	store := t.TempDir()
	db, err := os.Create(filepath.Join(store, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := unix.Flock(int(db.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	released := make(chan struct{})
	go func() {
		time.Sleep(300 * time.Millisecond)
		unix.Flock(int(db.Fd()), unix.LOCK_UN)
		close(released)
	}()
	start := time.Now()
	if err := checkNotInUse(store, true); err != nil {
		t.Fatalf("a store released 300 ms later: %v", err)
	}
	<-released
	if waited := time.Since(start); waited < 250*time.Millisecond {
		t.Errorf("checkNotInUse returned after %v, before the lock was released", waited)
	}
}

// TestSignalsCaughtAfterUnmount: once the mount is gone the daemon still closes its store;
// a SIGTERM then must not end it (it did: the handler was unregistered, which restores the
// default action).
func TestSignalsCaughtAfterUnmount(t *testing.T) {
	t.Cleanup(func() { signal.Reset(syscall.SIGTERM, syscall.SIGINT) })
	ch := catchSignals()
	stop := unmountOnSignal(ch, t.TempDir(), func() []string { return nil }, slog.New(slog.DiscardHandler))
	stop()
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("the SIGTERM sent after stop never arrived on the channel")
	}
}

// TestMountpointThroughSymlink: a mountpoint given through a symlink (/mnt -> var/mnt on
// Silverblue) is used as the kernel resolves it, which is the path clients find in the mount
// table and name the control socket after.
func TestMountpointThroughSymlink(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "var", "mnt", "swap")
	if err := os.MkdirAll(real, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("var", "mnt"), filepath.Join(dir, "mnt")); err != nil {
		t.Fatal(err)
	}
	req, err := newMountRequest(filepath.Join(dir, "store"), filepath.Join(dir, "mnt", "swap"), "", false)
	if err != nil {
		t.Fatal(err)
	}
	want, err := filepath.EvalSymlinks(real)
	if err != nil {
		t.Fatal(err)
	}
	if req.mountpoint != want {
		t.Errorf("mountpoint %s, want %s as the kernel shows it", req.mountpoint, want)
	}
}
