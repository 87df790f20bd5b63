package config

import (
	"errors"
	"fmt"
	"maps"
	"os"
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
	Every     time.Duration  // every = "10s": time between sweeps, at least proctab.MinEvery
	Signal    syscall.Signal // signal = "TERM"
	KillAfter time.Duration  // kill_after = "5s"
	// Create is create = true: serve creates the table when it does not exist (as it always
	// has); with false it waits for the clients to create it, trying again every sweep.
	Create bool
	Mode   os.FileMode // mode = "0660": the permissions of a table serve creates
	Group  int         // group = "name" or "gid": the group of a table serve creates; 0 = none
}

// Options returns the table's options for package proctab.
func (t Proctab) Options() proctab.Options {
	return proctab.Options{Key: t.Key, SemKey: t.SemKey, Slots: t.Slots, Mode: t.Mode, Group: t.Group}
}

// LookupGroup returns the gid of a group name or a numeric gid, resolved as the group keys of
// a config file are; the command line's --group flags use it too.
func LookupGroup(s string) (int, error) {
	gid, err := lookupGroup(s)
	return int(gid), err
}

// proctabKeys are the keys of [proctab].
var proctabKeys = []string{"key", "sem_key", "slots", "every", "signal", "kill_after", "create", "mode", "group"}

// proctab resolves the [proctab] table.
func (p *parser) proctab(raw map[string]any) *Proctab {
	pt := &Proctab{Key: proctab.DefaultKey, Slots: proctab.DefaultSlots,
		Every: 10 * time.Second, Signal: syscall.SIGTERM, KillAfter: builtin().KillAfter,
		Create: true, Mode: proctab.DefaultMode}
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
			if err = durationKey(func(w *Worker) *time.Duration { return &w.Every }, atLeastEvery)(&scratch, v); err == nil {
				pt.Every = scratch.Every
			}
		case "signal", "kill_after", "mode", "group":
			// The rules of a worker's keys of these names.
			i := slices.IndexFunc(keys, func(d keyDef) bool { return d.name == k })
			if err = keys[i].set(&scratch, v); err != nil {
				break
			}
			switch k {
			case "signal":
				pt.Signal = scratch.Signal
			case "kill_after":
				pt.KillAfter = scratch.KillAfter
			case "mode":
				pt.Mode = scratch.Mode
			case "group":
				pt.Group, err = LookupGroup(scratch.Group)
			}
		case "create":
			b, ok := v.(bool)
			if !ok {
				err = gotWant(v, "true or false")
			}
			pt.Create = b && ok
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

// atLeastEvery is the rule of [proctab] every.
func atLeastEvery(d time.Duration) string {
	if d < proctab.MinEvery {
		return "must be at least " + proctab.MinEvery.String()
	}
	return ""
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
