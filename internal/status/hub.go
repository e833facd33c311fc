package status

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Event kinds.
const (
	KindStatus = "status" // a store's status changed
	KindEvent  = "event"  // a Kubernetes Event in the store's namespace
)

// Event is one change a subscriber receives.
type Event struct {
	// ID is "<epoch>-<seq>": seq grows by one per event; epoch changes when the
	// process restarts, so an ID from before a restart is recognised as such.
	ID     string
	Store  string
	Kind   string
	Status *Status
	Kube   *KubeEvent
	seq    uint64
}

// KubeEvent is a Kubernetes Event from a store's namespace.
type KubeEvent struct {
	Store     string    `json:"store"`
	Namespace string    `json:"namespace"`
	Object    string    `json:"object"` // Kind/name
	Type      string    `json:"type"`   // Normal | Warning
	Reason    string    `json:"reason"`
	Message   string    `json:"message"`
	Count     int32     `json:"count,omitempty"`
	Time      time.Time `json:"time"`
}

// Subscription receives events until Close, or until it falls too far behind
// (Lagged is then true and C is closed: reconnect with Last-Event-ID).
type Subscription struct {
	C      <-chan Event
	c      chan Event
	store  string // "" = every store
	h      *hub
	closed bool
	Lagged bool
}

// hub fans events out and keeps the recent ones for resumption. Callers hold the
// Tracker's lock.
type hub struct {
	epoch string
	seq   uint64
	ring  []Event
	next  int // ring write position
	full  bool
	subs  map[*Subscription]struct{}
}

func (h *hub) init(size int, now time.Time) {
	h.epoch = strconv.FormatInt(now.UnixNano(), 36)
	h.ring = make([]Event, size)
	h.subs = map[*Subscription]struct{}{}
}

func (h *hub) publish(ev Event) {
	h.seq++
	ev.seq = h.seq
	ev.ID = h.epoch + "-" + strconv.FormatUint(h.seq, 10)
	h.ring[h.next] = ev
	h.next = (h.next + 1) % len(h.ring)
	if h.next == 0 {
		h.full = true
	}
	for s := range h.subs {
		if s.store != "" && s.store != ev.Store {
			continue
		}
		select {
		case s.c <- ev:
		default:
			s.Lagged = true
			h.drop(s)
		}
	}
}

func (h *hub) drop(s *Subscription) {
	if s.closed {
		return
	}
	s.closed = true
	delete(h.subs, s)
	close(s.c)
}

func (h *hub) closeAll() {
	for s := range h.subs {
		h.drop(s)
	}
}

// since returns the buffered events after id for store ("" = all); ok is false
// when id is not from this process or older than the buffer.
func (h *hub) since(id, store string) ([]Event, bool) {
	epoch, seqStr, found := strings.Cut(id, "-")
	if !found || epoch != h.epoch {
		return nil, false
	}
	seq, err := strconv.ParseUint(seqStr, 10, 64)
	if err != nil || seq > h.seq {
		return nil, false
	}
	n := h.next
	if h.full {
		n = len(h.ring)
	}
	oldest := h.seq - uint64(n) + 1
	if seq+1 < oldest {
		return nil, false
	}
	var out []Event
	for i := 0; i < n; i++ {
		ev := h.ring[(h.next-n+i+len(h.ring))%len(h.ring)]
		if ev.seq > seq && (store == "" || ev.Store == store) {
			out = append(out, ev)
		}
	}
	return out, true
}

// Subscribe starts a subscription to one store's events (store "") for all stores.
// The first events are the current state: with a lastID this process issued and
// still buffers, the events after it; otherwise the current status of the store (or
// of every store). buffer bounds how far the subscriber may fall behind.
func (t *Tracker) Subscribe(store, lastID string, buffer int) (*Subscription, []Event, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if buffer <= 0 {
		buffer = 1024
	}
	var first []Event
	resumed := false
	if lastID != "" {
		first, resumed = t.hub.since(lastID, store)
	}
	if !resumed {
		if store != "" {
			e, ok := t.stores[store]
			if !ok {
				return nil, nil, fmt.Errorf("store %q is not tracked", store)
			}
			st := e.status
			first = []Event{{ID: t.hub.currentID(), Store: store, Kind: KindStatus, Status: &st}}
		} else {
			for _, e := range t.stores {
				st := e.status
				first = append(first, Event{ID: t.hub.currentID(), Store: e.name, Kind: KindStatus, Status: &st})
			}
		}
	}
	c := make(chan Event, buffer)
	s := &Subscription{C: c, c: c, store: store, h: &t.hub}
	t.hub.subs[s] = struct{}{}
	return s, first, nil
}

func (h *hub) currentID() string { return h.epoch + "-" + strconv.FormatUint(h.seq, 10) }

// Unsubscribe ends a subscription.
func (t *Tracker) Unsubscribe(s *Subscription) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.hub.drop(s)
}
