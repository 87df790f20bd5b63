package top

import (
	"context"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/shmmon/shmmon/view"
)

// fixture is a model over a fixed snapshot (the second one a second after the first), with
// the actions it was asked for.
func fixture(t *testing.T, admitted bool) (*Model, *[]string) {
	t.Helper()
	acts := &[]string{}
	at := time.Now()
	ws := func(seqA uint64) []view.Worker {
		return []view.Worker{
			{Name: "alpha", Shmmon: true, MonitorAlive: true, State: "ok", Seq: seqA, Threshold: 3, Serving: &view.Serving{Supervision: "running"}},
			{Name: "beta", Shmmon: true, MonitorAlive: true, State: "abnormal", Seq: 7, Stalls: 3, Threshold: 3, Kills: 2, Serving: &view.Serving{Supervision: "stopping"}},
			{Name: "gamma", Shmmon: true, MonitorAlive: true, State: "stalled", Seq: 9, Stalls: 1, Threshold: 3},
			view.OfRecord(view.Proctab{Slot: 3, Pid: 42, Name: "svc", AgeSec: 0.5, Alive: true, State: "ok"}),
		}
	}
	snaps := []Snapshot{{Time: at, Workers: ws(100), Admitted: admitted, Served: admitted, Note: "serve at /x refuses you"},
		{Time: at.Add(time.Second), Workers: ws(150), Admitted: admitted, Served: admitted, Note: "serve at /x refuses you"}}
	m := New(context.Background(), Options{Period: time.Second, Read: func(context.Context) Snapshot { return snaps[0] },
		Act: func(_ context.Context, action, name string) (string, error) {
			*acts = append(*acts, action+" "+name)
			return "done", nil
		}})
	for _, s := range snaps {
		nm, _ := m.Update(snapMsg(s))
		m = nm.(Model)
	}
	return &m, acts
}

// press sends keys to m, running the command of the last one (an action's) when run is set.
func press(m *Model, run bool, keys ...string) {
	for i, k := range keys {
		msg := tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(k)}
		switch k {
		case "enter":
			msg = tea.KeyMsg{Type: tea.KeyEnter}
		case "esc":
			msg = tea.KeyMsg{Type: tea.KeyEsc}
		case "down":
			msg = tea.KeyMsg{Type: tea.KeyDown}
		}
		nm, cmd := m.Update(msg)
		*m = nm.(Model)
		if run && i == len(keys)-1 && cmd != nil {
			nm, _ := m.Update(cmd())
			*m = nm.(Model)
		}
	}
}

// rowNames returns the names of the screen's rows, in order.
func rowNames(screen string) []string {
	var names []string
	for _, l := range strings.Split(screen, "\n")[3:] {
		if f := strings.Fields(strings.TrimPrefix(l, ">")); len(f) > 1 && f[0] != "q" {
			names = append(names, f[0])
		}
	}
	return names
}

// TestView draws 80x24 without escapes outside a terminal, the worst first, with beats/s;
// s sorts by name; / filters, esc clears the filter.
func TestView(t *testing.T) {
	m, _ := fixture(t, true)
	screen := m.View()
	lines := strings.Split(screen, "\n")
	if len(lines) != 24 {
		t.Errorf("%d lines, want 24:\n%s", len(lines), screen)
	}
	for _, l := range lines {
		if n := len([]rune(l)); n > 80 || strings.Contains(l, "\x1b") {
			t.Errorf("line of %d cells or with an escape outside a terminal: %q", n, l)
		}
	}
	if got := strings.Join(rowNames(screen), " "); got != "beta gamma alpha svc" {
		t.Errorf("rows %q, want the worst first: beta gamma alpha svc\n%s", got, screen)
	}
	if !strings.Contains(screen, "> beta") || !strings.Contains(screen, "50.0") || !strings.Contains(screen, "r restart  x stop") {
		t.Errorf("want beta selected, alpha's 50 beats/s, r and x offered:\n%s", screen)
	}
	press(m, false, "s")
	if got := strings.Join(rowNames(m.View()), " "); got != "alpha beta gamma svc" {
		t.Errorf("sorted by name: %q", got)
	}
	press(m, false, "/", "m", "m", "enter")
	if got := strings.Join(rowNames(m.View()), " "); got != "gamma" || !strings.Contains(m.View(), "filter: mm") {
		t.Errorf("filtered by mm: %q\n%s", got, m.View())
	}
	press(m, false, "/", "esc")
	if got := len(rowNames(m.View())); got != 4 {
		t.Errorf("%d rows after esc, want 4", got)
	}
}

// TestActions: r and x ask first and act only on y, only on serve's workers, and not at all
// when serve does not admit the user.
func TestActions(t *testing.T) {
	m, acts := fixture(t, true)
	press(m, true, "r", "n")
	if len(*acts) != 0 || !strings.Contains(m.View(), "restart beta: not done") {
		t.Errorf("r then n: acts %v\n%s", *acts, m.View())
	}
	press(m, false, "x")
	if !strings.Contains(m.View(), "stop beta? y to confirm") {
		t.Errorf("x: no question\n%s", m.View())
	}
	press(m, true, "y")
	if strings.Join(*acts, ",") != "stop beta" || !strings.Contains(m.View(), "beta: done") {
		t.Errorf("x then y: acts %v\n%s", *acts, m.View())
	}
	press(m, false, "down", "r")
	if strings.Contains(m.View(), "restart gamma?") || !strings.Contains(m.View(), "select one of serve's workers") {
		t.Errorf("r on a worker serve does not have:\n%s", m.View())
	}

	m, acts = fixture(t, false)
	press(m, true, "r")
	press(m, true, "y")
	if len(*acts) != 0 || strings.Contains(m.View(), "r restart") || !strings.Contains(m.View(), "refuses you") {
		t.Errorf("not admitted: acts %v\n%s", *acts, m.View())
	}
}
