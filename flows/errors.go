package flows

import "github.com/ariflow/ariflow/internal/fileerr"

// Error is one problem in a flow file.
type Error = fileerr.Error

// ErrorList is every problem the loader found, sorted by file and line.
type ErrorList = fileerr.List
