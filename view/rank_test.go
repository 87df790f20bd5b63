package view

import (
	"slices"
	"testing"
)

// TestRank sorts workers worst first: hung, killed, down for good whatever its object says,
// stalled, starved, waiting, then the healthy; a state view does not know ranks as unknown.
func TestRank(t *testing.T) {
	ws := []Worker{
		{Name: "ok", State: "ok"},
		{Name: "new", State: "frobbed"},
		{Name: "waiting", State: "waiting"},
		{Name: "gone", State: "unknown", Serving: &Serving{DownForGood: true}},
		{Name: "stalled", State: "stalled"},
		{Name: "hung", State: "abnormal"},
		{Name: "starved", State: "starved"},
		{Name: "killed", State: "killed"},
		{Name: "unknown", State: "unknown"},
	}
	slices.SortStableFunc(ws, func(a, b Worker) int { return Rank(a) - Rank(b) })
	var got []string
	for _, w := range ws {
		got = append(got, w.Name)
	}
	want := []string{"hung", "killed", "gone", "stalled", "starved", "waiting", "new", "unknown", "ok"}
	if !slices.Equal(got, want) {
		t.Errorf("sorted %v, want %v", got, want)
	}
}
