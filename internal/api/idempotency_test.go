package api

import "testing"

func TestCanonicalJSON(t *testing.T) {
	same := []string{
		`{"name":"a","settings":{"title":"T <&>","adminEmail":"x@y.z"},"plan":"basic"}`,
		"{ \"plan\" : \"basic\",\n\t\"settings\": {\"adminEmail\":\"x@y.z\", \"title\":\"T \\u003c&\\u003e\"}, \"name\":\"\\u0061\" }\n",
	}
	want := string(canonicalJSON([]byte(same[0])))
	for _, b := range same[1:] {
		if got := string(canonicalJSON([]byte(b))); got != want {
			t.Fatalf("%s\ncanonical %s\nwant      %s", b, got, want)
		}
	}
	for _, b := range []string{`{"name":"b","settings":{"title":"T <&>","adminEmail":"x@y.z"},"plan":"basic"}`, `{"n":1}`, `{"n":1.0}`} {
		if string(canonicalJSON([]byte(b))) == want {
			t.Fatalf("%s has the canonical form of another value", b)
		}
	}
	if string(canonicalJSON([]byte(`{"n":1}`))) == string(canonicalJSON([]byte(`{"n":1.0}`))) {
		t.Fatal("1 and 1.0 made the same")
	}
	if canonicalJSON(nil) != nil || canonicalJSON([]byte(" \n")) != nil {
		t.Fatal("an empty body is not empty")
	}
}
