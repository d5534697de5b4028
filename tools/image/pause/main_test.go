package main

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// processState is the state letter of /proc/PID/stat ("Z" for a zombie), "" if gone.
func processState(pid int) string {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	return fields[0]
}

func TestReapCollectsExitedChildren(t *testing.T) {
	var pids []int
	for i := 0; i < 3; i++ { // several exits, as one coalesced SIGCHLD may stand for
		child := exec.Command(os.Args[0], "-test.run=^$")
		if err := child.Start(); err != nil {
			t.Fatal(err)
		}
		pids = append(pids, child.Process.Pid)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, pid := range pids {
		for processState(pid) != "Z" {
			if time.Now().After(deadline) {
				t.Fatalf("child %d did not exit (state %q)", pid, processState(pid))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	reap()
	for _, pid := range pids {
		if state := processState(pid); state != "" {
			t.Errorf("child %d still there after reap (state %q)", pid, state)
		}
	}
}
