package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestGraph(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		prefix string
	}{
		{[]string{"../../flows/examples/shipping.yaml"}, "flowchart TD\n"},
		{[]string{"-format", "mermaid", "../../flows/examples/shipping.yaml"}, "flowchart TD\n"},
		{[]string{"-format", "dot", "../../flows/examples/shipping.yaml"}, "digraph \"shipping\" {\n"},
		// A set: every flow, a subgraph each.
		{[]string{"../../flows/examples"}, "flowchart TD\n    subgraph s0[\"hello v1\"]\n"},
		{[]string{"-format", "dot", "../../flows/examples/hello.yaml", "../../flows/examples/shipping.yaml"}, "digraph flows {\n"},
	} {
		var out, errb bytes.Buffer
		if code := runGraph(tc.args, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), tc.prefix) {
			t.Errorf("%v: code %d, stdout %q, stderr %q", tc.args, code, out.String(), errb.String())
		}
	}
}

func TestGraphErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "usage"},
		{[]string{"a.yaml", "b.yaml"}, 1, "a.yaml: stat: no such file"},
		{[]string{"-format", "png", "../../flows/examples/shipping.yaml"}, 2, `unknown format "png"`},
		{[]string{"../../flows/testdata/broken/loop.yaml"}, 1, "loop.yaml:6:"},
	} {
		var out, errb bytes.Buffer
		code := runGraph(tc.args, &out, &errb)
		if code != tc.code || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: code %d, stderr %q; want %d, %q", tc.args, code, errb.String(), tc.code, tc.want)
		}
	}
}
