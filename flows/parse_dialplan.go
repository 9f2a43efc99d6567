package flows

import (
	"strings"
)

// TransferToAgent and SetWorkingQueue settings: the blocks that hand the
// caller to an endpoint or to the dialplan.

func (k *blk) agent() *TransferToAgent {
	region := k.p.opts.DefaultRegion
	a := &TransferToAgent{}
	_, hasEndpoint := k.vals["endpoint"]
	_, hasContext := k.vals["context"]
	_, hasExten := k.vals["extension"]
	switch {
	case hasEndpoint && (hasContext || hasExten):
		k.errf(k.b.Line, "set either endpoint or context and extension, not both")
	case !hasEndpoint && !hasContext && !hasExten:
		k.errf(k.b.Line, "missing required setting \"endpoint\" (or \"context\" and \"extension\")")
	case !hasEndpoint && !hasExten:
		k.errf(k.b.Line, "missing required setting \"extension\"")
	case !hasEndpoint && !hasContext:
		k.errf(k.b.Line, "missing required setting \"context\"")
	}
	a.Endpoint = k.value("endpoint", func(s string) (string, error) {
		ep, _, err := ParseEndpoint(s, region, k.p.opts.EndpointTechs)
		return ep, err
	})
	if n := k.vals["timeout"]; n != nil && !hasEndpoint {
		k.errf(n.Line, "timeout: only applies with endpoint")
	}
	a.Timeout = k.value("timeout", checkTransferTimeout)
	for _, name := range []string{"context", "extension"} {
		if s, line, ok := k.str(name); ok {
			if !dialplanRE.MatchString(s) {
				k.errf(line, "%s: %q may only hold A-Z a-z 0-9 + * # _ . -", name, s)
				continue
			}
			if name == "context" {
				a.Context = s
			} else {
				a.Extension = s
			}
		}
	}
	if n := k.vals["priority"]; n != nil && !hasContext {
		k.errf(n.Line, "priority: only applies with context and extension")
	}
	if hasContext {
		a.Priority = k.integer("priority", 1, 1, 99999)
	}
	a.DialVia = k.dialVia()
	if n := k.vals["dial_via"]; n != nil && !hasEndpoint {
		k.errf(n.Line, "dial_via: only applies with endpoint")
	}
	return a
}

// MaxQueueName bounds a working queue's name.
const MaxQueueName = 128

func (k *blk) setQueue() *SetWorkingQueue {
	q := &SetWorkingQueue{Priority: 1}
	for _, name := range []string{"queue", "context", "extension"} {
		if k.required(name) == nil {
			continue
		}
		s, line, ok := k.str(name)
		if !ok {
			continue
		}
		switch {
		case name == "queue" && (strings.TrimSpace(s) == "" || len(s) > MaxQueueName || strings.IndexFunc(s, isControl) >= 0):
			k.errf(line, "queue: %q: want 1..%d bytes of text without control characters", s, MaxQueueName)
		case name == "queue":
			q.Name = s
		case !dialplanRE.MatchString(s):
			k.errf(line, "%s: %q may only hold A-Z a-z 0-9 + * # _ . -", name, s)
		case name == "context":
			q.Context = s
		default:
			q.Extension = s
		}
	}
	q.Priority = k.integer("priority", 1, 1, 99999)
	return q
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }
