package fs

import (
	"testing"
	"time"
)

// DelayRelease makes every RELEASE wait d before it is served, until the test ends.
func DelayRelease(t testing.TB, d time.Duration) {
	releaseDelay.Store(int64(d))
	t.Cleanup(func() { releaseDelay.Store(0) })
}
