// Package whiteboard is the demo app of issue 8: a small collaborative
// whiteboard (boards of strokes and text, live over WebSocket) whose
// acknowledged strokes survive a crash. It is a fixture for the demo and its
// tests, not part of tsys-ci.
//
// Durability: every stroke is appended to a write-ahead log as a framed
// record (length, CRC-32C, sequence number, payload) and fsynced before the
// HTTP or WebSocket acknowledgement. On start the log is replayed over the
// last snapshot; a torn tail (a record cut short or with a bad checksum at
// the end of the file) is truncated, corruption in the middle stops the
// start. A lock file (flock) keeps a second copy from writing the same log.
package whiteboard
