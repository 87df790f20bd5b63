package tcpwd

// DefaultListen is the address of a [tcp_watchdog] table without listen.
const DefaultListen = "127.0.0.1:5005"
