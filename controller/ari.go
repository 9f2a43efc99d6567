package controller

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// The REST calls on a call's path, sent through do: each is bounded by the
// request's context and costs no goroutine of its own, unlike wrapping the
// library's calls (which have no deadline) in one. Paths and parameters are
// ARI's.

func chanPath(id string) string { return "/channels/" + url.PathEscape(id) }

func (a *App) answer(ctx context.Context, id string) error {
	return a.do(ctx, http.MethodPost, chanPath(id)+"/answer", nil)
}

func (a *App) ring(ctx context.Context, id string) error {
	return a.do(ctx, http.MethodPost, chanPath(id)+"/ring", nil)
}

func (a *App) stopRing(ctx context.Context, id string) error {
	return a.do(ctx, http.MethodDelete, chanPath(id)+"/ring", nil)
}

func (a *App) play(ctx context.Context, id, playbackID, media string) error {
	q := url.Values{"media": {media}}
	return a.do(ctx, http.MethodPost, chanPath(id)+"/play/"+url.PathEscape(playbackID)+"?"+q.Encode(), nil)
}

func (a *App) stopPlayback(ctx context.Context, playbackID string) error {
	return a.do(ctx, http.MethodDelete, "/playbacks/"+url.PathEscape(playbackID), nil)
}

func (a *App) sendDTMF(ctx context.Context, id, digits string, between, duration time.Duration) error {
	q := url.Values{"dtmf": {digits},
		"between":  {strconv.Itoa(int(between / time.Millisecond))},
		"duration": {strconv.Itoa(int(duration / time.Millisecond))}}
	return a.do(ctx, http.MethodPost, chanPath(id)+"/dtmf?"+q.Encode(), nil)
}

func (a *App) continueDialplan(ctx context.Context, id, dpContext, ext string, prio int) error {
	q := url.Values{}
	if dpContext != "" {
		q.Set("context", dpContext)
		q.Set("extension", ext)
		q.Set("priority", strconv.Itoa(prio))
	}
	return a.do(ctx, http.MethodPost, chanPath(id)+"/continue?"+q.Encode(), nil)
}

func (a *App) channelExists(ctx context.Context, id string) (bool, error) {
	err := a.do(ctx, http.MethodGet, chanPath(id), nil)
	if isNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

func (a *App) createBridge(ctx context.Context, id, name string) error {
	q := url.Values{"type": {"mixing"}, "name": {name}}
	return a.do(ctx, http.MethodPost, "/bridges/"+url.PathEscape(id)+"?"+q.Encode(), nil)
}

// hangup and destroyBridge treat "already gone" (404) as done.
func (a *App) hangup(ctx context.Context, id, reason string) error {
	err := a.do(ctx, http.MethodDelete, chanPath(id)+"?"+url.Values{"reason": {reason}}.Encode(), nil)
	if err != nil && !isNotFound(err) {
		return err
	}
	return nil
}

func (a *App) destroyBridge(ctx context.Context, id string) error {
	err := a.do(ctx, http.MethodDelete, "/bridges/"+url.PathEscape(id), nil)
	if err != nil && !isNotFound(err) {
		return err
	}
	return nil
}
