package flows

// Reading one block's settings: scalars, whole numbers, booleans,
// literal-or-reference values, lists and URLs, each error naming the
// block and the setting.

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// required reports a missing setting and returns its node otherwise.
func (k *blk) required(name string) *yaml.Node {
	n := k.vals[name]
	if n == nil {
		k.errf(k.b.Line, "missing required setting %q", name)
	}
	return n
}

func (k *blk) str(name string) (string, int, bool) {
	n := k.vals[name]
	if n == nil {
		return "", 0, false
	}
	s, ok := k.p.scalar(n, fmt.Sprintf("block %q: %s", k.b.ID, name), "a string")
	return s, n.Line, ok
}

// integer reads a whole-number setting; def when absent.
func (k *blk) integer(name string, def, min, max int) int {
	n := k.vals[name]
	if n == nil {
		return def
	}
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		k.errf(n.Line, "%s: want a whole number, got %s", name, kindName(n))
		return def
	}
	v, err := strconv.Atoi(n.Value)
	if err != nil {
		k.errf(n.Line, "%s: want a whole number, got %q", name, n.Value)
		return def
	}
	if v < min || v > max {
		k.errf(n.Line, "%s: %d is out of range %d..%d", name, v, min, max)
		return def
	}
	return v
}

func (k *blk) boolean(name string, def bool) bool {
	n := k.vals[name]
	if n == nil {
		return def
	}
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		k.errf(n.Line, "%s: want true or false, got %s", name, kindName(n))
		return def
	}
	v, err := strconv.ParseBool(strings.ToLower(n.Value))
	if err != nil {
		k.errf(n.Line, "%s: want true or false, got %q", name, n.Value)
		return def
	}
	return v
}

// value reads a literal-or-reference setting and checks a literal with
// check, which may normalise it.
func (k *blk) value(name string, check func(string) (string, error)) Value {
	n := k.vals[name]
	if n == nil {
		return Value{}
	}
	v, _ := k.valueNode(n, name, check)
	return v
}

// valueNode parses one literal-or-reference node; ok is false when it
// reported an error.
func (k *blk) valueNode(n *yaml.Node, what string, check func(string) (string, error)) (Value, bool) {
	s, ok := k.p.scalar(n, fmt.Sprintf("block %q: %s", k.b.ID, what), "a string or $.Namespace.key reference")
	if !ok {
		return Value{}, false
	}
	v, err := ParseValue(s)
	if err != nil {
		k.errf(n.Line, "%s: %v", what, err)
		return Value{}, false
	}
	if v.Ref == nil && check != nil {
		lit, err := check(v.Literal)
		if err != nil {
			k.errf(n.Line, "%s: %v", what, err)
			return Value{}, false
		}
		v.Literal = lit
	}
	return v, true
}

// list reads a list of literal-or-reference items, each checked like a
// single value, at most max of them.
func (k *blk) list(n *yaml.Node, name string, max int, check func(string) (string, error)) []Value {
	if len(n.Content) == 0 {
		k.errf(n.Line, "%s: the list is empty", name)
		return nil
	}
	if len(n.Content) > max {
		k.errf(n.Line, "%s: %d items, at most %d", name, len(n.Content), max)
		return nil
	}
	var out []Value
	for _, it := range n.Content {
		if v, ok := k.valueNode(it, name, check); ok {
			out = append(out, v)
		}
	}
	return out
}

// textValueNode reads a value that may be a text with references inside
// it ("$.Attributes.street $.Attributes.city", Amazon Connect's way of
// joining attributes): a template, filled in when the block runs. A value
// that is one reference, or a literal without any, reads as valueNode.
func (k *blk) textValueNode(n *yaml.Node, what string) (Value, bool) {
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		if _, err := ParseRef(n.Value); err != nil && len(TextRefs(n.Value)) > 0 {
			return Value{Literal: n.Value, Template: true}, true
		}
	}
	return k.valueNode(n, what, nil)
}

// httpURL reads a static absolute http(s) URL setting ("" when absent or
// invalid, with the error reported).
func (k *blk) httpURL(name string) string {
	s, line, ok := k.str(name)
	if !ok {
		return ""
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		k.errf(line, "%s: %v", name, err)
	case u.Scheme != "http" && u.Scheme != "https":
		k.errf(line, "%s: %q must be an absolute http or https URL", name, s)
	case u.Host == "":
		k.errf(line, "%s: %q has no host", name, s)
	default:
		return s
	}
	return ""
}
