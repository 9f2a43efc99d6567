package flows

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Evaluate returns the branch of the first matching condition, or NoMatch.
// Numeric operators compare as float64 and never match non-numbers; a
// missing attribute or operand compares as "".
func (c *CheckAttribute) Evaluate(a Attributes) (branch string, err error) {
	val, _ := a.Get(c.Attribute)
	for _, cond := range c.Conditions {
		operand := cond.Operand.Literal
		if cond.Operand.Ref != nil {
			operand, _ = a.Get(*cond.Operand.Ref)
		}
		ok, err := compare(cond.Op, val, operand)
		if err != nil {
			return "", err
		}
		if ok {
			return cond.Branch, nil
		}
	}
	return BranchNoMatch, nil
}

func compare(op Operator, val, operand string) (bool, error) {
	switch op {
	case OpEquals:
		return val == operand, nil
	case OpNotEquals:
		return val != operand, nil
	case OpContains:
		return strings.Contains(val, operand), nil
	case OpIsSet:
		return val != "", nil
	case OpLessThan, OpLessOrEq, OpGreaterThan, OpGreaterOrEq:
		x, ok1 := parseNumber(val)
		y, ok2 := parseNumber(operand)
		if !ok1 || !ok2 {
			return false, nil
		}
		switch op {
		case OpLessThan:
			return x < y, nil
		case OpLessOrEq:
			return x <= y, nil
		case OpGreaterThan:
			return x > y, nil
		default:
			return x >= y, nil
		}
	}
	return false, fmt.Errorf("unknown operator %q", op)
}

func numericOp(op Operator) bool {
	switch op {
	case OpLessThan, OpLessOrEq, OpGreaterThan, OpGreaterOrEq:
		return true
	}
	return false
}

// parseNumber accepts finite decimal numbers only ("NaN", "Inf" and hex
// forms are not numbers a caller could type or a webhook meant).
func parseNumber(s string) (float64, bool) {
	if s == "" || strings.ContainsAny(s, "xXpP_") {
		return 0, false
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// Branch picks the branch for collected digits. No digits (timed out, or
// only the terminator pressed) is Timeout. With Values, digits equal to a
// value take that value's branch and anything else NoMatch; without Values
// any digits take Success.
func (in *GetCustomerInput) Branch(digits string, timedOut bool) string {
	_ = timedOut // a partial entry cut short by the timeout is still evaluated
	if digits == "" {
		return BranchTimeout
	}
	if len(in.Values) == 0 {
		return BranchSuccess
	}
	for _, v := range in.Values {
		if v == digits {
			return v
		}
	}
	return BranchNoMatch
}

// requiredBranches lists the branches a GetCustomerInput can take, for the
// validator.
func (in *GetCustomerInput) requiredBranches() []string {
	if len(in.Values) == 0 {
		return []string{BranchSuccess, BranchTimeout}
	}
	out := append([]string(nil), in.Values...)
	return append(out, BranchNoMatch, BranchTimeout)
}
