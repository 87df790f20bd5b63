package config

import (
	"errors"
	"fmt"
	"strings"
)

// dependencies checks the after and binds_to of ws, the valid workers of the file (ws[k] read
// from the [[worker]] table indexes[k]), against names, every worker name of the file: each
// must name another worker, and no chain of them may come back to where it began. A problem
// is reported at the key that names the worker: once for a name, once for each cycle (at the
// key of its first worker in file order that closes it).
func (p *parser) dependencies(ws []Worker, indexes []int, names map[string]seen) {
	byName := make(map[string]int, len(ws)) // index into ws
	for k, w := range ws {
		byName[w.Name] = k
	}
	bad := false
	for k, w := range ws {
		t := workerTable(indexes[k], w.Name)
		for _, key := range []string{"after", "binds_to"} {
			for _, n := range depsOf(w, key) {
				var err error
				if _, ok := names[n]; !ok {
					err = fmt.Errorf("%s is not a worker of this file (want the name of another [[worker]])", shorten(n))
				} else if n == w.Name {
					err = fmt.Errorf("%s is this worker itself (want the name of another [[worker]])", shorten(n))
				}
				if err != nil {
					p.add(p.line(t, key), t.label+" "+key, err)
					bad = true
				}
			}
		}
	}
	if bad {
		return // a cycle through a name that is no worker is no cycle to report
	}
	// A depth-first walk in file order; a dependency met again while it is being walked
	// closes a cycle.
	const (
		unseen = iota
		walking
		done
	)
	state := make([]int, len(ws))
	var stack []int
	var walk func(k int)
	walk = func(k int) {
		state[k] = walking
		stack = append(stack, k)
		w := ws[k]
		for _, key := range []string{"after", "binds_to"} {
			for _, n := range depsOf(w, key) {
				d, ok := byName[n]
				if !ok {
					continue // a worker with problems of its own: reported
				}
				switch state[d] {
				case unseen:
					walk(d)
				case walking:
					var chain []string
					for i := len(stack) - 1; i >= 0; i-- {
						if stack[i] == d {
							for _, j := range stack[i:] {
								chain = append(chain, ws[j].Name)
							}
							break
						}
					}
					chain = append(chain, n)
					t := workerTable(indexes[k], w.Name)
					p.add(p.line(t, key), t.label+" "+key, errors.New("a cycle: "+strings.Join(chain, " -> ")+
						" (want dependencies that end at workers that need none)"))
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[k] = done
	}
	for k := range ws {
		if state[k] == unseen {
			walk(k)
		}
	}
}

// depsOf returns w's dependencies under key: after or binds_to.
func depsOf(w Worker, key string) []string {
	if key == "after" {
		return w.After
	}
	return w.BindsTo
}
