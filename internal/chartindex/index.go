package chartindex

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/storefleet/storefleet/internal/store"
)

// DefaultTTL is how long Index uses an index it read before reading it again: a
// create does not wait for the chart repository each time, and a chart published a
// minute ago is offered.
const DefaultTTL = time.Minute

// maxIndexBytes bounds the index read; a chart repository's index.yaml grows with
// every version of every chart, but not to this.
const maxIndexBytes = 32 << 20

// Index offers the versions a Helm chart repository's index.yaml lists. Use NewIndex.
type Index struct {
	url    string
	client *http.Client
	ttl    time.Duration
	now    func() time.Time

	// mu is held while the index is read, so concurrent requests wait for one read
	// instead of each making their own.
	mu      sync.Mutex
	entries map[string][]string // chart → versions, sorted; nil until read once
	readAt  time.Time
}

var _ store.Charts = (*Index)(nil)

// NewIndex reads the index at url: an http:// or https:// URL of an index.yaml (a
// chart repository's URL + "/index.yaml"), or the path of one on disk.
func NewIndex(url string) *Index {
	return &Index{url: url, client: &http.Client{Timeout: 10 * time.Second}, ttl: DefaultTTL, now: time.Now}
}

// indexFile is the part of a Helm repository index read here.
type indexFile struct {
	Entries map[string][]struct {
		Version string `json:"version"`
	} `json:"entries"`
}

// Versions lists the engine's chart versions in the index, sorted. When the index
// cannot be read, the last one read is used, however old: the repository being
// down for a moment should not stop the API. Only before any read succeeded is the
// error returned.
func (x *Index) Versions(ctx context.Context, e store.Engine) ([]string, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.entries == nil || x.now().Sub(x.readAt) >= x.ttl {
		entries, err := x.read(ctx)
		switch {
		case err == nil:
			x.entries, x.readAt = entries, x.now()
		case x.entries == nil:
			return nil, err
		}
	}
	return slices.Clone(x.entries[string(e)]), nil
}

func (x *Index) read(ctx context.Context) (map[string][]string, error) {
	var (
		b   []byte
		err error
	)
	if strings.HasPrefix(x.url, "http://") || strings.HasPrefix(x.url, "https://") {
		b, err = x.fetch(ctx)
	} else {
		b, err = os.ReadFile(x.url)
	}
	if err != nil {
		return nil, fmt.Errorf("chart index %s: %w", x.url, err)
	}
	var idx indexFile
	if err := yaml.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("chart index %s: %w", x.url, err)
	}
	if idx.Entries == nil {
		// Not an index at all (an HTML page, another file): better refuse to guess
		// than to offer no version of anything.
		return nil, fmt.Errorf("chart index %s: no entries", x.url)
	}
	out := make(map[string][]string, len(idx.Entries))
	for name, versions := range idx.Entries {
		var vs []string
		for _, v := range versions {
			if v.Version != "" {
				vs = append(vs, v.Version)
			}
		}
		out[name] = sorted(vs)
	}
	return out, nil
}

func (x *Index) fetch(ctx context.Context) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, x.url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := x.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxIndexBytes+1))
	if err == nil && len(b) > maxIndexBytes {
		err = errors.New("larger than 32 MiB")
	}
	return b, err
}

// sorted sorts and deduplicates versions.
func sorted(vs []string) []string {
	slices.Sort(vs)
	return slices.Compact(vs)
}
