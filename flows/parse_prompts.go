package flows

// PlayPrompt and GetCustomerInput settings.

import (
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

func (k *blk) prompts(required bool) []Value {
	var n *yaml.Node
	if required {
		n = k.required("prompts")
	} else {
		n = k.vals["prompts"]
	}
	if n == nil {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		k.errf(n.Line, "prompts: want a list of media URIs, got %s", kindName(n))
		return nil
	}
	if len(n.Content) == 0 && required {
		k.errf(n.Line, "prompts: must list at least one media URI")
	}
	var out []Value
	for _, it := range n.Content {
		if v, ok := k.valueNode(it, "prompts", func(s string) (string, error) { return s, ValidateMediaURI(s) }); ok {
			out = append(out, v)
		}
	}
	return out
}

func (k *blk) input() *GetCustomerInput {
	in := &GetCustomerInput{Prompts: k.prompts(false)}
	in.MaxDigits = k.integer("max_digits", 1, 1, 64)
	in.Timeout = time.Duration(k.integer("timeout", 5, 1, 120)) * time.Second
	if s, line, ok := k.str("terminator"); ok {
		if len(s) != 1 || !strings.Contains("0123456789*#", s) {
			k.errf(line, "terminator: want one of 0-9 * #, got %q", s)
		} else {
			in.Terminator = s
		}
	}
	if s, line, ok := k.str("store_as"); ok {
		if !ValidKey(s) {
			k.errf(line, "store_as: %q is not a valid attribute key (A-Z a-z 0-9 _ . -)", s)
		} else {
			in.StoreAs = s
		}
	}
	if n := k.vals["values"]; n != nil {
		if n.Kind != yaml.SequenceNode {
			k.errf(n.Line, "values: want a list of digit strings, got %s", kindName(n))
			return in
		}
		seen := map[string]bool{}
		for _, it := range n.Content {
			s, ok := k.p.scalar(it, fmt.Sprintf("block %q: values", k.b.ID), "a digit string")
			if !ok {
				continue
			}
			switch {
			case !inputValueRE.MatchString(s):
				k.errf(it.Line, "values: %q may only hold 0-9 * #", s)
			case len(s) > in.MaxDigits:
				k.errf(it.Line, "values: %q is longer than max_digits %d", s, in.MaxDigits)
			case in.Terminator != "" && strings.Contains(s, in.Terminator):
				k.errf(it.Line, "values: %q contains the terminator %q", s, in.Terminator)
			case seen[s]:
				k.errf(it.Line, "values: %q listed twice", s)
			default:
				seen[s] = true
				in.Values = append(in.Values, s)
			}
		}
	}
	return in
}
