package flows

import (
	"fmt"
	"testing"
)

func TestStronglyConnected(t *testing.T) {
	for _, tc := range []struct {
		name  string
		roots []string
		edges map[string][]string
		want  string
	}{
		{"no edges", []string{"a", "b"}, nil, "[[a] [b]]"},
		{"a chain, sinks first", []string{"a"}, map[string][]string{"a": {"b"}, "b": {"c"}}, "[[c] [b] [a]]"},
		{"a self loop is its own component", []string{"a"}, map[string][]string{"a": {"a", "b"}}, "[[b] [a]]"},
		{"a cycle", []string{"a"}, map[string][]string{"a": {"b"}, "b": {"c"}, "c": {"a"}}, "[[c b a]]"},
		{"two cycles joined one way", []string{"a"},
			map[string][]string{"a": {"b"}, "b": {"a", "c"}, "c": {"d"}, "d": {"c"}}, "[[d c] [b a]]"},
		{"a root reached already is not walked again", []string{"a", "b"}, map[string][]string{"a": {"b"}}, "[[b] [a]]"},
		{"unreachable from the roots: left out", []string{"a"}, map[string][]string{"x": {"a"}}, "[[a]]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := stronglyConnected(tc.roots, func(n string) []string { return tc.edges[n] })
			if s := fmt.Sprint(got); s != tc.want {
				t.Errorf("got %s, want %s", s, tc.want)
			}
		})
	}
}
