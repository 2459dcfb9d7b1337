// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
)

// attrWriter appends netlink attributes to one buffer. It is the
// encoder of every request: unlike netlink.AttributeEncoder it does not
// allocate per attribute, which matters when a batch encodes thousands of
// requests (and under emulation, where every allocation is slow).
type attrWriter struct {
	b []byte
}

const nlaHdrLen = 4

func nlaAlign(n int) int { return (n + 3) &^ 3 }

// reserve appends an attribute header for a payload of n bytes and
// returns the (zeroed, padded) payload.
func (w *attrWriter) reserve(typ uint16, n int) []byte {
	start := len(w.b)
	total := nlaAlign(nlaHdrLen + n)
	w.b = append(w.b, make([]byte, total)...)
	binary.NativeEndian.PutUint16(w.b[start:], uint16(nlaHdrLen+n))
	binary.NativeEndian.PutUint16(w.b[start+2:], typ)
	return w.b[start+nlaHdrLen : start+nlaHdrLen+n]
}

// Bytes appends a binary attribute.
func (w *attrWriter) Bytes(typ uint16, v []byte) { copy(w.reserve(typ, len(v)), v) }

// String appends a NUL-terminated string attribute.
func (w *attrWriter) String(typ uint16, s string) { copy(w.reserve(typ, len(s)+1), s) }

// Uint8 appends a u8 attribute.
func (w *attrWriter) Uint8(typ uint16, v uint8) { w.reserve(typ, 1)[0] = v }

// Uint16 appends a u16 attribute in host byte order.
func (w *attrWriter) Uint16(typ uint16, v uint16) {
	binary.NativeEndian.PutUint16(w.reserve(typ, 2), v)
}

// Uint32 appends a u32 attribute in host byte order.
func (w *attrWriter) Uint32(typ uint16, v uint32) {
	binary.NativeEndian.PutUint32(w.reserve(typ, 4), v)
}

// Be16 appends a u16 attribute in network byte order.
func (w *attrWriter) Be16(typ uint16, v uint16) {
	binary.BigEndian.PutUint16(w.reserve(typ, 2), v)
}

// Be32 appends a u32 attribute in network byte order.
func (w *attrWriter) Be32(typ uint16, v uint32) {
	binary.BigEndian.PutUint32(w.reserve(typ, 4), v)
}

// Nested appends a nest (with NLA_F_NESTED, which strict validation of
// new commands requires) filled by fn.
func (w *attrWriter) Nested(typ uint16, fn func(*attrWriter) error) error {
	start := len(w.b)
	w.b = append(w.b, 0, 0, 0, 0)
	if err := fn(w); err != nil {
		return err
	}
	binary.NativeEndian.PutUint16(w.b[start:], uint16(len(w.b)-start))
	binary.NativeEndian.PutUint16(w.b[start+2:], typ|unix.NLA_F_NESTED)
	return nil
}
