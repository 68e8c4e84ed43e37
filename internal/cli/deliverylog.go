package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/handoff-mta/handoff/config"
	"github.com/handoff-mta/handoff/relay"
)

// The delivery log (PRODUCT.md §8): one line per recipient per delivery
// attempt, in Postfix's key=value style or as JSON, to syslog (facility
// mail), or to standard error with [log] syslog = false:
//
//	0JM2Q4ZK8PX7A3BD: from=<www@example.com>, to=<bob@example.net>, relay=isp[smtp.example.com:465], tls=TLSv1.3 TLS_AES_128_GCM_SHA256, delay=0.21, status=sent (250 2.0.0 Ok: queued as 4F2A3B)
//
// The queue id is "-" for a message delivered at submission before it
// was ever queued, as Postfix writes NOQUEUE.

// logWriter opens the log the config asks for: syslog, or standard
// error with [log] syslog = false; nil when syslog is asked for but this
// host has no syslog socket (a container): delivery never fails for want
// of a log.
//
// With -v (verbose) the lines also go to standard error, as Postfix's
// sendmail -v shows what happened.
func logWriter(env *Env, cfg *config.Config, verbose bool) io.Writer {
	if env.Log != nil {
		return env.Log
	}
	if !cfg.Log.Syslog {
		return env.Stderr
	}
	w, err := dialSyslog()
	switch {
	case err != nil && verbose:
		return env.Stderr
	case err != nil:
		return nil
	case verbose:
		return io.MultiWriter(env.Stderr, w)
	}
	return w
}

// logEntry is one logged outcome.
type logEntry struct {
	QueueID string  `json:"queue_id"`
	From    string  `json:"from"`
	To      string  `json:"to"`
	Relay   string  `json:"relay"`
	Server  string  `json:"server,omitempty"`
	TLS     string  `json:"tls,omitempty"`
	Delay   float64 `json:"delay"`
	Status  string  `json:"status"` // sent, deferred or bounced
	Reply   string  `json:"reply"`
	Dup     bool    `json:"possible_duplicate,omitempty"`
}

// logOutcomes writes a line for each outcome of one delivery.
func (j *job) logOutcomes(d *delivery, out []outcome) {
	if j.log == nil {
		return
	}
	id := j.logID
	if id == "" {
		id = "-"
	}
	delay := j.env.Now().Sub(d.arrival).Seconds()
	if d.arrival.IsZero() || delay < 0 {
		delay = 0
	}
	for _, o := range out {
		e := logEntry{QueueID: id, From: d.sender, To: o.rcpt, Relay: o.via, Server: o.server, TLS: o.tls, Delay: delay}
		switch {
		case o.err == nil:
			e.Status = "sent"
			if o.reply != nil {
				e.Reply = o.reply.String()
			}
		case retryLater(o.err):
			e.Status = "deferred"
			e.Reply = o.err.Error()
			e.Dup = errors.Is(o.err, relay.ErrOutcomeUnknown)
		default:
			e.Status = "bounced"
			e.Reply = o.err.Error()
		}
		j.writeLog(e)
	}
}

// writeLog formats one entry.
func (j *job) writeLog(e logEntry) {
	e.Reply = strings.NewReplacer("\r", " ", "\n", " ").Replace(e.Reply)
	if j.cfg.Log.Format == config.FormatJSON {
		b, _ := json.Marshal(e)
		fmt.Fprintf(j.log, "%s\n", b)
		return
	}
	relayField := e.Relay
	if e.Server != "" {
		relayField += "[" + e.Server + "]"
	}
	line := fmt.Sprintf("%s: from=<%s>, to=<%s>, relay=%s", e.QueueID, e.From, e.To, relayField)
	if e.TLS != "" {
		line += ", tls=" + e.TLS
	}
	line += fmt.Sprintf(", delay=%.2f, status=%s (%s)", e.Delay, e.Status, e.Reply)
	if e.Dup {
		line += ", possible duplicate: the connection was lost after the end of data"
	}
	fmt.Fprintf(j.log, "%s\n", line)
}

// logNote writes a free-form line (a queued message, a relay blocked
// after 535).
func (j *job) logNote(id, text string) {
	if j.log == nil {
		return
	}
	if id == "" {
		id = "-"
	}
	if j.cfg.Log.Format == config.FormatJSON {
		b, _ := json.Marshal(map[string]string{"queue_id": id, "note": text})
		fmt.Fprintf(j.log, "%s\n", b)
		return
	}
	fmt.Fprintf(j.log, "%s: %s\n", id, text)
}

// syslogPath is the local syslog socket (journald or rsyslog listen
// there on Linux); a variable for the tests.
var syslogPath = "/dev/log"

// syslogWriter sends each Write as one message to the local syslog
// socket, facility mail, severity info, tag handoff, in the traditional
// local format ("<22>Nov 29 02:50:00 handoff[1234]: text"). It replaces
// log/syslog, which also tries the BSD and macOS paths of the socket:
// six connection attempts on every call where there is no syslog (a
// container), where this makes two.
type syslogWriter struct {
	mu     sync.Mutex
	conn   net.Conn
	stream bool // SOCK_STREAM: each message ends with a newline
}

// dialSyslog connects to syslogPath, datagram socket first.
func dialSyslog() (*syslogWriter, error) {
	w := &syslogWriter{}
	if err := w.connect(); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *syslogWriter) connect() error {
	var err error
	for _, network := range []string{"unixgram", "unix"} {
		var c net.Conn
		if c, err = net.Dial(network, syslogPath); err == nil {
			w.conn, w.stream = c, network == "unix"
			return nil
		}
	}
	return err
}

// syslogMailInfo is the priority: facility mail (2) times 8 plus
// severity info (6), RFC 3164 §4.1.1.
const syslogMailInfo = 2<<3 | 6

func (w *syslogWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSuffix(string(p), "\n")
	line := fmt.Sprintf("<%d>%s handoff[%d]: %s", syslogMailInfo, time.Now().Format(time.Stamp), os.Getpid(), msg)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.send(line); err != nil {
		// The syslog daemon restarted: one new connection, one retry.
		w.conn.Close()
		if err := w.connect(); err != nil {
			return 0, err
		}
		if err := w.send(line); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (w *syslogWriter) send(line string) error {
	if w.stream {
		line += "\n"
	}
	_, err := io.WriteString(w.conn, line)
	return err
}
