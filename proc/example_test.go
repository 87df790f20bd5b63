//go:build linux

package proc_test

import (
	"context"
	"fmt"
	"log"
	"os/exec"
	"time"

	"github.com/shmmon/shmmon/proc"
)

// Terminate a child: SIGTERM, and SIGKILL if it is still running after
// KillAfter. The Process never reaps, so the parent still calls cmd.Wait.
func ExampleProcess_Terminate() {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	p, err := proc.Open(cmd.Process.Pid)
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	t, err := p.Terminate(context.Background(), proc.TerminateOptions{
		KillAfter: 5 * time.Second,
		Log: func(step string, attrs ...any) {
			// A real caller would use slog.Info(step, attrs...).
			fmt.Println(step)
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	cmd.Wait()
	fmt.Printf("signalled %v, killed %v, exited %v\n", t.Signalled, t.Killed, t.Exited)
	// Output:
	// signal
	// exited
	// signalled true, killed false, exited true
}

// Run a command with a timeout: when the context is done, its whole process
// group is killed, and Wait says how it ended once it has been reaped.
func ExampleStartChild() {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	c, err := proc.StartChild(exec.CommandContext(ctx, "sleep", "60"))
	if err != nil {
		log.Fatal(err)
	}
	status, err := c.Wait()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(status, status.Success())
	// Output:
	// signal killed false
}
