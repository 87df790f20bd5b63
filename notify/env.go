package notify

import (
	"slices"
	"strings"
)

// WithoutHandshake returns env (KEY=VALUE entries, as [os.Environ] returns them) without the
// variables of systemd's notify and watchdog handshake: NOTIFY_SOCKET, WATCHDOG_USEC and
// WATCHDOG_PID. They are meant for the process they were given to, which alone answers on
// that socket (sd_notify(3)); a program it starts must not inherit them and speak for it.
// env is filtered in place.
func WithoutHandshake(env []string) []string {
	return slices.DeleteFunc(env, func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return k == "NOTIFY_SOCKET" || k == "WATCHDOG_USEC" || k == "WATCHDOG_PID"
	})
}
