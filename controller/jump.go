package controller

import (
	"context"
	"errors"
	"fmt"

	"github.com/sirupsen/logrus"

	"github.com/ariflow/ariflow/flows"
)

// errContinuesInFlow: a TransferToFlow block moved the call to another
// flow; runFlow goes on at that flow's start block.
var errContinuesInFlow = errors.New("call continues in another flow")

// transferToFlow moves the call to the start of another flow of the
// loaded set, with its attributes, working queue and loop counts. The
// record then names that flow and block, so a process taking the call over
// finds the flow by name and goes on there.
func (c *call) transferToFlow(ctx context.Context, j *flows.TransferToFlow) (string, error) {
	f, ok := c.app.Flows().Flow(j.Flow)
	if !ok {
		// Validated when the set loaded; a reload can have dropped it since.
		return "", fmt.Errorf("transfer to flow %q: no such flow loaded", j.Flow)
	}
	if _, ok := f.Blocks[f.Start]; !ok {
		return "", fmt.Errorf("transfer to flow %q: no start block %q", j.Flow, f.Start)
	}
	from := c.flow.Name
	c.flow = f
	c.rec.Flow, c.rec.Version, c.rec.Digest, c.rec.Block = f.Name, f.Version, f.Digest, f.Start
	c.rec.ListNext = 0
	c.log = c.log.WithFields(logrus.Fields{"flow": f.Name, "version": f.Version})
	c.log.WithFields(logrus.Fields{"from_flow": from, "step": f.Start}).Info("call continues in another flow")
	// The new position is written at once, not only by the next block that
	// saves: a takeover meanwhile would start the TransferToFlow again,
	// which is harmless, but the record should say where the call is.
	if err := c.save(ctx); err != nil {
		if errors.Is(err, ErrFenced) {
			return "", err
		}
		c.log.WithError(err).Warn("saving the call in its new flow failed; the next block writes it")
	}
	return "", errContinuesInFlow
}
