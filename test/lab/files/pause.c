/*
 * pause: the sandbox process of every lab pod. It holds the pod's
 * namespaces open, reaps the children that are reparented to it (it is
 * PID 1 of a pod that shares its PID namespace) and exits at SIGTERM or
 * SIGINT, as Kubernetes' own pause does. Built statically and put in an
 * image FROM scratch by the lab (test/lab/image.go).
 */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig) { _exit(0); }

static void reap(int sig) {
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

int main(void) {
	struct sigaction sa = {0};
	sa.sa_handler = stop;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = reap;
	sa.sa_flags = SA_NOCLDSTOP;
	sigaction(SIGCHLD, &sa, NULL);
	for (;;)
		pause();
	return 1;
}
