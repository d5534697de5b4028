// Command pause is the pod sandbox process of settlers-testbed's real-node cluster:
// containerd's CRI starts one per pod to hold the pod's namespaces, and
// registry.k8s.io/pause cannot be pulled on a machine without a registry.
// Like Kubernetes' own pause it blocks until SIGINT or SIGTERM and then exits 0,
// and as PID 1 of a pod with a shared PID namespace it reaps orphaned children
// on SIGCHLD so they do not linger as zombies. No dependencies beyond the
// standard library, so it builds statically with CGO_ENABLED=0.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// version matches the registry.k8s.io/pause release whose role it plays.
const version = "3.10"

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "-v" || os.Args[1] == "--version") {
		fmt.Printf("settlers-pause %s\n", version)
		return
	}
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "Warning: pause should be the first process")
	}
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range signals {
		if sig == syscall.SIGCHLD {
			reap()
			continue
		}
		fmt.Fprintf(os.Stderr, "Shutting down, got signal: %v\n", sig)
		os.Exit(0)
	}
}

// reap collects every exited child without blocking: one SIGCHLD may stand for
// several exits, since pending signals of one kind coalesce.
func reap() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
