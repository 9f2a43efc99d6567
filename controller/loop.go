package controller

import (
	"github.com/sirupsen/logrus"

	"github.com/ariflow/ariflow/flows"
)

// loopKey names a Loop block's count in the record: the same block id may
// be in several flows of the set.
func loopKey(flow, block string) string { return flow + "/" + block }

// loop runs a Loop block. Its count is call state, in the record: the
// block saves the record before it runs (savesBeforeActing), so a process
// taking over right after runs it again from the count written then, and
// the next block that saves writes the new count.
func (c *call) loop(b *flows.Block) (string, error) {
	key := loopKey(c.flow.Name, b.ID)
	branch, next, err := b.Loop.Next(c.rec.Attributes, c.rec.Loops[key])
	if err != nil {
		return "", err
	}
	if next == 0 {
		delete(c.rec.Loops, key)
	} else {
		if c.rec.Loops == nil {
			c.rec.Loops = map[string]int{}
		}
		c.rec.Loops[key] = next
	}
	c.log.WithFields(logrus.Fields{"step": b.ID, "loop_count": next, "branch": branch}).Debug("loop")
	return branch, nil
}
