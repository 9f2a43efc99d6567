package flows

import (
	"os"
	"strconv"
	"testing"
)

func BenchmarkResolve(b *testing.B) {
	a := Attributes{}
	a.Set(NSAttributes, "shipper", "+4930123456")
	v := Value{Ref: &Ref{NSAttributes, "shipper"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Resolve(v, a); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEvaluate(b *testing.B) {
	a := Attributes{}
	a.Set(NSAttributes, "x", "42")
	a.Set(NSAttributes, "limit", "40")
	c := &CheckAttribute{Attribute: Ref{NSAttributes, "x"}, Conditions: []Condition{
		{Op: OpEquals, Operand: Value{Literal: "1"}, Branch: "One"},
		{Op: OpContains, Operand: Value{Literal: "9"}, Branch: "Nine"},
		{Op: OpGreaterThan, Operand: Value{Ref: &Ref{NSAttributes, "limit"}}, Branch: "Big"},
	}}
	b.ReportAllocs()
	for b.Loop() {
		if br, _ := c.Evaluate(a); br != "Big" {
			b.Fatal(br)
		}
	}
}

func BenchmarkLoadShipping(b *testing.B) {
	data, err := os.ReadFile("examples/shipping.yaml")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse("shipping.yaml", data, LoadOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNormalizeNumber: a number seen before (agents, shippers and
// callers come back call after call) and numbers never seen, which the
// number analysis reads in full.
func BenchmarkNormalizeNumber(b *testing.B) {
	b.Run("seen", func(b *testing.B) {
		for b.Loop() {
			if _, err := NormalizeNumber("+4930111009", ""); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("new", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i++
			if _, err := NormalizeNumber("+4930"+strconv.Itoa(1000000+i%5000000), ""); err != nil {
				b.Fatal(err)
			}
		}
	})
}
