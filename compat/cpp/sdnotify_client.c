/*
 * sdnotify_client: a program written for systemd's watchdog, using libsystemd's
 * sd_watchdog_enabled() and sd_notify() and nothing of shmmon's. The compat tests run it
 * under `shmmon run`, which must speak the notify protocol as systemd does.
 *
 *   sdnotify_client beat    READY=1 and STATUS=, then WATCHDOG=1 every half watchdog
 *                           interval, forever (the test stops it with SIGSTOP: a hang)
 *   sdnotify_client ready   READY=1, then never a beat
 *
 * It prints "sdnotify_client ready pid P usec U" once it sent READY=1. A failed sd_notify()
 * is ignored, as services do (the manager may be restarting); the first failure in a row is
 * reported on stderr. SIGPIPE is ignored: when a test's monitor is SIGKILLed, the pipe of
 * this program's stderr may be closed behind it, and the program must live on to be adopted. Exit status 2: bad usage; 3: sd_watchdog_enabled() says the watchdog is not
 * enabled for this process (NOTIFY_SOCKET, WATCHDOG_USEC or WATCHDOG_PID missing or wrong).
 */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

static void sleep_usec(uint64_t usec) {
	struct timespec ts = {.tv_sec = usec / 1000000, .tv_nsec = (usec % 1000000) * 1000};
	while (nanosleep(&ts, &ts) != 0) {
	}
}

static void notify(const char *msg) {
	static int failing;
	int r = sd_notify(0, msg);
	if (r <= 0 && !failing) {
		fprintf(stderr, "sdnotify_client: sd_notify(\"%s\") = %d\n", msg, r);
	}
	failing = r <= 0;
}

int main(int argc, char **argv) {
	if (argc != 2 || (strcmp(argv[1], "beat") != 0 && strcmp(argv[1], "ready") != 0)) {
		fprintf(stderr, "usage: sdnotify_client beat|ready\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	uint64_t usec = 0;
	int r = sd_watchdog_enabled(0, &usec);
	if (r <= 0 || usec == 0) {
		fprintf(stderr, "sdnotify_client: sd_watchdog_enabled = %d (usec %" PRIu64 ")\n", r, usec);
		return 3;
	}
	char status[64];
	snprintf(status, sizeof status, "READY=1\nSTATUS=c client %d up", (int)getpid());
	notify(strcmp(argv[1], "beat") == 0 ? status : "READY=1");
	printf("sdnotify_client ready pid %d usec %" PRIu64 "\n", (int)getpid(), usec);
	fflush(stdout);
	for (;;) {
		if (strcmp(argv[1], "beat") == 0) {
			notify("WATCHDOG=1");
		}
		sleep_usec(usec / 2);
	}
}
