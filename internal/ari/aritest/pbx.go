package aritest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// route answers one authenticated REST request; s.mu is held.
func (s *Server) route(r *Request) (int, any) {
	seg := strings.Split(strings.Trim(r.Path, "/"), "/")
	m := r.Method
	notAllowed := func() (int, any) { return http.StatusMethodNotAllowed, errBody("Method Not Allowed") }
	switch {
	case len(seg) == 2 && seg[0] == "asterisk" && seg[1] == "info":
		if m != http.MethodGet {
			return notAllowed()
		}
		return http.StatusOK, map[string]any{
			"build":  map[string]string{"os": "Linux", "kernel": "", "machine": "x86_64", "options": "", "date": "", "user": ""},
			"system": map[string]string{"version": Version, "entity_id": entityID},
			"config": map[string]any{"name": "", "default_language": "en", "setid": map[string]string{"user": "", "group": ""}},
			"status": map[string]string{"startup_time": stamp(time.Now()), "last_reload_time": stamp(time.Now())},
		}
	case len(seg) == 2 && seg[0] == "asterisk" && seg[1] == "ping":
		if m != http.MethodGet {
			return notAllowed()
		}
		return http.StatusOK, map[string]string{"ping": "pong", "timestamp": stamp(time.Now()), "asterisk_id": entityID}
	case len(seg) == 2 && seg[0] == "applications":
		if m != http.MethodGet {
			return notAllowed()
		}
		if s.apps[seg[1]] == nil {
			return http.StatusNotFound, errBody("Application not found")
		}
		return http.StatusOK, s.applicationJSON(seg[1])
	case len(seg) == 3 && seg[0] == "events" && seg[1] == "user":
		if m != http.MethodPost {
			return notAllowed()
		}
		return s.userEvent(seg[2], r)
	case len(seg) == 3 && seg[0] == "applications" && seg[2] == "eventFilter":
		if m != http.MethodPut {
			return notAllowed()
		}
		return s.eventFilter(seg[1], r)
	case len(seg) == 2 && seg[0] == "channels" && seg[1] == "create":
		if m != http.MethodPost {
			return notAllowed()
		}
		return s.originate(r, true)
	case len(seg) == 1 && seg[0] == "channels":
		switch m {
		case http.MethodGet:
			return http.StatusOK, s.channelList()
		case http.MethodPost:
			return s.originate(r, false)
		}
		return notAllowed()
	case len(seg) >= 2 && seg[0] == "channels":
		return s.channelOp(seg[1], seg[2:], r)
	case len(seg) == 2 && seg[0] == "playbacks":
		p := s.playbacks[seg[1]]
		switch m {
		case http.MethodGet:
			if p == nil {
				return http.StatusNotFound, errBody("Playback not found")
			}
			return http.StatusOK, p.json("playing")
		case http.MethodDelete:
			if p == nil {
				return http.StatusNotFound, errBody("Playback not found")
			}
			s.finishPlaybackLocked(p)
			return http.StatusNoContent, nil
		}
		return notAllowed()
	case len(seg) == 1 && seg[0] == "bridges":
		if m != http.MethodGet {
			return notAllowed()
		}
		out := []bridgeJSON{}
		for _, id := range s.bridgeIDsLocked() {
			out = append(out, s.bridges[id].json())
		}
		return http.StatusOK, out
	case len(seg) >= 2 && seg[0] == "bridges":
		return s.bridgeOp(seg[1], seg[2:], r)
	}
	return http.StatusNotFound, errBody("Resource not found")
}

func (s *Server) eventFilter(app string, r *Request) (int, any) {
	f := s.apps[app]
	if f == nil {
		return http.StatusNotFound, errBody("Application not found")
	}
	var body struct {
		Allowed    []struct{ Type string } `json:"allowed"`
		Disallowed []struct{ Type string } `json:"disallowed"`
	}
	if len(r.Body) > 0 {
		if err := json.Unmarshal(r.Body, &body); err != nil {
			return http.StatusBadRequest, errBody("Invalid JSON: " + err.Error())
		}
	}
	f.allowed, f.disallowed = nil, nil
	for _, a := range body.Allowed {
		f.allowed = append(f.allowed, a.Type)
	}
	for _, d := range body.Disallowed {
		f.disallowed = append(f.disallowed, d.Type)
	}
	return http.StatusOK, s.applicationJSON(app)
}

// applicationJSON is an app as GET /applications/{app} shows it: the
// channels subscribed to it (in its Stasis, or originated for it), the
// bridges those are in, and its event filter. Like Asterisk's, it does not
// say whether the app is active.
func (s *Server) applicationJSON(app string) map[string]any {
	type typ struct {
		Type string `json:"type"`
	}
	allowed, disallowed := []typ{}, []typ{}
	if f := s.apps[app]; f != nil {
		for _, a := range f.allowed {
			allowed = append(allowed, typ{a})
		}
		for _, d := range f.disallowed {
			disallowed = append(disallowed, typ{d})
		}
	}
	channels, bridges := []string{}, []string{}
	for _, id := range s.channelIDsLocked() {
		if c := s.channels[id]; c.App == app {
			channels = append(channels, id)
			if c.Bridge != "" && !slices.Contains(bridges, c.Bridge) {
				bridges = append(bridges, c.Bridge)
			}
		}
	}
	return map[string]any{
		"name": app, "channel_ids": channels, "bridge_ids": bridges, "endpoint_ids": []string{},
		"device_names": []string{}, "events_allowed": allowed, "events_disallowed": disallowed,
	}
}

// userEvent is POST /events/user/{name}?application=APP with an optional
// {"variables": {...}} body: a ChannelUserevent to the app, whose
// userevent is the variables with eventname added, as Asterisk 22 sends
// it. 204 whether or not the app gets it (an inactive app does not).
func (s *Server) userEvent(name string, r *Request) (int, any) {
	app := r.Query.Get("application")
	if app == "" {
		return http.StatusBadRequest, errBody("Missing parameter application")
	}
	if s.apps[app] == nil {
		return http.StatusNotFound, errBody("Application not found")
	}
	var body struct {
		Variables map[string]any `json:"variables"`
	}
	if len(r.Body) > 0 {
		if err := json.Unmarshal(r.Body, &body); err != nil {
			return http.StatusBadRequest, errBody("Invalid JSON: " + err.Error())
		}
	}
	vars := map[string]any{}
	for k, v := range body.Variables {
		vars[k] = v
	}
	vars["eventname"] = name
	s.emitLocked(app, "ChannelUserevent", map[string]any{"eventname": name, "userevent": vars})
	return http.StatusNoContent, nil
}

func (s *Server) channelList() []channelJSON {
	out := []channelJSON{}
	for _, id := range s.channelIDsLocked() {
		out = append(out, s.channels[id].json())
	}
	return out
}

func (s *Server) channelIDsLocked() []string {
	ids := make([]string, 0, len(s.channels))
	for id := range s.channels {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b string) int { return s.channels[a].seq - s.channels[b].seq })
	return ids
}

func (s *Server) bridgeIDsLocked() []string {
	ids := make([]string, 0, len(s.bridges))
	for id := range s.bridges {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b string) int { return s.bridges[a].seq - s.bridges[b].seq })
	return ids
}

// originate is POST /channels: query parameters, overridden by the JSON
// body's keys, with "variables" from the body.
// originate is POST /channels, or with create POST /channels/create: a
// channel in Stasis at once (StasisStart), not dialled until POST
// .../dial.
func (s *Server) originate(r *Request, create bool) (int, any) {
	p := map[string]string{}
	for k, v := range r.Query {
		p[k] = v[0]
	}
	vars := map[string]string{}
	if len(r.Body) > 0 {
		var body map[string]json.RawMessage
		if err := json.Unmarshal(r.Body, &body); err != nil {
			return http.StatusBadRequest, errBody("Invalid JSON: " + err.Error())
		}
		for k, raw := range body {
			if k == "variables" {
				if err := json.Unmarshal(raw, &vars); err != nil {
					return http.StatusBadRequest, errBody("Invalid variables: " + err.Error())
				}
				continue
			}
			var str string
			if json.Unmarshal(raw, &str) == nil {
				p[k] = str
			} else {
				p[k] = string(raw)
			}
		}
	}
	endpoint := p["endpoint"]
	if endpoint == "" {
		return http.StatusBadRequest, errBody("Endpoint must be specified")
	}
	tech, resource, _ := strings.Cut(endpoint, "/")
	if tech == "" || resource == "" {
		return http.StatusBadRequest, errBody("Invalid endpoint specified")
	}
	if p["app"] == "" && (create || p["extension"] == "") {
		return http.StatusBadRequest, errBody("Application or extension must be specified")
	}
	timeout := 30
	if t, err := strconv.Atoi(p["timeout"]); err == nil && t != 0 {
		timeout = t
	}
	if o := p["originator"]; o != "" && s.lookupLocked(o) == nil {
		return http.StatusBadRequest, errBody("Provided originator channel was not found")
	}
	s.seq++
	id := p["channelId"]
	if id == "" {
		id = fmt.Sprintf("%d.%d", time.Now().Unix(), s.seq)
	}
	if s.lookupLocked(id) != nil {
		return http.StatusConflict, errBody("Channel with given unique ID already exists")
	}
	peer := resource
	if _, aor, ok := strings.Cut(resource, "@"); ok {
		peer = aor
	}
	c := &channel{seq: s.seq, context: "default", exten: "s", priority: 1}
	c.ChannelState = ChannelState{
		ID: id, Name: fmt.Sprintf("%s/%s-%08x", tech, peer, s.seq), State: "Down",
		App: p["app"], Originated: true, Endpoint: endpoint, Originator: p["originator"],
		Timeout: timeout, Variables: vars, Created: time.Now(),
	}
	if p["app"] != "" {
		c.appData = p["app"]
		if p["appArgs"] != "" {
			c.appData += "," + p["appArgs"]
			c.Args = strings.Split(p["appArgs"], ",")
		}
	}
	if cid := p["callerId"]; cid != "" {
		name, num := parseCallerID(cid)
		c.CallerName, c.CallerNumber = name, num
		c.ConnectedName, c.ConnectedNumber = name, num
	}
	// Variables are set after the caller ID, so they win.
	for k, v := range vars {
		switch fn, _, _ := strings.Cut(strings.TrimSpace(k), ","); strings.ReplaceAll(fn, " ", "") {
		case "CONNECTEDLINE(name", "CONNECTEDLINE(name)":
			c.ConnectedName = v
		case "CONNECTEDLINE(num", "CONNECTEDLINE(num)", "CONNECTEDLINE(number", "CONNECTEDLINE(number)":
			c.ConnectedNumber = v
		case "CALLERID(name", "CALLERID(name)":
			c.CallerName = v
		case "CALLERID(num", "CALLERID(num)", "CALLERID(number", "CALLERID(number)":
			c.CallerNumber = v
		}
	}
	s.channels[id] = c
	if create {
		c.Originated, c.Made, c.InStasis, c.appName = false, true, true, "Stasis"
		args := c.Args
		if args == nil {
			args = []string{}
		}
		s.emitLocked(c.App, "StasisStart", map[string]any{"args": args, "channel": c.json()})
		return http.StatusOK, c.json()
	}
	// The dial starts: Dial with an empty status ("dial begin").
	s.emitLocked(c.App, "Dial", map[string]any{"peer": c.json(), "dialstatus": "", "dialstring": resource})
	return http.StatusOK, c.json()
}

// parseCallerID splits `"Name" <number>`, `Name <number>` or `number`.
func parseCallerID(s string) (name, num string) {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '<'); i >= 0 && strings.HasSuffix(s, ">") {
		num = s[i+1 : len(s)-1]
		name = strings.Trim(strings.TrimSpace(s[:i]), `"`)
		return name, num
	}
	return "", s
}

// lookupLocked finds a channel by id or name, as ast_channel_get_by_name.
func (s *Server) lookupLocked(idOrName string) *channel {
	if c := s.channels[idOrName]; c != nil {
		return c
	}
	for _, c := range s.channels {
		if c.Name == idOrName {
			return c
		}
	}
	return nil
}

func (s *Server) channelOp(id string, rest []string, r *Request) (int, any) {
	c := s.channels[id]
	m := r.Method
	notFound := func() (int, any) { return http.StatusNotFound, errBody("Channel not found") }
	if len(rest) == 0 {
		switch m {
		case http.MethodGet:
			if c == nil {
				return notFound()
			}
			return http.StatusOK, c.json()
		case http.MethodDelete:
			if c == nil {
				return notFound()
			}
			cause := 16
			if reason := r.Query.Get("reason"); reason != "" {
				var ok bool
				if cause, ok = hangupReasons[reason]; !ok {
					return http.StatusBadRequest, errBody("Invalid reason for hangup reason provided")
				}
			}
			if code := r.Query.Get("reason_code"); code != "" {
				n, err := strconv.Atoi(code)
				if err != nil || r.Query.Get("reason") != "" {
					return http.StatusBadRequest, errBody("Invalid reason for hangup reason code provided")
				}
				cause = n
			}
			s.hangupLocked(c, cause, true)
			return http.StatusNoContent, nil
		}
		return http.StatusMethodNotAllowed, errBody("Method Not Allowed")
	}
	op := rest[0]
	known := map[string]string{"answer": "POST", "ring": "POST DELETE", "dtmf": "POST", "play": "POST", "continue": "POST", "dial": "POST", "variable": "GET POST"}
	if allowed, ok := known[op]; !ok || (op == "play" && len(rest) > 2) || (op != "play" && len(rest) > 1) {
		return http.StatusNotFound, errBody("Resource not found")
	} else if !strings.Contains(allowed, m) {
		return http.StatusMethodNotAllowed, errBody("Method Not Allowed")
	}
	// find_control, then channel_state_invalid.
	if c == nil {
		return notFound()
	}
	if op == "variable" && m == http.MethodGet {
		return c.variable(r.Query.Get("variable"))
	}
	if !c.InStasis {
		return http.StatusConflict, errBody("Channel not in Stasis application")
	}
	if op == "variable" {
		name := r.Query.Get("variable")
		if name == "" {
			return http.StatusBadRequest, errBody("Variable name is required")
		}
		if c.Variables == nil {
			c.Variables = map[string]string{}
		}
		c.Variables[name] = r.Query.Get("value")
		return http.StatusNoContent, nil
	}
	if op == "dial" {
		// A created channel, dialled once, while still down.
		if !c.Made || c.Dialled || c.State != "Down" {
			return http.StatusConflict, errBody("Channel is not in the 'Down' state")
		}
		c.Dialled = true
		if t, err := strconv.Atoi(r.Query.Get("timeout")); err == nil && t > 0 {
			c.Timeout = t
		}
		_, resource, _ := strings.Cut(c.Endpoint, "/")
		s.emitLocked(c.App, "Dial", map[string]any{"peer": c.json(), "dialstatus": "", "dialstring": resource})
		return http.StatusNoContent, nil
	}
	if c.State == "Down" || c.State == "Ringing" || c.State == "Rsrvd" {
		return http.StatusPreconditionFailed, errBody("Channel in invalid state")
	}
	switch op {
	case "answer":
		if c.State != "Up" {
			s.setStateLocked(c, "Up")
		}
	case "ring":
		c.Ringing = m == http.MethodPost
	case "dtmf":
		if r.Query.Get("dtmf") == "" {
			return http.StatusBadRequest, errBody("DTMF is required")
		}
	case "play":
		media := r.Query.Get("media")
		if media == "" {
			return http.StatusBadRequest, errBody("media: Missing required field")
		}
		pid := r.Query.Get("playbackId")
		if len(rest) == 2 {
			pid = rest[1]
		}
		if pid == "" {
			s.seq++
			pid = fmt.Sprintf("playback-%d", s.seq)
		}
		s.seq++
		p := &playback{id: pid, media: media, target: "channel:" + c.ID, channel: c.ID, seq: s.seq}
		s.playbacks[pid] = p
		s.emitLocked(c.App, "PlaybackStarted", map[string]any{"playback": p.json("playing")})
		switch d := s.autoFinish; {
		case d == 0:
			s.finishPlaybackLocked(p)
		case d > 0:
			seq := p.seq
			s.afterLocked(d, func() {
				if p := s.playbacks[pid]; p != nil && p.seq == seq {
					s.finishPlaybackLocked(p)
				}
			})
		}
		return http.StatusCreated, p.json("queued")
	case "continue":
		s.leaveBridgeLocked(c)
		s.endPlaybacksLocked(c)
		c.InStasis = false
		if ctx := r.Query.Get("context"); ctx != "" {
			c.context, c.exten, c.priority = ctx, "s", 1
			if e := r.Query.Get("extension"); e != "" {
				c.exten = e
			}
			if p, err := strconv.Atoi(r.Query.Get("priority")); err == nil && p > 0 {
				c.priority = p
			}
		} else {
			c.priority++
		}
		s.emitLocked(c.App, "StasisEnd", map[string]any{"channel": c.json()})
		c.App, c.appName, c.appData = "", "", ""
	}
	return http.StatusNoContent, nil
}

func (s *Server) bridgeOp(id string, rest []string, r *Request) (int, any) {
	b := s.bridges[id]
	m := r.Method
	notFound := func() (int, any) { return http.StatusNotFound, errBody("Bridge not found") }
	if len(rest) == 0 {
		switch m {
		case http.MethodPost:
			if b != nil {
				return http.StatusConflict, errBody(fmt.Sprintf("Bridge with id '%s' already exists", id))
			}
			s.seq++
			b = &bridge{id: id, name: r.Query.Get("name"), typ: r.Query.Get("type"), created: time.Now(), seq: s.seq}
			s.bridges[id] = b
			return http.StatusOK, b.json()
		case http.MethodGet:
			if b == nil {
				return notFound()
			}
			return http.StatusOK, b.json()
		case http.MethodDelete:
			if b == nil {
				return notFound()
			}
			for _, ch := range slices.Clone(b.members) {
				s.leaveBridgeLocked(s.channels[ch])
			}
			delete(s.bridges, id)
			return http.StatusNoContent, nil
		}
		return http.StatusMethodNotAllowed, errBody("Method Not Allowed")
	}
	if len(rest) != 1 || (rest[0] != "addChannel" && rest[0] != "removeChannel") {
		return http.StatusNotFound, errBody("Resource not found")
	}
	if m != http.MethodPost {
		return http.StatusMethodNotAllowed, errBody("Method Not Allowed")
	}
	if b == nil {
		return notFound()
	}
	var ids []string
	for _, v := range r.Query["channel"] {
		for _, id := range strings.Split(v, ",") {
			if id = strings.TrimSpace(id); id != "" {
				ids = append(ids, id)
			}
		}
	}
	if len(ids) == 0 {
		return http.StatusBadRequest, errBody("channel: Missing required field")
	}
	// The whole list is checked before any channel moves.
	chans := make([]*channel, len(ids))
	for i, id := range ids {
		c := s.channels[id]
		switch {
		case c == nil:
			return http.StatusBadRequest, errBody("Channel not found")
		case !c.InStasis:
			return http.StatusUnprocessableEntity, errBody("Channel not in Stasis application")
		case rest[0] == "removeChannel" && c.Bridge != b.id:
			return http.StatusUnprocessableEntity, errBody("Channel not in this bridge")
		}
		chans[i] = c
	}
	for _, c := range chans {
		if rest[0] == "removeChannel" {
			s.leaveBridgeLocked(c)
			continue
		}
		if c.Bridge == b.id {
			continue
		}
		s.leaveBridgeLocked(c)
		c.Bridge = b.id
		b.members = append(b.members, c.ID)
		s.emitLocked(c.App, "ChannelEnteredBridge", map[string]any{"bridge": b.json(), "channel": c.json()})
	}
	return http.StatusNoContent, nil
}

func (s *Server) leaveBridgeLocked(c *channel) {
	if c == nil || c.Bridge == "" {
		return
	}
	b := s.bridges[c.Bridge]
	c.Bridge = ""
	if b == nil {
		return
	}
	b.members = slices.DeleteFunc(b.members, func(id string) bool { return id == c.ID })
	s.emitLocked(c.App, "ChannelLeftBridge", map[string]any{"bridge": b.json(), "channel": c.json()})
}

func (s *Server) setStateLocked(c *channel, state string) {
	c.State = state
	s.emitLocked(c.App, "ChannelStateChange", map[string]any{"channel": c.json()})
}

func (s *Server) finishPlaybackLocked(p *playback) {
	delete(s.playbacks, p.id)
	app := ""
	if c := s.channels[p.channel]; c != nil {
		app = c.App
	}
	s.emitLocked(app, "PlaybackFinished", map[string]any{"playback": p.json("done")})
}

func (s *Server) endPlaybacksLocked(c *channel) {
	var ps []*playback
	for _, p := range s.playbacks {
		if p.channel == c.ID {
			ps = append(ps, p)
		}
	}
	slices.SortFunc(ps, func(a, b *playback) int { return a.seq - b.seq })
	for _, p := range ps {
		s.finishPlaybackLocked(p)
	}
}

// hangupLocked runs a channel's end: ChannelHangupRequest, leaving its
// bridge, its playbacks finishing, StasisEnd if in Stasis, and
// ChannelDestroyed with the cause.
func (s *Server) hangupLocked(c *channel, cause int, viaARI bool) {
	req := map[string]any{"channel": c.json(), "cause": cause}
	if viaARI {
		req["cause"], req["soft"] = softhangupExplicit, true
	}
	s.emitLocked(c.App, "ChannelHangupRequest", req)
	s.leaveBridgeLocked(c)
	s.endPlaybacksLocked(c)
	if c.InStasis {
		c.InStasis = false
		s.emitLocked(c.App, "StasisEnd", map[string]any{"channel": c.json()})
	}
	s.emitLocked(c.App, "ChannelDestroyed", map[string]any{"channel": c.json(), "cause": cause, "cause_txt": causeText(cause)})
	delete(s.channels, c.ID)
}

// afterLocked runs f with s.mu held after d, unless the server closes.
func (s *Server) afterLocked(d time.Duration, f func()) {
	if s.timers == nil {
		return
	}
	var tm *time.Timer
	tm = time.AfterFunc(d, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.timers == nil {
			return
		}
		delete(s.timers, tm)
		f()
	})
	s.timers[tm] = true
}

// scripting: what the PBX and the far ends do.

func (s *Server) channelLocked(what, id string) *channel {
	c := s.channels[id]
	if c == nil {
		s.t.Errorf("aritest: %s: no channel %q (channels: %v)", what, id, s.channelIDsLocked())
	}
	return c
}

// Caller makes a caller's channel enter Stasis for App, as the dialplan's
// Stasis(ariflow,entry) does: state Ring, caller ID number and name, and
// StasisStart{args: [entry]}. While App is inactive (DeactivateApp) the
// channel is made but does not enter Stasis: InStasis false, no event.
func (s *Server) Caller(id, number, name, entry string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lookupLocked(id) != nil {
		s.t.Errorf("aritest: Caller: channel %q exists", id)
		return
	}
	s.seq++
	c := &channel{seq: s.seq, context: "from-pbx", exten: entry, priority: 2, appName: "Stasis", appData: App + "," + entry}
	c.ChannelState = ChannelState{
		ID: id, Name: fmt.Sprintf("PJSIP/pbx-%08x", s.seq), State: "Ring",
		CallerNumber: number, CallerName: name, App: App, Args: []string{entry},
		InStasis: true, Created: time.Now(),
	}
	s.channels[id] = c
	if s.inactive[App] {
		// Stasis() fails ("Stasis app 'ariflow' not active"); the
		// channel goes on in the dialplan, which the fake does not run.
		c.App, c.Args, c.InStasis, c.appName, c.appData = "", nil, false, "", ""
		return
	}
	s.emitLocked(App, "StasisStart", map[string]any{"args": c.Args, "channel": c.json()})
}

// EnterStasis makes a channel the dialplan holds (one continued out of
// the app) enter Stasis for App again, as Stasis(ariflow,args...) does:
// StasisStart{args}. While App is inactive nothing happens (Stasis()
// fails); it returns whether the channel entered.
func (s *Server) EnterStasis(id string, args ...string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.channelLocked("EnterStasis", id)
	if c == nil {
		return false
	}
	if c.InStasis {
		s.t.Errorf("aritest: EnterStasis: channel %q is in Stasis already", id)
		return false
	}
	if s.inactive[App] {
		return false
	}
	c.App, c.Args, c.InStasis, c.appName, c.appData = App, args, true, "Stasis", App+","+strings.Join(args, ",")
	s.emitLocked(App, "StasisStart", map[string]any{"args": args, "channel": c.json()})
	return true
}

// Answer makes an originated channel answer: ChannelStateChange to Up,
// Dial{ANSWER}, then StasisStart with its originate appArgs split on ','.
func (s *Server) Answer(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.channelLocked("Answer", id)
	if c == nil {
		return
	}
	if c.Made && c.Dialled && c.State != "Up" {
		// A created channel is in Stasis already: its answer is a state
		// change, with no StasisStart.
		s.setStateLocked(c, "Up")
		s.emitLocked(c.App, "Dial", map[string]any{"peer": c.json(), "dialstatus": "ANSWER"})
		return
	}
	if c.InStasis || c.App == "" {
		s.t.Errorf("aritest: Answer: channel %q is not an originated or dialled channel waiting for an answer", id)
		return
	}
	s.setStateLocked(c, "Up")
	s.emitLocked(c.App, "Dial", map[string]any{"peer": c.json(), "dialstatus": "ANSWER"})
	c.InStasis = true
	c.appName = "Stasis"
	args := c.Args
	if args == nil {
		args = []string{}
	}
	s.emitLocked(c.App, "StasisStart", map[string]any{"args": args, "channel": c.json()})
}

// DialStatus sends Dial{peer: the channel, dialstatus: status}. RINGING
// first moves the channel to state Ringing (ChannelStateChange). For a
// failed leg follow it with Hangup(id, cause).
func (s *Server) DialStatus(id, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.channelLocked("DialStatus", id)
	if c == nil {
		return
	}
	if status == "RINGING" && c.State != "Ringing" {
		s.setStateLocked(c, "Ringing")
	}
	s.emitLocked(c.App, "Dial", map[string]any{"peer": c.json(), "dialstatus": status})
}

// Hangup is the far end (or the caller) hanging up with a Q.850 cause:
// ChannelHangupRequest{cause}, ChannelLeftBridge if bridged,
// PlaybackFinished for its playbacks, StasisEnd if in Stasis, and
// ChannelDestroyed{cause, cause_txt}. The channel is gone afterwards.
func (s *Server) Hangup(id string, cause int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.channelLocked("Hangup", id); c != nil {
		s.hangupLocked(c, cause, false)
	}
}

// DTMF is a digit received on a channel: ChannelDtmfReceived.
func (s *Server) DTMF(id, digit string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.channelLocked("DTMF", id); c != nil {
		s.emitLocked(c.App, "ChannelDtmfReceived", map[string]any{"channel": c.json(), "digit": digit, "duration_ms": 100})
	}
}

// FinishPlayback ends a running playback: PlaybackFinished{state: done}.
func (s *Server) FinishPlayback(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.playbacks[id]
	if p == nil {
		s.t.Errorf("aritest: FinishPlayback: no running playback %q", id)
		return
	}
	s.finishPlaybackLocked(p)
}

// AutoFinishPlayback makes playbacks started from now on finish by
// themselves d after they start; 0 finishes them at once (PlaybackFinished
// right after PlaybackStarted), a negative d never (the default).
func (s *Server) AutoFinishPlayback(d time.Duration) {
	s.mu.Lock()
	s.autoFinish = d
	s.mu.Unlock()
}

// Channel returns a copy of a channel's state.
func (s *Server) Channel(id string) (ChannelState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.channels[id]
	if c == nil {
		return ChannelState{}, false
	}
	return c.state(), true
}

// Channels lists the IDs of the channels that exist, oldest first.
func (s *Server) Channels() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.channelIDsLocked()
}

// Bridge returns a bridge's members, in the order they joined.
func (s *Server) Bridge(id string) ([]string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.bridges[id]
	if b == nil {
		return nil, false
	}
	return append([]string{}, b.members...), true
}

// Bridges lists the IDs of the bridges that exist, oldest first.
func (s *Server) Bridges() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bridgeIDsLocked()
}

// Playbacks lists the IDs of the running playbacks, oldest first.
func (s *Server) Playbacks() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := make([]*playback, 0, len(s.playbacks))
	for _, p := range s.playbacks {
		ps = append(ps, p)
	}
	slices.SortFunc(ps, func(a, b *playback) int { return a.seq - b.seq })
	ids := make([]string, len(ps))
	for i, p := range ps {
		ids[i] = p.id
	}
	return ids
}

// DeactivateApp leaves app inactive under its open websocket, as Asterisk
// 22 can after a reconnect (docs/ari-event-path.md): the socket stays
// open and REST keeps answering, but no event for app is delivered, user
// events (probes) included, and a Caller does not enter Stasis. The next
// websocket connection for app activates it again, as a registration
// does in Asterisk; but the inactive one, which got no
// ApplicationReplaced, deactivates the app again when it closes, as its
// session's cleanup does in Asterisk: close it first.
func (s *Server) DeactivateApp(app string) {
	s.mu.Lock()
	s.inactive[app] = true
	s.mu.Unlock()
}

// AppActive tells whether app has a websocket and is not left inactive.
func (s *Server) AppActive(app string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.subs[app] != nil && !s.inactive[app]
}

// variable reads a variable set at create or originate, or
// PJSIP_HEADERS(): the headers a made PJSIP channel was given
// (PJSIP_HEADER(add,…) less PJSIP_HEADER(remove,…)) until it is dialled.
// Asterisk deletes that store when the INVITE leaves, and then, as for a
// channel never given a header, cannot read the function (500).
func (c *channel) variable(name string) (int, any) {
	if name == "" {
		return http.StatusBadRequest, errBody("Variable name is required")
	}
	if name == "PJSIP_HEADERS()" {
		var added []string
		store := false
		for k := range c.Variables {
			if h, ok := strings.CutPrefix(k, "PJSIP_HEADER(add,"); ok && strings.HasSuffix(h, ")") {
				store = true
				if _, removed := c.Variables["PJSIP_HEADER(remove,"+h]; !removed {
					added = append(added, strings.TrimSuffix(h, ")"))
				}
			}
		}
		if !store || c.Dialled || !strings.HasPrefix(c.Endpoint, "PJSIP/") {
			return http.StatusInternalServerError, errBody("Unable to read provided function")
		}
		slices.Sort(added)
		return http.StatusOK, map[string]string{"value": strings.Join(added, ",")}
	}
	v, ok := c.Variables[name]
	if !ok {
		return http.StatusNotFound, errBody("Provided variable was not found")
	}
	return http.StatusOK, map[string]string{"value": v}
}
