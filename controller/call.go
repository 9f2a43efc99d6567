package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ariflow/ariflow/flows"
	"github.com/ariflow/ariflow/internal/ari"
	"github.com/ariflow/ariflow/policy"
	"github.com/ariflow/ariflow/record"
	"github.com/ariflow/ariflow/store"
	"github.com/ariflow/ariflow/transfer"
)

// Outcomes of a block that end the flow rather than take a branch.
var (
	// ErrCallerGone: the caller hung up; the call is over.
	ErrCallerGone = transfer.ErrCallerGone
	// errHandedOff: the caller left the flow for good (agent, resume off).
	errHandedOff = transfer.ErrHandedOff
)

// call is one caller's run through a flow. Its goroutine owns every field;
// events reach it through events.
type call struct {
	app    *App
	id     string // the caller's channel ID
	flow   *flows.Flow
	rec    record.Call
	events chan ari.Event
	// pending holds events taken off events early (see queuedEnd), read
	// before it.
	pending []ari.Event
	log     *logrus.Entry
	gone    bool                 // the caller's channel has left Stasis
	owned   map[string]time.Time // IDs registered for this call, and since when; guarded by app.mu
	saved   bool                 // the record was written at least once
	// savedBlock is the block the stored record names (its last write).
	savedBlock string
	// overflow is closed when an event could not be queued: the call no
	// longer knows what happened to its channels and is ended.
	overflow     chan struct{}
	overflowOnce sync.Once
	playing      string    // the playback the call waits for, if any
	playStarted  time.Time // when playing started, for MaxPlayback
	handedOff    bool      // the caller was sent to the dialplan (fallback)
	pacing       bool      // holds a place among the adoptions under way
	// waits counts the call's waits for events (next); runFlow tells by it
	// whether a block waited for the caller.
	waits int
	// hungUp is set by deliver as the caller's hangup is queued, so that
	// runFlow sees it between blocks that never read the queue.
	hungUp atomic.Bool
	// staleEnd and staleStart are the caller's StasisEnd and StasisStart
	// (its Stasis arguments) of a trip to the PBX's Dial() whose return
	// was found by looking before they came: deliver drops them (pbx.go).
	staleEnd   atomic.Bool
	staleStart atomic.Pointer[string]
	obs        callObs // its trace's open spans (observe.go)
	// behind is what Later runs off the call's path: each job's done
	// channel.
	behindMu sync.Mutex
	behind   []chan struct{}
	// kept is the bridge the last transfer left with the caller in it,
	// for the next transfer (keptKind says how it was made; bridge.go);
	// "" when none. The call's goroutine only.
	kept, keptKind string
	// ahead is the leg a transfer made for the next one (ahead.go).
	ahead *transfer.Ahead
	// slot is the concurrency slot of the last transfer's leg, kept for
	// the next transfer's count to give back (slot.go).
	slot transfer.EndedSlot
	// chained is the result of the transfer the PBX ran right after the
	// last one, for its block to take (pbx.go).
	chained *chainedResult
}

func (a *App) startCall(ctx context.Context, e *ari.StasisStart) {
	entry := ""
	if len(e.Args) > 0 {
		entry = e.Args[0]
	}
	c := a.newCall(e.Channel.ID)
	c.log = c.log.WithField("entry", entry)
	set := a.Flows()
	f, ok := set.ForEntry(entry)
	now := time.Now()
	c.rec = record.Call{
		CallID: c.id, Channel: e.Channel.Name, Phase: record.PhaseFlow,
		Attributes: flows.Attributes{}, Started: now,
	}
	sys := func(k, v string) { c.rec.Attributes.Set(flows.NSSystem, k, v) }
	if e.Channel.Caller != nil {
		sys(flows.SysCallerNumber, e.Channel.Caller.Number)
		sys(flows.SysCallerName, e.Channel.Caller.Name)
	}
	sys(flows.SysDialedNumber, entry)
	sys(flows.SysChannel, e.Channel.Name)
	sys(flows.SysCallID, c.id)
	if ok {
		c.flow = f
		c.rec.Flow, c.rec.Version, c.rec.Digest, c.rec.Block = f.Name, f.Version, f.Digest, f.Start
	}
	a.launch(ctx, c, func(ctx context.Context) error { return c.runNew(ctx) })
}

func (a *App) newCall(id string) *call {
	return &call{
		app:      a,
		id:       id,
		events:   make(chan ari.Event, a.cfg.EventQueue),
		owned:    map[string]time.Time{},
		overflow: make(chan struct{}),
		log:      a.log.WithFields(logrus.Fields{"call_id": id, "channel": id}),
	}
}

// launch registers the call, and the other IDs whose events are its (an
// adopted call's leg and bridge), and runs body on its own goroutine. A
// call already running here is left alone: reconcile and an answered leg
// may both try to adopt the same call.
func (a *App) launch(ctx context.Context, c *call, body func(context.Context) error, ids ...string) bool {
	a.mu.Lock()
	if _, dup := a.calls[c.id]; dup {
		a.mu.Unlock()
		return false
	}
	a.calls[c.id] = c
	ids = append([]string{c.id}, ids...)
	now := time.Now()
	for _, id := range ids {
		if id != "" {
			a.owners[id] = c
			c.owned[id] = now
		}
	}
	a.claimParkedLocked(c, ids)
	a.mu.Unlock()
	a.metrics.ActiveCalls.Inc()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		defer a.metrics.ActiveCalls.Dec()
		err := body(ctx)
		c.finish(ctx, err)
		if a.cfg.callEnded != nil {
			a.cfg.callEnded(c.id, err)
		}
	}()
	return true
}

func (c *call) runNew(ctx context.Context) error {
	if c.flow == nil {
		c.app.metrics.CallErrors.WithLabelValues("no_flow").Inc()
		c.log.Error("no flow for this entry")
		return c.failCall(ctx, fmt.Errorf("no flow has entry %q", c.rec.Attributes[flows.NSSystem][flows.SysDialedNumber]))
	}
	c.log = c.log.WithFields(logrus.Fields{"flow": c.flow.Name, "version": c.flow.Version})
	c.log.WithField("caller", c.rec.Attributes[flows.NSSystem][flows.SysCallerNumber]).Info("call entered flow")
	c.app.metrics.Calls.Inc()
	// The record first, then the answer: a caller this process answered
	// has a record, so a process taking over tells a call that never began
	// (a caller not answered: it starts the call) from one whose record was
	// lost (answered: the fallback). A call fenced here is left unanswered
	// to the next active process.
	c.rec.Unanswered = true
	observed := c.observeNew(ctx)
	if err := c.save(ctx); err != nil {
		if leaving(ctx, err) {
			return fmt.Errorf("the call's first record: %w", err)
		}
		c.log.WithError(err).Warn("the call's first record was not written; going on all the same")
	}
	observed()
	return c.runFlow(ctx, c.rec.Block)
}

// answer answers the caller. An answer is safe to send again: one that
// got no answer from Asterisk (a connection cut or held, Asterisk busy)
// is sent again, a few times, rather than ending the call in error.
func (c *call) answer(ctx context.Context) error {
	wait := 200 * time.Millisecond
	for try := 1; ; try++ {
		err := c.app.ari.Answer(ctx, c.id)
		if code := ari.StatusCode(err); err == nil || code != 0 && code < 500 || try == answerTries || leaving(ctx, err) {
			return err
		}
		c.log.WithError(err).WithField("try", try).Warn("answering the caller got no answer; answering again")
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return err
		}
		wait *= 2
	}
}

// answerTries bound the tries of a caller's answer, waiting 200 and 400 ms.
const answerTries = 3

// answerFor answers a caller not answered yet before a block that needs
// its audio: every block but those that only set or check attributes, and
// a transfer that answers it itself as its far end is bridged
// (answer_on_bridge). The record says so with the block's next save.
func (c *call) answerFor(ctx context.Context, b *flows.Block) error {
	if !c.rec.Unanswered || silent(b) {
		return nil
	}
	if err := c.answer(ctx); err != nil {
		return answerFailed(err)
	}
	c.rec.Unanswered = false
	return nil
}

// silent tells whether a block leaves a caller not answered yet unanswered.
func silent(b *flows.Block) bool {
	switch b.Type {
	case flows.TypeSetAttributes, flows.TypeCheckAttribute, flows.TypeLoop, flows.TypeTransferToFlow, flows.TypeSetWorkingQueue:
		return true
	case flows.TypeTransferToPhoneNumber:
		return b.Transfer != nil && b.Transfer.AnswerOnBridge
	}
	return false
}

// answerFailed is the error a call ends with when its answer failed: a
// caller gone before it gave up while the call reached us (a PBX slow to
// hand it over), which is not a failure.
func answerFailed(err error) error {
	if ari.IsNotFound(err) {
		return fmt.Errorf("%w before the answer: %w", ErrCallerGone, err)
	}
	return err
}

// maxBlocksWithoutWait bounds the blocks a call runs in a row without
// waiting for the caller: far more than any chain a flow or an import
// makes, so only a flow that loops reaches it (a transfer whose Error
// leads back, refused every time round), and it then costs a few
// milliseconds instead of a core until the caller hangs up.
const maxBlocksWithoutWait = 200

// errSpinning: the flow ran maxBlocksWithoutWait blocks without waiting.
var errSpinning = errors.New("flow loops without waiting for the caller")

// runFlow executes blocks from id until the flow ends. Between blocks it
// checks for the caller's hangup, and it sends a call whose flow runs
// maxBlocksWithoutWait blocks in a row without waiting for the caller to
// the fallback.
func (c *call) runFlow(ctx context.Context, id string) error {
	saveFailures := 0
	busy := 0 // blocks in a row that did not wait for the caller
	for {
		if c.hungUp.Load() && !c.gone {
			c.gone = true
			return ErrCallerGone
		}
		b, ok := c.flow.Blocks[id]
		if !ok {
			return c.failCall(ctx, fmt.Errorf("flow %s: no block %q", c.flow.Name, id))
		}
		c.rec.Block = id
		if err := c.answerFor(ctx, b); err != nil {
			return err
		}
		c.blockStarted(b)
		log := c.log.WithFields(logrus.Fields{"step": id, "type": b.Type})
		waits := c.waits
		branch, err := c.runBlock(ctx, b, log, &saveFailures)
		branch, stop := c.blockOutcome(ctx, b, log, branch, err)
		if errors.Is(stop, errContinuesInFlow) {
			id = c.flow.Start // transferToFlow moved the call
			continue
		}
		if stop != nil {
			return stop
		}
		c.blockLeft(branch, err)
		if branch == "" { // Disconnect
			return nil
		}
		if busy++; c.waits != waits {
			busy = 0
		}
		if busy >= maxBlocksWithoutWait {
			c.app.metrics.FlowSpins.Inc()
			log.WithField("blocks", busy).Error("flow ran blocks in a row without waiting for the caller; sending the caller to the fallback")
			return c.failCall(ctx, fmt.Errorf("%w: %d blocks in a row, the last %s", errSpinning, busy, id))
		}
		if id, err = c.nextBlock(b, branch); err != nil {
			return c.failCall(ctx, err)
		}
		log.WithField("branch", branch).Debug("branch")
	}
}

// runBlock saves the call's position and runs the block. A save that
// fails takes the block's Error branch without running it, up to
// maxSaveFailures blocks in a row.
func (c *call) runBlock(ctx context.Context, b *flows.Block, log *logrus.Entry, saveFailures *int) (string, error) {
	err := c.enterBlock(ctx, b)
	switch {
	case err == nil:
		*saveFailures = 0
		log.Info("step")
		return c.exec(ctx, b)
	case errors.Is(err, ErrFenced):
		// Another process owns the call now: not a word more.
		return "", err
	}
	*saveFailures++
	if !c.saved || *saveFailures > maxSaveFailures {
		// Never written (Redis down as the call came in), or failing
		// block after block (an Error branch that leads back would loop
		// without waiting): the fallback.
		return "", fmt.Errorf("saving the call before %s: %w", b.ID, errors.Join(errSaveFailing, err))
	}
	log.WithError(err).Error("saving the call failed; block not run, taking its Error branch")
	return "", fmt.Errorf("saving the call: %w", err)
}

// errSaveFailing: the call's record cannot be written, block after block.
var errSaveFailing = errors.New("call record unwritable")

// blockOutcome turns a block's error into the branch the flow takes (the
// Error branch for a failure the call survives), or into stop: what ends
// the flow here.
func (c *call) blockOutcome(ctx context.Context, b *flows.Block, log *logrus.Entry, branch string, err error) (string, error) {
	switch {
	case err == nil:
		return branch, nil
	case errors.Is(err, ErrCallerGone), errors.Is(err, errHandedOff), errors.Is(err, ErrFenced), errors.Is(err, errContinuesInFlow):
		return "", err
	case errors.Is(err, errOverflow), errors.Is(err, errStuck), errors.Is(err, errSaveFailing):
		// The call cannot be trusted to wait for anything more (a flooded
		// queue, media that never ends, a record that cannot be written):
		// the fallback.
		return "", c.failCall(ctx, err)
	case ctx.Err() != nil:
		return "", ctx.Err()
	case ari.IsNotFound(err) && !c.callerPresent(ctx):
		// A request for the caller's channel raced its hangup: the call is
		// over, not a block that failed.
		c.gone = true
		return "", ErrCallerGone
	}
	c.app.metrics.CallErrors.WithLabelValues(string(b.Type)).Inc()
	log.WithError(err).Warn("block failed")
	return flows.BranchError, nil
}

// nextBlock is the block branch leads to from b; a failure the flow has no
// branch for falls to its Error branch.
func (c *call) nextBlock(b *flows.Block, branch string) (string, error) {
	next, ok := b.Next(branch)
	if !ok && branch != flows.BranchError {
		next, ok = b.Next(flows.BranchError)
	}
	if !ok {
		return "", fmt.Errorf("block %s (%s) took branch %s, which the flow does not have", b.ID, b.Type, branch)
	}
	return next, nil
}

func (c *call) exec(ctx context.Context, b *flows.Block) (string, error) {
	if ch := c.chained; ch != nil && ch.Block != b.ID {
		// Not the block the PBX ran (never, unless the flow went
		// elsewhere): its leg's slot goes, its result with it.
		c.chained = nil
		c.log.WithFields(logrus.Fields{"step": b.ID, "chained": ch.Block}).Warn("transfer: the PBX's chained transfer's block was not next; its result dropped")
		transfer.EndedSlot{Slot: ch.Slot, Gate: c.gate()}.ReleaseLater(c, c.log)
	}
	if !b.Type.Dials() {
		c.releaseBridge()
		c.releaseAhead("the next block is not a transfer")
		c.releaseSlot()
	}
	held := c.ahead
	branch, err := c.execBlock(ctx, b)
	if held != nil && c.ahead == held {
		// The transfer ended before it made a leg (its settings, the
		// policy, the dialplan): the one made ahead goes.
		c.releaseAhead("its transfer made no leg")
	}
	return branch, err
}

func (c *call) execBlock(ctx context.Context, b *flows.Block) (string, error) {
	switch b.Type {
	case flows.TypePlayPrompt:
		return c.playPrompt(ctx, b.Play)
	case flows.TypeGetCustomerInput:
		return c.getInput(ctx, b.Input)
	case flows.TypeSetAttributes:
		return c.setAttributes(b.Set)
	case flows.TypeCheckAttribute:
		return b.Check.Evaluate(c.rec.Attributes)
	case flows.TypeInvokeWebhook:
		return c.invokeWebhook(ctx, b.Webhook)
	case flows.TypeTransferToPhoneNumber:
		return c.transferToPhone(ctx, b.Transfer)
	case flows.TypeTransferToAgent:
		return c.transferToAgent(ctx, b.Agent)
	case flows.TypeLoop:
		return c.loop(b)
	case flows.TypeTransferToFlow:
		return c.transferToFlow(ctx, b.Jump)
	case flows.TypeSetWorkingQueue:
		return c.setWorkingQueue(b.SetQueue)
	case flows.TypeTransferToQueue:
		return c.transferToQueue(ctx)
	case flows.TypeDisconnect:
		// The flow ends here. The call's end (finish) hangs the caller
		// up, again while Asterisk does not answer, and keeps the record
		// for reconcile should it never answer.
		return "", nil
	default:
		return "", fmt.Errorf("unknown block type %q", b.Type)
	}
}

// failCall is the flow's error handling when no Error branch applies: the
// fallback (a dialplan context), or an apology and hangup. The caller is
// never dropped without a word.
func (c *call) failCall(ctx context.Context, cause error) error {
	c.releaseBridge()
	c.Settle()
	c.app.metrics.CallErrors.WithLabelValues("flow").Inc()
	if c.gone || ctx.Err() != nil || errors.Is(cause, ErrFenced) {
		return cause
	}
	if c.playing != "" {
		// The apology or the fallback comes now, not after the prompt.
		c.stopPlayback(ctx, c.playing)
		c.endPlayback(c.playing)
	}
	c.app.toFallback(ctx, c.id, fallbackReason(cause), c.log.WithError(cause))
	c.handedOff = true
	return cause
}

// enterBlock writes the call's position before a block that acts on the
// caller. A block that only computes, or a transfer (which writes its own
// record before it dials), needs no write, even right after a transfer
// ended: a process taking over meanwhile finds the ended transfer's record
// (its leg gone) and goes on from it just the same, to this block. A
// transfer after a block that acted on the caller writes first
// (wouldReplay).
func (c *call) enterBlock(ctx context.Context, b *flows.Block) error {
	if !savesBeforeActing(b.Type) && c.rec.Phase != record.PhaseDialplan && !c.wouldReplay(b) {
		c.rec.Phase, c.rec.Transfer = record.PhaseFlow, nil
		return nil
	}
	return c.setPhase(ctx, record.PhaseFlow, true)
}

// wouldReplay tells whether a process taking over before transfer block b
// writes its own record would run again a block that acted on the caller:
// the stored record still names a prompt, an input, a webhook (a takeover
// right after a prompt played it again from its start). The way back from
// one transfer to the next, or from a block that only computes, needs no
// write.
func (c *call) wouldReplay(b *flows.Block) bool {
	if !b.Type.Dials() || c.flow == nil {
		return false
	}
	last, ok := c.flow.Blocks[c.savedBlock]
	return ok && last.ID != b.ID && savesBeforeActing(last.Type)
}

// setPhase moves the call to phase p, refusing a transition the state
// machine does not make, and writes the record first when save is set
// (always, for a phase change): the side effects that depend on it come
// after.
func (c *call) setPhase(ctx context.Context, p record.Phase, save ...bool) error {
	if err := record.CheckTransition(c.rec.Phase, p); err != nil {
		c.log.WithError(err).Error("refused phase change")
		return err
	}
	changed := c.rec.Phase != p
	c.rec.Phase = p
	if p == record.PhaseFlow {
		c.rec.Transfer = nil
	}
	if changed || len(save) > 0 && save[0] {
		return c.save(ctx)
	}
	return nil
}

// save writes the record (App.write).
func (c *call) save(ctx context.Context) error {
	if err := c.app.write(ctx, &c.rec); err != nil {
		return err
	}
	c.saved, c.savedBlock = true, c.rec.Block
	return nil
}

// write writes rec under this process's lease epoch; a process that lost
// the lease gets ErrFenced and writes nothing. While the lease has lapsed
// for a moment it waits for the renewal.
func (a *App) write(ctx context.Context, rec *record.Call) error {
	_, err := a.writeAlong(ctx, rec, nil)
	return err
}

// deleteRecord deletes a call's record under the lease, as a write is
// made: a lease that lapsed here for a moment (a slow renewal) is waited
// for, or the record would stay behind a call that ended. ErrFenced: the
// lease is another process's.
func (a *App) deleteRecord(ctx context.Context, callID string) error {
	var again patience
	for {
		epoch, err := a.lease.await(ctx, a.cfg.LapseWait)
		if err != nil {
			return err
		}
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second) // as writes
		err = a.store.Delete(dctx, callID, record.Fence{Owner: a.owner, Epoch: epoch})
		cancel()
		if err == nil || errors.Is(err, ErrFenced) || a.cfg.SavePatience <= 0 || ctx.Err() != nil {
			return err
		}
		// No answer, or Redis not ready (a restart): a delete is safe to
		// make again, and one left undone keeps a record of an ended call
		// until some later reconcile.
		if !again.wait(ctx, a.cfg.SavePatience, func(in time.Duration) {
			a.log.WithError(err).WithFields(logrus.Fields{"call_id": callID, "retry_in": in}).Warn("deleting the call record got no answer; deleting it again")
		}) {
			return err
		}
	}
}

// patience paces the tries of a store request that got no answer (Redis
// restarting, a connection cut): 100 ms after the first, doubling up to
// a second, for as long as the next try still begins within limit of the
// first failure.
type patience struct {
	since time.Time // the first try without an answer
	next  time.Duration
}

// wait tells whether one more try fits within limit and, if it does, says
// so (announce, with the wait) and waits for it; false when it does not
// fit or ctx ends meanwhile.
func (p *patience) wait(ctx context.Context, limit time.Duration, announce func(time.Duration)) bool {
	if p.since.IsZero() {
		p.since, p.next = time.Now(), 100*time.Millisecond
	}
	if time.Since(p.since)+p.next > limit {
		return false
	}
	announce(p.next)
	select {
	case <-time.After(p.next):
		p.next = min(2*p.next, time.Second)
		return true
	case <-ctx.Done():
		return false
	}
}

// alongStore is a Store whose record writes can carry a script part (the
// Redis store): the dial policy's count of the leg the write records.
type alongStore interface {
	SaveAlong(ctx context.Context, rec *record.Call, part store.Part) (store.Wrote, error)
}

// writeAlong is write with part, when not nil, made in the same script
// (the store must be an alongStore): a part that refuses leaves the
// record unwritten, and its *store.PartRefused is returned at once; a
// part that has part.Else written says so (store.Wrote).
func (a *App) writeAlong(ctx context.Context, rec *record.Call, part *store.Part) (store.Wrote, error) {
	var again patience
	// One time for every try: a write made again after its answer was
	// lost carries the same bytes, which the store can recognise.
	rec.Updated = time.Now()
	for attempt := 0; ; attempt++ {
		renewal := a.lease.renewal()
		epoch, err := a.lease.await(ctx, a.cfg.LapseWait)
		if err != nil {
			a.metrics.FencedActions.Inc()
			return store.Wrote{}, err
		}
		rec.Owner, rec.Epoch = a.owner, epoch
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second) // as ARI requests
		var wrote store.Wrote
		if part != nil {
			if e := part.Else; e != nil {
				e.Owner, e.Epoch, e.Updated = rec.Owner, rec.Epoch, rec.Updated
			}
			wrote, err = a.store.(alongStore).SaveAlong(sctx, rec, *part)
		} else {
			err = a.store.Save(sctx, rec)
		}
		cancel()
		if errors.Is(err, store.ErrPartRefused) {
			return wrote, err
		}
		if errors.Is(err, ErrFenced) && attempt < fencedRewrites {
			// Refused while our own lease is still valid: the store lost it
			// (Redis flushed or restarted without its data), or another
			// process holds it. The next renewal's answer tells which: the
			// lease taken back (write again under it) or lost (await says
			// so). That answer may be slow in coming on a busy machine; a
			// call that gave up before it would leave the process that
			// still runs it, with its record gone from the store: the
			// renewal is waited for as a lapse is (LapseWait).
			select {
			case <-renewal:
				continue
			case <-time.After(a.cfg.LapseWait):
			case <-ctx.Done():
			}
		}
		if err != nil && !errors.Is(err, ErrFenced) && a.cfg.SavePatience > 0 && ctx.Err() == nil {
			// No answer, or Redis not ready: the write may have landed.
			// The same record is written again (the write is idempotent)
			// until one is answered: the call then goes on from what the
			// record says.
			if again.wait(ctx, a.cfg.SavePatience, func(in time.Duration) {
				a.log.WithError(err).WithFields(logrus.Fields{"call_id": rec.CallID, "retry_in": in}).Warn("saving the call got no answer; writing it again")
			}) {
				continue
			}
		}
		if err != nil {
			if errors.Is(err, ErrFenced) {
				a.metrics.FencedActions.Inc()
			}
			return wrote, err
		}
		a.metrics.RecordWrites.Inc()
		return wrote, nil
	}
}

// fencedRewrites bounds how often a write refused by the store's fence
// is made again after a renewal: more than once only if the store loses
// the lease again in between.
const fencedRewrites = 3

// maxSaveFailures is how many blocks in a row may find the record
// unwritable and take their Error branch before the call goes to the
// fallback.
const maxSaveFailures = 3

// finish cleans up after the call's goroutine returns: whatever it still
// holds is hung up or destroyed, and the record goes, unless this process
// is stopping, in which case the record stays for the next one.
func (c *call) finish(ctx context.Context, err error) {
	a := c.app
	c.paced()
	stopping := leaving(ctx, err)
	if !stopping {
		c.releaseAhead("the call ended")
	}
	// An ended leg's slot, whoever releases it: the next process does not
	// know it was kept.
	c.releaseSlot()
	c.Settle()
	bg := context.WithoutCancel(ctx)
	keepRecord := false // the record stays, saying the caller's hangup is still to be made
	reconcileAfter := false
	if stopping {
		log := c.log
		if err != nil {
			log = log.WithError(err) // what met the fence, or the stop
		}
		log.Info("no longer active here: call left in place for the next active process")
	} else {
		if c.rec.Outbound != "" {
			if herr := a.ari.Hangup(bg, c.rec.Outbound, "normal"); herr != nil {
				c.log.WithError(herr).Warn("hangup of outbound leg failed")
			}
		}
		if c.rec.Bridge != "" {
			if derr := a.ari.DestroyBridge(bg, c.rec.Bridge); derr != nil {
				c.log.WithError(derr).Warn("bridge destroy failed")
			}
		}
		if !c.gone && !c.handedOff && !errors.Is(err, errHandedOff) {
			if herr := c.hangupCaller(bg); herr != nil {
				keepRecord = c.keepEnding(bg, herr)
			}
		}
		if c.saved && !keepRecord {
			derr := a.deleteRecord(bg, c.id)
			switch {
			case errors.Is(derr, ErrFenced):
				c.log.Info("call record left for the next active process: the lease went while the call ended")
			case derr != nil:
				// A reconcile drops it (the caller is gone or back in
				// the dialplan), trying again until the store answers.
				c.log.WithError(derr).Error("call record delete failed; a reconcile drops it")
				reconcileAfter = true
			default:
				a.metrics.RecordWrites.Inc()
			}
		}
	}
	a.mu.Lock()
	delete(a.calls, c.id)
	for id := range c.owned {
		if a.owners[id] == c {
			delete(a.owners, id)
		}
	}
	a.mu.Unlock()
	c.observeEnd(err, stopping)
	if keepRecord || reconcileAfter {
		// Reconcile adopts the record, and its process hangs the caller
		// up, trying again until Asterisk answers; or it drops a record
		// whose delete failed.
		a.reconcileLeft(ctx)
	}
	if stopping && errors.Is(err, ErrFenced) && ctx.Err() == nil {
		// Fenced for a moment (a request refused as the lease lapsed
		// here), not stopped: the process is still active, and nobody
		// else takes the call over.
		a.takeBack(ctx)
	}
	fields := logrus.Fields{"block": c.rec.Block, "duration": time.Since(c.rec.Started).Round(time.Millisecond)}
	switch {
	case err == nil, errors.Is(err, ErrCallerGone), errors.Is(err, errHandedOff), stopping:
		c.log.WithFields(fields).WithField("end", endReason(err)).Info("call ended")
	default:
		c.log.WithFields(fields).WithError(err).Error("call ended with error")
	}
}

// callerHangupTries bound the tries of the caller's hangup at the call's
// end while Asterisk does not answer it, waiting 200, 400 and 800 ms.
const callerHangupTries = 4

// hangupCaller hangs the caller up at the call's end, again while the
// request gets no answer (a cut connection, a timeout, Asterisk busy): a
// caller whose hangup was lost would stay in the app, answered, with
// nobody to serve it. A caller already gone counts as hung up.
func (c *call) hangupCaller(ctx context.Context) error {
	wait := 200 * time.Millisecond
	for try := 1; ; try++ {
		err := c.app.ari.Hangup(ctx, c.id, "normal")
		code := ari.StatusCode(err)
		if err == nil || code == 404 || code > 0 && code < 500 || try == callerHangupTries {
			if code == 404 {
				err = nil
			}
			return err
		}
		c.log.WithError(err).WithField("try", try).Warn("the caller's hangup got no answer; trying again")
		time.Sleep(wait)
		wait *= 2
	}
}

// keepEnding keeps the record of a call whose caller could not be hung up,
// saying so, for reconcile to finish the hangup; false when it cannot be
// written either (it is then deleted as any other).
func (c *call) keepEnding(ctx context.Context, herr error) bool {
	if !c.saved {
		return false
	}
	if err := c.setPhase(ctx, record.PhaseEnding, true); err != nil {
		c.log.WithError(herr).WithField("save_error", err).Error("the caller's hangup failed, and the record saying so was not written")
		return false
	}
	c.app.metrics.CallErrors.WithLabelValues("hangup_lost").Inc()
	c.log.WithError(herr).Error("the caller's hangup failed; its record is kept for reconcile to hang it up")
	return true
}

// leaving tells whether the call is being left to another process: this
// one lost its lease or stops. Nothing more is done for it here. A call
// that ended on its own (caller gone, handed off) as the process began to
// stop is not left: its clean-up is all that remains, and leaving it would
// keep its record until another process starts.
func leaving(ctx context.Context, err error) bool {
	if errors.Is(err, ErrFenced) {
		return true
	}
	if errors.Is(err, ErrCallerGone) || errors.Is(err, errHandedOff) {
		return false
	}
	return ctx.Err() != nil
}

func endReason(err error) string {
	switch {
	case err == nil:
		return "disconnected by flow"
	case errors.Is(err, errEndedInPBX):
		return "ended in the PBX with its last transfer"
	case errors.Is(err, ErrCallerGone):
		return "caller hung up"
	case errors.Is(err, errHandedOff):
		return "handed off"
	default:
		return "stopped"
	}
}

// savesBeforeActing tells whether the position must be written before a
// block runs. Blocks that only compute (set, check) have no side effect to
// protect, and transfers write their own record before dialling, so a
// write for them would be a wasted round trip.
func savesBeforeActing(t flows.BlockType) bool {
	switch t {
	case flows.TypeSetAttributes, flows.TypeCheckAttribute,
		flows.TypeTransferToPhoneNumber, flows.TypeTransferToAgent:
		return false
	}
	return true
}

// The call as a transfer sees it (transfer.Call).

func (c *call) ID() string { return c.id }

// Later runs f on its own goroutine; the call's end, and its next
// request that touches the caller, wait for it (Settle).
func (c *call) Later(f func(ctx context.Context)) {
	done := make(chan struct{})
	c.behindMu.Lock()
	c.behind = append(c.behind, done)
	c.behindMu.Unlock()
	go func() {
		defer close(done)
		f(context.Background())
	}()
}

// Settle waits for what Later started before it; it may be called from
// any goroutine.
func (c *call) Settle() {
	c.behindMu.Lock()
	jobs := slices.Clone(c.behind)
	c.behindMu.Unlock()
	if len(jobs) == 0 {
		return
	}
	for _, done := range jobs {
		<-done
	}
	c.behindMu.Lock()
	c.behind = slices.DeleteFunc(c.behind, func(done chan struct{}) bool {
		select {
		case <-done:
			return true
		default:
			return false
		}
	})
	c.behindMu.Unlock()
}
func (c *call) Record() *record.Call           { return &c.rec }
func (c *call) Log() *logrus.Entry             { return c.log }
func (c *call) Own(ids ...string)              { c.own(ids...) }
func (c *call) Disown(ids ...string)           { c.disown(ids...) }
func (c *call) Save(ctx context.Context) error { return c.save(ctx) }

// SetPhase moves the call to phase p and writes the record.
func (c *call) SetPhase(ctx context.Context, p record.Phase) error { return c.setPhase(ctx, p, true) }

// CountsAlong tells whether the store can make the dial policy's count
// inside a record's write.
func (c *call) CountsAlong() bool {
	_, ok := c.app.store.(alongStore)
	return ok
}

// SetPhaseAlong moves the call to phase p and writes the record with
// along's count made in the same script. Refused by the count, the record
// stays as it was, in the store and here, and the error is the count's
// verdict (a *policy.Denied).
func (c *call) SetPhaseAlong(ctx context.Context, p record.Phase, along *policy.Along) error {
	_, err := c.setPhaseAlong(ctx, p, along, nil)
	return err
}

// setPhaseAlong is SetPhaseAlong with alt, when not nil, written instead
// of the record when along's Lua refuses only the next leg
// (policy.Gate.CountAlongThen): the record then becomes alt (in phase p
// too), and wrote.Else says so.
func (c *call) setPhaseAlong(ctx context.Context, p record.Phase, along *policy.Along, alt *record.Call) (store.Wrote, error) {
	if err := record.CheckTransition(c.rec.Phase, p); err != nil {
		c.log.WithError(err).Error("refused phase change")
		return store.Wrote{}, err
	}
	was := c.rec.Phase
	c.rec.Phase = p
	if alt != nil {
		alt.Phase = p
	}
	wrote, err := c.app.writeAlong(ctx, &c.rec, &store.Part{Lua: along.Lua, Keys: along.Keys, Args: along.Args, Else: alt})
	var r *store.PartRefused
	if errors.As(err, &r) {
		c.rec.Phase = was
		return wrote, along.Verdict(r.Code)
	}
	if err != nil {
		return wrote, err
	}
	if wrote.Else {
		c.rec = *alt
	}
	c.saved, c.savedBlock = true, c.rec.Block
	return wrote, nil
}

// callerPresent tells whether the caller's channel still exists (an
// error counts as present: do not give up on a caller by guesswork).
func (c *call) callerPresent(ctx context.Context) bool {
	ok, err := c.app.ari.ChannelExists(ctx, c.id)
	return ok || err != nil
}
