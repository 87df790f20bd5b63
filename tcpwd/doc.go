// Package tcpwd implements the TCP watchdog protocol of the original framework's socket
// watchdog: clients connect over TCP, register names, feed a watchdog and forward messages to
// each other in fixed-size packets. `shmmon serve` runs a [Server] when its config has a [tcp_watchdog]
// table.
//
// # Packets
//
// Every packet is [PacketSize] bytes, the C struct below as g++ lays it out on x86-64 (int32
// little-endian, two padding bytes after head):
//
//	struct packet {         offset  size
//	    char    head[10];        0    10   free text, "head" by convention; not checked
//	    int32_t cmd;            12     4   0 receive, 1 watchdog, 2 forward
//	    int32_t wdt;            16     4   with cmd 1: 0 register, 1 feed
//	    char    target[10];     20    10   cmd 2: the receiver's name
//	    char    source[10];     30    10   the sender's name
//	    char    msg[512];       40   512   cmd 2: the message; not checked
//	};                               552
//
// A name field holds a C string: the name, a NUL, then anything (a C client that fills a
// malloc'ed packet with sprintf leaves whatever was in memory after the NUL).
//
// # Commands
//
//   - cmd 0: the connection becomes the receiver of source: packets forwarded to source are
//     written to it.
//   - cmd 1, wdt 0: source is registered with the watchdog on this connection.
//   - cmd 1, wdt 1: a feed of source, one heartbeat. Only the connection holding the
//     registration may feed; other feeds are dropped (and logged once per connection).
//   - cmd 2: the packet, byte for byte as it arrived, is written to the receiver of target.
//
// Registrations (cmd 0 and cmd 1 wdt 0) and feeds are only accepted for names the server is
// told are workers ([Options.Lookup]): another name is refused, logged, and the connection is
// closed. When a connection ends, the registrations it still holds are dropped. A forward to a
// name without a receiver is logged (once per connection and target, until a forward to it
// succeeds) and dropped.
//
// # Who may register: loopback
//
// On a listener whose address is a loopback IP (the config's default, 127.0.0.1), every peer
// is a process of this host, and the server checks which one before it accepts a
// registration, as `ss -p` finds it: the peer's socket is the ESTABLISHED line of
// /proc/net/tcp (or tcp6) from the peer's address to the server's, and the process is one
// whose /proc/PID/fd holds that socket's inode. This is done once per connection and
// worker process, not per packet. The rules:
//
//   - A registration of a worker's name is accepted only from a process of the worker's tree:
//     the process [Options.Lookup] names (the program shmmon supervises, or the process it was
//     told to watch), a process of its group, or a descendant. The socket must also belong to
//     root or to a user the holding process runs as. While the worker runs no process, or one
//     whose tree does not hold the peer, the registration waits up to 2 s for the worker's
//     next process (a restarted program may connect before shmmon has noted its start), and
//     is then refused: logged, and the connection closed.
//   - A registration held by a live connection of the worker's running process is never taken
//     over: another connection's registration of the name is refused in the same way. One
//     made for an earlier process of the worker (killed and restarted, say) gives way to the
//     new process's, and its feeds are dropped meanwhile.
//   - A forward's source must be a name the sending connection registered (as receiver or
//     watchdog); another forward is dropped and logged once per connection and source.
//
// So another local user can neither feed nor starve a worker, nor read what is forwarded to
// it, nor forward in its name. It can still send packets that are dropped, and hold
// connections open up to [Options.MaxConns]: every connection after those, a restarted
// worker's too, is closed until some of them end.
//
// # Other listeners
//
// A listener on any other address (0.0.0.0, a LAN address) cannot tell which process a peer
// is, and keeps the rules of the original watchdog: any peer may register any worker's name,
// the newest registration wins (it replaces the one of another connection, whose feeds are
// then dropped), and a forward may carry any source. Nothing there protects a worker from a
// peer that can connect: it can stop the worker's feeds (the worker is then killed as hung),
// feed a hung worker so it is never killed, receive the worker's messages and forge messages
// from it. Serve logs a warning (tcp-unverified) when it listens so. Listen on loopback unless
// every host and user that can reach the port is trusted.
//
// # Limits, on every listener
//
// Once the first byte of a packet has arrived, the rest must follow within
// [Options.PacketTimeout] (10 s by default), or the connection is closed; a connection may stay
// idle between packets as long as it likes. At most [Options.MaxConns] connections (1,024 by
// default) are open at once: one more is closed as soon as it is accepted, logged at most once
// every 10 s. A failed accept (out of descriptors, say) is retried after a delay that doubles
// from 5 ms to 1 s, never in a busy loop.
//
// # Malformed packets
//
// A packet is malformed when
//
//   - cmd is not 0, 1 or 2, or
//   - cmd is 1 and wdt is not 0 or 1, or
//   - source has no NUL within its 10 bytes, or the bytes before the NUL are not a valid
//     object name (so 1 to 9 bytes, no '/', not "." or ".."; see [shmobj.ValidateName]), or
//   - cmd is 2 and target fails the same test.
//
// Nothing else is checked: head, wdt of cmd 0 and 2, target of cmd 0 and 1, msg, and the
// bytes after a name's NUL may hold anything. A malformed packet closes its connection (and
// only that one), since the stream can no longer be trusted to be aligned on packets.
//
// # Heartbeats
//
// The server keeps no stall logic and touches no object of its own: each feed of a name is a
// [Target.Feed] of the worker [Options.Lookup] gives for it (in serve, package source's TCP:
// a beat of the worker's heartbeat, recorded as kind socket), which the worker's monitor
// judges with its usual rules (interval, stalls), killing and restarting the worker's process.
package tcpwd
