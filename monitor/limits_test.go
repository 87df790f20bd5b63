package monitor

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmmon/shmmon/internal/field"
	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/proc"
	"github.com/shmmon/shmmon/shmobj"
)

func TestParseCPU(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want CPU
		ok   bool
	}{
		{"150%", 1500, true}, {"12.5%", 125, true}, {"0%", 0, true}, {"0.1%", 1, true}, {" 200% ", 2000, true},
		{"100000000%", 0, false}, {"1.25%", 0, false}, {"150", 0, false}, {"%", 0, false}, {"-5%", 0, false},
		{"1.%", 0, false}, {".5%", 0, false}, {"", 0, false},
	} {
		t.Run(tt.in, func(t *testing.T) {
			have, err := ParseCPU(tt.in)
			var fe *field.Error
			switch {
			case tt.ok && (err != nil || have != tt.want):
				t.Errorf("ParseCPU = %v, %v; want %v", have, err, tt.want)
			case !tt.ok && (!errors.As(err, &fe) || fe.Field != "cpu_max" || fe.Value != tt.in):
				t.Errorf("ParseCPU = %v, %v; want a field error naming cpu_max and the text", have, err)
			case tt.ok:
				if again, err := ParseCPU(have.String()); err != nil || again != have {
					t.Errorf("%v prints as %q, which parses as %v, %v", have, have.String(), again, err)
				}
			}
		})
	}
}

// TestLimiter: memory must be over its limit at stalls measures in a row (one under it starts
// the count over); CPU is judged on its average over the last stalls intervals, once it has
// that many.
func TestLimiter(t *testing.T) {
	const mib = 1 << 20
	at := func(i int) time.Time { return time.Unix(1000, 0).Add(time.Duration(i) * time.Second) }
	type step struct {
		mem  int64
		cpu  time.Duration // cumulative
		want Resource      // "" = no breach
	}
	for _, tt := range []struct {
		name  string
		lim   Limits
		steps []step
	}{
		{"memory three in a row", Limits{MemoryMax: 100 * mib}, []step{
			{101 * mib, 0, ""}, {200 * mib, 0, ""}, {101 * mib, 0, ResourceMemory}}},
		{"memory interrupted", Limits{MemoryMax: 100 * mib}, []step{
			{101 * mib, 0, ""}, {200 * mib, 0, ""}, {100 * mib, 0, ""}, {101 * mib, 0, ""}, {101 * mib, 0, ""},
			{101 * mib, 0, ResourceMemory}}},
		{"memory under", Limits{MemoryMax: 100 * mib}, []step{
			{99 * mib, 0, ""}, {100 * mib, 0, ""}, {1, 0, ""}, {100 * mib, 0, ""}}},
		// 150%: three intervals averaging more; one spike does not make it.
		{"cpu average over", Limits{CPUMax: 1500}, []step{
			{0, 0, ""}, {0, 2 * time.Second, ""}, {0, 4 * time.Second, ""}, {0, 6 * time.Second, ResourceCPU}}},
		{"cpu spike", Limits{CPUMax: 1500}, []step{
			{0, 0, ""}, {0, 2 * time.Second, ""}, {0, 2500 * time.Millisecond, ""}, {0, 3 * time.Second, ""},
			{0, 3500 * time.Millisecond, ""}, {0, 4 * time.Second, ""}}},
		{"cpu went back", Limits{CPUMax: 1}, []step{
			{0, 5 * time.Second, ""}, {0, time.Second, ""}, {0, time.Second, ""}, {0, time.Second, ""}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := newLimiter(tt.lim, 3)
			for i, s := range tt.steps {
				_, _, b := l.judge(proc.Usage{Memory: s.mem, CPU: s.cpu}, at(i))
				have := Resource("")
				if b != nil {
					have = b.Resource
				}
				if have != s.want {
					t.Fatalf("step %d (%+v): breach %v, want %q", i, s, b, s.want)
				}
			}
		})
	}
	l := newLimiter(Limits{CPUMax: 1}, 3)
	l.judge(proc.Usage{CPU: 0}, at(0))
	if cpu, ok, _ := l.judge(proc.Usage{CPU: 500 * time.Millisecond}, at(1)); !ok || cpu != 0.5 {
		t.Errorf("CPU after one interval = %v, %v; want 0.5", cpu, ok)
	}
	l.reset()
	if _, ok, _ := l.judge(proc.Usage{CPU: 0}, at(2)); ok {
		t.Error("a reset limiter knows the CPU from one measure")
	}
}

// TestCheckLimits: the worker's books keep the measure; a breach is logged (event=limit with
// the resource, value and limit) and emitted; a worker without limits is never measured.
func TestCheckLimits(t *testing.T) {
	name := watchName(t)
	logs, log := newLog()
	var events []Event
	opts := Options{Config: Config{Interval: time.Second, Stalls: 2}, Limits: Limits{MemoryMax: 1000},
		OnEvent: func(e Event) { events = append(events, e) }}
	w, _, err := OpenWorker(name, opts, WorkerOptions{Logger: log}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(true)
	w.Start(1234, StartWatch, "", time.Now())
	meter := func() (proc.Usage, error) { return proc.Usage{Memory: 2000, CPU: time.Second}, nil }
	for range 3 { // before its first beat, a worker is not judged
		if _, over := w.CheckLimits(time.Now(), meter); over {
			t.Fatal("over before the first beat")
		}
	}
	w.Beat(shmobj.KindShm)
	w.Check(time.Now())
	if _, over := w.CheckLimits(time.Now(), meter); over {
		t.Fatal("over after one measure of two")
	}
	if b := w.Books(); b.Memory != 2000 || b.Measured.IsZero() || b.CPUKnown {
		t.Errorf("books after one measure: %+v", b)
	}
	b, over := w.CheckLimits(time.Now(), meter)
	if !over || b.Resource != ResourceMemory || b.Value != 2000 || b.Limit != 1000 {
		t.Fatalf("CheckLimits = %+v, %v; want memory 2000 over 1000", b, over)
	}
	if n := strings.Count(logs.String(), "event=over-limit"); n != 1 {
		t.Errorf("%d over-limit lines, want one at the start of the streak:\n%s", n, logs)
	}
	for _, want := range []string{"event=limit resource=memory value=2000 limit=1000"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	events = slices.DeleteFunc(events, func(e Event) bool { return e.Kind == EventReady }) // its first beat
	if len(events) != 1 || events[0].Kind != EventLimit || events[0].Detail != "memory 2.0KiB over 1000B" {
		t.Errorf("events %+v, want one limit", events)
	}
	w.End(Exit{End: EndLimit, Status: "signal terminated"}, time.Now())
	if bk := w.Books(); bk.LimitKills != 1 || bk.Kills != 0 || bk.LastExit != "over the memory limit: signal terminated" {
		t.Errorf("books after the end: %+v", bk)
	}

	plain, _, err := OpenWorker(watchName(t)+"-plain", Options{}, WorkerOptions{Logger: log}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close(true)
	if _, over := plain.CheckLimits(time.Now(), func() (proc.Usage, error) { t.Error("measured"); return proc.Usage{}, nil }); over {
		t.Error("a worker without limits went over")
	}
}

// TestWatchMemoryLimit: a watched Python worker that keeps beating while its memory grows
// past the limit is killed, and Run says so; a steady worker under the same limit is left
// alone.
func TestWatchMemoryLimit(t *testing.T) {
	hog := testkit.Hog(t)
	for _, tt := range []struct {
		name string
		grow string
		want Outcome
	}{
		{"growing", "40000000", OverLimit},
		{"steady", "0", Stopped},
	} {
		t.Run(tt.name, func(t *testing.T) {
			name := testkit.Name(t, "limit")
			t.Cleanup(func() { shmobj.Remove(name) })
			cmd := exec.Command("python3", hog, name)
			cmd.Env = append(os.Environ(), "HOG_GROW="+tt.grow)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			waited := make(chan struct{})
			go func() { cmd.Wait(); close(waited) }()
			t.Cleanup(func() { cmd.Process.Kill(); <-waited })
			p, err := proc.Open(cmd.Process.Pid)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			logs, log := newLog()
			w := &Watch{Name: name, Process: p, KillAfter: time.Second, Logger: log,
				Options: Options{Config: Config{Interval: 100 * time.Millisecond, Stalls: 3, Grace: 5 * time.Second},
					Limits: Limits{MemoryMax: 64 << 20}}}
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
			defer cancel()
			out, err := w.Run(ctx)
			if err != nil || out != tt.want {
				t.Fatalf("Run = %v, %v; want %v; log:\n%s", out, err, tt.want, logs)
			}
			if killed := strings.Contains(logs.String(), "event=limit resource=memory"); killed != (tt.want == OverLimit) ||
				strings.Contains(logs.String(), "state=abnormal") {
				t.Errorf("log (limit kill expected: %v):\n%s", tt.want == OverLimit, logs)
			}
			if b := w.Worker().Books(); tt.want == OverLimit && (b.LimitKills != 1 || b.Kills != 0) {
				t.Errorf("books %+v, want one limit kill and no hang kill", b)
			}
			if tt.want == Stopped && !p.Exited() {
				if err := p.Signal(syscall.Signal(0)); err != nil {
					t.Errorf("the steady worker: %v", err)
				}
			}
		})
	}
}
