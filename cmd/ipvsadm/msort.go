// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package main

import "net/netip"

// msort sorts s exactly as glibc 2.36's qsort (a top-down merge sort)
// does. ipvsadm's comparators are not transitive (they subtract unsigned
// values into an int), so only the same algorithm gives the same order.
// The merges use *scratch, grown to len(s) when shorter, so that sorting
// many short lists (each service's real servers) allocates once.
func msort[T any](s []T, scratch *[]T, cmp func(a, b *T) int) {
	if len(s) <= 1 {
		return
	}
	if len(*scratch) < len(s) {
		*scratch = make([]T, len(s))
	}
	msortRec(s, *scratch, cmp)
}

func msortRec[T any](b, tmp []T, cmp func(a, b *T) int) {
	n := len(b)
	if n <= 1 {
		return
	}
	n1 := n / 2
	b1, b2 := b[:n1], b[n1:]
	msortRec(b1, tmp, cmp)
	msortRec(b2, tmp, cmp)
	i, j, k := 0, 0, 0
	for i < len(b1) && j < len(b2) {
		if cmp(&b1[i], &b2[j]) <= 0 {
			tmp[k] = b1[i]
			i++
		} else {
			tmp[k] = b2[j]
			j++
		}
		k++
	}
	for i < len(b1) {
		tmp[k] = b1[i]
		i++
		k++
	}
	// The rest of b2 is already in place.
	copy(b, tmp[:k])
}

// addrWords returns the address as ipvsadm's union nf_inet_addr holds it,
// in host order words: IPv4 in the first word, the rest zero.
func addrWords(a netip.Addr) [4]uint32 {
	var w [4]uint32
	if !a.IsValid() {
		return w
	}
	if a.Is4() {
		b := a.As4()
		w[0] = uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		return w
	}
	b := a.As16()
	for i := range w {
		w[i] = uint32(b[4*i])<<24 | uint32(b[4*i+1])<<16 | uint32(b[4*i+2])<<8 | uint32(b[4*i+3])
	}
	return w
}

// cmpAddr compares as libipvs does: word differences truncated to int,
// on all four words when af is IPv6, else on the first.
func cmpAddr(af uint16, a, b netip.Addr) int {
	wa, wb := addrWords(a), addrWords(b)
	if af == afInet6 {
		r := 0
		for i := 0; r == 0 && i < 4; i++ {
			r = int(int32(wa[i] - wb[i]))
		}
		return r
	}
	return int(int32(wa[0] - wb[0]))
}

// cmpServices is libipvs's ipvs_cmp_services.
func cmpServices(s1, s2 *service) int {
	if r := int(int32(s1.FWMark - s2.FWMark)); r != 0 {
		return r
	}
	if r := int(s1.AF) - int(s2.AF); r != 0 {
		return r
	}
	if r := int(s1.Protocol) - int(s2.Protocol); r != 0 {
		return r
	}
	if r := cmpAddr(s1.AF, s1.Addr, s2.Addr); r != 0 {
		return r
	}
	return int(s1.Port) - int(s2.Port)
}

// cmpDests is libipvs's ipvs_cmp_dests (the family of d1 picks the branch).
func cmpDests(d1, d2 *dest) int {
	if r := cmpAddr(d1.AF, d1.Addr, d2.Addr); r != 0 {
		return r
	}
	return int(d1.Port) - int(d2.Port)
}
