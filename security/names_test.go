package security

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/shmmon/shmmon/internal/badactor"
	"github.com/shmmon/shmmon/internal/testkit"
)

// TestNamesQuoted: another user plants objects and process-table records whose names hold an escape sequence, a newline
// that would forge a row, and a tab; `shmmon ls`, `ls --all`, `inspect` and `proctab ls`, run by root, print
// them quoted: no control character reaches the terminal and no row is forged.
func TestNamesQuoted(t *testing.T) {
	planted := badactor.PlantNames(t, testkit.NewUser(t))
	prefix := planted.Prefix
	key := fmt.Sprintf("%#x", planted.Table.Key)
	slots := strconv.Itoa(planted.Table.Slots)
	shmmon := testkit.Shmmon(t)
	for _, args := range [][]string{{"ls"}, {"ls", "--all"}} {
		out, err := exec.Command(shmmon, args...).Output()
		if err != nil {
			t.Fatalf("shmmon %v: %v", args, err)
		}
		checkNoControl(t, strings.Join(args, " "), string(out))
		rows := testkit.LinesWith(strings.Split(string(out), "\n"), prefix)
		if len(rows) != len(badactor.EvilNames) {
			t.Errorf("shmmon %v: %d rows name the planted objects, want %d (one each, none forged):\n%s",
				args, len(rows), len(badactor.EvilNames), strings.Join(rows, "\n"))
		}
		if l := testkit.LinesWith(strings.Split(string(out), "\n"), "forged-row"); len(l) > 0 && !strings.Contains(l[0], prefix) {
			t.Errorf("shmmon %v printed a forged row: %q", args, l[0])
		}
	}
	// The process table's records, listed by proctab ls and ls.
	for _, args := range [][]string{{"proctab", "ls", "--key", key, "--slots", slots}, {"ls", "--proctab-key", key, "--proctab-slots", slots}} {
		out, err := exec.Command(shmmon, args...).Output()
		if err != nil {
			t.Fatalf("shmmon %v: %v", args, err)
		}
		checkNoControl(t, strings.Join(args, " "), string(out))
		rows := testkit.LinesWith(strings.Split(string(out), "\n"), "forged-row")
		if len(rows) == 0 {
			t.Errorf("shmmon %v does not list the record named with a newline:\n%s", args, out)
		}
		for _, l := range rows {
			if !strings.Contains(l, `-nl\nforged-row`) {
				t.Errorf("shmmon %v printed a forged row: %q", args, l)
			}
		}
	}
	for _, n := range badactor.EvilNames {
		out, err := exec.Command(shmmon, "inspect", "--name", prefix+n).Output()
		if err != nil {
			t.Fatalf("shmmon inspect %q: %v", prefix+n, err)
		}
		checkNoControl(t, "inspect", string(out))
		// Every line is one "field: value" row of the detail view; a forged line is not.
		for _, l := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
			if field, _, ok := strings.Cut(l, ":"); !ok || strings.Trim(field, "abcdefghijklmnopqrstuvwxyz ") != "" {
				t.Errorf("shmmon inspect %q printed a line that is not one of its rows: %q", prefix+n, l)
			}
		}
	}
}

// checkNoControl fails the test when out holds a control character other than newline and the
// spaces of a table.
func checkNoControl(t *testing.T, what, out string) {
	t.Helper()
	for i, r := range out {
		if (r < 0x20 && r != '\n') || r == 0x7f {
			t.Errorf("shmmon %s printed control character %#x at byte %d:\n%q", what, r, i, out)
			return
		}
	}
}
