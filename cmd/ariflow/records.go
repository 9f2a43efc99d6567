package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ariflow/ariflow/callrecord"
)

// runRecords implements "ariflow records [-caller NUMBER | -call ID]
// [-n 10] [-json]": the latest call records from the Redis stream,
// newest first.
func runRecords(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("records", flag.ContinueOnError)
	fs.SetOutput(stderr)
	redisURL := fs.String("redis-url", envDefault("ARIFLOW_REDIS_URL", "redis://127.0.0.1:6379/0"), "Redis URL ($ARIFLOW_REDIS_URL)")
	pwFile := fs.String("redis-password-file", envDefault("ARIFLOW_REDIS_PASSWORD_FILE", ""), "file with the Redis password ($ARIFLOW_REDIS_PASSWORD_FILE)")
	stream := fs.String("stream", envDefault("ARIFLOW_RECORDS_STREAM", callrecord.DefaultStream), "the records' stream ($ARIFLOW_RECORDS_STREAM)")
	caller := fs.String("caller", "", "only calls from this number (as the caller ID arrived, e.g. +4917612345678)")
	callID := fs.String("call", "", "only the call with this ID (its channel ID)")
	n := fs.Int("n", 10, "at most this many records")
	scan := fs.Int("scan", 100000, "look at most at this many of the newest entries")
	asJSON := fs.Bool("json", false, "print each record's JSON on a line of its own")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ariflow records [-caller NUMBER | -call ID] [-n 10] [-json] [-redis-url URL] [-stream KEY]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 || *n < 1 || *scan < 1 {
		fs.Usage()
		return 2
	}
	o, err := redisOptions(*redisURL)
	if err != nil {
		fmt.Fprintf(stderr, "ariflow records: Redis URL %q: %s\n", redactURL(*redisURL), redactErr(err, *redisURL))
		return 2
	}
	if *pwFile != "" {
		pw, err := readSecretFile(*pwFile, "Redis password", MinSecret)
		if err != nil {
			fmt.Fprintf(stderr, "ariflow records: %v\n", err)
			return 2
		}
		o.Password = pw
	}
	rdb := redis.NewUniversalClient(o)
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	entries, err := callrecord.Latest(ctx, rdb, *stream, callrecord.Filter{CallID: *callID, Caller: *caller}, *n, *scan)
	if err != nil {
		fmt.Fprintf(stderr, "ariflow records: %s\n", redactErr(err, *redisURL))
		return 1
	}
	if len(entries) == 0 {
		fmt.Fprintf(stderr, "ariflow records: no record in %s matches\n", *stream)
		return 1
	}
	for _, e := range entries {
		if *asJSON {
			fmt.Fprintln(stdout, e.Raw)
			continue
		}
		printRecord(stdout, e)
	}
	return 0
}

// printRecord writes a record for a person: what happened, in order.
func printRecord(w io.Writer, e callrecord.Entry) {
	r := e.Record
	fmt.Fprintf(w, "call %s  from %s to %s  %s  %.1fs  %s", r.CallID, r.Caller, r.Dialed,
		r.Started.Local().Format("2006-01-02 15:04:05"), r.DurationS, r.End.Reason)
	if r.End.Error != "" {
		fmt.Fprintf(w, " (%s)", r.End.Error)
	}
	fmt.Fprintln(w)
	if r.Flow != "" {
		fmt.Fprintf(w, "  flow %s v%s", r.Flow, r.FlowVersion)
	}
	if r.TraceID != "" {
		fmt.Fprintf(w, "  trace %s", r.TraceID)
	}
	fmt.Fprintln(w)
	for i, p := range r.Processes {
		how := "served"
		if p.Adopted {
			how = "took over"
		}
		fmt.Fprintf(w, "  [%d] %s %s at %s\n", i, p.Owner, how, p.From.Local().Format("15:04:05.000"))
	}
	if r.BlocksDropped > 0 {
		fmt.Fprintf(w, "  … %d earlier blocks\n", r.BlocksDropped)
	}
	for _, b := range r.Blocks {
		branch := b.Branch
		if branch == "" {
			branch = "-"
		}
		line := fmt.Sprintf("  %s [%d] %-24s %-22s -> %s", b.At.Local().Format("15:04:05.000"), b.By, b.Block, b.Type, branch)
		if b.Error != "" {
			line += "  (" + b.Error + ")"
		}
		fmt.Fprintln(w, line)
	}
	for _, t := range r.Transfers {
		var nums []string
		for _, n := range t.Numbers {
			s := n.Number + " " + n.Outcome
			if n.SIPCode != 0 {
				s += fmt.Sprintf(" %d", n.SIPCode)
			}
			if n.DeniedBy != "" {
				s += " by " + n.DeniedBy
			}
			nums = append(nums, s)
		}
		fmt.Fprintf(w, "  transfer %s: %s", t.Block, t.Outcome)
		if t.EndedBy != "" {
			fmt.Fprintf(w, ", ended by %s after %.1fs", t.EndedBy, float64(t.TalkMs)/1000)
		}
		fmt.Fprintf(w, "  [%s]\n", strings.Join(nums, "; "))
	}
	fmt.Fprintln(w)
}
