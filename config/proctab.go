package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"syscall"
	"time"

	"github.com/shmmon/shmmon/internal/field"
	"github.com/shmmon/shmmon/proc"
	"github.com/shmmon/shmmon/proctab"
)

// Proctab is the optional [proctab] table: serve then sweeps a System V process table of the
// original framework, as `shmmon checkproc --every` does. Its fields are its keys, read as
// those of [Worker] are.
type Proctab struct {
	Key       int            `toml:"key"`        // key = 0x5095 (an integer, or a string "0x5095")
	SemKey    int            `toml:"sem_key"`    // sem_key, the semaphore's key; default: key
	Slots     int            `toml:"slots"`      // slots = 1000
	Every     time.Duration  `toml:"every"`      // every = "10s": time between sweeps, at least proctab.MinEvery
	Signal    syscall.Signal `toml:"signal"`     // signal = "TERM"
	KillAfter time.Duration  `toml:"kill_after"` // kill_after = "5s"
	// Create is create = true: serve creates the table when it does not exist (as it always
	// has); with false it waits for the clients to create it, trying again every sweep.
	Create bool        `toml:"create"`
	Mode   os.FileMode `toml:"mode"`  // mode = "0660": the permissions of a table serve creates
	Group  int         `toml:"group"` // group = "name" or "gid": the group of a table serve creates; 0 = none
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

var proctabIndex = keysOf(reflect.TypeFor[Proctab]())

// proctabKeys are the keys of [proctab].
var proctabKeys = names(proctabIndex, 0)

// proctab resolves the [proctab] table.
func (p *parser) proctab(raw map[string]any) *Proctab {
	t := table{path: []string{"proctab"}, label: "proctab"}
	pt := &Proctab{Key: proctab.DefaultKey, Slots: proctab.DefaultSlots, Every: 10 * time.Second,
		Signal: builtin().Signal, KillAfter: builtin().KillAfter, Create: true, Mode: proctab.DefaultMode}
	set := p.read(t, raw, pt, index(proctabIndex), fmt.Errorf("unknown key (want one of %v)", proctabKeys))
	p.check(t, raw, set, pt.problems())
	if !set.has("sem_key") {
		pt.SemKey = pt.Key
	}
	return pt
}

// own reads the keys of t whose rules are config's own (see [keyed]): the keys, and the group
// by name.
func (t *Proctab) own(key string, v any) (x any, ok bool, err error) {
	switch key {
	case "key", "sem_key":
		x, err = ipcKey(v)
	case "group":
		if x, err = idName(v, "group name or numeric gid"); err == nil {
			x, err = LookupGroup(x.(string))
		}
	default:
		return nil, false, nil
	}
	return x, true, err
}

// problems checks t by the rules of the owners of its values.
func (t Proctab) problems() error {
	errs := []error{proctab.ValidateSlots(t.Slots), proc.ValidateKillAfter(t.KillAfter)}
	if t.Every < proctab.MinEvery {
		errs = append(errs, &field.Error{Pkg: "config", Field: "every", Value: t.Every, Problem: "must be at least " + proctab.MinEvery.String()})
	}
	return errors.Join(errs...)
}

// ipcKey reads a System V key: an integer, or a string in decimal or 0x hex.
func ipcKey(v any) (any, error) {
	s, ok := v.(string)
	if n, isInt := v.(int64); isInt {
		s, ok = strconv.FormatInt(n, 10), true
	}
	if !ok {
		return nil, gotWant(v, `a positive integer or a string such as "0x5095"`)
	}
	n, err := proctab.ParseKey(s)
	return n, err
}
