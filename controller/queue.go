package controller

import (
	"context"
	"errors"

	"github.com/ariflow/ariflow/flows"
	"github.com/ariflow/ariflow/record"
)

// errNoWorkingQueue: a TransferToQueue ran before any SetWorkingQueue.
var errNoWorkingQueue = errors.New("transfer to queue: no working queue set")

func (c *call) setWorkingQueue(q *flows.SetWorkingQueue) (string, error) {
	c.rec.Queue = &record.WorkingQueue{Name: q.Name, Context: q.Context, Extension: q.Extension, Priority: q.Priority}
	c.rec.Attributes.Set(flows.NSQueue, flows.QueueName, q.Name)
	return flows.BranchNext, nil
}

// transferToQueue hands the caller to the working queue's dialplan place,
// as TransferToAgent with a context does.
func (c *call) transferToQueue(ctx context.Context) (string, error) {
	q := c.rec.Queue
	if q == nil {
		return "", errNoWorkingQueue
	}
	c.log.WithField("queue", q.Name).Info("transfer to the working queue")
	return c.continueInDialplan(ctx, &flows.TransferToAgent{Context: q.Context, Extension: q.Extension, Priority: q.Priority})
}
