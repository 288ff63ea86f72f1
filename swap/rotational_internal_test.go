package swap

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestUnescapeMountField(t *testing.T) {
	for in, want := range map[string]string{
		`/dev/sda1`:           "/dev/sda1",
		`/mnt/my\040disk`:     "/mnt/my disk",
		`a\134b`:              `a\b`,
		`trailing\04`:         `trailing\04`,
		`not\999octal\011tab`: "not\\999octal\ttab",
	} {
		if got := UnescapeMountField(in); got != want {
			t.Errorf("UnescapeMountField(%q) = %q, want %q", in, got, want)
		}
	}
}

// The mount holding /proc has an anonymous device and a source that is not a device.
func TestMountSource(t *testing.T) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/self", &st); err != nil {
		t.Fatal(err)
	}
	src, err := mountSource(unix.Major(st.Dev), unix.Minor(st.Dev))
	if err != nil || src != "proc" {
		t.Errorf("mountSource of /proc's device = %q, %v; want proc", src, err)
	}
	if src, err := mountSource(4095, 1048575); err != nil || src != "" {
		t.Errorf("mountSource of a device no mount has = %q, %v; want empty", src, err)
	}
}
