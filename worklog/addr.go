package worklog

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
)

// Addr returns the abstract Unix address at which the log process of the file path (for this
// user) listens, so that a serve started again finds the one that writes the file: a hash
// keeps it under the 107 bytes allowed.
func Addr(path string) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%d\x00%s", os.Geteuid(), path))
	return "@shmmon-log/" + hex.EncodeToString(sum[:16])
}
