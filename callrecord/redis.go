package callrecord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"
)

// Stream entry fields. record is the JSON document; the others repeat a
// few of its fields so that a reader can pick entries without decoding
// them (ariflow records, a consumer group that wants one caller).
const (
	FieldVersion = "v"
	FieldCallID  = "call_id"
	FieldCaller  = "caller"
	FieldRecord  = "record"
)

// DefaultStream is the stream's key when none is configured: one stream
// for every app and PBX a Redis serves (each record names its app).
const DefaultStream = "ariflow:records"

// RedisOptions size a RedisStream; zero fields take the defaults.
type RedisOptions struct {
	// Key is the stream (default DefaultStream).
	Key string
	// MaxLen bounds the stream, trimmed approximately (XADD MAXLEN ~) at
	// every add (default 100000 records).
	MaxLen int64
	// Queue bounds the records waiting to be written (default 4096).
	Queue int
	// Batch is how many records go in one pipeline (default 64).
	Batch int
	// Timeout bounds one pipeline (default 2 s).
	Timeout time.Duration
	// Retry is the wait before the one retry of a failed pipeline
	// (default 500 ms).
	Retry time.Duration
	// Result is told each record's outcome (metrics).
	Result func(Outcome)
	// Log gets a line per failed batch.
	Log *logrus.Logger
}

func (o *RedisOptions) setDefaults() {
	if o.Key == "" {
		o.Key = DefaultStream
	}
	if o.MaxLen <= 0 {
		o.MaxLen = 100000
	}
	if o.Queue <= 0 {
		o.Queue = 4096
	}
	if o.Batch <= 0 {
		o.Batch = 64
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Second
	}
	if o.Retry <= 0 {
		o.Retry = 500 * time.Millisecond
	}
	if o.Result == nil {
		o.Result = func(Outcome) {}
	}
	if o.Log == nil {
		o.Log = logrus.StandardLogger()
	}
}

// RedisStream writes records to a Redis stream with XADD, bounded by
// MAXLEN ~, from one goroutine of its own: a consumer group
// (XGROUP CREATE … $ MKSTREAM, XREADGROUP) reads them downstream.
type RedisStream struct {
	rdb  redis.UniversalClient
	o    RedisOptions
	q    chan *Record
	done chan struct{}

	mu     sync.RWMutex
	closed bool
	stop   chan struct{}
}

// NewRedisStream starts a RedisStream writing through rdb.
func NewRedisStream(rdb redis.UniversalClient, o RedisOptions) *RedisStream {
	o.setDefaults()
	s := &RedisStream{rdb: rdb, o: o, q: make(chan *Record, o.Queue), done: make(chan struct{}), stop: make(chan struct{})}
	go s.run()
	return s
}

// Key is the stream's key.
func (s *RedisStream) Key() string { return s.o.Key }

// Send queues r without waiting.
func (s *RedisStream) Send(_ context.Context, r *Record) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		s.o.Result(Dropped)
		return false
	}
	select {
	case s.q <- r:
		return true
	default:
		s.o.Result(Dropped)
		return false
	}
}

// Close writes what is queued, within ctx, and stops; records still
// queued when ctx ends are dropped and counted.
func (s *RedisStream) Close(ctx context.Context) error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.q)
	}
	s.mu.Unlock()
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		close(s.stop)
		<-s.done
		return fmt.Errorf("call records: %w", ctx.Err())
	}
}

func (s *RedisStream) run() {
	defer close(s.done)
	batch := make([]*Record, 0, s.o.Batch)
	for r := range s.q {
		batch = append(batch[:0], r)
	fill:
		for len(batch) < s.o.Batch {
			select {
			case r, ok := <-s.q:
				if !ok {
					break fill
				}
				batch = append(batch, r)
			default:
				break fill
			}
		}
		s.write(batch)
	}
}

// write adds a batch in one pipeline, tried twice.
func (s *RedisStream) write(batch []*Record) {
	select {
	case <-s.stop:
		for range batch {
			s.o.Result(Dropped)
		}
		return
	default:
	}
	args := make([]*redis.XAddArgs, 0, len(batch))
	for _, r := range batch {
		a, err := s.entry(r)
		if err != nil {
			s.o.Result(Failed)
			s.o.Log.WithError(err).WithField("call_id", r.CallID).Error("call record not encoded")
			continue
		}
		args = append(args, a)
	}
	var err error
	for try := 0; try < 2; try++ {
		if try > 0 {
			select {
			case <-time.After(s.o.Retry):
			case <-s.stop:
			}
		}
		if err = s.pipeline(args); err == nil {
			for range args {
				s.o.Result(Sent)
			}
			return
		}
	}
	for range args {
		s.o.Result(Failed)
	}
	s.o.Log.WithError(err).WithFields(logrus.Fields{"stream": s.o.Key, "records": len(args)}).Warn("call records not written to the stream")
}

func (s *RedisStream) pipeline(args []*redis.XAddArgs) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.o.Timeout)
	defer cancel()
	cmds, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, a := range args {
			p.XAdd(ctx, a)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, c := range cmds {
		if err := c.Err(); err != nil {
			return err
		}
	}
	return nil
}

func (s *RedisStream) entry(r *Record) (*redis.XAddArgs, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	return &redis.XAddArgs{Stream: s.o.Key, MaxLen: s.o.MaxLen, Approx: true,
		Values: []any{FieldVersion, strconv.Itoa(r.Version), FieldCallID, r.CallID, FieldCaller, r.Caller, FieldRecord, string(b)}}, nil
}

// Entry is one record read back from the stream.
type Entry struct {
	ID     string // the stream entry's ID
	Record *Record
	Raw    string // the record's JSON as stored
}

// Filter picks entries by call ID or caller number ("" matches any).
type Filter struct {
	CallID, Caller string
}

func (f Filter) match(v map[string]any) bool {
	str := func(k string) string { s, _ := v[k].(string); return s }
	return (f.CallID == "" || str(FieldCallID) == f.CallID) && (f.Caller == "" || str(FieldCaller) == f.Caller)
}

// ErrNotRecord is an entry whose record does not decode.
var ErrNotRecord = errors.New("stream entry is not a call record")

// Latest reads up to n records matching f from the stream's newest
// backwards, looking at most scan entries; newest first.
func Latest(ctx context.Context, rdb redis.UniversalClient, key string, f Filter, n, scan int) ([]Entry, error) {
	var out []Entry
	end := "+"
	seen := 0
	for seen < scan && len(out) < n {
		page := min(500, scan-seen)
		msgs, err := rdb.XRevRangeN(ctx, key, end, "-", int64(page)).Result()
		if err != nil {
			return out, fmt.Errorf("reading stream %s: %w", key, err)
		}
		for _, m := range msgs {
			seen++
			if !f.match(m.Values) {
				continue
			}
			raw, _ := m.Values[FieldRecord].(string)
			var r Record
			if err := json.Unmarshal([]byte(raw), &r); err != nil {
				return out, fmt.Errorf("%w: %s: %v", ErrNotRecord, m.ID, err)
			}
			out = append(out, Entry{ID: m.ID, Record: &r, Raw: raw})
			if len(out) == n {
				break
			}
		}
		if len(msgs) < page {
			break
		}
		end = "(" + msgs[len(msgs)-1].ID
	}
	return out, nil
}
