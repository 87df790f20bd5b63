package main

import (
	"errors"
	"io/fs"

	"github.com/urfave/cli/v2"

	"github.com/shmmon/shmmon/shmobj"
)

func beatCommand() *cli.Command {
	return &cli.Command{
		Name:      "beat",
		Usage:     "beat once, for workers written as shell scripts",
		UsageText: "shmmon beat --name NAME",
		Description: "Adds one to the sequence of /dev/shm/NAME. Unlike a worker opening the object, it\n" +
			"does not clear the worker half, so repeated calls keep counting. Exits 1 when the\n" +
			"object does not exist (no monitor running).",
		OnUsageError: usageError,
		Before:       checkUsage(false, "name"),
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "name", Usage: "object `NAME`; required"},
		},
		Action: func(c *cli.Context) error {
			name := c.String("name")
			if err := shmobj.ValidateName(name); err != nil {
				return usagef(c, "--name: %s", stripPkg(err))
			}
			seg, err := shmobj.Attach(name)
			if errors.Is(err, fs.ErrNotExist) {
				return failf(c, "no object %q in %s (is its monitor running?)", name, shmobj.Dir)
			}
			if err != nil {
				return failf(c, "%s", stripPkg(err))
			}
			defer seg.Close()
			if err := seg.Beat(); err != nil {
				return failf(c, "%s", stripPkg(err))
			}
			return nil
		},
	}
}
