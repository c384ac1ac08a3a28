//go:build race

package loop

// raceEnabled: under the race detector sync.Pool drops items at random, so
// allocation counts say nothing about steady state.
const raceEnabled = true
