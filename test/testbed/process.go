package testbed

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ProcessMemory is a process's peak and current resident set size, as
// "N MiB" ("?" once it has gone).
func ProcessMemory(pid int) (peak, now string) {
	peak, now = "?", "?"
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return peak, now
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		kb, _ := strconv.Atoi(f[1])
		v := fmt.Sprintf("%.0f MiB", float64(kb)/1024)
		switch f[0] {
		case "VmHWM:":
			peak = v
		case "VmRSS:":
			now = v
		}
	}
	return peak, now
}

// CPUSeconds is the user+system CPU time a process has used.
func CPUSeconds(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses: utime and
	// stime are the 12th and 13th, in clock ticks of 1/100 s.
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+2:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	s, _ := strconv.ParseFloat(f[12], 64)
	return (u + s) / 100
}
