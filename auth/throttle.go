package auth

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// ThrottleOptions shape the sign-in lockout. After FreeFailures failed attempts
// for a key (a username or a remote address) each further attempt must wait
// BaseLockout, doubling with every failure, up to MaxLockout.
type ThrottleOptions struct {
	FreeFailures int           // default 5
	BaseLockout  time.Duration // default 1 s
	MaxLockout   time.Duration // default 15 min
}

func (o ThrottleOptions) withDefaults() ThrottleOptions {
	if o.FreeFailures <= 0 {
		o.FreeFailures = 5
	}
	if o.BaseLockout <= 0 {
		o.BaseLockout = time.Second
	}
	if o.MaxLockout <= 0 {
		o.MaxLockout = 15 * time.Minute
	}
	return o
}

// maxThrottleKeys bounds the table's memory when an attacker sprays usernames
// or addresses; past it, forgotten entries are swept and then a random one is
// dropped.
const maxThrottleKeys = 100_000

// throttle counts failed sign-ins per key in memory. It is per replica: behind
// N replicas an attacker gets up to N times the attempts, which still caps a
// password guesser at a few tries per hour per replica once locked out.
type throttle struct {
	opts ThrottleOptions
	// forgetAfter is how long a key must stay quiet before its failures are
	// forgotten; twice the longest lockout, so an attacker who waits out each
	// lockout stays locked.
	forgetAfter time.Duration

	mu      sync.Mutex
	entries map[string]throttleEntry
}

type throttleEntry struct {
	failures int
	last     time.Time
}

func newThrottle(opts ThrottleOptions) *throttle {
	return &throttle{opts: opts, forgetAfter: 2 * opts.MaxLockout, entries: make(map[string]throttleEntry)}
}

// attempt returns how long the caller must wait when any key is locked out.
// Otherwise it counts the attempt as a failure for every key before the
// password is checked, so parallel guesses cannot all slip in while the first
// ones are still being verified; settle takes the count back.
func (t *throttle) attempt(now time.Time, keys []string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	var wait time.Duration
	for _, k := range keys {
		wait = max(wait, t.waitLocked(now, k))
	}
	if wait > 0 {
		return wait
	}
	for _, k := range keys {
		t.makeRoomLocked(now, k)
		e := t.entries[k]
		t.entries[k] = throttleEntry{failures: e.failures + 1, last: now}
	}
	return 0
}

// settle takes back the failure attempt counted for keys, for a try that did
// not fail on its credentials; reset keys (the username after a successful
// sign-in) lose all their failures.
func (t *throttle) settle(keys []string, reset ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		if e, ok := t.entries[k]; ok && e.failures > 1 {
			e.failures--
			t.entries[k] = e
		} else {
			delete(t.entries, k)
		}
	}
	for _, k := range reset {
		delete(t.entries, k)
	}
}

func (t *throttle) waitLocked(now time.Time, key string) time.Duration {
	e, ok := t.entries[key]
	if !ok || e.failures < t.opts.FreeFailures {
		return 0
	}
	return max(0, e.last.Add(t.lockout(e.failures)).Sub(now))
}

// lockout is the wait after failures failed attempts.
func (t *throttle) lockout(failures int) time.Duration {
	d := t.opts.BaseLockout
	for i := t.opts.FreeFailures; i < failures && d < t.opts.MaxLockout; i++ {
		d *= 2
	}
	return min(d, t.opts.MaxLockout)
}

// makeRoomLocked keeps the table under maxThrottleKeys before key is added.
func (t *throttle) makeRoomLocked(now time.Time, key string) {
	if e, ok := t.entries[key]; ok {
		if now.Sub(e.last) >= t.forgetAfter {
			delete(t.entries, key)
		}
		return
	}
	if len(t.entries) < maxThrottleKeys {
		return
	}
	for k, e := range t.entries {
		if now.Sub(e.last) >= t.forgetAfter {
			delete(t.entries, k)
		}
	}
	for k := range t.entries {
		if len(t.entries) < maxThrottleKeys {
			break
		}
		delete(t.entries, k)
	}
}

// loginKeys are the throttle keys of a sign-in. A malformed username gets no
// key of its own (it cannot match an account, and would let an attacker grow
// the table with long names); the address still counts.
func loginKeys(username, remoteAddr string) []string {
	var keys []string
	if validName(username) {
		keys = append(keys, "user:"+username)
	}
	if ip, ok := addrKey(remoteAddr); ok {
		keys = append(keys, "ip:"+ip)
	}
	return keys
}

// addrKey is the IP of remoteAddr ("host:port" or a bare IP); IPv6 addresses
// count by their /64, since one client usually holds a whole /64.
func addrKey(remoteAddr string) (string, bool) {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return "", false
	}
	addr = addr.Unmap().WithZone("")
	if addr.Is6() {
		prefix, _ := addr.Prefix(64)
		return prefix.String(), true
	}
	return addr.String(), true
}
