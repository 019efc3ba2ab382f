package whiteboard

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Record framing: | length uint32 | crc32c uint32 | seq uint64 | payload |,
// little endian. length counts seq and payload; the CRC covers the same bytes,
// so a record with a damaged header, sequence number or payload is refused.
const (
	headerSize = 8
	seqSize    = 8
	// MaxPayload bounds one record, so a damaged length cannot make recovery
	// allocate gigabytes.
	MaxPayload = 1 << 20
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Errors the decoder returns. ErrShort means the buffer ends inside a record
// (a torn write when it is at the end of the log); ErrCorrupt means the
// record's length or checksum is wrong.
var (
	ErrShort   = errors.New("record is cut short")
	ErrCorrupt = errors.New("record is corrupt")
)

// Record is one log entry: its sequence number and the caller's payload.
type Record struct {
	Seq     uint64
	Payload []byte
}

// AppendRecord appends the framed record to dst and returns the result.
func AppendRecord(dst []byte, r Record) []byte {
	n := seqSize + len(r.Payload)
	start := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(n))
	dst = binary.LittleEndian.AppendUint32(dst, 0)
	dst = binary.LittleEndian.AppendUint64(dst, r.Seq)
	dst = append(dst, r.Payload...)
	sum := crc32.Checksum(dst[start+headerSize:], crcTable)
	binary.LittleEndian.PutUint32(dst[start+4:], sum)
	return dst
}

// DecodeRecord reads the record at the start of b and returns it with the
// number of bytes it took. The payload aliases b.
func DecodeRecord(b []byte) (Record, int, error) {
	if len(b) < headerSize {
		return Record{}, 0, ErrShort
	}
	n := binary.LittleEndian.Uint32(b)
	if n < seqSize || n > seqSize+MaxPayload {
		return Record{}, 0, fmt.Errorf("%w: length %d is outside %d-%d", ErrCorrupt, n, seqSize, seqSize+MaxPayload)
	}
	end := headerSize + int(n)
	if len(b) < end {
		return Record{}, 0, ErrShort
	}
	body := b[headerSize:end]
	if want, got := binary.LittleEndian.Uint32(b[4:]), crc32.Checksum(body, crcTable); want != got {
		return Record{}, 0, fmt.Errorf("%w: checksum %08x, header says %08x", ErrCorrupt, got, want)
	}
	return Record{Seq: binary.LittleEndian.Uint64(body), Payload: body[seqSize:]}, end, nil
}
