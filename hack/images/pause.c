/* The pod sandbox's process: holds the pod's namespaces and sleeps until
 * it is told to stop. As PID 1 it has no default signal handlers, so it
 * installs its own for SIGTERM and SIGINT, and reaps orphans. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig) { (void)sig; _exit(0); }
static void reap(int sig) {
    (void)sig;
    while (waitpid(-1, 0, WNOHANG) > 0) {
    }
}

int main(void) {
    signal(SIGINT, stop);
    signal(SIGTERM, stop);
    signal(SIGCHLD, reap);
    for (;;) pause();
}
