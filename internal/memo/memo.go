// Package memo keeps the results of pure, costly functions of short keys,
// such as the analysis of a phone number: the same numbers come back
// call after call, and analysing one costs far more than looking it up.
package memo

import "sync"

// Map remembers f(k) for up to max keys. When full it starts afresh: the
// memory stays bounded whatever the keys (numbers a caller typed, say),
// and the numbers in daily use are back after one miss each.
type Map[K comparable, V any] struct {
	mu  sync.Mutex
	m   map[K]V
	max int
	f   func(K) V
}

// New returns a Map of f for up to max keys. f must be pure: its result
// depends on k alone.
func New[K comparable, V any](max int, f func(K) V) *Map[K, V] {
	return &Map[K, V]{m: make(map[K]V), max: max, f: f}
}

// Get returns f(k), computed once per key while it is remembered. f runs
// outside the lock: two goroutines may compute the same key at once.
func (c *Map[K, V]) Get(k K) V {
	c.mu.Lock()
	v, ok := c.m[k]
	c.mu.Unlock()
	if ok {
		return v
	}
	v = c.f(k)
	c.mu.Lock()
	if len(c.m) >= c.max {
		clear(c.m)
	}
	c.m[k] = v
	c.mu.Unlock()
	return v
}

// Len is how many keys are remembered.
func (c *Map[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
