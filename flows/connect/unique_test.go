package connect

import (
	"fmt"
	"strings"
	"testing"
)

// collidingFlow is a flow of n actions whose identifiers are UUIDs sharing
// their first 8 characters, so that every block id is "say_0218ffce"
// before uniqueID makes it unique.
func collidingFlow(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"Version": "2019-10-30", "StartAction": "0218ffce-0000-4000-8000-000000000000", "Actions": [`)
	for i := 0; i < n; i++ {
		next := "z"
		if i+1 < n {
			next = fmt.Sprintf("0218ffce-0000-4000-8000-%012d", i+1)
		}
		fmt.Fprintf(&b, `{"Identifier": "0218ffce-0000-4000-8000-%012d", "Type": "MessageParticipant", "Parameters": {"Text": "Hello"}, "Transitions": {"NextAction": %q}},`, i, next)
	}
	b.WriteString(`{"Identifier": "z", "Type": "DisconnectParticipant", "Parameters": {}, "Transitions": {}}]}`)
	return []byte(b.String())
}

// BenchmarkConvertCollidingIDs shows the import's cost per action does
// not grow with the number of actions whose block ids collide: ns/op
// divided by the action count stays flat from 500 to 8000 actions.
func BenchmarkConvertCollidingIDs(b *testing.B) {
	for _, n := range []int{500, 2000, 8000} {
		data := collidingFlow(n)
		b.Run(fmt.Sprintf("actions=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for i := 0; i < b.N; i++ {
				if _, err := Convert(data, Options{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/action")
		})
	}
}

// Block ids stay unique, in the order actions come, and n colliding ids
// cost about n probes: the allocator does not rescan the suffixes it gave.
func TestUniqueIDsLinear(t *testing.T) {
	u := newIDs()
	for _, tc := range []struct{ in, want string }{
		{"x", "x"}, {"x", "x_2"}, {"x_3", "x_3"}, {"x", "x_4"}, {"", "action"}, {"", "action_2"},
	} {
		if got := u.unique(tc.in); got != tc.want {
			t.Errorf("unique(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	const n = 20000
	u = newIDs()
	for i := 0; i < n; i++ {
		u.unique("say_0218ffce")
	}
	if u.probes > 2*n {
		t.Errorf("%d colliding ids took %d probes, want at most %d (linear)", n, u.probes, 2*n)
	}
}
