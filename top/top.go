// Package top is the live terminal view of `shmmon top`: every heartbeat of this host on one
// screen, redrawn every period, the worst first.
//
// A [Model] is a Bubble Tea model. Every period it takes a [Snapshot] through
// [Options.Read] (the objects, the process table's records, and serve's books when its
// control socket answers) off the UI goroutine, and draws one row per worker: its state,
// where serve has it (supervision), its beats per second with a sparkline of the last
// minute, stalls, last progress, pid, kills and restarts. Rows are sorted by [view.Rank]
// (worst first) or by name, beats per second or kills (key s), and filtered by a part of
// their name (key /). The keys r (restart) and x (stop) act on the selected worker through
// [Options.Act] after a confirmation, and only when the snapshot says serve admits this
// user ([Snapshot.Admitted]); the control socket checks again who asks.
//
// It draws in 80×24 and any larger terminal, in plain text where colour is not wanted
// (NO_COLOR, or a terminal without colours: Lip Gloss asks the terminal): the selected row
// is marked with ">" as well as in reverse video, a state is a word, never only a colour.
package top

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/shmmon/shmmon/view"
)

// Snapshot is what the view shows at one refresh.
type Snapshot struct {
	Time    time.Time
	Workers []view.Worker // every object, serve's workers (with serve's part), process-table records
	// Served is true when serve's control socket answered: the workers of serve have their
	// supervision. Admitted is true when it also lets this user act (restart, stop).
	Served, Admitted bool
	Note             string // one line on serve: where it answers, or why there is no supervision
	Err              error  // the objects could not be listed
}

// Options configure a [Model].
type Options struct {
	Period time.Duration                                                  // between refreshes; 0 = 1s
	Read   func(ctx context.Context) Snapshot                             // takes a snapshot; required
	Act    func(ctx context.Context, action, name string) (string, error) // "restart" or "stop"; nil: no actions
	Filter string                                                         // the first filter: a part of the names shown
}

// The orders of the rows, in the order key s goes through them.
var sorts = []string{"worst", "name", "beats/s", "kills"}

// history is how many refreshes the sparkline's minute holds.
func (o Options) history() int { return max(2, int(time.Minute/o.period())) }

func (o Options) period() time.Duration { return cmp.Or(o.Period, time.Second) }

// Model is the state of the view. Create it with [New].
type Model struct {
	opts          Options
	ctx           context.Context
	snap          Snapshot
	width, height int

	rates  map[string][]float64 // a worker's beats per second at the last refreshes, oldest first
	prev   map[string]uint64    // its sequence at the last refresh
	prevAt time.Time

	sort      int
	filter    string
	filtering bool   // typing the filter
	selected  string // the key of the selected row
	confirm   string // "restart" or "stop" while asking to confirm it for confirmOf
	confirmOf string
	msg       string // what the last action did
}

// New returns a model that shows what opts.Read reads, until ctx ends.
func New(ctx context.Context, opts Options) Model {
	return Model{opts: opts, ctx: ctx, width: 80, height: 24, filter: opts.Filter,
		rates: map[string][]float64{}, prev: map[string]uint64{}}
}

// Run shows the view full screen on out, reading keys from in, until q (or ctx ends).
func Run(ctx context.Context, opts Options, in io.Reader, out io.Writer) error {
	_, err := tea.NewProgram(New(ctx, opts), tea.WithContext(ctx), tea.WithInput(in), tea.WithOutput(out),
		tea.WithAltScreen()).Run()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// The messages of the model's commands: a snapshot taken, time for the next, an action done.
type (
	snapMsg Snapshot
	tickMsg struct{}
	actMsg  struct {
		done string
		err  error
	}
)

// read takes a snapshot off the UI goroutine.
func (m Model) read() tea.Cmd {
	return func() tea.Msg { return snapMsg(m.opts.Read(m.ctx)) }
}

// Init takes the first snapshot.
func (m Model) Init() tea.Cmd { return m.read() }

// Update handles a key, a new size, a snapshot, the tick of the next one, or the end of an
// action.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
	case snapMsg:
		m.take(Snapshot(msg))
		return m, tea.Tick(m.opts.period(), func(time.Time) tea.Msg { return tickMsg{} })
	case tickMsg:
		return m, m.read()
	case actMsg:
		if msg.err != nil {
			m.msg = "failed: " + msg.err.Error()
		} else {
			m.msg = msg.done
		}
		return m, m.read()
	case tea.KeyMsg:
		return m.key(msg)
	}
	return m, nil
}

// take keeps s and the beats per second since the last snapshot.
func (m *Model) take(s Snapshot) {
	secs := s.Time.Sub(m.prevAt).Seconds()
	seen := make(map[string]uint64, len(s.Workers))
	for _, w := range s.Workers {
		k := key(w)
		seen[k] = w.Seq
		if last, ok := m.prev[k]; ok && !m.prevAt.IsZero() && secs > 0 {
			rate := 0.0
			if w.Seq >= last && w.Error == "" {
				rate = float64(w.Seq-last) / secs
			}
			h := append(m.rates[k], rate)
			m.rates[k] = h[max(0, len(h)-m.opts.history()):]
		}
	}
	for k := range m.rates {
		if _, ok := seen[k]; !ok {
			delete(m.rates, k)
		}
	}
	m.prev, m.prevAt, m.snap = seen, s.Time, s
}

// key is what tells a row from the others: a process-table record may share its name.
func key(w view.Worker) string {
	if w.Proctab != nil {
		return "proctab/" + strconv.Itoa(w.Proctab.Slot)
	}
	return w.Name
}

func (m Model) key(k tea.KeyMsg) (tea.Model, tea.Cmd) {
	if m.filtering {
		switch k.Type {
		case tea.KeyEnter:
			m.filtering = false
		case tea.KeyEsc:
			m.filtering, m.filter = false, ""
		case tea.KeyBackspace:
			if r := []rune(m.filter); len(r) > 0 {
				m.filter = string(r[:len(r)-1])
			}
		case tea.KeyRunes, tea.KeySpace:
			m.filter += string(k.Runes)
		case tea.KeyCtrlC:
			return m, tea.Quit
		}
		return m, nil
	}
	if m.confirm != "" {
		action, name := m.confirm, m.confirmOf
		m.confirm, m.confirmOf = "", ""
		if k.String() != "y" {
			m.msg = action + " " + view.Shown(name) + ": not done"
			return m, nil
		}
		m.msg = action + " " + view.Shown(name) + "…"
		return m, func() tea.Msg {
			ctx, cancel := context.WithTimeout(m.ctx, time.Minute)
			defer cancel()
			done, err := m.opts.Act(ctx, action, name)
			return actMsg{done: view.Shown(name) + ": " + done, err: err}
		}
	}
	switch k.String() {
	case "q", "ctrl+c":
		return m, tea.Quit
	case "/":
		m.filtering = true
	case "s":
		m.sort = (m.sort + 1) % len(sorts)
	case "up", "k":
		m.move(-1)
	case "down", "j":
		m.move(1)
	case "r", "x":
		action := map[string]string{"r": "restart", "x": "stop"}[k.String()]
		w, ok := m.selectedWorker()
		switch {
		case m.opts.Act == nil || !m.snap.Admitted:
			m.msg = "r and x need serve's control socket to admit you: " + m.snap.Note
		case !ok || w.Serving == nil:
			m.msg = "select one of serve's workers first"
		default:
			m.confirm, m.confirmOf = action, w.Name
		}
	}
	return m, nil
}

// rows returns the workers shown, filtered and sorted.
func (m Model) rows() []view.Worker {
	ws := make([]view.Worker, 0, len(m.snap.Workers))
	for _, w := range m.snap.Workers {
		if strings.Contains(w.Name, m.filter) {
			ws = append(ws, w)
		}
	}
	rate := func(w view.Worker) float64 {
		if h := m.rates[key(w)]; len(h) > 0 {
			return h[len(h)-1]
		}
		return 0
	}
	slices.SortStableFunc(ws, func(a, b view.Worker) int {
		var c int
		switch sorts[m.sort] {
		case "worst":
			c = view.Rank(a) - view.Rank(b)
		case "beats/s":
			c = cmp.Compare(rate(b), rate(a))
		case "kills":
			c = cmp.Compare(b.Kills, a.Kills)
		}
		return cmp.Or(c, strings.Compare(a.Name, b.Name), strings.Compare(key(a), key(b)))
	})
	return ws
}

// selectedWorker returns the selected row's worker; the first row when none was selected.
func (m Model) selectedWorker() (view.Worker, bool) {
	rows := m.rows()
	for _, w := range rows {
		if key(w) == m.selected {
			return w, true
		}
	}
	if len(rows) > 0 {
		return rows[0], true
	}
	return view.Worker{}, false
}

// move selects the row by rows below (above, when negative) the selected one.
func (m *Model) move(by int) {
	rows := m.rows()
	if len(rows) == 0 {
		return
	}
	i := max(0, slices.IndexFunc(rows, func(w view.Worker) bool { return key(w) == m.selected })) // none: the first
	m.selected = key(rows[min(max(0, i+by), len(rows)-1)])
}

var (
	bold     = lipgloss.NewStyle().Bold(true)
	reverse  = lipgloss.NewStyle().Reverse(true)
	bad      = lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Color("9"))
	warn     = lipgloss.NewStyle().Foreground(lipgloss.Color("11"))
	good     = lipgloss.NewStyle().Foreground(lipgloss.Color("10"))
	faint    = lipgloss.NewStyle().Faint(true)
	sparkles = []rune("·▁▂▃▄▅▆▇█") // no beats, then eighths of the minute's highest
)

// The columns after the name, and their widths.
var columns = []struct {
	title string
	width int
}{{"STATE", 8}, {"SUPERV", 8}, {"BEAT/S", 6}, {"LAST MIN", 10}, {"STALL", 5}, {"PROG", 6}, {"PID", 7}, {"KILL", 4}, {"RST", 3}}

// View draws the screen.
func (m Model) View() string {
	width, height := max(m.width, 40), max(m.height, 8)
	fixed := 2 // the selection mark
	for _, c := range columns {
		fixed += c.width + 1
	}
	nameW := min(max(width-fixed, 8), 48)
	var b strings.Builder
	line := func(s string) { b.WriteString(truncate(s, width) + "\n") }

	now := m.snap.Time
	if now.IsZero() {
		now = time.Now()
	}
	head := fmt.Sprintf("shmmon top  %s  every %v  sort: %s", now.Format(time.TimeOnly), m.opts.period(), sorts[m.sort])
	if m.filter != "" || m.filtering {
		head += "  filter: " + view.Shown(m.filter)
	}
	line(bold.Render(head))
	note := m.snap.Note
	if m.snap.Err != nil {
		note = "cannot list the objects: " + m.snap.Err.Error()
	}
	line(faint.Render(note))
	hdr := "  " + pad("NAME", nameW)
	for _, c := range columns {
		hdr += " " + pad(c.title, c.width)
	}
	line(bold.Render(hdr))

	rows := m.rows()
	sel, _ := m.selectedWorker()
	room := height - 5
	first := 0
	if i := slices.IndexFunc(rows, func(w view.Worker) bool { return key(w) == key(sel) }); i >= room {
		first = i - room + 1
	}
	for i := first; i < len(rows) && i < first+room; i++ {
		w := rows[i]
		mark := "  "
		if key(w) == key(sel) {
			mark = "> "
		}
		cells := []string{m.stateCell(w), supervision(w), m.rateCell(w), m.spark(w), stalls(w), progress(w), dash(w.Pid),
			strconv.FormatUint(w.Kills, 10), strconv.FormatUint(w.Restarts, 10)}
		row := mark + pad(view.Shown(w.Name), nameW)
		for j, c := range columns {
			row += " " + pad(cells[j], c.width)
		}
		row = truncate(row, width)
		if key(w) == key(sel) {
			row = reverse.Render(row)
		} else {
			row = colour(w).Render(row)
		}
		b.WriteString(row + "\n")
	}
	if len(rows) == 0 {
		line(faint.Render("  no heartbeat objects" + map[bool]string{true: " match the filter", false: ""}[m.filter != ""]))
	}
	for n := max(len(rows)-first, 1); n < room; n++ {
		b.WriteString("\n")
	}
	switch {
	case m.filtering:
		line("filter: " + m.filter + "▏  (enter: keep, esc: clear)")
	case m.confirm != "":
		line(bad.Render(m.confirm + " " + view.Shown(m.confirmOf) + "? y to confirm, any other key to cancel"))
	default:
		line(m.msg)
	}
	keys := "q quit  / filter  s sort  ↑↓ select"
	if m.snap.Admitted && m.opts.Act != nil {
		keys += "  r restart  x stop"
	}
	b.WriteString(truncate(faint.Render(keys), width))
	return b.String()
}

// colour is the style of a row that is not selected, from its worker's state.
func colour(w view.Worker) lipgloss.Style {
	switch {
	case w.State == "abnormal" || w.State == "killed" || w.Serving != nil && w.DownForGood:
		return bad
	case w.State == "stalled" || w.State == "starved":
		return warn
	case w.State == "ok":
		return good
	}
	return lipgloss.NewStyle()
}

func (m Model) stateCell(w view.Worker) string {
	switch {
	case !w.Shmmon && w.Proctab == nil:
		return "-"
	case w.Shmmon && !w.MonitorAlive && w.Serving == nil:
		return w.State + "?" // its monitor is gone
	}
	return w.State
}

func supervision(w view.Worker) string {
	if w.Serving == nil || w.Supervision == "" {
		return "-"
	}
	return w.Supervision
}

func (m Model) rateCell(w view.Worker) string {
	h := m.rates[key(w)]
	if len(h) == 0 || w.Error != "" {
		return "-"
	}
	switch r := h[len(h)-1]; {
	case r < 100:
		return strconv.FormatFloat(r, 'f', 1, 64)
	case r < 1e6:
		return strconv.FormatFloat(r, 'f', 0, 64)
	default:
		return strconv.FormatFloat(r/1e6, 'f', 1, 64) + "M"
	}
}

// spark draws the worker's beats per second over the last minute in 10 cells, the newest on
// the right, each the mean of its share of the refreshes, scaled to the minute's highest; "·"
// is a time without beats, a blank one before the first refresh.
func (m Model) spark(w view.Worker) string {
	const cells = 10
	h := m.rates[key(w)]
	if len(h) == 0 {
		return ""
	}
	top := slices.Max(h)
	per := max(1, m.opts.history()/cells)
	out := []rune{}
	for end := len(h); end > 0 && len(out) < cells; end -= per {
		sum, n := 0.0, 0
		for _, v := range h[max(0, end-per):end] {
			sum, n = sum+v, n+1
		}
		c := sparkles[0]
		if top > 0 && sum > 0 {
			c = sparkles[1+int(sum/float64(n)/top*float64(len(sparkles)-2)+0.5)]
		}
		out = append([]rune{c}, out...)
	}
	return strings.Repeat(" ", cells-len(out)) + string(out) // the newest on the right
}

func stalls(w view.Worker) string {
	if !w.Shmmon {
		return "-"
	}
	return fmt.Sprintf("%d/%d", w.Stalls, w.Threshold)
}

func progress(w view.Worker) string {
	switch {
	case w.Proctab != nil:
		return strconv.FormatFloat(w.Proctab.AgeSec, 'f', 1, 64) + "s"
	case w.ProgressAge == nil:
		return "-"
	case *w.ProgressAge >= 100:
		return strconv.FormatFloat(*w.ProgressAge, 'f', 0, 64) + "s"
	}
	return strconv.FormatFloat(*w.ProgressAge, 'f', 1, 64) + "s"
}

func dash(n int64) string {
	if n == 0 {
		return "-"
	}
	return strconv.FormatInt(n, 10)
}

// pad fits s in width cells: cut with "…", or filled with spaces.
func pad(s string, width int) string {
	s = truncate(s, width)
	return s + strings.Repeat(" ", max(0, width-lipgloss.Width(s)))
}

// truncate cuts s (which may hold styles) to width cells, the last one "…" when cut.
func truncate(s string, width int) string {
	if lipgloss.Width(s) <= width {
		return s
	}
	return lipgloss.NewStyle().MaxWidth(width-1).Render(s) + "…"
}
