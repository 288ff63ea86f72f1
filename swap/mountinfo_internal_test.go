package swap

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// formatMountInfo writes mounts as show_mountinfo in fs/proc_namespace.c does, without
// optional fields: paths, type and source escaped as seq_path_root and mangle escape them,
// and options with their commas escaped too, as seq_show_option does.
func formatMountInfo(mounts []Mount) string {
	var b strings.Builder
	for i, m := range mounts {
		fmt.Fprintf(&b, "%d 1 %d:%d %s %s %s - %s %s %s\n", 20+i, m.Major, m.Minor,
			escapeMountField(m.Root), escapeMountField(m.Mountpoint), formatMountOptions(m.Options),
			escapeMountField(m.FSType), escapeMountField(m.Source), formatMountOptions(m.SuperOptions))
	}
	return b.String()
}

func formatMountOptions(opts []string) string {
	escaped := make([]string, len(opts))
	for i, o := range opts {
		escaped[i] = strings.ReplaceAll(escapeMountField(o), ",", `\054`)
	}
	return strings.Join(escaped, ",")
}

func escapeMountField(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(" \t\n\\", s[i]) >= 0 {
			fmt.Fprintf(&b, "\\%03o", s[i])
		} else {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// rwMount is a whole filesystem with an anonymous device number mounted read-write, as most
// rows below are.
func rwMount(minor uint32, mountpoint, fstype, source string, super ...string) Mount {
	return Mount{Minor: minor, Root: "/", Mountpoint: mountpoint, Options: []string{"rw"}, FSType: fstype,
		Source: source, SuperOptions: super}
}

func TestParseMountInfo(t *testing.T) {
	proc := "22 28 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n"
	procMount := Mount{Major: 0, Minor: 21, Root: "/", Mountpoint: "/proc",
		Options: []string{"rw", "nosuid", "nodev", "noexec", "relatime"}, FSType: "proc", Source: "proc",
		SuperOptions: []string{"rw"}}
	tests := []struct {
		name string
		in   string
		want []Mount
	}{{
		name: "empty",
	}, {
		// Copied from a machine with a swapfs mount whose mountpoint and store have spaces.
		name: "real, with optional fields",
		in: proc +
			"28 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw,errors=remount-ro\n" +
			"45 28 0:40 / /mnt/swap\\040fs rw,nosuid,nodev,relatime shared:30 master:2 - fuse.swapfs " +
			"/srv/swap\\040store rw,user_id=0,group_id=0,default_permissions,allow_other,max_read=1048576\n",
		want: []Mount{procMount, {
			Major: 259, Minor: 2, Root: "/", Mountpoint: "/", Options: []string{"rw", "relatime"},
			FSType: "ext4", Source: "/dev/nvme0n1p2", SuperOptions: []string{"rw", "errors=remount-ro"},
		}, {
			Major: 0, Minor: 40, Root: "/", Mountpoint: "/mnt/swap fs", Options: []string{"rw", "nosuid", "nodev", "relatime"},
			FSType: "fuse.swapfs", Source: "/srv/swap store",
			SuperOptions: []string{"rw", "user_id=0", "group_id=0", "default_permissions", "allow_other", "max_read=1048576"},
		}},
	}, {
		name: "no optional fields, no final newline, the largest device number, a bind mount of a subtree",
		in:   "36 35 4095:1048575 /mnt1 /mnt/parent ro,noatime - ext3 /dev/root rw,errors=continue",
		want: []Mount{{Major: 4095, Minor: 1048575, Root: "/mnt1", Mountpoint: "/mnt/parent", Options: []string{"ro", "noatime"},
			FSType: "ext3", Source: "/dev/root", SuperOptions: []string{"rw", "errors=continue"}}},
	}, {
		name: "tab, newline and backslash escaped",
		in:   "50 28 0:51 / /a\\011b\\012c\\134d rw - tmpfs my\\040tmp rw\n",
		want: []Mount{rwMount(51, "/a\tb\nc\\d", "tmpfs", "my tmp", "rw")},
	}, {
		name: "escaped comma in an option value",
		in:   "51 28 0:52 / /o rw - overlay overlay rw,lowerdir=/a\\054b:/c,upperdir=/u\n",
		want: []Mount{rwMount(52, "/o", "overlay", "overlay", "rw", "lowerdir=/a,b:/c", "upperdir=/u")},
	}, {
		name: "unescaped space in super options",
		in:   "52 28 0:53 / /w rw - weird src rw,label=a b\n",
		want: []Mount{rwMount(53, "/w", "weird", "src", "rw", "label=a b")},
	}, {
		name: "root and source are -",
		in:   "53 28 0:54 - /x rw - tmpfs - rw\n",
		want: []Mount{{Major: 0, Minor: 54, Root: "-", Mountpoint: "/x", Options: []string{"rw"},
			FSType: "tmpfs", Source: "-", SuperOptions: []string{"rw"}}},
	}, {
		name: "empty source stays in its place",
		in:   "54 28 0:55 / /e rw - tmpfs  rw\n",
		want: []Mount{rwMount(55, "/e", "tmpfs", "", "rw")},
	}, {
		name: "malformed lines skipped",
		in: "\n" +
			"garbage\n" +
			"\x00\xff\x01 - a b c\n" +
			"22 28 0:21 / /proc rw shared:12 proc proc rw\n" + // no separator
			"22 28 0:21 / /proc rw - proc proc\n" + // too little after it
			"22 28 0:21 / /proc - proc proc rw\n" + // no options: the separator comes too early
			"22 28 0-21 / /proc rw - proc proc rw\n" +
			"22 28 x:21 / /proc rw - proc proc rw\n" +
			"22 28 0:4294967296 / /proc rw - proc proc rw\n" +
			"22 28 0:-1 / /proc rw - proc proc rw\n" +
			"22  28 0:21 / /proc rw - proc proc rw\n" + // two spaces shift the fields
			proc,
		want: []Mount{procMount},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseMountInfo([]byte(tt.in)); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestMountOnAndOfDevice(t *testing.T) {
	mounts := parseMountInfo([]byte("" +
		"28 1 259:2 / / rw - ext4 /dev/nvme0n1p2 rw\n" +
		"40 28 259:3 / /mnt rw - ext4 /dev/nvme0n1p3 rw\n" +
		"41 40 0:50 / /mnt rw - tmpfs over rw\n" +
		"42 28 259:3 /sub /srv rw - ext4 /dev/nvme0n1p3 rw\n"))
	if m, ok := MountOn(mounts, "/mnt"); !ok || m.Source != "over" {
		t.Errorf("MountOn /mnt = %+v, %v; want the tmpfs on top", m, ok)
	}
	if m, ok := MountOn(mounts, "/mnt/"); ok {
		t.Errorf("MountOn /mnt/ = %+v; want none, the path is compared as it is", m)
	}
	if m, ok := MountOfDevice(mounts, 259, 3); !ok || m.Mountpoint != "/mnt" {
		t.Errorf("MountOfDevice 259:3 = %+v, %v; want its first mount, on /mnt", m, ok)
	}
	if m, ok := MountOfDevice(mounts, 3, 259); ok {
		t.Errorf("MountOfDevice 3:259 = %+v; want none", m)
	}
}

func TestAllOptions(t *testing.T) {
	tests := []struct {
		mount, super string
		want         string // as /proc/mounts shows it
	}{
		{"rw,nosuid,nodev,relatime", "rw,user_id=0,allow_other", "rw,nosuid,nodev,relatime,user_id=0,allow_other"},
		{"ro,noatime", "rw,user_id=0", "ro,noatime,user_id=0"},
		{"rw,noatime", "ro,user_id=0", "ro,noatime,user_id=0"},
		{"rw", "rw", "rw"},
	}
	for _, tt := range tests {
		m := Mount{Options: strings.Split(tt.mount, ","), SuperOptions: strings.Split(tt.super, ",")}
		if got := strings.Join(m.AllOptions(), ","); got != tt.want {
			t.Errorf("AllOptions of %s and %s = %s, want %s", tt.mount, tt.super, got, tt.want)
		}
	}
}

// The mount holding /proc has an anonymous device and a source that is not a device; its
// files show that device number.
func TestMountsFindsProc(t *testing.T) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/self", &st); err != nil {
		t.Fatal(err)
	}
	mounts, err := Mounts()
	if err != nil {
		t.Fatal(err)
	}
	m, ok := MountOfDevice(mounts, unix.Major(st.Dev), unix.Minor(st.Dev))
	if !ok || m.Source != "proc" || m.FSType != "proc" {
		t.Errorf("mount of /proc's device = %+v, %v; want source and type proc", m, ok)
	}
	if m, ok := MountOfDevice(mounts, 4095, 1048575); ok {
		t.Errorf("mount of a device no mount has = %+v; want none", m)
	}
}

func TestUnescapeMountField(t *testing.T) {
	for in, want := range map[string]string{
		`/dev/sda1`:           "/dev/sda1",
		`/mnt/my\040disk`:     "/mnt/my disk",
		`a\134b`:              `a\b`,
		`/tab\011x\012end`:    "/tab\tx\nend",
		`at end\040`:          "at end ",
		`trailing\04`:         `trailing\04`,
		`not\999octal\011tab`: "not\\999octal\ttab",
		`/bad\09x`:            `/bad\09x`,
		`above a byte\400`:    `above a byte\400`,
	} {
		if got := unescapeMountField(in); got != want {
			t.Errorf("unescapeMountField(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzParseMountInfo checks that no input panics, and that what parses comes back the same
// after being written out the way the kernel writes it.
func FuzzParseMountInfo(f *testing.F) {
	f.Add("22 28 0:21 / /proc rw,nosuid,relatime shared:12 - proc proc rw\n")
	f.Add("45 28 0:40 / /mnt/swap\\040fs rw master:2 - fuse.swapfs /srv/s\\134t rw,user_id=0\n")
	f.Add("51 28 0:52 - /o rw - overlay - rw,lowerdir=/a\\054b:/c,label=a b\n")
	f.Add("54 28 0:55 / /e  - tmpfs  \n\n")
	f.Add("22 28 0:4294967296 / /proc rw - proc proc rw\n")
	f.Add("garbage")
	f.Fuzz(func(t *testing.T, in string) {
		mounts := parseMountInfo([]byte(in))
		if len(mounts) > strings.Count(in, "\n")+1 {
			t.Fatalf("%d mounts from %d lines", len(mounts), strings.Count(in, "\n")+1)
		}
		if again := parseMountInfo([]byte(formatMountInfo(mounts))); !reflect.DeepEqual(again, mounts) {
			t.Fatalf("round trip changed\n%+v\nto\n%+v", mounts, again)
		}
	})
}
