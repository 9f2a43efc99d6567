package policy

import (
	"strconv"
	"testing"
)

// BenchmarkCheckNumber: the default policy on a number seen before and on
// numbers never seen, which the number analysis reads in full.
func BenchmarkCheckNumber(b *testing.B) {
	p := Default()
	b.Run("seen", func(b *testing.B) {
		for b.Loop() {
			if err := p.CheckNumber("+4930111009"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("new", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i++
			if err := p.CheckNumber("+4930" + strconv.Itoa(1000000+i%5000000)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
