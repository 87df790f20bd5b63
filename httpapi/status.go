package httpapi

import (
	"time"

	"github.com/shmmon/shmmon/fleet"
	"github.com/shmmon/shmmon/shmobj"
	"github.com/shmmon/shmmon/view"
)

// Status is the body of /status. Its JSON is stable: fields are only ever added.
type Status struct {
	Time    time.Time      `json:"time"`              // when it was taken
	Workers []view.Worker  `json:"workers"`           // every configured worker, by name
	Proctab []view.Proctab `json:"proctab,omitempty"` // the swept process table's records, when there is one
	// ProctabError says why the process table could not be read, when it could not.
	ProctabError string `json:"proctab_error,omitempty"`
	// Reloads counts the reloads of the config file the [Server] saw (its /status); absent
	// from a Status [NewStatus] took alone.
	Reloads *Reloads `json:"reloads,omitempty"`
}

// Reloads are the reloads of the config file, by result (shmmon_config_reloads_total).
type Reloads struct {
	Success uint64 `json:"success"` // applied
	Failure uint64 `json:"failure"` // invalid or missing: the running config stays
}

// NewStatus takes the status of src at now.
func NewStatus(src Source, now time.Time) Status {
	st := Status{Time: now, Workers: []view.Worker{}}
	for _, ws := range src.Status() {
		st.Workers = append(st.Workers, view.Served(ws, now))
	}
	recs, err := src.ProctabRecords()
	if err != nil {
		st.ProctabError = err.Error()
	}
	for _, r := range recs {
		st.Proctab = append(st.Proctab, view.Record(r, now))
	}
	return st
}

// state is the worker's state from its record; unknown when it has none.
func state(ws fleet.WorkerStatus) shmobj.State {
	if ws.Snapshot.HasRecord {
		return ws.Snapshot.Record.State
	}
	return shmobj.StateUnknown
}

// up reports whether the worker runs and is judged alive.
func up(st shmobj.State) bool {
	return st == shmobj.StateWaiting || st == shmobj.StateOK || st == shmobj.StateStalled || st == shmobj.StateStarved || st == shmobj.StateRunning
}
