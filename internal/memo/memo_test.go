package memo

import (
	"sync"
	"testing"
)

func TestGetComputesOncePerKey(t *testing.T) {
	calls := map[int]int{}
	m := New(10, func(k int) int { calls[k]++; return k * k })
	for range 3 {
		for k := range 5 {
			if got := m.Get(k); got != k*k {
				t.Fatalf("Get(%d) = %d", k, got)
			}
		}
	}
	for k := range 5 {
		if calls[k] != 1 {
			t.Errorf("f(%d) ran %d times; want once", k, calls[k])
		}
	}
}

func TestGetStaysBounded(t *testing.T) {
	m := New(4, func(k int) int { return k })
	for k := range 100 {
		m.Get(k)
		if n := m.Len(); n > 4 {
			t.Fatalf("%d keys remembered after %d; at most 4", n, k+1)
		}
	}
	if got := m.Get(7); got != 7 {
		t.Errorf("Get(7) after clearing = %d", got)
	}
}

func TestGetConcurrently(t *testing.T) {
	m := New(8, func(k int) int { return k + 1 })
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 50 {
				if got := m.Get((k + g) % 12); got != (k+g)%12+1 {
					t.Errorf("Get = %d", got)
				}
			}
		}()
	}
	wg.Wait()
}
