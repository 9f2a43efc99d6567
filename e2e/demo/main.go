// Command demo places the seed scenario's call through a running stack and
// prints what each party experienced, as a timeline.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/ariflow/ariflow/e2e"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

var start = time.Now()

func say(who, format string, args ...any) {
	fmt.Printf("%6.2fs  %-8s %s\n", time.Since(start).Seconds(), who, fmt.Sprintf(format, args...))
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	s, err := e2e.LoadStack()
	if err != nil {
		return err
	}
	carrier, err := e2e.NewCarrier(ctx, s)
	if err != nil {
		return err
	}
	defer carrier.Close()
	carrier.Start(ctx)
	obs, err := e2e.NewObserver(ctx, s)
	if err != nil {
		return err
	}
	defer obs.Close()
	if err := seed(ctx, carrier, obs); err != nil {
		return err
	}
	if err := s.WaitClean(ctx, 5*time.Second); err != nil {
		return err
	}
	say("pbx", "no channels, bridges or call records left")
	return nil
}

const (
	did      = "+4930555000"
	shipper  = "+4930123456"
	agent    = "+4930111000"
	from     = "+4917612345678"
	tracking = "4711"
)

// seed plays the seed scenario from the caller's dial to the end of the call.
func seed(ctx context.Context, carrier *e2e.Carrier, obs *e2e.Observer) error {
	askTracking := obs.Prompts("sound:vm-enter-num-to-call")
	askSolved := obs.Prompts("sound:if-correct-press")
	shipCh := carrier.Expect(shipper)
	agentCh := carrier.ExpectFrom(agent, from)

	fmt.Println("The seed scenario: a caller is sent to the shipping company with the tracking")
	fmt.Println("number as DTMF; when the shipper hangs up, the caller comes back and is routed to an agent.")
	fmt.Println()
	say("caller", "dials %s from %s", did, from)
	caller, err := carrier.Dial(ctx, from, did)
	if err != nil {
		return err
	}
	say("caller", "answered by ariflow; hears the greeting")
	if err := askTracking.Wait(ctx); err != nil {
		return err
	}
	say("caller", "asked for the tracking number; types %s#", tracking)
	if err := caller.SendDTMF(tracking + "#"); err != nil {
		return err
	}
	if err := shipperCannotHelp(ctx, shipCh); err != nil {
		return err
	}
	if err := askSolved.Wait(ctx); err != nil {
		return err
	}
	say("caller", "back in the flow: asked whether the problem is solved; presses 2 (no)")
	if err := caller.SendDTMF("2"); err != nil {
		return err
	}
	if err := agentHelps(ctx, agentCh); err != nil {
		return err
	}
	if err := caller.WaitHangup(ctx); err != nil {
		return err
	}
	say("caller", "call over")
	return nil
}

// shipperCannotHelp answers the shipper's call, hears the tracking number
// and hangs up, which sends the caller back into the flow.
func shipperCannotHelp(ctx context.Context, shipCh <-chan *e2e.Remote) error {
	var ship *e2e.Remote
	select {
	case ship = <-shipCh:
	case <-ctx.Done():
		return fmt.Errorf("the shipper was never called")
	}
	say("shipper", "rings: call to %s from %q <%s>", ship.Number, ship.CallerName, ship.CallerNum)
	time.Sleep(800 * time.Millisecond) // let it ring, as a person would
	if err := ship.Answer(); err != nil {
		return err
	}
	say("shipper", "answers; its IVR listens for the tracking number")
	digits, err := ship.Digits(ctx, len(tracking))
	if err != nil {
		return err
	}
	say("shipper", "IVR received DTMF %q", digits)
	time.Sleep(1500 * time.Millisecond) // the shipper talks to the caller
	say("shipper", "cannot help and hangs up")
	return ship.Hangup()
}

// agentHelps answers the agent's call and hangs up after a while.
func agentHelps(ctx context.Context, agentCh <-chan *e2e.Remote) error {
	var ag *e2e.Remote
	select {
	case ag = <-agentCh:
	case <-ctx.Done():
		return fmt.Errorf("the agent was never called")
	}
	say("agent", "rings: call to %s from <%s>", ag.Number, ag.CallerNum)
	if err := ag.Answer(); err != nil {
		return err
	}
	say("agent", "answers and helps the caller")
	time.Sleep(1500 * time.Millisecond)
	say("agent", "hangs up")
	return ag.Hangup()
}
