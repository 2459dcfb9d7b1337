// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package benchdata

import (
	"reflect"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	in := Record{Kernel: "6.12", Suite: "dataplane", Name: "ours-FULLNAT", Values: map[string]float64{"cps": 640.5, "get_mbps": 24.5, "pps": 0}}
	line := Format(in)
	if want := "BENCHDATA kernel=6.12 suite=dataplane name=ours-FULLNAT cps=640.5 get_mbps=24.5 pps=0"; line != want {
		t.Fatalf("Format = %q, want %q", line, want)
	}
	log := "[   3.2] IPVS: loaded\nBENCH people's line\n" + line + "\nrig: 6.12 done\n"
	got, err := Parse(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !reflect.DeepEqual(got[0], in) {
		t.Fatalf("Parse = %+v, want [%+v]", got, in)
	}
}

func TestParseErrors(t *testing.T) {
	for _, bad := range []string{
		"BENCHDATA kernel=6.1 suite=x name=y cps",
		"BENCHDATA kernel=6.1 suite=x name=y cps=fast",
		"BENCHDATA kernel=6.1 name=y cps=1",
		"BENCHDATA kernel=6.1 suite=x name=y =1",
	} {
		if _, err := Parse(strings.NewReader("ok\n" + bad + "\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
			t.Errorf("Parse(%q) = %v, want an error naming line 2", bad, err)
		}
	}
}
