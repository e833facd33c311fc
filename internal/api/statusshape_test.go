package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/api"
	"github.com/storefleet/storefleet/internal/status"
	"github.com/storefleet/storefleet/internal/store"
)

// GET of a store and its event stream send the store's status in one shape: the
// same keys, the same values for the same moment, and both valid against the
// OpenAPI Status schema.
func TestStatusHasOneShape(t *testing.T) {
	sp := loadSpec(t)
	tr := status.New(status.Options{})
	defer tr.Close()
	tr.SetConnected(true)
	tr.Published("x", "main@sha1:c1")
	tr.Load("shop", status.Desired{State: store.StateActive, Commit: "c1", Version: "0.1.0", Shard: "x"})
	tr.SetShardSource("x", "main@sha1:c1", nil)
	svc := oneStore{v: store.View{
		Store:  store.Store{Name: "shop", Engine: store.WooCommerce, Plan: "basic", Cluster: "local"}.WithDefaults(""),
		State:  store.StateActive,
		Commit: &store.Commit{SHA: "c1", Time: time.Unix(1e9, 0).UTC()},
	}}
	srv := httptest.NewServer(api.Handler(svc, api.Options{Status: tr}))
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/api/v1/stores/shop")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var got struct {
		Status json.RawMessage `json:"status"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}

	resp, err = http.Get(srv.URL + "/api/v1/stores/shop/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var streamed json.RawMessage
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() && streamed == nil {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			streamed = json.RawMessage(d)
		}
	}
	if streamed == nil {
		t.Fatal("the stream sent no status")
	}
	statusSchema := sp.schema(t, "#/components/schemas/Status")
	for what, raw := range map[string]json.RawMessage{"GET": got.Status, "stream": streamed} {
		v, err := jsonAny(raw)
		if err != nil {
			t.Fatal(err)
		}
		if err := statusSchema.Validate(v); err != nil {
			t.Errorf("%s status does not match the Status schema: %v\n%s", what, err, raw)
		}
	}
	a, b := keysOf(t, got.Status), keysOf(t, streamed)
	if !reflect.DeepEqual(a, b) {
		t.Errorf("GET status keys %v, stream %v", a, b)
	}
	if !bytes.Equal(got.Status, streamed) {
		t.Errorf("GET status\n%s\nstream\n%s", got.Status, streamed)
	}
}

func keysOf(t *testing.T, raw json.RawMessage) []string {
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func jsonAny(raw []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	return v, d.Decode(&v)
}

// oneStore is a store.Service that knows one store; the rest is not used here.
type oneStore struct {
	store.Service
	v store.View
}

func (o oneStore) Get(_ context.Context, name string) (store.View, error) {
	if name != o.v.Store.Name {
		return store.View{}, store.Errorf(store.ENOTFOUND, "no store %q", name)
	}
	return o.v, nil
}
