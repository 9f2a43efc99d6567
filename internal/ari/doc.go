// Package ari is ariflow's ARI wire layer: every REST request ariflow sends
// to Asterisk and the event websocket it reads, in one place, on an
// http.Client of its own whose plain-HTTP transport writes and reads each
// request on the goroutine that sends it (transport.go).
//
// The types (events, channel and bridge data, the originate request) are
// those of github.com/CyCoreSystems/ari/v6, re-exported here so that the
// controller imports one package. The transport is hand-rolled, for reasons
// measured against the pinned library commit:
//   - its event bus drops events once 100 are buffered for a subscriber and
//     does not tell a subscriber that the websocket reconnected; a lost
//     ChannelDestroyed leaks a call and a reconnect needs a reconcile;
//   - its REST calls have no deadline (they use a client without timeouts),
//     and a stalled Asterisk would hold a call's goroutine for ever;
//   - Bridge().AddChannel(key, "a,b") sends the list as one channel in a
//     JSON body, which ARI refuses (400), so adding both legs of a call
//     would take two requests;
//   - its event decoder reads every message twice and every channel in full,
//     once the largest part of ariflow's CPU time under load (decode.go
//     reads only the fields used).
//
// The library's OriginateRequest does carry Variables at this commit and is
// used as the originate body.
package ari
