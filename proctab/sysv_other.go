//go:build !linux

package proctab

// The System V table is supported on Linux only; elsewhere every call fails with
// ErrUnsupported.

func shmGet(int, int, bool) (int, error) { return -1, ErrUnsupported }
func shmAttach(int) ([]byte, error)      { return nil, ErrUnsupported }
func shmDetach([]byte) error             { return ErrUnsupported }
func shmRemove(int) error                { return ErrUnsupported }
func semGet(int, bool) (int, error)      { return -1, ErrUnsupported }
func semOp(int, int16) error             { return ErrUnsupported }
func semRemove(int) error                { return ErrUnsupported }
func isNotExist(error) bool              { return false }

var errInvalid = ErrUnsupported
