// Package fileerr is the "file:line: message" error shared by the loaders
// of configuration files (flows, dial policies), so that a flow that
// embeds a dial policy reports both kinds of problem in one sorted list.
package fileerr

import (
	"fmt"
	"sort"
	"strings"
)

// Error is one problem in a file.
type Error struct {
	File string
	Line int // 0 when the problem is not tied to a line
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// List is every problem a loader found.
type List []*Error

func (l List) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Sort orders the list by file, then line.
func (l List) Sort() {
	sort.SliceStable(l, func(i, j int) bool {
		if l[i].File != l[j].File {
			return l[i].File < l[j].File
		}
		return l[i].Line < l[j].Line
	})
}
