package compat_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/shmmon/shmmon/httpapi"
	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/shmobj"
)

// scrapeMetrics gets http://addr/metrics and parses it.
func scrapeMetrics(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	return testkit.ParseMetrics(t, resp.Body)
}

// sample returns the value of the series of family name with the labels want (a histogram's
// sample count); it fails the test when there is none.
func sample(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	t.Helper()
	v, ok := testkit.MetricValue(fams, name, want)
	if !ok {
		t.Fatalf("no series %s%v", name, want)
	}
	return v
}

// TestServeMetrics runs serve with --listen and a Go worker that hangs once (SIGSTOP): the
// scraped counters move by exactly one kill, one restart and one more start; /status
// matches the object; the hooks fire once each with the documented environment, and the
// abnormal hook, which hangs, is killed at its timeout without delaying the kill.
func TestServeMetrics(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "shmmon.toml")
	ws := serveWorkers(t, objectName(t), 1) // a Go worker
	name := ws[0].Name
	var pids []int64
	killOnCleanup(t, &pids)
	record := func(ev string) string {
		return fmt.Sprintf("env > %s/.%s.tmp && mv %s/.%s.tmp %s/%s.env", dir, ev, dir, ev, dir, ev)
	}
	ws[0].Extra = fmt.Sprintf("on_kill = %q\non_restart = %q\non_abnormal = %q\nhook_timeout = \"1s\"\n",
		record("kill"), record("restart"), "sleep 60")
	writeConfig(t, path, ws, "")

	serve := start(t, "shmmon serve", goWorkerEnv("pkg"), testkit.Shmmon(t), "serve", "--config", path, "--listen", ":0")
	l := testkit.WaitLine(t, &serve.Stderr, startTimeout, "event=listen")
	_, addr, _ := strings.Cut(l, "addr=")
	addr, _, _ = strings.Cut(addr, " ")
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("--listen :0 serves on %q, want 127.0.0.1", addr)
	}
	first := waitBeating(t, name, 0)
	pids = append(pids, first)

	lv := map[string]string{"name": name, "kind": "shm"}
	m := scrapeMetrics(t, addr)
	for metric, want := range map[string]float64{"shmmon_worker_up": 1, "shmmon_worker_starts_total": 1,
		"shmmon_worker_restarts_total": 0, "shmmon_worker_kills_total": 0} {
		if v := sample(t, m, metric, lv); v != want {
			t.Errorf("before the hang: %s = %v, want %v", metric, v, want)
		}
	}
	checksBefore := sample(t, m, "shmmon_check_duration_seconds", nil)

	// /status matches the object.
	snap, err := shmobj.Read(name)
	if err != nil {
		t.Fatal(err)
	}
	var st httpapi.Status
	getJSON(t, addr, "/status", &st)
	if len(st.Workers) != 1 {
		t.Fatalf("/status: %+v", st)
	}
	w, r := st.Workers[0], snap.Record
	if w.Name != name || w.Pid != r.WatchedPid || w.MonitorPid != r.MonitorPid || w.MonitorPid != int64(serve.Pid()) ||
		w.State != r.State.String() || w.Threshold != r.Threshold || w.IntervalSec != r.Interval.Seconds() ||
		w.Kind != r.Kind.String() || w.Seq < snap.Seq || w.Starts != 1 || !w.Checking {
		t.Errorf("/status %+v\ndoes not match the object %+v", w, snap)
	}

	// The worker hangs: killed and restarted.
	syscall.Kill(int(first), syscall.SIGSTOP)
	second := waitBeating(t, name, first)
	pids = append(pids, second)
	m = scrapeMetrics(t, addr)
	for metric, want := range map[string]float64{"shmmon_worker_up": 1, "shmmon_worker_starts_total": 2,
		"shmmon_worker_restarts_total": 1, "shmmon_worker_kills_total": 1} {
		if v := sample(t, m, metric, lv); v != want {
			t.Errorf("after the hang: %s = %v, want %v", metric, v, want)
		}
	}
	if v := sample(t, m, "shmmon_worker_state", map[string]string{"name": name, "state": "ok"}); v != 1 {
		t.Errorf("after the restart, state ok = %v", v)
	}
	if v := sample(t, m, "shmmon_check_duration_seconds", nil); v <= checksBefore {
		t.Errorf("%v checks observed, %v before the hang: the histogram does not move", v, checksBefore)
	}
	getJSON(t, addr, "/status", &st)
	if w := st.Workers[0]; w.Kills != 1 || w.Restarts != 1 || w.LastExit == "" || w.LastExitAt == nil || w.Pid != second {
		t.Errorf("/status after the restart: %+v", w)
	}

	// The hooks: once each, with the documented environment.
	testkit.WaitFor(t, startTimeout, "the restart hook", func() bool { _, err := os.Stat(filepath.Join(dir, "restart.env")); return err == nil })
	for ev, pid := range map[string]int64{"kill": first, "restart": second} {
		b, err := os.ReadFile(filepath.Join(dir, ev+".env"))
		if err != nil {
			t.Fatal(err)
		}
		env := string(b)
		for _, kv := range []string{"SHMMON_EVENT=" + ev, "SHMMON_NAME=" + name, "SHMMON_PID=" + strconv.FormatInt(pid, 10), "SHMMON_SEQUENCE=", "SHMMON_STALLS="} {
			if !strings.Contains(env, "\n"+kv) && !strings.HasPrefix(env, kv) {
				t.Errorf("%s hook environment lacks %s:\n%s", ev, kv, env)
			}
		}
	}
	l = testkit.WaitLine(t, &serve.Stderr, startTimeout, `status="killed at timeout"`)
	if !strings.Contains(l, "hook=abnormal") {
		t.Errorf("the hook killed at its timeout: %s", l)
	}
	log := serve.Stderr.String()
	for _, ev := range []string{"hook=kill", "hook=restart", "hook=abnormal"} {
		if n := strings.Count(log, "event=hook "+ev); n != 1 {
			t.Errorf("%d lines of event=hook %s, want one", n, ev)
		}
	}

	// A reload is counted.
	ws[0].Extra += "on_stall = \"true\"\n"
	writeConfig(t, path, ws, "")
	testkit.WaitLine(t, &serve.Stderr, startTimeout, "event=config-hooks")
	testkit.WaitFor(t, startTimeout, "the reload counted", func() bool {
		return sample(t, scrapeMetrics(t, addr), "shmmon_config_reloads_total", map[string]string{"result": "success"}) == 1
	})
	if pid := waitBeating(t, name, 0); pid != second {
		t.Errorf("a change of hooks restarted the worker: pid %d, was %d", pid, second)
	}

	serve.Terminate(t, killAfter+10*time.Second)
}

// getJSON gets http://addr+path into v.
func getJSON(t *testing.T, addr, path string, v any) {
	t.Helper()
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
