package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// clockTicks is sysconf(_SC_CLK_TCK), taken from getconf (100 on every
// common Linux configuration).
var clockTicks = func() float64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if v, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64); err == nil && v > 0 {
			return v
		}
	}
	return 100
}()

// cpuClock and cpuStat name how procCPU measured a process's CPU time.
const (
	cpuClock = "clock" // clock_gettime on the process CPU clock, ns
	cpuStat  = "stat"  // /proc/PID/stat utime+stime, clock ticks
)

// procCPU returns the CPU seconds of every thread of pid, exited ones
// included, and how they were read: from the process CPU clock (ns), or
// when that fails from /proc/PID/stat (clock ticks).
func procCPU(pid int) (float64, string, error) {
	if d, err := processClock(pid); err == nil {
		return d.Seconds(), cpuClock, nil
	}
	s, err := procStatCPU(pid)
	return s, cpuStat, err
}

// procStatCPU returns utime+stime of pid in seconds (/proc/PID/stat fields
// 14 and 15, all threads), in clock ticks.
func procStatCPU(pid int) (float64, error) {
	st, err := procStat(pid)
	return st.cpu, err
}

// statFields are the fields of /proc/PID/stat the runner reads, each the
// whole process's (exited threads included).
type statFields struct {
	cpu    float64 // utime+stime, seconds (clock ticks)
	minflt float64 // minor page faults (field 10)
}

func procStat(pid int) (statFields, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return statFields{}, err
	}
	return parseStat(b)
}

// parseStat reads the text of /proc/PID/stat.
func parseStat(b []byte) (statFields, error) {
	// The command name (field 2) may contain spaces: skip past its ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return statFields{}, errors.New("bad /proc/PID/stat: no ')'")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): minflt is field 10 -> f[7], utime field 14
	// -> f[11], stime f[12].
	if len(f) < 13 {
		return statFields{}, errors.New("short /proc/PID/stat")
	}
	mf, err0 := strconv.ParseFloat(f[7], 64)
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err0 != nil || err1 != nil || err2 != nil {
		return statFields{}, errors.New("bad minflt/utime/stime in /proc/PID/stat")
	}
	return statFields{cpu: (ut + st) / clockTicks, minflt: mf}, nil
}

// procStatus returns the kB values of the given keys of /proc/PID/status
// (e.g. VmRSS, VmHWM) in bytes, and Cpus_allowed_list as a string.
func procStatus(pid int) (map[string]float64, string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, "", err
	}
	m := map[string]float64{}
	var cpus string
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		if k == "Cpus_allowed_list" {
			cpus = v
			continue
		}
		if strings.HasSuffix(v, " kB") {
			if n, err := strconv.ParseFloat(strings.TrimSuffix(v, " kB"), 64); err == nil {
				m[k] = n * 1024
			}
		}
	}
	return m, cpus, nil
}

// cpuBusy returns the busy seconds (all but idle and iowait) of each CPU
// from /proc/stat, indexed by CPU number.
func cpuBusy() (map[int]float64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil, err
	}
	out := map[int]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
			continue
		}
		n, err := strconv.Atoi(strings.TrimPrefix(f[0], "cpu"))
		if err != nil {
			continue
		}
		var busy float64
		for i, s := range f[1:] {
			if i == 3 || i == 4 { // idle, iowait
				continue
			}
			if i >= 7 { // guest, guest_nice are included in user/nice
				break
			}
			v, _ := strconv.ParseFloat(s, 64)
			busy += v
		}
		out[n] = busy / clockTicks
	}
	return out, nil
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// machineInfo describes the host for the report.
type machineInfo struct {
	NumCPU    int     `json:"num_cpu"`
	Model     string  `json:"cpu_model"`
	MemGiB    float64 `json:"mem_gib"`
	Kernel    string  `json:"kernel"`
	GoVersion string  `json:"go_version"`
	ClkTck    float64 `json:"clk_tck"`
}

func readMachine(goVersion string) machineInfo {
	mi := machineInfo{Kernel: readTrim("/proc/sys/kernel/osrelease"), GoVersion: goVersion, ClkTck: clockTicks}
	for _, line := range strings.Split(readTrim("/proc/cpuinfo"), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		k = strings.TrimSpace(k)
		if k == "processor" {
			mi.NumCPU++
		}
		if k == "model name" && mi.Model == "" {
			mi.Model = strings.TrimSpace(v)
		}
	}
	for _, line := range strings.Split(readTrim("/proc/meminfo"), "\n") {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			n, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			mi.MemGiB = n / (1 << 20)
		}
	}
	return mi
}

func loadAvg() string {
	f := strings.Fields(readTrim("/proc/loadavg"))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
