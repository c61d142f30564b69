package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is a redis-server process of one test's own, for fault tests: the
// test may stop it, freeze it and start it again on the same address while
// its clients stay. Create it with StartServer; it is stopped when the test
// ends. It keeps no data on disk, so a restarted server starts empty.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	addr string
	// args come before the common ones (a config file, --sentinel) and
	// extra after them (--replicaof ...).
	args, extra []string

	mu   sync.Mutex // guards cmd, done and frozen
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	// frozen: the process is stopped with SIGSTOP.
	frozen bool
}

// StartServer starts a redis-server found on PATH on a free loopback port and
// waits until it answers. Without redis-server it skips t (or fails it, see
// Unavailable).
func StartServer(t testing.TB) *Server {
	t.Helper()
	s := newServer(t)
	s.Start()
	return s
}

// newServer prepares a Server on a free port without starting it.
func newServer(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		Unavailable(t, "redis-server is not on PATH: this test starts its own (install Debian's redis-server)")
	}
	port, err := freePort()
	if err != nil {
		t.Fatalf("redistest: finding a free port: %v", err)
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir(), addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	t.Cleanup(s.Stop)
	return s
}

// Addr returns the server's host:port.
func (s *Server) Addr() string { return s.addr }

// Client returns a new client of the server, with ContextTimeoutEnabled,
// closed when the test ends.
func (s *Server) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.addr, ContextTimeoutEnabled: true})
	s.t.Cleanup(func() { c.Close() })
	return c
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start starts the server (again) on its address and waits until it answers.
// It does nothing if the server runs.
func (s *Server) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return
	}
	_, port, _ := net.SplitHostPort(s.addr)
	args := append(append([]string{}, s.args...), "--port", port, "--bind", "127.0.0.1",
		"--dir", s.dir, "--daemonize", "no", "--logfile", "")
	if len(s.args) == 0 { // not a Sentinel
		args = append(args, "--save", "", "--appendonly", "no")
	}
	cmd := exec.Command(s.bin, append(args, s.extra...)...)
	out, err := os.Create(s.dir + "/redis.log")
	if err != nil {
		s.t.Fatalf("redistest: %v", err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("redistest: starting %s: %v", s.bin, err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	s.cmd, s.done = cmd, done

	c := redis.NewClient(&redis.Options{Addr: s.addr, MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		select {
		case <-done:
			log, _ := os.ReadFile(s.dir + "/redis.log")
			s.cmd = nil
			s.t.Fatalf("redistest: redis-server on %s exited at start: %s", s.addr, log)
		default:
		}
		if time.Now().After(deadline) {
			s.stopLocked()
			s.t.Fatalf("redistest: redis-server on %s did not answer within 10s: %v", s.addr, err)
		}
		time.Sleep(10 * time.Millisecond) // waiting for a process to listen
	}
}

// Stop stops the server (SIGTERM, SIGKILL after 10 s) and waits for it to
// exit; its clients then get connection errors. Stop does nothing if the
// server is not running.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
}

func (s *Server) stopLocked() {
	if s.cmd == nil {
		return
	}
	if s.frozen {
		s.cmd.Process.Signal(syscall.SIGCONT)
		s.frozen = false
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd, s.done = nil, nil
}

// Kill kills the server process (SIGKILL, by its PID), as a crash or a
// lost machine would, and waits for it to exit. Kill does nothing if the
// server is not running.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.done
	s.cmd, s.done, s.frozen = nil, nil, false
}

// Freeze suspends the server process (SIGSTOP): connections stay open and
// commands get no answer, as with a hung server or a network partition.
func (s *Server) Freeze() {
	s.t.Helper()
	s.signal(syscall.SIGSTOP, true)
}

// Thaw resumes a frozen server (SIGCONT).
func (s *Server) Thaw() {
	s.t.Helper()
	s.signal(syscall.SIGCONT, false)
}

func (s *Server) signal(sig syscall.Signal, frozen bool) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		s.t.Fatalf("redistest: %v: the server is not running", sig)
	}
	if err := s.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		s.t.Fatalf("redistest: %v: %v", sig, err)
	}
	s.frozen = frozen
}

// String describes the server for test messages.
func (s *Server) String() string { return fmt.Sprintf("redis-server on %s", s.addr) }
