package flows

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// ErrMissingAttribute is wrapped by Resolve when a referenced attribute is
// absent or empty, so the engine can take the Error branch.
var ErrMissingAttribute = errors.New("missing attribute")

// ErrBadRef is wrapped by ParseRef for malformed references.
var ErrBadRef = errors.New("bad attribute reference")

var keyRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// ValidKey reports whether k may be used as an attribute key.
func ValidKey(k string) bool { return len(k) <= 128 && keyRE.MatchString(k) }

// ParseRef parses "$.<Namespace>.<Key>".
func ParseRef(s string) (Ref, error) {
	rest, ok := strings.CutPrefix(s, "$.")
	if !ok {
		return Ref{}, fmt.Errorf("%w %q: must start with \"$.\"", ErrBadRef, s)
	}
	ns, key, _ := strings.Cut(rest, ".")
	switch Namespace(ns) {
	case NSAttributes, NSExternal, NSSystem, NSTransfer, NSQueue:
	default:
		return Ref{}, fmt.Errorf("%w %q: unknown namespace %q (want Attributes, External, System, Transfer or Queue)", ErrBadRef, s, ns)
	}
	if key == "" {
		return Ref{}, fmt.Errorf("%w %q: empty key", ErrBadRef, s)
	}
	if !ValidKey(key) {
		return Ref{}, fmt.Errorf("%w %q: key may only hold A-Z a-z 0-9 _ . -", ErrBadRef, s)
	}
	return Ref{Namespace: Namespace(ns), Key: key}, nil
}

// ParseValue turns a setting into a Value: a reference when it starts with
// "$.", a literal otherwise.
func ParseValue(s string) (Value, error) {
	if !strings.HasPrefix(s, "$.") {
		return Value{Literal: s}, nil
	}
	r, err := ParseRef(s)
	if err != nil {
		return Value{}, err
	}
	return Value{Ref: &r}, nil
}

// String gives the literal or the reference text.
func (v Value) String() string {
	if v.Ref != nil {
		return v.Ref.String()
	}
	return v.Literal
}

// Get returns the attribute r points at; ok is false when it is not set.
func (a Attributes) Get(r Ref) (string, bool) {
	v, ok := a[r.Namespace][r.Key]
	return v, ok
}

// Set writes one attribute, allocating the namespace map on first use.
func (a Attributes) Set(ns Namespace, key, val string) {
	m := a[ns]
	if m == nil {
		m = make(map[string]string)
		a[ns] = m
	}
	m[key] = val
}

// Clone returns a deep copy, so a snapshot can be stored while the flow
// keeps changing its attributes.
func (a Attributes) Clone() Attributes {
	if a == nil {
		return nil
	}
	c := make(Attributes, len(a))
	for ns, m := range a {
		cm := make(map[string]string, len(m))
		for k, v := range m {
			cm[k] = v
		}
		c[ns] = cm
	}
	return c
}

// Resolve returns the literal, or the referenced attribute's value, or a
// template's text with its references filled in (a missing one reads as
// nothing, as in text prompts). An absent or empty attribute referenced
// alone is an error wrapping ErrMissingAttribute.
func Resolve(v Value, a Attributes) (string, error) {
	if v.Template {
		return InterpolateText(v.Literal, a), nil
	}
	if v.Ref == nil {
		return v.Literal, nil
	}
	s, ok := a.Get(*v.Ref)
	if !ok || s == "" {
		return "", fmt.Errorf("%w: %s", ErrMissingAttribute, v.Ref)
	}
	return s, nil
}
