//go:build !linux

package proctab

import (
	"os"
	"time"
)

// The System V table is supported on Linux only; elsewhere every call fails with
// ErrUnsupported.

func shmGet(int, int, os.FileMode, bool) (int, bool, error) { return -1, false, ErrUnsupported }
func shmAttach(int) ([]byte, error)                         { return nil, ErrUnsupported }
func shmDetach([]byte) error                                { return ErrUnsupported }
func shmRemove(int) error                                   { return ErrUnsupported }
func shmStat(int) (perm, error)                             { return perm{}, ErrUnsupported }
func shmSetGroup(int, int) error                            { return ErrUnsupported }
func semGet(int, os.FileMode, bool) (int, bool, error)      { return -1, false, ErrUnsupported }
func semSetGroup(int, int) error                            { return ErrUnsupported }
func semTake(int, time.Duration) (bool, error)              { return false, ErrUnsupported }
func semGive(int) error                                     { return ErrUnsupported }
func semRemove(int) error                                   { return ErrUnsupported }
func isNotExist(error) bool                                 { return false }

var errInvalid = ErrUnsupported
