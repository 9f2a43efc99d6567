package flows

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxLoopCount is the largest Loop count, as in Amazon Connect.
const MaxLoopCount = 100

// ErrInvalidLoopCount is wrapped by ParseLoopCount.
var ErrInvalidLoopCount = errors.New("invalid loop count")

// ParseLoopCount reads a Loop's count: a whole number 0..MaxLoopCount.
func ParseLoopCount(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%w %q: want a whole number 0..%d", ErrInvalidLoopCount, s, MaxLoopCount)
	}
	if n < 0 || n > MaxLoopCount {
		return 0, fmt.Errorf("%w: %d is out of range 0..%d", ErrInvalidLoopCount, n, MaxLoopCount)
	}
	return n, nil
}

// Next is one run of the Loop block: done is how many times it has taken
// ContinueLooping since it last took DoneLooping. It returns the branch
// and the new count to keep (0 after DoneLooping: the next run starts
// afresh). A count from an attribute that is missing or not 0..100 is an
// error: the block takes Error and the count it kept stays.
func (l *Loop) Next(a Attributes, done int) (branch string, next int, err error) {
	raw, err := Resolve(l.Count, a)
	if err != nil {
		return "", done, fmt.Errorf("loop count: %w", err)
	}
	count, err := ParseLoopCount(raw)
	if err != nil {
		return "", done, err
	}
	if done < count {
		return BranchContinueLooping, done + 1, nil
	}
	return BranchDoneLooping, 0, nil
}
