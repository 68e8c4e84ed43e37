package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written in the file as a string: a
// sequence of numbers with units, "30s", "5m", "1h30m", "5d", "2w",
// "1.5h". Units are ns, us (or µs), ms, s, m, h, d (24h) and w (7d); "0"
// needs none. A leading '-' is accepted by the parser so that validation
// can say "must be positive".
type Duration struct{ time.Duration }

var errDurationSyntax = errors.New(`use a number and a unit, like "30s", "5m", "4h" or "5d" (units: ms, s, m, h, d, w)`)

// ParseDuration parses the duration syntax described on Duration.
func ParseDuration(s string) (time.Duration, error) {
	orig := s
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "0" {
		return 0, nil
	}
	if s == "" {
		return 0, fmt.Errorf("invalid duration %q: %w", orig, errDurationSyntax)
	}
	var total float64
	for s != "" {
		i := 0
		for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
			i++
		}
		num := s[:i]
		s = s[i:]
		j := 0
		for j < len(s) && !(s[j] >= '0' && s[j] <= '9' || s[j] == '.') {
			j++
		}
		unit := s[:j]
		s = s[j:]
		n, err := strconv.ParseFloat(num, 64)
		if num == "" || strings.Count(num, ".") > 1 || err != nil {
			return 0, fmt.Errorf("invalid duration %q: %w", orig, errDurationSyntax)
		}
		var u time.Duration
		switch unit {
		case "ns":
			u = time.Nanosecond
		case "us", "µs", "μs":
			u = time.Microsecond
		case "ms":
			u = time.Millisecond
		case "s":
			u = time.Second
		case "m":
			u = time.Minute
		case "h":
			u = time.Hour
		case "d":
			u = 24 * time.Hour
		case "w":
			u = 7 * 24 * time.Hour
		default:
			if unit == "" {
				return 0, fmt.Errorf("invalid duration %q: missing unit; %w", orig, errDurationSyntax)
			}
			return 0, fmt.Errorf("invalid duration %q: unknown unit %q; %w", orig, unit, errDurationSyntax)
		}
		total += n * float64(u)
		if total >= math.MaxInt64 {
			return 0, fmt.Errorf("invalid duration %q: too long", orig)
		}
	}
	d := time.Duration(total)
	if neg {
		d = -d
	}
	return d, nil
}

// UnmarshalText parses the syntax described on Duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// MarshalText returns the form String returns.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// String writes the duration with the largest whole units, "5d", "1h30m",
// "30s", "0"; parts of a second in time.Duration's form ("1.5s").
func (d Duration) String() string {
	v := d.Duration
	if v == 0 {
		return "0"
	}
	var b strings.Builder
	if v < 0 {
		b.WriteByte('-')
		if v == math.MinInt64 {
			return time.Duration(v).String()
		}
		v = -v
	}
	for _, u := range []struct {
		unit string
		size time.Duration
	}{{"d", 24 * time.Hour}, {"h", time.Hour}, {"m", time.Minute}} {
		if v >= u.size {
			b.WriteString(strconv.FormatInt(int64(v/u.size), 10))
			b.WriteString(u.unit)
			v %= u.size
		}
	}
	if v > 0 {
		b.WriteString(v.String())
	}
	return b.String()
}
