package controller

// The unit-test harness: the fake ARI (internal/ari/aritest), an in-memory
// Store and Elector with RedisStore's fencing, and an App running on them.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"

	"github.com/ariflow/ariflow/flows"
	"github.com/ariflow/ariflow/internal/ari"
	"github.com/ariflow/ariflow/internal/ari/aritest"
	"github.com/ariflow/ariflow/record"
	"github.com/ariflow/ariflow/store"
	"github.com/ariflow/ariflow/transfer"
)

// wait bounds every wait for a request, an event or a log line: generous, so
// that a loaded machine (CI, -race) does not fail a test that would pass.
const wait = 10 * time.Second

// memStore is a Store and an Elector in memory, with the fencing of
// RedisStore: a write succeeds only when its Owner|Epoch holds the lease.
type memStore struct {
	mu        sync.Mutex
	recs      map[string][]byte
	holder    string
	epoch     int64
	expires   time.Time
	lastEpoch int64

	flowSrc     map[string]store.ArchivedFlow
	latency     time.Duration // every operation takes this long (a slow Redis)
	passSaves   int           // the next n saves are spared failSaves and lostAnswers (a call's first record)
	failSaves   int           // the next n saves fail (Redis down)
	failAll     error         // every save fails with it while set
	lostAnswers int           // the next n saves land, but their answer is lost (EOF)
	saves       int           // successful saves
	refused     int           // saves refused (fenced or failing)
	// along, when set, runs a write's part (the dial policy's count on
	// Redis counters) as the Redis store's script does; alongs counts them.
	along       *redis.Client
	alongs      int
	deletes     int
	fenceDels   int // the next n deletes are refused as fenced (the lease lapsed in the store)
	failDels    int // the next n deletes fail (Redis restarting)
	failedDels  int // deletes that failed so
	deleting    int // deletes under way, and the most at once
	deletingMax int
	resigns     int // resignations that freed the lease
	// renewGate, while set, holds every renewal until it is closed (a
	// renewal whose answer is slow in coming).
	renewGate chan struct{}
	gated     int // renewals that met renewGate
}

func newMemStore() *memStore {
	return &memStore{recs: map[string][]byte{}, flowSrc: map[string]store.ArchivedFlow{}}
}

func (s *memStore) PutFlow(_ context.Context, digest string, f store.ArchivedFlow) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flowSrc[digest] = f
	return nil
}

func (s *memStore) GetFlow(_ context.Context, digest string) (store.ArchivedFlow, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.flowSrc[digest]
	if !ok {
		return f, record.ErrNoRecord
	}
	return f, nil
}

var errRedisDown = errors.New("memstore: redis down")

func (s *memStore) holdsLocked(owner string, epoch int64) bool {
	return s.holder != "" && s.holder == owner && s.epoch == epoch && time.Now().Before(s.expires)
}

// alongPart runs a write's part alone: {1, 0} to write, {2, n} refused,
// {3, n} the Else to write (store.alongScript's answers).
const alongPart = `
local n = part(KEYS, ARGV)
if type(n) == 'table' then return {3, n[1]} end
if n ~= 0 then return {2, n} end
return {1, 0}`

// SaveAlong is the Redis store's SaveAlong, its part run on s.along (the
// fence checked first, here).
func (s *memStore) SaveAlong(ctx context.Context, rec *record.Call, part store.Part) (store.Wrote, error) {
	if part.Lua == "" {
		return store.Wrote{}, s.Save(ctx, rec)
	}
	s.mu.Lock()
	held, rdb := s.holdsLocked(rec.Owner, rec.Epoch), s.along
	s.alongs++
	s.mu.Unlock()
	if rdb == nil {
		return store.Wrote{}, errors.New("memstore: a write's part with no Redis to run it")
	}
	if !held {
		return store.Wrote{}, s.Save(ctx, rec) // refused as fenced
	}
	res, err := redis.NewScript("local function part(KEYS, ARGV)\n"+part.Lua+"\nend\n"+alongPart).Run(ctx, rdb, part.Keys, part.Args...).Int64Slice()
	switch {
	case err != nil:
		return store.Wrote{}, err
	case res[0] == 3 && part.Else != nil:
		return store.Wrote{Else: true, Code: res[1]}, s.Save(ctx, part.Else)
	case res[0] != 1:
		return store.Wrote{}, &store.PartRefused{Code: res[1]}
	}
	return store.Wrote{}, s.Save(ctx, rec)
}

// slow is the store's latency, a round trip: half of it before the
// operation reaches the store (returned: sleep it), half after.
func (s *memStore) slow() (after time.Duration) {
	s.mu.Lock()
	d := s.latency
	s.mu.Unlock()
	time.Sleep(d / 2)
	return d - d/2
}

// setLatency makes every operation from now on take d.
func (s *memStore) setLatency(d time.Duration) {
	s.mu.Lock()
	s.latency = d
	s.mu.Unlock()
}

func (s *memStore) Save(_ context.Context, rec *record.Call) error {
	defer time.Sleep(s.slow())
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failAll != nil {
		s.refused++
		return s.failAll
	}
	pass := s.passSaves > 0
	if pass {
		s.passSaves--
	}
	if !pass && s.failSaves > 0 {
		s.failSaves--
		s.refused++
		return fmt.Errorf("save call %s: %w", rec.CallID, errRedisDown)
	}
	if !s.holdsLocked(rec.Owner, rec.Epoch) {
		s.refused++
		return fmt.Errorf("save call %s: %w", rec.CallID, ErrFenced)
	}
	b, err := record.Encode(rec)
	if err != nil {
		return err
	}
	s.recs[rec.CallID] = b
	s.saves++
	if !pass && s.lostAnswers > 0 {
		s.lostAnswers--
		return fmt.Errorf("save call %s: %w", rec.CallID, io.EOF)
	}
	return nil
}

func (s *memStore) Load(_ context.Context, id string) (*record.Call, error) {
	s.mu.Lock()
	b, ok := s.recs[id]
	s.mu.Unlock()
	if !ok {
		return nil, record.ErrNoRecord
	}
	return record.Decode(b)
}

func (s *memStore) LoadMany(ctx context.Context, ids []string) ([]*record.Call, []error, error) {
	recs, bad := make([]*record.Call, len(ids)), make([]error, len(ids))
	for i, id := range ids {
		recs[i], bad[i] = s.Load(ctx, id)
		if errors.Is(bad[i], record.ErrNoRecord) {
			bad[i] = nil
		}
	}
	return recs, bad, nil
}

func (s *memStore) Delete(_ context.Context, id string, f record.Fence) error {
	s.mu.Lock()
	s.deleting++
	s.deletingMax = max(s.deletingMax, s.deleting)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.deleting--
		s.mu.Unlock()
	}()
	defer time.Sleep(s.slow())
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.holdsLocked(f.Owner, f.Epoch) {
		return fmt.Errorf("delete call %s: %w", id, ErrFenced)
	}
	if s.fenceDels > 0 {
		s.fenceDels--
		return fmt.Errorf("delete call %s: %w", id, ErrFenced)
	}
	if s.failDels > 0 {
		s.failDels--
		s.failedDels++
		return fmt.Errorf("delete call %s: %w", id, errRedisDown)
	}
	delete(s.recs, id)
	s.deletes++
	return nil
}

func (s *memStore) Active(context.Context) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.recs))
	for id := range s.recs {
		ids = append(ids, id)
	}
	return ids, nil
}

func (s *memStore) Campaign(_ context.Context, owner string, ttl time.Duration) (int64, error) {
	defer time.Sleep(s.slow())
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.holder != "" && time.Now().Before(s.expires) {
		if s.holder != owner {
			return 0, nil
		}
		s.expires = time.Now().Add(ttl)
		return s.epoch, nil
	}
	s.lastEpoch++
	s.holder, s.epoch, s.expires = owner, s.lastEpoch, time.Now().Add(ttl)
	return s.epoch, nil
}

func (s *memStore) Renew(ctx context.Context, owner string, ttl time.Duration) (int64, error) {
	s.mu.Lock()
	gate := s.renewGate
	if gate != nil {
		s.gated++
	}
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	return s.Campaign(ctx, owner, ttl)
}

// flushAll is Redis's FLUSHALL: the records and the lease go.
func (s *memStore) flushAll() {
	s.mu.Lock()
	clear(s.recs)
	s.holder = ""
	s.mu.Unlock()
}

func (s *memStore) Holder(_ context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.holder == "" || !time.Now().Before(s.expires) {
		return "", nil
	}
	return s.holder, nil
}

func (s *memStore) Resign(_ context.Context, owner string, epoch int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.holder == owner && s.epoch == epoch {
		s.holder = ""
		s.resigns++
	}
	return nil
}

// handTo gives the lease to another owner for ttl, as a process that took
// over would hold it.
func (s *memStore) handTo(owner string, ttl time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastEpoch++
	s.holder, s.epoch, s.expires = owner, s.lastEpoch, time.Now().Add(ttl)
}

func (s *memStore) flush() {
	s.mu.Lock()
	clear(s.recs)
	s.mu.Unlock()
}

// put stores a record as a previous process left it (no fencing).
func (s *memStore) put(rec *record.Call) {
	b, err := record.Encode(rec)
	if err != nil {
		panic(err)
	}
	s.mu.Lock()
	s.recs[rec.CallID] = b
	s.mu.Unlock()
}

func (s *memStore) has(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.recs[id]
	return ok
}

func (s *memStore) counts() (saves, refused, deletes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.saves, s.refused, s.deletes
}

// logSink keeps the app's log lines, and prints them when the test
// fails.
type logSink struct {
	mu      sync.Mutex
	entries []logLine
	changed chan struct{}
	buf     bytes.Buffer
}

type logLine struct {
	msg    string
	fields logrus.Fields
}

func (l *logSink) Levels() []logrus.Level { return logrus.AllLevels }

func (l *logSink) Fire(e *logrus.Entry) error {
	f := make(logrus.Fields, len(e.Data))
	for k, v := range e.Data {
		f[k] = v
	}
	l.mu.Lock()
	l.entries = append(l.entries, logLine{e.Message, f})
	fmt.Fprintf(&l.buf, "%s %s %v\n", e.Time.Format("15:04:05.000"), e.Message, f)
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
	return nil
}

type harness struct {
	t     *testing.T
	fake  *aritest.Server
	store *memStore
	app   *App
	logs  *logSink
	cfg   Config
	set   *flows.Set
	stop  context.CancelFunc
	done  chan struct{}
	// endings are the calls that ended, with their goroutine's error.
	endings *endings
}

// endings records calls' ends (Config.callEnded).
type endings struct {
	mu      sync.Mutex
	errs    map[string]error
	changed chan struct{} // closed and replaced at each end
}

func (e *endings) ended(id string, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.errs[id] = err
	close(e.changed)
	e.changed = make(chan struct{})
}

// loadFlows writes YAML flows to a temporary directory and loads them.
func loadFlows(t *testing.T, yamls ...string) *flows.Set {
	t.Helper()
	dir := t.TempDir()
	for i, y := range yamls {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%d.yaml", i)), []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	set, err := flows.LoadFiles(flows.LoadOptions{}, dir)
	if err != nil {
		t.Fatalf("flows: %v", err)
	}
	return set
}

// newHarness starts a fake ARI and an App on it, not yet running; see
// start. Options change the Config.
func newHarness(t *testing.T, yamls []string, opts ...func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, fake: aritest.New(t), store: newMemStore(), logs: &logSink{changed: make(chan struct{})},
		endings: &endings{errs: map[string]error{}, changed: make(chan struct{})}}
	h.cfg = Config{
		App: aritest.App, URL: h.fake.URL(), User: aritest.User, Password: aritest.Password,
		DTMFDelay: 0, PlaybackCheck: 150 * time.Millisecond, LeaseTTL: 600 * time.Millisecond, HandoverWait: -1,
		RESTTimeout:  2 * time.Second,
		SavePatience: -1, // a failed save is final; TestSaveAnswerLost* write again
	}
	for _, o := range opts {
		o(&h.cfg)
	}
	h.cfg.callEnded = h.endings.ended
	h.set = loadFlows(t, yamls...)
	log := logrus.New()
	log.SetOutput(&bytes.Buffer{})
	log.SetLevel(logrus.DebugLevel)
	log.AddHook(h.logs)
	h.app = New(h.cfg, h.store, h.store, h.set, log, NewMetrics(nil))
	t.Cleanup(func() {
		if t.Failed() {
			h.logs.mu.Lock()
			t.Logf("app log:\n%s", h.logs.buf.String())
			h.logs.mu.Unlock()
		}
	})
	return h
}

// start runs the App and waits until it is connected, has set its event
// filter and has reconciled.
func (h *harness) start() *harness {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h.stop, h.done = cancel, make(chan struct{})
	go func() {
		defer close(h.done)
		_ = h.app.Run(ctx)
	}()
	h.t.Cleanup(h.shutdown)
	h.fake.WaitConnected(h.t, wait)
	h.fake.WaitRequest(h.t, wait, "PUT", "/applications/"+aritest.App+"/eventFilter")
	eventually(h.t, "the first reconcile done", func() bool { return testutil.ToFloat64(h.app.metrics.Reconciles) >= 1 })
	return h
}

func (h *harness) shutdown() {
	if h.stop == nil {
		return
	}
	h.stop()
	select {
	case <-h.done:
	case <-time.After(5 * time.Second):
		h.t.Error("Run did not return")
	}
	h.app.Wait()
	h.stop = nil
}

// run is newHarness + start.
func run(t *testing.T, yamls []string, opts ...func(*Config)) *harness {
	t.Helper()
	return newHarness(t, yamls, opts...).start()
}

// ended waits until call id's goroutine has finished, and returns the
// error it ended with.
func (h *harness) ended(id string) error {
	h.t.Helper()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		h.endings.mu.Lock()
		err, done := h.endings.errs[id]
		ch := h.endings.changed
		h.endings.mu.Unlock()
		if done {
			return err
		}
		select {
		case <-ch:
		case <-deadline.C:
			h.t.Fatalf("call %s did not end within %v", id, wait)
		}
	}
}

// load is call id's record in the store; the test fails when it cannot be
// read.
func (h *harness) load(id string) *record.Call {
	h.t.Helper()
	rec, err := h.store.Load(h.t.Context(), id)
	if err != nil {
		h.t.Fatalf("call %s's record: %v", id, err)
	}
	return rec
}

// holder is the process holding the lease in the store ("" when free).
func (h *harness) holder() string {
	h.t.Helper()
	owner, err := h.store.Holder(h.t.Context())
	if err != nil {
		h.t.Fatalf("lease holder: %v", err)
	}
	return owner
}

func (h *harness) req(method, prefix string) aritest.Request {
	h.t.Helper()
	return h.fake.WaitRequest(h.t, wait, method, prefix)
}

// caller places a caller on entry.
func (h *harness) caller(id, entry string) {
	h.fake.Caller(id, "+4917612345678", "Alice", entry)
}

// leg waits for the next originate and returns the leg's and the
// bridge's IDs.
func (h *harness) leg() (leg, bridge string) {
	h.t.Helper()
	leg = h.createdID()
	bridge = strings.TrimPrefix(h.req("POST", "/bridges/").Path, "/bridges/")
	for strings.Contains(bridge, "/") {
		bridge = strings.TrimPrefix(h.req("POST", "/bridges/").Path, "/bridges/")
	}
	// The leg must be dialled before it is scripted.
	h.req("POST", "/channels/"+leg+"/dial")
	h.answered("POST", "/channels/"+leg+"/dial")
	return leg, bridge
}

// createdID waits for the next create and returns the channel it makes.
func (h *harness) createdID() string {
	h.t.Helper()
	r := h.req("POST", "/channels/create")
	var body struct {
		ChannelID string `json:"channelId"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil || body.ChannelID == "" {
		h.t.Fatalf("create body %s: %v", r.Body, err)
	}
	return body.ChannelID
}

// bridgedUntilSuccess answers leg, waits for it to join br, hangs it up
// from the far end and sees the call take Success and end clean.
func (h *harness) bridgedUntilSuccess(leg, br string) {
	h.t.Helper()
	h.bridgedUntilHangup(leg, br)
	h.branchTaken("c1", mSuccess, transfer.OutcomeSuccess)
}

// bridgedUntilHangup answers leg, waits until it is added to bridge br,
// and hangs it up from the far end.
func (h *harness) bridgedUntilHangup(leg, br string) {
	h.t.Helper()
	h.fake.Answer(leg)
	h.req("POST", "/bridges/"+br+"/addChannel")
	h.answered("POST", "/bridges/"+br+"/addChannel")
	h.fake.Hangup(leg, 16)
}

// answered waits until every request with method and prefix so far has
// been answered.
func (h *harness) answered(method, prefix string) {
	h.t.Helper()
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		pending := false
		for _, r := range h.fake.Requests() {
			if r.Method == method && strings.HasPrefix(r.Path, prefix) && r.Status == 0 {
				pending = true
			}
		}
		if !pending {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	h.t.Fatalf("%s %s still unanswered after %v", method, prefix, wait)
}

// played waits for the next playback on channel and returns its media
// and playback ID.
func (h *harness) played(channel string) (media, id string) {
	h.t.Helper()
	r := h.req("POST", "/channels/"+channel+"/play")
	// A request is recorded before it is answered: wait for the playback
	// to exist, so that the test can finish it.
	h.answered("POST", r.Path)
	return r.Query.Get("media"), strings.TrimPrefix(r.Path, "/channels/"+channel+"/play/")
}

// wantPlayed asserts the next playback on channel is media.
func (h *harness) wantPlayed(channel, media string) string {
	h.t.Helper()
	got, id := h.played(channel)
	if got != media {
		h.t.Fatalf("played %q on %s, want %q", got, channel, media)
	}
	return id
}

// medias lists every media played on channel so far.
func (h *harness) medias(channel string) []string {
	var out []string
	for _, r := range h.fake.Requests() {
		if r.Method == "POST" && strings.HasPrefix(r.Path, "/channels/"+channel+"/play") {
			out = append(out, r.Query.Get("media"))
		}
	}
	return out
}

// count is the number of requests with method and exactly path.
func (h *harness) count(method, path string) int {
	n := 0
	for _, r := range h.fake.Requests() {
		if r.Method == method && r.Path == path {
			n++
		}
	}
	return n
}

// answeredWith is the number of requests with method and exactly path
// answered with status.
func (h *harness) answeredWith(method, path string, status int) int {
	n := 0
	for _, r := range h.fake.Requests() {
		if r.Method == method && r.Path == path && r.Status == status {
			n++
		}
	}
	return n
}

// clean asserts that the PBX has no channels and bridges left and the
// store no record.
func (h *harness) clean(callID string) {
	h.t.Helper()
	deadline := time.Now().Add(wait)
	for {
		chans, brs := h.fake.Channels(), h.fake.Bridges()
		if len(chans) == 0 && len(brs) == 0 && !h.store.has(callID) {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("left behind: channels %v, bridges %v, record %v", chans, brs, h.store.has(callID))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// client is an ARI client to set the PBX up before the app runs.
func (h *harness) client() *ari.Client {
	c := ari.New(ari.Options{URL: h.fake.URL(), User: aritest.User, Password: aritest.Password, App: aritest.App})
	h.t.Cleanup(c.Close)
	return c
}

// call returns the running call with id (nil if none); app.mu is held by
// f.
func (h *harness) withCall(id string, f func(c *call)) {
	h.app.mu.Lock()
	defer h.app.mu.Unlock()
	f(h.app.calls[id])
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", wait, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
