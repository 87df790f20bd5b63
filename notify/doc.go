// Package notify is the receiving end of systemd's notify protocol (sd_notify(3)) for the
// programs shmmon supervises, so that a program written for systemd's watchdog runs under
// shmmon unchanged.
//
// A [Listener] owns one Unix datagram socket — an abstract address by default, as in
// NOTIFY_SOCKET=@name — with SO_PASSCRED on, so the kernel attaches each sender's
// credentials. Each datagram is newline-separated KEY=VALUE lines (see [Message] for the
// keys read); it is delivered on [Listener.Messages] with the sender's pid, or dropped:
//
//   - longer than [MaxSize] (4096 bytes, as systemd), or with truncated control data;
//   - holding a NUL byte ([ErrMalformed]);
//   - without credentials, or from a sender [Options.Allow] refuses;
//
// Drops are logged at debug level, at most one line a second. Nothing a sender writes can
// make the listener panic or stop ([Parse] is fuzzed). File descriptors passed along with a
// message (FDSTORE=1) are not kept: they are closed at once.
//
// What the keys mean for the program is the supervisor's business (package supervise);
// this package only receives, authenticates and parses, and names the handshake's variables
// that no program may inherit from shmmon ([WithoutHandshake]). Linux only: elsewhere
// [Listen] returns an error matching [errors.ErrUnsupported].
package notify
