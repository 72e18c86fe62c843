//go:build !race

package websocket_test

// raceEnabled tells tests that the race detector slows everything down
// by an order of magnitude.
const raceEnabled = false
