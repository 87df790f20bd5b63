//go:build !linux

package shmobj

// shmmon's shared-memory objects live in Linux's /dev/shm; elsewhere every system call of
// this package fails with ErrUnsupported.

func sysOpen(string, bool, bool, uint32) (int, error) { return -1, ErrUnsupported }
func sysOpenRead(string) (int, error)                 { return -1, ErrUnsupported }
func sysFstat(int) (Info, error)                      { return Info{}, ErrUnsupported }
func sysLstat(string) (Info, error)                   { return Info{}, ErrUnsupported }
func sysPread(int, []byte, int64) (int, error)        { return 0, ErrUnsupported }
func sysFchmod(int, uint32) error                     { return ErrUnsupported }
func sysFtruncate(int, int64) error                   { return ErrUnsupported }
func sysClose(int) error                              { return ErrUnsupported }
func sysUnlink(string) error                          { return ErrUnsupported }
func sysRename(string, string) error                  { return ErrUnsupported }
func sysMunmap([]byte) error                          { return ErrUnsupported }
func sysMmap(int, int) ([]byte, error)                { return nil, ErrUnsupported }
func isNotExist(error) bool                           { return false }
func isExist(error) bool                              { return false }
func isDenied(error) bool                             { return false }
