//go:build !race

package swap

const raceEnabled = false
