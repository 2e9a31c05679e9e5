//go:build unix

package cli

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// holdPort binds a socket to addr without listening on it, as a
// connection's local port is held: a listen there fails with "address
// already in use", and a connection there is refused, so that waitPort
// cannot take it for the process's own.
func holdPort(t *testing.T, addr string) {
	t.Helper()
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}); err != nil {
		t.Fatal(err)
	}
}

// TestProcGroupListen runs the test binary as a process that listens on
// the port it is given: one whose port another process took before it
// bound it is started again on another, and one that exits for another
// reason is said to have, with its log, without another attempt.
func TestProcGroupListen(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin, name := filepath.Split(exe)
	t.Run("a port taken before the process bound it", func(t *testing.T) {
		procs := &procGroup{logDir: t.TempDir()}
		defer procs.stop()
		var given, taken []string
		addr, err := procs.listen(t.Context(), name, func(addr string) (<-chan struct{}, error) {
			given = append(given, addr)
			if len(given) == 1 {
				holdPort(t, addr)
			}
			return procs.start(t.Context(), bin, name, []string{listenHelperEnv + "=" + addr})
		}, func(addr string) { taken = append(taken, addr) })
		if err != nil {
			t.Fatal(err)
		}
		if len(given) != 2 || len(taken) != 1 || taken[0] != given[0] || addr != given[1] {
			t.Fatalf("listening on %s after ports %v, %v said taken; want the second port, the first said taken", addr, given, taken)
		}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("nothing listens on %s: %v", addr, err)
		}
		c.Close()
	})
	t.Run("a process that exits for another reason", func(t *testing.T) {
		procs := &procGroup{logDir: t.TempDir()}
		defer procs.stop()
		attempts := 0
		_, err := procs.listen(t.Context(), name, func(string) (<-chan struct{}, error) {
			attempts++
			return procs.start(t.Context(), bin, name, []string{listenHelperEnv + "=fail"})
		}, func(addr string) { t.Errorf("%s said taken", addr) })
		log := filepath.Join(procs.logDir, name+".log")
		if err == nil || !strings.Contains(err.Error(), name+" exited before it listened on 127.0.0.1:") || !strings.HasSuffix(err.Error(), "(see "+log+")") || attempts != 1 {
			t.Errorf("listen = %v after %d attempts; want one, and that it exited before it listened (see %s)", err, attempts, log)
		}
	})
}
