package queue

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// WriteListing writes items (from List) in the layout of Postfix's mailq
// (postqueue -p, sendmail -bp), which scripts and people know:
//
//	-Queue ID-       --Size-- ----Arrival Time---- -Sender/Recipient-------
//	0JM2Q4ZK8PX7A3BD     2048 Mon Jun  2 10:00:00  alice@example.com
//	                                                     (451 4.3.0 Mailbox busy)
//	                                               bob@example.net
//
//	-- 2 Kbytes in 1 Request.
//
// One block per item: the id followed by '!' when the item is held, the
// size in bytes, the arrival time (local time), the sender (MAILER-DAEMON
// for <>); then each recipient not yet delivered, preceded by its last
// reply in parentheses, right-aligned, when that differs from the
// previous recipient's. An unreadable item shows its problem in place of
// the sender. An empty list is "Mail queue is empty".
func WriteListing(w io.Writer, items []Summary) error {
	bw := bufio.NewWriter(w)
	if len(items) == 0 {
		bw.WriteString("Mail queue is empty\n")
		return bw.Flush()
	}
	idw := 10
	for _, s := range items {
		idw = max(idw, len(s.ID))
	}
	indent := strings.Repeat(" ", idw+1+8+1+20+1)
	fmt.Fprintf(bw, "%-*s %8s %-20s %s\n", idw, "-Queue ID-", "--Size--", "----Arrival Time----", "-Sender/Recipient-------")
	var total int64
	for i, s := range items {
		if i > 0 {
			bw.WriteString("\n")
		}
		total += s.Size
		status := ' '
		if s.Held {
			status = '!'
		}
		arrival := s.Created.Local().Format("Mon Jan _2 15:04:05")
		sender := s.Sender
		switch {
		case s.Err != nil:
			sender = "(unreadable: " + s.Err.Error() + ")"
		case sender == "":
			sender = "MAILER-DAEMON"
		}
		fmt.Fprintf(bw, "%-*s%c%8d %-20s %s\n", idw, s.ID, status, s.Size, arrival, sender)
		prev := ""
		for _, rc := range s.Recipients {
			if rc.State == Sent {
				continue
			}
			if rc.LastReply != "" && rc.LastReply != prev {
				fmt.Fprintf(bw, "%*s(%s)\n", max(0, 76-len(rc.LastReply)), "", rc.LastReply)
			}
			prev = rc.LastReply
			bw.WriteString(indent)
			bw.WriteString(rc.Addr)
			bw.WriteString("\n")
		}
	}
	plural := "s"
	if len(items) == 1 {
		plural = ""
	}
	fmt.Fprintf(bw, "\n-- %d Kbytes in %d Request%s.\n", total/1024, len(items), plural)
	return bw.Flush()
}
