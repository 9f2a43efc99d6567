package controller

// changes hands out a channel that is closed at the next change of some
// state, then replaced: any number of goroutines wait for a change
// without one taking it from another. Its owner's lock guards it; a
// waiter takes the channel before it reads the state, so that a change
// after the read closes the channel it holds.
type changes struct{ ch chan struct{} }

// next is closed at the next change.
func (c *changes) next() <-chan struct{} {
	if c.ch == nil {
		c.ch = make(chan struct{})
	}
	return c.ch
}

// changed closes the waiters' channel.
func (c *changes) changed() {
	if c.ch != nil {
		close(c.ch)
		c.ch = nil
	}
}
