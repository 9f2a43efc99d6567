package flows

import "strconv"

// Loop and TransferToFlow settings.

func (k *blk) loop() *Loop {
	l := &Loop{}
	if k.required("count") == nil {
		return l
	}
	l.Count = k.value("count", func(s string) (string, error) {
		n, err := ParseLoopCount(s)
		return strconv.Itoa(n), err
	})
	return l
}

func (k *blk) jump() *TransferToFlow {
	j := &TransferToFlow{}
	if k.required("flow") == nil {
		return j
	}
	if s, line, ok := k.str("flow"); ok {
		if !nameRE.MatchString(s) {
			k.errf(line, "flow %q: a flow name may only hold a-z 0-9 _ -", s)
		} else {
			j.Flow = s
		}
	}
	return j
}
