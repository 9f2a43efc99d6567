package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ariflow/ariflow/flows"
	"github.com/ariflow/ariflow/internal/webhook"
)

// webhookRequest is what a webhook receives.
type webhookRequest struct {
	CallID     string           `json:"call_id"`
	Flow       string           `json:"flow"`
	Block      string           `json:"block"`
	Attributes flows.Attributes `json:"attributes"`
}

const maxWebhookBody = 1 << 20

// DefaultMaxExternal bounds what a call keeps of a webhook's answer as
// $.External (Config.MaxExternal): the bytes of its keys and values. The
// record, $.External in it, is written to Redis at every save (once per
// DTMF digit of a transfer) and sent with every later webhook, so a call
// keeps a few dozen fields of order data, not the 1 MiB a response may
// have.
const DefaultMaxExternal = 32 << 10

// invokeWebhook POSTs the contact and turns the JSON object it gets back
// into $.External attributes, replacing the previous webhook's.
func (c *call) invokeWebhook(ctx context.Context, w *flows.InvokeWebhook) (string, error) {
	timeout := w.Timeout
	if timeout <= 0 {
		timeout = 3 * time.Second
	}
	body, err := json.Marshal(webhookRequest{CallID: c.id, Flow: c.rec.Flow, Block: c.rec.Block, Attributes: c.rec.Attributes})
	if err != nil {
		return "", fmt.Errorf("webhook request: %w", err)
	}
	// ariflow's own webhook client: no redirects followed, the host list
	// and the signature from the configuration, the block's timeout the
	// only bound (nothing shorter underneath), the body size bounded.
	// Errors are logged: the URL in them is redacted (user info, query
	// values), as the client's own errors are.
	status, raw, err := c.app.cfg.Webhooks.Post(c.obs.block.Context(ctx), w.URL, body, timeout) // with the block's traceparent
	if err != nil {
		return "", fmt.Errorf("webhook %s: %w", webhook.RedactURL(w.URL), err)
	}
	if status < 200 || status > 299 {
		return "", fmt.Errorf("webhook %s answered %d", webhook.RedactURL(w.URL), status)
	}
	ext, err := webhookAttributes(raw)
	if err != nil {
		return "", fmt.Errorf("webhook %s: %w", webhook.RedactURL(w.URL), err)
	}
	if n := attributesSize(ext); n > c.app.cfg.MaxExternal {
		// Error, and $.External stays what it was.
		return "", fmt.Errorf("webhook %s: %w: %d bytes of keys and values, at most %d (-max-external-bytes)",
			webhook.RedactURL(w.URL), errExternalTooLarge, n, c.app.cfg.MaxExternal)
	}
	c.rec.Attributes[flows.NSExternal] = ext
	return flows.BranchSuccess, nil
}

// errExternalTooLarge: a webhook answered more than a call keeps.
var errExternalTooLarge = errors.New("answer too large to keep as $.External")

// attributesSize is the bytes of an attribute map's keys and values.
func attributesSize(m map[string]string) int {
	n := 0
	for k, v := range m {
		n += len(k) + len(v)
	}
	return n
}

// webhookAttributes flattens a JSON object's top-level fields to strings;
// nested values keep their JSON text.
func webhookAttributes(raw []byte) (map[string]string, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fmt.Errorf("response is not a JSON object: %w", err)
	}
	if obj == nil { // the body was "null"
		return nil, fmt.Errorf("response is not a JSON object: null")
	}
	out := make(map[string]string, len(obj))
	for k, v := range obj {
		t := bytes.TrimSpace(v)
		switch {
		case string(t) == "null":
			// absent, not ""
		case len(t) > 0 && t[0] == '"':
			var s string
			if err := json.Unmarshal(t, &s); err != nil {
				return nil, fmt.Errorf("field %q: %w", k, err)
			}
			out[k] = s
		default:
			// Numbers keep their text: a tracking number sent as a JSON
			// number must not pass through float64. Objects, arrays and
			// booleans keep their JSON.
			out[k] = string(t)
		}
	}
	return out, nil
}
