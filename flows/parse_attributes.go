package flows

// SetAttributes, CheckAttribute and InvokeWebhook settings: the blocks
// that set and test attributes ($.External is the webhook's answer).

import (
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// conditionKeys are the keys of one CheckAttribute condition.
var conditionKeys = []string{"op", "value", "branch"}

var operators = []Operator{OpEquals, OpNotEquals, OpContains, OpLessThan, OpLessOrEq, OpGreaterThan, OpGreaterOrEq, OpIsSet}

func (k *blk) setAttrs() *SetAttributes {
	sa := &SetAttributes{}
	n := k.required("set")
	if n == nil {
		return sa
	}
	if n.Kind != yaml.MappingNode {
		k.errf(n.Line, "set: want a mapping of attribute key to value, got %s", kindName(n))
		return sa
	}
	if len(n.Content) == 0 {
		k.errf(n.Line, "set: must set at least one attribute")
	}
	for _, kv := range k.p.pairs(n, fmt.Sprintf("block %q: set: ", k.b.ID)) {
		key := kv[0].Value
		if !ValidKey(key) {
			k.errf(kv[0].Line, "set: %q is not a valid attribute key (A-Z a-z 0-9 _ . -)", key)
			continue
		}
		if v, ok := k.textValueNode(kv[1], "set: "+key); ok {
			sa.Set = append(sa.Set, Assignment{Key: key, Value: v})
		}
	}
	return sa
}

func (k *blk) check() *CheckAttribute {
	c := &CheckAttribute{}
	if n := k.required("attribute"); n != nil {
		if s, ok := k.p.scalar(n, fmt.Sprintf("block %q: attribute", k.b.ID), "a $.Namespace.key reference"); ok {
			if r, err := ParseRef(s); err != nil {
				k.errf(n.Line, "attribute: %v", err)
			} else {
				c.Attribute = r
			}
		}
	}
	n := k.required("conditions")
	if n == nil {
		return c
	}
	if n.Kind != yaml.SequenceNode {
		k.errf(n.Line, "conditions: want a list of {op, value, branch}, got %s", kindName(n))
		return c
	}
	if len(n.Content) == 0 {
		k.errf(n.Line, "conditions: must list at least one condition")
	}
	for i, it := range n.Content {
		c.Conditions = append(c.Conditions, k.condition(i+1, it))
	}
	return c
}

func (k *blk) condition(num int, n *yaml.Node) Condition {
	var cond Condition
	what := fmt.Sprintf("condition %d", num)
	if n.Kind != yaml.MappingNode {
		k.errf(n.Line, "%s: want a mapping {op, value, branch}, got %s", what, kindName(n))
		return cond
	}
	var valNode *yaml.Node
	var hasOp, hasBranch bool
	for _, kv := range k.p.pairs(n, fmt.Sprintf("block %q: %s: ", k.b.ID, what)) {
		key, v := kv[0], kv[1]
		switch key.Value {
		case "op":
			hasOp = true
			s, ok := k.p.scalar(v, fmt.Sprintf("block %q: %s: op", k.b.ID, what), "an operator")
			if !ok {
				continue
			}
			if !contains(operators, Operator(s)) {
				k.errf(v.Line, "%s: unknown op %q (want one of %s)", what, s, opList())
				continue
			}
			cond.Op = Operator(s)
		case "value":
			valNode = v
		case "branch":
			hasBranch = true
			s, ok := k.p.scalar(v, fmt.Sprintf("block %q: %s: branch", k.b.ID, what), "a branch name")
			if !ok {
				continue
			}
			if !branchNameRE.MatchString(s) {
				k.errf(v.Line, "%s: branch %q may only hold A-Z a-z 0-9 _ -", what, s)
				continue
			}
			cond.Branch = s
		default:
			k.errf(key.Line, "%s: unknown key %q (want op, value, branch)", what, key.Value)
		}
	}
	if !hasOp {
		k.errf(n.Line, "%s: missing op", what)
	}
	if !hasBranch {
		k.errf(n.Line, "%s: missing branch", what)
	}
	switch {
	case cond.Op == OpIsSet && valNode != nil:
		k.errf(valNode.Line, "%s: IsSet takes no value", what)
	case cond.Op != OpIsSet && cond.Op != "" && valNode == nil:
		k.errf(n.Line, "%s: missing value", what)
	case valNode != nil:
		var check func(string) (string, error)
		if numericOp(cond.Op) {
			check = func(s string) (string, error) {
				if _, ok := parseNumber(s); !ok {
					return "", fmt.Errorf("%s needs a number, got %q", cond.Op, s)
				}
				return s, nil
			}
		}
		cond.Operand, _ = k.valueNode(valNode, what+": value", check)
	}
	return cond
}

func opList() string {
	s := make([]string, len(operators))
	for i, o := range operators {
		s[i] = string(o)
	}
	return strings.Join(s, ", ")
}

func (k *blk) webhook() *InvokeWebhook {
	w := &InvokeWebhook{Timeout: time.Duration(k.integer("timeout", 3, 1, 30)) * time.Second, Idempotent: k.boolean("idempotent", false)}
	if k.required("url") == nil {
		return w
	}
	w.URL = k.httpURL("url")
	return w
}
