package httpapi

import (
	"net/http"

	"github.com/shmmon/shmmon/fleet"
	"github.com/shmmon/shmmon/view"
)

// WorkerHealth is the body of /healthz/NAME.
type WorkerHealth struct {
	Name string `json:"name"`
	// Status is "up" (code 200) while the worker runs or is being restarted within its
	// limits, "down" (503) once it is down for good ([fleet.WorkerStatus.DownForGood]).
	Status      string `json:"status"`
	Supervision string `json:"supervision"` // where serve has it in its life, as /status says
	LastExit    string `json:"last_exit"`   // how its last run ended; "" before the first end
	Error       string `json:"error,omitempty"`
}

// Readiness is the body of /readyz.
type Readiness struct {
	// Status is "ready" (code 200) when every worker is ready ([fleet.WorkerStatus.ReadyNow]),
	// else "not-ready" (503).
	Status   string   `json:"status"`
	NotReady []string `json:"not_ready"` // the workers that are not ready, by name; empty when none
}

// serveWorkerHealth answers /healthz/NAME: 200 while the worker is up, 503 once it is down
// for good, 404 for a name serve does not have.
func (s *Server) serveWorkerHealth(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	for _, ws := range s.src.Status() {
		if ws.Worker.Name != name {
			continue
		}
		h := WorkerHealth{Name: name, Status: "up", Supervision: view.Served(ws, s.now()).Supervision, LastExit: ws.LastExit}
		code := http.StatusOK
		if ws.DownForGood() {
			h.Status, code = "down", http.StatusServiceUnavailable
		}
		writeJSON(w, code, h)
		return
	}
	writeJSON(w, http.StatusNotFound, WorkerHealth{Name: name, Status: "unknown",
		Error: "no worker of that name in serve's configuration"})
}

// serveReady answers /readyz: 200 when every worker is ready, 503 naming those that are not.
func (s *Server) serveReady(w http.ResponseWriter, _ *http.Request) {
	rd := NewReadiness(s.src.Status())
	code := http.StatusOK
	if rd.Status != "ready" {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, rd)
}

// NewReadiness judges the readiness of ws: ready when every worker is.
func NewReadiness(ws []fleet.WorkerStatus) Readiness {
	rd := Readiness{Status: "ready", NotReady: []string{}}
	for _, w := range ws {
		if !w.ReadyNow() {
			rd.Status = "not-ready"
			rd.NotReady = append(rd.NotReady, w.Worker.Name)
		}
	}
	return rd
}
