package scalebench

import (
	"math"
	"strings"
	"testing"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9*math.Max(1, math.Abs(b)) }

func TestLinearExact(t *testing.T) {
	f, err := Linear([]float64{2500, 5000, 10000}, []float64{35, 60, 110})
	if err != nil {
		t.Fatal(err)
	}
	if !near(f.Slope, 0.01) || !near(f.Intercept, 10) || !near(f.R2, 1) {
		t.Fatalf("fit %+v, want slope 0.01 intercept 10 R² 1", f)
	}
	if !near(f.At(100000), 1010) {
		t.Fatalf("At(100000) = %v, want 1010", f.At(100000))
	}
	if !near(f.Within(510), 50000) {
		t.Fatalf("Within(510) = %v, want 50000", f.Within(510))
	}
}

// Residuals and R² of a series off the line, worked by hand: x 0,1,2 y 0,2,1 →
// slope 0.5, intercept 0.5, fitted 0.5,1,1.5, residuals -0.5,1,-0.5, SSE 1.5, SST 2.
func TestLinearResiduals(t *testing.T) {
	f, err := Linear([]float64{0, 1, 2}, []float64{0, 2, 1})
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{-0.5, 1, -0.5}
	for i, r := range f.Residuals {
		if !near(r, want[i]) {
			t.Fatalf("residual %d = %v, want %v", i, r, want[i])
		}
	}
	if !near(f.R2, 0.25) {
		t.Fatalf("R² = %v, want 0.25", f.R2)
	}
	if s := f.String(); !strings.Contains(s, "R² 0.2500") || !strings.Contains(s, "1: +1 (+50.0%)") {
		t.Fatalf("String() = %q", s)
	}
}

func TestLinearRefusesTooFewPoints(t *testing.T) {
	if _, err := Linear([]float64{1}, []float64{1}); err == nil {
		t.Fatal("one point fitted")
	}
	if _, err := Linear([]float64{3, 3}, []float64{1, 2}); err == nil {
		t.Fatal("equal x fitted")
	}
}

func TestWithinFlatOrFalling(t *testing.T) {
	f, _ := Linear([]float64{1, 2}, []float64{5, 5})
	if !math.IsInf(f.Within(10), 1) || f.Within(1) != 0 {
		t.Fatalf("flat 5: Within(10) %v Within(1) %v", f.Within(10), f.Within(1))
	}
}
