//go:build race

package swap

const raceEnabled = true
