package testenv

import "bytes"

// Tail is the last n bytes of a program's log, trimmed, for a failure's
// message (the fixtures print their daemon's log when a test fails).
func Tail(b []byte, n int) []byte {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return bytes.TrimSpace(b)
}
