// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

//go:build vmtest

package synproxy

import (
	"os"
	"strconv"
)

// floodCount is the number of packets a large flood sends: n, or n / $RIG_DEBUG_FLOOD_DIVISOR
// (default 10) on the rig's sanitizer kernel (RIG_DEBUG=1), where KASAN and lockdep under
// TCG make every packet many times slower. The checks stay the same, only the volume shrinks.
func floodCount(n int) int {
	if os.Getenv("RIG_DEBUG") != "1" {
		return n
	}
	d, err := strconv.Atoi(os.Getenv("RIG_DEBUG_FLOOD_DIVISOR"))
	if err != nil || d < 1 {
		d = 10
	}
	return n / d
}
