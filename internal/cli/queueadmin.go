package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/handoff-mta/handoff/internal/sendopt"
	"github.com/handoff-mta/handoff/queue"
)

const queueUsage = `usage: handoff queue [-C FILE] [-v] COMMAND
  list [--json]      the queue, as mailq shows it, or as JSON
  show ID            an item's envelope and its message's header
  flush [ID...]      deliver now, ignoring the retry schedule
  delete ID...       remove items without delivering them or telling
                     their senders
  hold ID...         keep items from being delivered
  release ID...      let held items be delivered again
Anyone but root (and the queue's owner) sees and manages only the
items it submitted.
`

// queueCmd is "handoff queue list|show|flush|delete|hold|release". Exit
// status: 0 done; 64 usage; 69 an id that is not queued (or not the
// caller's, or corrupt); 75 an item being delivered, or a queue run in
// progress (flush): try again; 73 or 75 when the queue cannot be opened
// (see queueExit).
func queueCmd(args []string, env *Env) int {
	inv := &sendopt.Invocation{Name: "handoff", Interface: "sendmail", ErrorMode: sendopt.ErrorPrint}
	asJSON := false
	var pos []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-C" && i+1 < len(args) && args[i+1] != "":
			inv.ConfigFile = args[i+1]
			i++
		case a == "-v":
			inv.Verbose++
		case a == "--json":
			asJSON = true
		case a == "-h" || a == "--help":
			fmt.Fprint(env.Stdout, queueUsage)
			return exOK
		case len(a) > 1 && a[0] == '-':
			fmt.Fprintf(env.Stderr, "handoff queue: unknown option %q\n%s", a, queueUsage)
			return exUsage
		default:
			pos = append(pos, a)
		}
	}
	if len(pos) == 0 {
		fmt.Fprint(env.Stderr, queueUsage)
		return exUsage
	}
	cmd, ids := pos[0], pos[1:]
	usageErr := func(msg string) int {
		fmt.Fprintf(env.Stderr, "handoff queue %s: %s\n%s", cmd, msg, queueUsage)
		return exUsage
	}
	switch cmd {
	case "list":
		if len(ids) > 0 {
			return usageErr("takes no arguments")
		}
	case "show":
		if len(ids) != 1 {
			return usageErr("takes one queue id")
		}
	case "flush":
	case "delete", "hold", "release":
		if len(ids) == 0 {
			return usageErr("needs queue ids")
		}
	default:
		fmt.Fprintf(env.Stderr, "handoff queue: unknown command %q\n%s", cmd, queueUsage)
		return exUsage
	}
	if asJSON && cmd != "list" {
		return usageErr("--json is for list")
	}
	j, code := newJob(env, inv)
	if j == nil {
		return code
	}
	if cmd == "list" {
		items, code := j.listItems()
		if code != exOK {
			return code
		}
		if asJSON {
			data, err := json.MarshalIndent(items, "", "  ")
			if err != nil {
				j.warnf("%v", err)
				return exSoftware
			}
			data = append(data, '\n')
			_, err = env.Stdout.Write(data)
			if err != nil {
				return exIOErr
			}
			return exOK
		}
		if err := queue.WriteListing(env.Stdout, items); err != nil {
			return exIOErr
		}
		return exOK
	}
	if j.env.uid() != 0 && j.useDaemon() {
		// System mode: the queue is the daemon's, which lets a user
		// manage their own items.
		return j.queueViaDaemon(cmd, ids)
	}
	q, err := j.openQueue()
	if err != nil {
		j.queueError(err)
		return queueExit(err)
	}
	switch cmd {
	case "flush":
		ctx, stop := env.context()
		defer stop()
		if len(ids) == 0 {
			ids = nil
		}
		return j.runQueue(ctx, q, []queue.Filter{{}}, ids, true)
	case "show":
		return j.eachItem(q, ids, func(it *queue.Item) error {
			data, err := itemText(it)
			if err != nil {
				return err
			}
			_, err = env.Stdout.Write(data)
			return err
		})
	case "delete":
		return j.eachItem(q, ids, func(it *queue.Item) error {
			if err := it.Remove(); err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "%s: deleted\n", it.ID())
			return nil
		})
	default: // hold, release
		held := cmd == "hold"
		return j.eachItem(q, ids, func(it *queue.Item) error {
			it.Env.Held = held
			if err := it.Save(); err != nil {
				return err
			}
			word := "released"
			if held {
				word = "held"
			}
			fmt.Fprintf(env.Stdout, "%s: %s\n", it.ID(), word)
			return nil
		})
	}
}

// itemText is what "handoff queue show" prints of a locked item: its
// envelope file, an empty line, and the header of its message, with LF
// line endings.
func itemText(it *queue.Item) ([]byte, error) {
	data, err := it.Env.Marshal()
	if err != nil {
		return nil, err
	}
	body, err := it.Body()
	if err != nil {
		return nil, err
	}
	header, err := queue.ReadHeader(body, 0)
	if err != nil {
		return nil, err
	}
	data = append(data, '\n')
	return append(data, bytes.ReplaceAll(header, []byte("\r\n"), []byte("\n"))...), nil
}

// eachItem locks each item of ids that the caller may manage, runs fn on
// it and unlocks it, reporting one line per problem. It returns the exit
// status (see queueCmd).
func (j *job) eachItem(q *queue.Queue, ids []string, fn func(it *queue.Item) error) int {
	own := j.callerFilter(q)
	code := exOK
	for _, id := range ids {
		it, err := q.Lock(id)
		var ce *queue.CorruptError
		switch {
		case errors.Is(err, queue.ErrBusy):
			j.warnf("%s: being delivered or changed by another process; try again later", id)
			code = worse(code, exTempFail)
			continue
		case errors.As(err, &ce):
			j.warnf("%v", err)
			code = worse(code, exUnavailable)
			continue
		case errors.Is(err, queue.ErrNotFound):
			j.warnf("%s: no such queue item", id)
			code = worse(code, exUnavailable)
			continue
		case err != nil:
			j.warnf("%v", err)
			code = worse(code, queueExit(err))
			continue
		}
		if !own.Match(it.Env) {
			it.Unlock()
			j.warnf("%s: no such queue item", id)
			code = worse(code, exUnavailable)
			continue
		}
		err = fn(it)
		it.Unlock()
		if err != nil {
			j.warnf("%s: %v", id, err)
			code = worse(code, exIOErr)
		}
	}
	return code
}
