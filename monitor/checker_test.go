package monitor

import (
	"slices"
	"testing"
	"time"

	"github.com/shmmon/shmmon/shmobj"
)

func TestConfigDefaults(t *testing.T) {
	tests := []struct {
		in, want Config
	}{
		{Config{}, Config{Interval: time.Second, Stalls: 3, Grace: 10 * time.Second, StarvedMax: 10 * time.Second}},
		{Config{Interval: 50 * time.Millisecond}, Config{Interval: 50 * time.Millisecond, Stalls: 3, Grace: 3 * time.Second, StarvedMax: 10 * time.Second}},
		{Config{Interval: 2 * time.Second, Stalls: 5, Grace: time.Second}, Config{Interval: 2 * time.Second, Stalls: 5, Grace: time.Second, StarvedMax: 20 * time.Second}},
		{Config{StarvedMax: StarvationOff}, Config{Interval: time.Second, Stalls: 3, Grace: 10 * time.Second, StarvedMax: StarvationOff}},
	}
	for _, tt := range tests {
		if have := tt.in.WithDefaults(); have != tt.want {
			t.Errorf("%+v.WithDefaults() = %+v, want %+v", tt.in, have, tt.want)
		}
	}
	for _, bad := range []Config{{Interval: -1}, {Interval: time.Microsecond}, {Stalls: -1}, {Grace: -time.Second}} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v.Validate() = nil, want an error", bad)
		}
	}
}

// step is one check: dt after the previous check (or after the start), the sequence read,
// and the expected result and stall count.
type step struct {
	dt     time.Duration
	seq    uint64
	want   Result
	stalls int
}

func TestCheckRules(t *testing.T) {
	const iv = time.Second
	cfg := Config{Interval: iv, Stalls: 3, Grace: 3 * iv}
	tests := []struct {
		name  string
		steps []step
		state shmobj.State // after the last step
	}{
		{"progress", []step{{iv, 1, OK, 0}, {iv, 2, OK, 0}, {iv, 10, OK, 0}}, shmobj.StateOK},
		{"stall counts to abnormal", []step{{iv, 5, OK, 0}, {iv, 5, Stalled, 1}, {iv, 5, Stalled, 2}, {iv, 5, Abnormal, 3}, {iv, 5, Abnormal, 4}}, shmobj.StateAbnormal},
		{"progress resets the count", []step{{iv, 1, OK, 0}, {iv, 1, Stalled, 1}, {iv, 1, Stalled, 2}, {iv, 2, OK, 0}, {iv, 2, Stalled, 1}, {iv, 3, OK, 0}}, shmobj.StateOK},
		{"resumed after abnormal", []step{{iv, 1, OK, 0}, {iv, 1, Stalled, 1}, {iv, 1, Stalled, 2}, {iv, 1, Abnormal, 3}, {iv, 2, OK, 0}}, shmobj.StateOK},
		{"zero during grace", []step{{iv, 0, OK, 0}, {iv, 0, OK, 0}, {iv / 2, 1, OK, 0}}, shmobj.StateOK},
		{"waiting", []step{{iv, 0, OK, 0}}, shmobj.StateWaiting},
		{"zero after grace is a stall", []step{{iv, 0, OK, 0}, {iv, 0, OK, 0}, {iv, 0, Stalled, 1}, {iv, 0, Stalled, 2}, {iv, 0, Abnormal, 3}}, shmobj.StateAbnormal},
		{"zero after a beat is a stall, not a rebase", []step{{iv, 7, OK, 0}, {iv, 0, Stalled, 1}, {iv, 7, Stalled, 2}, {iv, 8, OK, 0}}, shmobj.StateOK},
		{"restart rebases", []step{{iv, 100, OK, 0}, {iv, 1, OK, 0}, {iv, 2, OK, 0}, {iv, 2, Stalled, 1}}, shmobj.StateStalled},
		{"restart resets the count", []step{{iv, 100, OK, 0}, {iv, 100, Stalled, 1}, {iv, 100, Stalled, 2}, {iv, 1, OK, 0}, {iv, 1, Stalled, 1}}, shmobj.StateStalled},
		{"late check not judged", []step{{iv, 5, OK, 0}, {iv, 5, Stalled, 1}, {5 * iv, 5, OK, 1}, {iv, 5, Stalled, 2}}, shmobj.StateStalled},
		{"late check follows the sequence", []step{{iv, 5, OK, 0}, {3 * iv, 9, OK, 0}, {iv, 9, Stalled, 1}, {iv, 10, OK, 0}}, shmobj.StateOK},
		{"late check keeps the count", []step{{iv, 5, OK, 0}, {iv, 5, Stalled, 1}, {iv, 5, Stalled, 2}, {3 * iv, 6, OK, 2}, {iv, 6, Abnormal, 3}}, shmobj.StateAbnormal},
		{"exactly two intervals is judged", []step{{iv, 5, OK, 0}, {2 * iv, 5, Stalled, 1}}, shmobj.StateStalled},
		{"a check soon after a late one is not judged", []step{{iv, 5, OK, 0}, {5 * iv, 5, OK, 0}, {iv / 10, 5, OK, 0}, {iv / 2, 5, OK, 0}, {iv / 2, 5, Stalled, 1}}, shmobj.StateStalled},
		{"progress soon after a late check counts", []step{{iv, 5, OK, 0}, {5 * iv, 5, OK, 0}, {iv / 10, 6, OK, 0}, {iv, 6, Stalled, 1}}, shmobj.StateStalled},
		{"late first check in grace", []step{{5 * iv, 0, OK, 0}}, shmobj.StateWaiting},
		{"late first beat", []step{{5 * iv, 3, OK, 0}, {iv, 3, Stalled, 1}}, shmobj.StateStalled},
		{"huge sequence", []step{{iv, 1<<64 - 2, OK, 0}, {iv, 1<<64 - 1, OK, 0}, {iv, 1<<64 - 1, Stalled, 1}}, shmobj.StateStalled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			c := NewChecker(cfg, start)
			now := start
			for i, s := range tt.steps {
				now = now.Add(s.dt)
				if have := c.Observe(s.seq, now); have != s.want {
					t.Fatalf("step %d (seq %d after %v): result %v, want %v", i, s.seq, s.dt, have, s.want)
				}
				if have := c.Stalls(); have != s.stalls {
					t.Fatalf("step %d (seq %d): stalls %d, want %d", i, s.seq, have, s.stalls)
				}
			}
			if c.State() != tt.state {
				t.Errorf("state %v, want %v", c.State(), tt.state)
			}
		})
	}
}

func TestCheckThresholdOne(t *testing.T) {
	start := time.Now()
	c := NewChecker(Config{Interval: time.Second, Stalls: 1}, start)
	if r := c.Observe(1, start.Add(time.Second)); r != OK {
		t.Fatalf("first beat: %v", r)
	}
	if r := c.Observe(1, start.Add(2*time.Second)); r != Abnormal {
		t.Fatalf("first stall with threshold 1: %v, want abnormal", r)
	}
}

func TestCheckReset(t *testing.T) {
	start := time.Now()
	c := NewChecker(Config{Interval: time.Second, Stalls: 3, Grace: 3 * time.Second}, start)
	now := start
	for _, seq := range []uint64{50, 50, 50} {
		now = now.Add(time.Second)
		c.Observe(seq, now)
	}
	if c.Stalls() != 2 || c.Last() != 50 {
		t.Fatalf("before reset: stalls %d last %d", c.Stalls(), c.Last())
	}
	c.Reset(now)
	if c.Stalls() != 0 || c.Last() != 0 || c.State() != shmobj.StateWaiting || c.Beaten() {
		t.Fatalf("after reset: stalls %d last %d state %v", c.Stalls(), c.Last(), c.State())
	}
	// A new grace: zeros are fine again.
	now = now.Add(time.Second)
	if r := c.Observe(0, now); r != OK {
		t.Errorf("zero right after reset: %v", r)
	}
	if d := c.StalledFor(now); d != time.Second {
		t.Errorf("StalledFor = %v, want 1s since the reset", d)
	}
}

func TestCheckerAdjustments(t *testing.T) {
	const iv = time.Second
	cfg := Config{Interval: iv, Stalls: 3, Grace: 5 * iv}
	tests := []struct {
		name   string
		adjust func(c *Checker, start time.Time)
		steps  []step
	}{
		{"ready ends the grace", func(c *Checker, s time.Time) { c.Ready(s.Add(iv / 2)) },
			[]step{{iv, 0, Stalled, 1}, {iv, 0, Stalled, 2}, {iv, 0, Abnormal, 3}}},
		{"ready after a beat does nothing", func(c *Checker, s time.Time) { c.Observe(1, s.Add(iv/2)); c.Ready(s.Add(iv / 2)) },
			[]step{{iv / 2, 2, OK, 0}, {iv, 2, Stalled, 1}}},
		{"extend the grace", func(c *Checker, s time.Time) {
			if !c.Extend(s.Add(iv), 10*iv) {
				t.Error("Extend in the grace = false")
			}
		}, []step{{6 * iv / 2, 0, OK, 0}, {iv, 0, OK, 0}, {iv, 0, OK, 0}, {iv, 0, OK, 0}, {iv, 0, OK, 0}, {iv, 0, OK, 0}, {iv, 0, OK, 0}, {iv, 0, OK, 0}, {iv, 0, Stalled, 1}}},
		{"extend never shortens", func(c *Checker, s time.Time) { c.Extend(s, iv) },
			[]step{{iv, 0, OK, 0}, {iv, 0, OK, 0}, {iv, 0, OK, 0}, {iv, 0, OK, 0}, {iv + iv/2, 0, Stalled, 1}}},
		{"suspended while stopping", func(c *Checker, s time.Time) { c.Observe(1, s.Add(iv)); c.Suspend(s.Add(iv)) },
			// The checks at 2..5 s are in the suspension (1 s + 5 s grace); then judged again.
			[]step{{2 * iv, 1, OK, 0}, {iv, 2, OK, 0}, {iv, 2, OK, 0}, {iv, 2, OK, 0}, {iv, 2, Stalled, 1}, {iv, 2, Stalled, 2}, {iv, 2, Abnormal, 3}}},
		{"extend the suspension", func(c *Checker, s time.Time) {
			c.Observe(1, s.Add(iv))
			c.Suspend(s.Add(iv))
			c.Extend(s.Add(iv), 8*iv)
		}, []step{{2 * iv, 1, OK, 0}, {iv, 1, OK, 0}, {iv, 1, OK, 0}, {iv, 1, OK, 0}, {iv, 1, OK, 0}, {iv, 1, OK, 0}, {iv, 1, OK, 0}, {iv, 1, Stalled, 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			c := NewChecker(cfg, start)
			tt.adjust(c, start)
			now := start
			for i, s := range tt.steps {
				now = now.Add(s.dt)
				if have := c.Observe(s.seq, now); have != s.want {
					t.Fatalf("step %d (seq %d at %v): result %v, want %v", i, s.seq, now.Sub(start), have, s.want)
				}
				if have := c.Stalls(); have != s.stalls {
					t.Fatalf("step %d (seq %d at %v): stalls %d, want %d", i, s.seq, now.Sub(start), have, s.stalls)
				}
			}
		})
	}
}

func TestCheckerExtendRunning(t *testing.T) {
	start := time.Now()
	c := NewChecker(Config{Interval: time.Second, Stalls: 3}, start)
	c.Observe(1, start.Add(time.Second))
	if c.Extend(start.Add(time.Second), time.Minute) {
		t.Error("Extend put off the checks of a running worker")
	}
	if c.Suspended(start.Add(time.Second)) {
		t.Error("suspended without Suspend")
	}
}

func TestCheckerTriggerAndInterval(t *testing.T) {
	start := time.Now()
	c := NewChecker(Config{Interval: time.Second, Stalls: 3}, start)
	c.Observe(1, start.Add(time.Second))
	c.Trigger()
	if c.State() != shmobj.StateAbnormal {
		t.Errorf("state after Trigger %v, want abnormal", c.State())
	}
	if err := c.SetInterval(time.Microsecond, start); err == nil {
		t.Error("SetInterval(1µs) accepted")
	}
	// 100ms checks after a 1s interval: the first one is judged, not taken for late.
	now := start.Add(time.Second)
	if err := c.SetInterval(100*time.Millisecond, now); err != nil {
		t.Fatal(err)
	}
	if c.Config().Interval != 100*time.Millisecond {
		t.Errorf("interval %v", c.Config().Interval)
	}
	for i, want := range []Result{Stalled, Stalled, Abnormal} {
		now = now.Add(100 * time.Millisecond)
		if r := c.Observe(1, now); r != want {
			t.Fatalf("check %d at the new interval: %v, want %v", i, r, want)
		}
	}
	// A check 3 new intervals late is not judged.
	if r := c.Observe(1, now.Add(300*time.Millisecond)); r != OK {
		t.Errorf("late check at the new interval: %v, want ok (not judged)", r)
	}
}

// TestWallClockJumpsDoNotJudge feeds the same checks with the wall clock steady, jumping back
// an hour, forward a day, frozen, and running backwards, while the monotonic clock moves one
// interval per check: every verdict and stall count is the same, so a wall-clock step (NTP,
// an operator's date -s) can neither kill a healthy worker nor spare a hung one. Then the
// reverse: a monotonic gap with a steady wall clock is a late check, not judged. (The wall
// clock of the machine cannot be changed for one test: CLOCK_REALTIME is not namespaced.)
func TestWallClockJumpsDoNotJudge(t *testing.T) {
	const iv = 100 * time.Millisecond
	cfg := Config{Interval: iv, Stalls: 3, Grace: time.Second}
	// A worker beats, hiccups twice, beats, then hangs: stalled, stalled, abnormal.
	seqs := []uint64{1, 2, 3, 4, 4, 4, 5, 6, 6, 6, 6}
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	walls := map[string]func(i int) int64{
		"steady":           func(i int) int64 { return base + int64(i)*int64(iv) },
		"back an hour":     func(i int) int64 { return base + int64(i)*int64(iv) - int64(i/5)*int64(time.Hour) },
		"forward a day":    func(i int) int64 { return base + int64(i)*int64(iv) + int64(i/5)*int64(24*time.Hour) },
		"frozen":           func(int) int64 { return base },
		"running backward": func(i int) int64 { return base - int64(i)*int64(iv) },
	}
	run := func(wall func(i int) int64) (rs []Result, st []int) {
		c := NewChecker(cfg, clockBase)
		for i, s := range seqs {
			rs = append(rs, c.observe(s, time.Duration(i+1)*iv, wall(i)))
			st = append(st, c.Stalls())
		}
		return rs, st
	}
	wantR, wantS := run(walls["steady"])
	if wantR[len(wantR)-1] != Abnormal || wantR[5] != Stalled || wantR[6] != OK {
		t.Fatalf("steady clock: results %v, want the hang judged abnormal at the end", wantR)
	}
	for name, wall := range walls {
		if rs, st := run(wall); !slices.Equal(rs, wantR) || !slices.Equal(st, wantS) {
			t.Errorf("wall clock %s: results %v stalls %v, want %v %v (the steady clock's)", name, rs, st, wantR, wantS)
		}
	}

	// The monotonic clock jumps 10 intervals (the monitor was stopped) while the wall clock
	// moves one interval: the check is late, not judged, whatever the wall clock says.
	c := NewChecker(cfg, clockBase)
	c.observe(1, iv, base)
	c.observe(1, 2*iv, base+int64(iv)) // one stall
	if r := c.observe(1, 12*iv, base+2*int64(iv)); r != OK || c.Stalls() != 1 {
		t.Errorf("after a monotonic gap of 10 intervals: %v with %d stalls, want OK and the count kept at 1", r, c.Stalls())
	}
}

// TestValidateResolved: a zero Interval or Stalls is out of range when taken as it is (a zero
// Grace stays the default), and every field out of range is reported.
func TestValidateResolved(t *testing.T) {
	if err := (Config{Interval: time.Millisecond, Stalls: 1}).ValidateResolved(); err != nil {
		t.Errorf("1ms, 1 stall, grace 0: %v", err)
	}
	err := (Config{Grace: -1}).ValidateResolved()
	want := "monitor: interval 0s must be at least 1ms\nmonitor: stalls 0 is out of range (want 1 to 1048576)\n" +
		"monitor: grace -1ns must not be negative (want 0 for the default, 10 intervals but at least 3s, or more)"
	if err == nil || err.Error() != want {
		t.Errorf("have %v\nwant %s", err, want)
	}
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("Config{}.Validate() = %v: zero fields are the defaults", err)
	}
}
