//go:build !race

package websocket

// RaceEnabled tells the tests of both packages that the race detector
// slows everything down by an order of magnitude.
const RaceEnabled = false
