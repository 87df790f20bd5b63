package config

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/shmmon/shmmon/proctab"
)

// Proctab is the optional [proctab] table: serve then sweeps a System V process table of the
// original framework, as `shmmon checkproc --every` does.
type Proctab struct {
	Key       int            // key = 0x5095 (an integer, or a string "0x5095")
	SemKey    int            // sem_key, the semaphore's key; default: key
	Slots     int            // slots = 1000
	Every     time.Duration  // every = "10s": time between sweeps
	Signal    syscall.Signal // signal = "TERM"
	KillAfter time.Duration  // kill_after = "5s"
}

// Options returns the table's options for package proctab.
func (t Proctab) Options() proctab.Options {
	return proctab.Options{Key: t.Key, SemKey: t.SemKey, Slots: t.Slots}
}

// proctabKeys are the keys of [proctab].
var proctabKeys = []string{"key", "sem_key", "slots", "every", "signal", "kill_after"}

// proctab resolves the [proctab] table.
func (p *parser) proctab(raw map[string]any) *Proctab {
	pt := &Proctab{Key: proctab.DefaultKey, Slots: proctab.DefaultSlots,
		Every: 10 * time.Second, Signal: syscall.SIGTERM, KillAfter: builtin().KillAfter}
	scratch := builtin()
	for _, k := range slices.Sorted(maps.Keys(raw)) {
		v, line, label := raw[k], p.pos.line("proctab", k), "proctab "+k
		var err error
		switch k {
		case "key", "sem_key":
			var n int
			if n, err = ipcKey(v); err == nil {
				if k == "key" {
					pt.Key = n
				} else {
					pt.SemKey = n
				}
			}
		case "slots":
			var n int64
			if n, err = integer(v, 1, 1<<20, "%d to %d"); err == nil {
				pt.Slots = int(n)
			}
		case "every":
			if err = durationKey(func(w *Worker) *time.Duration { return &w.Every }, atLeastMs)(&scratch, v); err == nil {
				pt.Every = scratch.Every
			}
		case "signal", "kill_after":
			i := slices.IndexFunc(keys, func(d keyDef) bool { return d.name == k })
			if err = keys[i].set(&scratch, v); err == nil {
				pt.Signal, pt.KillAfter = scratch.Signal, scratch.KillAfter
			}
		default:
			err = fmt.Errorf("unknown key (want one of %v)", proctabKeys)
		}
		if err != nil {
			p.add(line, label, err)
		}
	}
	if _, ok := raw["sem_key"]; !ok {
		pt.SemKey = pt.Key
	}
	return pt
}

// ipcKey reads a System V key: a positive integer, or a string in decimal or 0x hex.
func ipcKey(v any) (int, error) {
	const want = `a positive integer or a string such as "0x5095"`
	var n int64
	switch x := v.(type) {
	case int64:
		n = x
	case string:
		var err error
		if n, err = strconv.ParseInt(x, 0, 32); err != nil {
			return 0, fmt.Errorf("%q is not a key (want %s)", x, want)
		}
	default:
		return 0, gotWant(v, want)
	}
	if n <= 0 || n > 1<<31-1 {
		return 0, errors.New(strconv.FormatInt(n, 10) + " is out of range (want " + want + ")")
	}
	return int(n), nil
}
