package ari

import (
	"context"
	"net/http"
	"net/url"
)

// Variable reads a channel variable or dialplan function, such as
// PJSIP_HEADER(read,traceparent) for a header of the caller's INVITE
// (GET /channels/{id}/variable). Asterisk answers 404 for a variable
// that is not set, and an error for a function the channel's technology
// does not have.
func (c *Client) Variable(ctx context.Context, id, name string) (string, error) {
	var v struct {
		Value string `json:"value"`
	}
	q := url.Values{"variable": {name}}
	err := c.do(ctx, http.MethodGet, chanPath(id)+"/variable?"+q.Encode(), nil, &v, again)
	return v.Value, err
}

// SetVariable sets a channel variable or dialplan function on a channel
// in Stasis (POST /channels/{id}/variable).
func (c *Client) SetVariable(ctx context.Context, id, name, value string) error {
	q := url.Values{"variable": {name}, "value": {value}}
	return c.do(ctx, http.MethodPost, chanPath(id)+"/variable?"+q.Encode(), nil, nil, again)
}
