package controller

import (
	"github.com/ariflow/ariflow/flows"
)

func (c *call) setAttributes(s *flows.SetAttributes) (string, error) {
	for _, as := range s.Set {
		v, err := flows.Resolve(as.Value, c.rec.Attributes)
		if err != nil {
			return "", err
		}
		c.rec.Attributes.Set(flows.NSAttributes, as.Key, v)
	}
	return flows.BranchNext, nil
}
