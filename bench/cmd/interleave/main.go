// Command interleave times several commands side by side for
// bench/run.sh: it runs them in rounds, one of each per round (A B C,
// then B C A, then C A B, ...), so that whatever else the machine does
// hits every command alike, and reports the median and min–max wall time
// of each, the ratio of a reference command to each, and optionally
// throughput and peak RSS (the child's ru_maxrss from wait4, the number
// /usr/bin/time -v prints as "Maximum resident set size").
//
// Usage:
//
//	interleave -n 200 -warmup 3 -stdin msg.eml -ref handoff \
//	    -c 'handoff: HANDOFF_CONFIG=/x/plain.toml bin/sendmail -t -i' \
//	    -c 'msmtp: msmtp -t -i --host=127.0.0.1 --port=2525' \
//	    -c 'floor: bin/floor' \
//	    -md table.md -tsv summary.tsv -samples samples.tsv
//
// A command is "NAME: [VAR=value ...] PROGRAM ARG...", split at white
// space (no quoting). Each run gets a fresh descriptor of the -stdin file
// as its standard input, /dev/null as its standard output, and its
// standard error is kept: a run that exits non-zero or outlives -timeout
// stops everything with that output, so a broken peer fails loudly.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"time"
)

type command struct {
	name string
	env  []string
	argv []string

	wall []time.Duration
	rss  []int64 // KiB
	// firstStderr is what the first run wrote to standard error, shown
	// once so that warnings are not hidden.
	firstStderr string
}

type specs []string

func (s *specs) String() string     { return strings.Join(*s, "; ") }
func (s *specs) Set(v string) error { *s = append(*s, v); return nil }

func parse(spec string) (*command, error) {
	name, rest, ok := strings.Cut(spec, ":")
	name = strings.TrimSpace(name)
	if !ok || name == "" || strings.ContainsAny(name, " \t|") {
		return nil, fmt.Errorf("command %q: want \"NAME: [VAR=value ...] PROGRAM ARG...\"", spec)
	}
	c := &command{name: name}
	words := strings.Fields(rest)
	for len(words) > 0 {
		k, _, ok := strings.Cut(words[0], "=")
		if !ok || !isVarName(k) {
			break
		}
		c.env = append(c.env, words[0])
		words = words[1:]
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("command %q: no program", spec)
	}
	c.argv = words
	return c, nil
}

func isVarName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

func main() {
	var cmds specs
	n := flag.Int("n", 200, "measured rounds (each runs every command once)")
	warmup := flag.Int("warmup", 3, "rounds run first and not recorded")
	stdin := flag.String("stdin", "", "file given as standard input to every run (default /dev/null)")
	ref := flag.String("ref", "", "name of the reference command for the ratio column (default: the first)")
	payload := flag.Int64("bytes", 0, "bytes each run carries; adds a MB/s column when > 0")
	showRSS := flag.Bool("rss", false, "add a peak RSS column")
	timeout := flag.Duration("timeout", 2*time.Minute, "limit on one run")
	mdPath := flag.String("md", "", "write the Markdown table here (default standard output)")
	tsvPath := flag.String("tsv", "", "write a summary, one tab-separated line per command, here")
	samplesPath := flag.String("samples", "", "write every measured run here (name, round, ms, rss KiB)")
	flag.Var(&cmds, "c", "a command, \"NAME: [VAR=value ...] PROGRAM ARG...\" (repeat)")
	flag.Parse()
	if len(cmds) == 0 || *n < 1 || *warmup < 0 || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: interleave -n N [-warmup W] [-stdin FILE] -c 'NAME: PROGRAM ARG...' -c ...")
		os.Exit(2)
	}
	var list []*command
	for _, s := range cmds {
		c, err := parse(s)
		if err != nil {
			fatal(err)
		}
		for _, o := range list {
			if o.name == c.name {
				fatal(fmt.Errorf("command name %q used twice", c.name))
			}
		}
		list = append(list, c)
	}
	refIdx := 0
	if *ref != "" {
		refIdx = -1
		for i, c := range list {
			if c.name == *ref {
				refIdx = i
			}
		}
		if refIdx < 0 {
			fatal(fmt.Errorf("-ref %q names no command", *ref))
		}
	}
	if *stdin == "" {
		*stdin = os.DevNull
	}

	total := *warmup + *n
	start := time.Now()
	for round := 0; round < total; round++ {
		for i := range list {
			c := list[(round+i)%len(list)]
			d, rss, err := runOnce(c, *stdin, *timeout)
			if err != nil {
				fatal(fmt.Errorf("%s, round %d of %d: %v", c.name, round+1, total, err))
			}
			if round >= *warmup {
				c.wall = append(c.wall, d)
				c.rss = append(c.rss, rss)
			}
		}
		if step := total / 10; step > 0 && (round+1)%step == 0 || round+1 == total {
			fmt.Fprintf(os.Stderr, "  round %d/%d (%.1fs)\n", round+1, total, time.Since(start).Seconds())
		}
	}
	for _, c := range list {
		if c.firstStderr != "" {
			fmt.Fprintf(os.Stderr, "  note: %s wrote to standard error: %s\n", c.name, strings.TrimSpace(c.firstStderr))
		}
	}

	if *samplesPath != "" {
		var b bytes.Buffer
		b.WriteString("name\tround\tms\trss_kib\n")
		for _, c := range list {
			for i, d := range c.wall {
				fmt.Fprintf(&b, "%s\t%d\t%.3f\t%d\n", c.name, i+1, ms(d), c.rss[i])
			}
		}
		if err := os.WriteFile(*samplesPath, b.Bytes(), 0o644); err != nil {
			fatal(err)
		}
	}

	refMed := median(list[refIdx].wall)
	var md, tsv bytes.Buffer
	md.WriteString("| tool | median ms | min–max ms | " + list[refIdx].name + " ÷ tool | N |")
	sep := "|---|---:|---:|---:|---:|"
	if *payload > 0 {
		md.WriteString(" median MB/s |")
		sep += "---:|"
	}
	if *showRSS {
		md.WriteString(" peak RSS MiB (median, max) |")
		sep += "---:|"
	}
	md.WriteString("\n" + sep + "\n")
	for _, c := range list {
		med := median(c.wall)
		lo, hi := minMax(c.wall)
		fmt.Fprintf(&md, "| %s | %s | %s–%s | %.2f | %d |", c.name, fmtMS(med), fmtMS(lo), fmtMS(hi), float64(refMed)/float64(med), len(c.wall))
		mbps := 0.0
		if *payload > 0 {
			mbps = float64(*payload) / 1e6 / med.Seconds()
			fmt.Fprintf(&md, " %.0f |", mbps)
		}
		rssMed, rssMax := medianInt(c.rss), maxInt(c.rss)
		if *showRSS {
			fmt.Fprintf(&md, " %.1f, %.1f |", float64(rssMed)/1024, float64(rssMax)/1024)
		}
		md.WriteString("\n")
		fmt.Fprintf(&tsv, "%s\t%d\t%.3f\t%.3f\t%.3f\t%d\t%d\t%.1f\n", c.name, len(c.wall), ms(med), ms(lo), ms(hi), rssMed, rssMax, mbps)
	}
	if err := write(*mdPath, md.Bytes()); err != nil {
		fatal(err)
	}
	if *tsvPath != "" {
		if err := os.WriteFile(*tsvPath, tsv.Bytes(), 0o644); err != nil {
			fatal(err)
		}
	}
}

// runOnce runs c once and returns its wall time, from just before the
// fork to just after wait4 returns, and its peak RSS.
func runOnce(c *command, stdin string, timeout time.Duration) (time.Duration, int64, error) {
	in, err := os.Open(stdin)
	if err != nil {
		return 0, 0, err
	}
	defer in.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.argv[0], c.argv[1:]...)
	cmd.Stdin = in // an *os.File: the child reads the file itself
	cmd.Env = append(os.Environ(), c.env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	t0 := time.Now()
	err = cmd.Run()
	d := time.Since(t0)
	if ctx.Err() != nil {
		return 0, 0, fmt.Errorf("no exit after %v (killed); standard error: %s", timeout, stderr.String())
	}
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return 0, 0, fmt.Errorf("%v; standard error:\n%s", err, stderr.String())
		}
		return 0, 0, err
	}
	if c.firstStderr == "" && stderr.Len() > 0 {
		c.firstStderr = stderr.String()
	}
	var rss int64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss
	}
	return d, rss, nil
}

func write(path string, b []byte) error {
	if path == "" {
		_, err := os.Stdout.Write(b)
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func fmtMS(d time.Duration) string {
	switch m := ms(d); {
	case m >= 1000:
		return fmt.Sprintf("%.0f", m)
	case m >= 100:
		return fmt.Sprintf("%.1f", m)
	default:
		return fmt.Sprintf("%.2f", m)
	}
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func minMax(ds []time.Duration) (time.Duration, time.Duration) {
	lo, hi := ds[0], ds[0]
	for _, d := range ds {
		lo, hi = min(lo, d), max(hi, d)
	}
	return lo, hi
}

func medianInt(v []int64) int64 {
	s := append([]int64(nil), v...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func maxInt(v []int64) int64 {
	m := v[0]
	for _, x := range v {
		m = max(m, x)
	}
	return m
}

func fatal(err error) {
	fmt.Fprintf(os.Stderr, "interleave: %v\n", err)
	os.Exit(1)
}
