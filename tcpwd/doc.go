// Package tcpwd implements the TCP watchdog protocol of the seeds' socket watchdog: clients
// connect over TCP, register names, feed a watchdog and forward messages to each other in
// fixed-size packets. `shmmon serve` runs a [Server] when its config has a [tcp_watchdog]
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
// Registrations (cmd 0 and cmd 1 wdt 0) are only accepted for names the server is told are
// workers ([Options.IsWorker]): a registration or feed of another name is refused, logged, and
// the connection is closed. The newest registration of a name wins: it replaces the one of
// another connection. When a connection ends, the registrations it still holds are dropped.
// A forward to a name without a receiver is logged (once per connection and target, until a
// forward to it succeeds) and dropped.
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
// The server keeps no stall logic of its own. A watchdog registration attaches the worker's
// shared-memory object (/dev/shm/NAME, published by the monitor that supervises NAME), and
// each feed bumps its heartbeat sequence and marks the record's kind as socket
// ([shmobj.KindSocket]): the worker's monitor judges the beats with its usual rules (interval,
// stalls) and kills and restarts the worker's process. The server never writes the worker's
// pid. An object that was removed, replaced, truncated or retired is attached again by name,
// checked at most once a second.
//
// Feeds are not authenticated: any process that can connect can feed any configured name.
// Listen on loopback (the default of the config) unless the network is trusted.
package tcpwd
