// Package filetype names the type of a file that is not a regular one, for the messages of
// the packages that refuse such files (a config, a pidfile, a heartbeat object): "a named
// pipe", "a directory", ...
package filetype

import (
	"fmt"
	"io/fs"
)

// Name names the type of a file of mode m with an article: "a named pipe", "a character
// device", "a block device", "a socket", "a directory", "a symbolic link", or "a file of type
// T" for any other that is not regular.
func Name(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	}
	return fmt.Sprintf("a file of type %v", m.Type())
}

// Unix returns the type bits of a stat(2) st_mode as an fs.FileMode, for [Name].
func Unix(mode uint32) fs.FileMode {
	switch mode & 0o170000 {
	case 0o010000:
		return fs.ModeNamedPipe
	case 0o020000:
		return fs.ModeDevice | fs.ModeCharDevice
	case 0o060000:
		return fs.ModeDevice
	case 0o140000:
		return fs.ModeSocket
	case 0o040000:
		return fs.ModeDir
	case 0o120000:
		return fs.ModeSymlink
	case 0o100000:
		return 0
	}
	return fs.ModeIrregular
}
