package view

import "slices"

// Worst lists the states from the worst to the best: how `shmmon top` and serve's status page
// sort their workers, worst first. A hung worker (abnormal, then killed) leads, then one serve
// will not run again ("down": [Serving.DownForGood], whatever its object says), those that
// stall or are starved of CPU, those waiting (for their first beat, or a dependency), those
// whose program is gone, then the healthy. A state missing here (a new one) ranks with
// "unknown": add it where it belongs.
var Worst = []string{"abnormal", "killed", "down", "stalled", "starved", "waiting", "exited", "unknown", "running", "ok"}

// Rank returns the place of v in [Worst] (0 is the worst): its state's, or "down"'s when serve
// will not run it again. A state missing there ranks as "unknown".
func Rank(v Worker) int {
	state := v.State
	if v.Serving != nil && v.DownForGood {
		state = "down"
	}
	if i := slices.Index(Worst, state); i >= 0 {
		return i
	}
	return slices.Index(Worst, "unknown")
}
