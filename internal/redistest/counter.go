package redistest

import (
	"context"
	"net"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Counter counts the commands a go-redis client sends on behalf of its user,
// so that a test can assert what an operation costs ("an authorize is one
// Redis command") by measurement rather than by reading the code. Create it
// with CountCommands. It is safe for concurrent use.
//
// The commands go-redis sends by itself to set up a connection (HELLO, AUTH,
// SELECT, CLIENT ..., READONLY) are not counted; every other command is, each
// command of a pipeline or transaction included (MULTI and EXEC too).
type Counter struct {
	mu       sync.Mutex // guards commands
	commands []string
}

// CountCommands installs a Counter on c, as a go-redis hook. Install it
// before the operations to measure; Reset it in between.
func CountCommands(c redis.UniversalClient) *Counter {
	n := &Counter{}
	c.AddHook(n)
	return n
}

// Count returns the number of commands sent since creation or Reset.
func (n *Counter) Count() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.commands)
}

// Commands returns the lower-case names of the commands sent since creation
// or Reset, in order, e.g. ["set", "getdel"].
func (n *Counter) Commands() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.commands...)
}

// Reset forgets the commands counted so far.
func (n *Counter) Reset() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.commands = nil
}

func (n *Counter) record(cmds ...redis.Cmder) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, c := range cmds {
		name := strings.ToLower(c.Name())
		switch name {
		case "hello", "auth", "select", "client", "readonly":
			continue
		}
		n.commands = append(n.commands, name)
	}
}

// DialHook implements redis.Hook.
func (n *Counter) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		return next(ctx, network, addr)
	}
}

// ProcessHook implements redis.Hook.
func (n *Counter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		n.record(cmd)
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook implements redis.Hook.
func (n *Counter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		n.record(cmds...)
		return next(ctx, cmds)
	}
}
