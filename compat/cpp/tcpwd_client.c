// tcpwd_client: a client of the socket watchdog of the original framework, written for this project in C
// with plain POSIX sockets. It speaks the fixed-size packet protocol that `shmmon serve`
// serves with a [tcp_watchdog] table (package tcpwd).
//
// The packet (x86-64, C layout, checked by the static asserts below):
//   struct packet { char head[10]; int32_t cmd; int32_t wdt; char target[10];
//                   char source[10]; char msg[512]; }   sizeof 552
//   cmd 0            the connection receives the packets forwarded to source
//   cmd 1, wdt 0     register source with the watchdog
//   cmd 1, wdt 1     feed the watchdog of source
//   cmd 2            forward the packet to the receiver of target
//
// Usage:
//   tcpwd_client --layout
//       Prints "sizeof 552 head 0 cmd 12 wdt 16 target 20 source 30 msg 40" and exits 0.
//   tcpwd_client [--server IP:PORT] [--name NAME] [--feed-every MS]
//                [--send-to TARGET --msg TEXT [--send-every MS]]
//       Connects to the server (default 127.0.0.1:5005) and registers NAME (default: the
//       SHMMON_NAME environment variable that serve sets) as a receiver (cmd 0). With
//       --feed-every MS > 0 it registers NAME with the watchdog (cmd 1, wdt 0) and feeds it
//       every MS milliseconds (cmd 1, wdt 1). With --send-to it forwards TEXT to TARGET
//       (cmd 2) once, or every MS milliseconds with --send-every.
//       Lines on stdout:
//         tcpwd_client NAME pid PID ready                      registered
//         tcpwd_client NAME sent to TARGET hex HEX             the first forward it sent
//         tcpwd_client NAME recv from SOURCE msg TEXT hex HEX  each packet forwarded to it
//         tcpwd_client NAME hang                               feeding stopped (SIGUSR1)
//       HEX is the whole packet, so a test can compare what was sent with what arrived. The
//       bytes after each string's NUL are a fixed pattern, not zeros, as in a C program that
//       fills uninitialised memory with sprintf: a packet the server re-encoded would show.
//
// Signals: SIGUSR1 stops feeding while the client stays connected and keeps receiving (a
// hang, as far as the watchdog can tell); SIGTERM and SIGINT end it with 0.
//
// Exit status: 0 on SIGTERM/SIGINT, 1 when the connection fails or the server closes it,
// 2 on bad arguments. Errors are one line on stderr.

#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct packet {
	char head[10];
	int32_t cmd;
	int32_t wdt;
	char target[10];
	char source[10];
	char msg[512];
};

_Static_assert(sizeof(struct packet) == 552, "packet size");
_Static_assert(offsetof(struct packet, cmd) == 12, "cmd offset");
_Static_assert(offsetof(struct packet, wdt) == 16, "wdt offset");
_Static_assert(offsetof(struct packet, target) == 20, "target offset");
_Static_assert(offsetof(struct packet, source) == 30, "source offset");
_Static_assert(offsetof(struct packet, msg) == 40, "msg offset");

enum { CMD_RECEIVE = 0, CMD_WATCHDOG = 1, CMD_FORWARD = 2, WDT_REGISTER = 0, WDT_FEED = 1 };

static volatile sig_atomic_t stop_feeding, quit;

static void on_signal(int sig) {
	if (sig == SIGUSR1)
		stop_feeding = 1;
	else
		quit = 1;
}

static const char *name = "";

static void fail(const char *what) {
	fprintf(stderr, "tcpwd_client %s: %s: %s\n", name, what, strerror(errno));
	exit(1);
}

static void usage(const char *why) {
	fprintf(stderr, "tcpwd_client: %s (usage: tcpwd_client --layout | [--server IP:PORT] [--name NAME] "
	                "[--feed-every MS] [--send-to TARGET --msg TEXT [--send-every MS]])\n", why);
	exit(2);
}

static int64_t now_ms(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

// put copies s and its NUL into a field of n bytes; s must fit (checked by the caller).
static void put(char *field, const char *s) { memcpy(field, s, strlen(s) + 1); }

static void build(struct packet *p, int32_t cmd, int32_t wdt, const char *target, const char *msg) {
	unsigned char *b = (unsigned char *)p;
	for (size_t i = 0; i < sizeof *p; i++)
		b[i] = (unsigned char)(0xa0 + i % 31);
	put(p->head, "head");
	p->cmd = cmd;
	p->wdt = wdt;
	put(p->target, target);
	put(p->source, name);
	put(p->msg, msg);
}

// send_packet writes the whole packet, however many writes it takes.
static void send_packet(int fd, const struct packet *p) {
	const char *b = (const char *)p;
	size_t left = sizeof *p;
	while (left > 0) {
		ssize_t n = send(fd, b, left, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fail("send");
		}
		b += n;
		left -= (size_t)n;
	}
}

static void hex(char *out, const void *p, size_t n) {
	static const char digits[] = "0123456789abcdef";
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * n] = 0;
}

static long number(const char *flag, const char *s) {
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno != 0 || *s == 0 || *end != 0 || v < 0 || v > 86400000) {
		char why[128];
		snprintf(why, sizeof why, "%s %.40s: want milliseconds, 0 to 86400000", flag, s);
		usage(why);
	}
	return v;
}

static void check_name(const char *flag, const char *s) {
	size_t n = strlen(s);
	if (n == 0 || n > 9 || strchr(s, '/') || !strcmp(s, ".") || !strcmp(s, "..")) {
		char why[128];
		snprintf(why, sizeof why, "%s \"%.40s\": want 1-9 bytes, no '/', not \".\" or \"..\"", flag, s);
		usage(why);
	}
}

int main(int argc, char **argv) {
	const char *server = "127.0.0.1:5005", *target = NULL, *text = NULL;
	long feed_every = 0, send_every = 0;
	if (getenv("SHMMON_NAME"))
		name = getenv("SHMMON_NAME");
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--layout")) {
			printf("sizeof %zu head %zu cmd %zu wdt %zu target %zu source %zu msg %zu\n", sizeof(struct packet),
			       offsetof(struct packet, head), offsetof(struct packet, cmd), offsetof(struct packet, wdt),
			       offsetof(struct packet, target), offsetof(struct packet, source), offsetof(struct packet, msg));
			return 0;
		}
		if (i + 1 >= argc) {
			char why[128];
			snprintf(why, sizeof why, "%.40s: missing its value, or unknown", a);
			usage(why);
		}
		const char *v = argv[++i];
		if (!strcmp(a, "--server"))
			server = v;
		else if (!strcmp(a, "--name"))
			name = v;
		else if (!strcmp(a, "--feed-every"))
			feed_every = number(a, v);
		else if (!strcmp(a, "--send-to"))
			target = v;
		else if (!strcmp(a, "--msg"))
			text = v;
		else if (!strcmp(a, "--send-every"))
			send_every = number(a, v);
		else {
			char why[128];
			snprintf(why, sizeof why, "unknown flag %.40s", a);
			usage(why);
		}
	}
	check_name("--name", name);
	if (target)
		check_name("--send-to", target);
	if (!target != !text)
		usage("--send-to and --msg go together");
	if (text && strlen(text) > 511)
		usage("--msg: want at most 511 bytes");

	struct sockaddr_in addr = {.sin_family = AF_INET};
	char host[64];
	const char *colon = strrchr(server, ':');
	long port = colon ? strtol(colon + 1, NULL, 10) : 0;
	if (!colon || (size_t)(colon - server) >= sizeof host || port < 1 || port > 65535)
		usage("--server: want IPv4:PORT, e.g. 127.0.0.1:5005");
	memcpy(host, server, (size_t)(colon - server));
	host[colon - server] = 0;
	if (inet_pton(AF_INET, host, &addr.sin_addr) != 1)
		usage("--server: want IPv4:PORT, e.g. 127.0.0.1:5005");
	addr.sin_port = htons((uint16_t)port);

	// No SA_RESTART: a signal ends poll() at once.
	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);

	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		fail("socket");
	if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0)
		fail("connect");

	struct packet p;
	build(&p, CMD_RECEIVE, 0, "null", "null");
	send_packet(fd, &p);
	if (feed_every > 0) {
		build(&p, CMD_WATCHDOG, WDT_REGISTER, "null", "null");
		send_packet(fd, &p);
	}
	printf("tcpwd_client %s pid %d ready\n", name, (int)getpid());

	static char line[2 * sizeof(struct packet) + 700];
	struct packet in;
	size_t have = 0;
	int64_t next_feed = now_ms(), next_send = next_feed;
	int sent = 0, announced = 0;
	while (!quit) {
		int64_t t = now_ms();
		if (feed_every > 0 && !stop_feeding && t >= next_feed) {
			build(&p, CMD_WATCHDOG, WDT_FEED, "null", "null");
			send_packet(fd, &p);
			next_feed += feed_every;
			if (next_feed <= t)
				next_feed = t + feed_every;
		}
		if (stop_feeding && !announced) {
			printf("tcpwd_client %s hang\n", name);
			announced = 1;
		}
		if (target && (send_every > 0 || !sent) && t >= next_send) {
			build(&p, CMD_FORWARD, 0, target, text);
			send_packet(fd, &p);
			if (!sent) {
				hex(line, &p, sizeof p);
				printf("tcpwd_client %s sent to %s hex %s\n", name, target, line);
			}
			sent = 1;
			next_send = t + send_every;
		}

		int64_t wake = -1;
		if (feed_every > 0 && !stop_feeding)
			wake = next_feed;
		if (target && send_every > 0 && (wake < 0 || next_send < wake))
			wake = next_send;
		int timeout = wake < 0 ? -1 : (int)(wake > t ? wake - t : 0);
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int r = poll(&pfd, 1, timeout);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			fail("poll");
		}
		if (r == 0)
			continue;
		// A packet may arrive in pieces: keep what came until it is whole.
		ssize_t n = recv(fd, (char *)&in + have, sizeof in - have, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fail("recv");
		}
		if (n == 0) {
			fprintf(stderr, "tcpwd_client %s: the server closed the connection\n", name);
			return 1;
		}
		have += (size_t)n;
		if (have < sizeof in)
			continue;
		have = 0;
		char src[11] = {0};
		memcpy(src, in.source, sizeof in.source);
		size_t mlen = strnlen(in.msg, sizeof in.msg);
		int off = snprintf(line, sizeof line, "tcpwd_client %s recv from %s msg %.*s hex ", name, src, (int)mlen, in.msg);
		hex(line + off, &in, sizeof in);
		puts(line);
	}
	close(fd);
	return 0;
}
