package scalebench

import (
	"fmt"
	"math"
	"strings"
)

// Fit is a least-squares line y = Intercept + Slope·x through measured points.
type Fit struct {
	Slope, Intercept float64
	// R2 is the coefficient of determination; 1 when every point is on the line.
	R2 float64
	// Residuals are measured minus fitted, in the order of the points.
	Residuals []float64
	X, Y      []float64
}

// Linear fits y = a + b·x. Two points fit exactly (R² 1, no information about
// linearity), so callers measure at least three sizes.
func Linear(x, y []float64) (Fit, error) {
	if len(x) != len(y) || len(x) < 2 {
		return Fit{}, fmt.Errorf("scalebench: need ≥ 2 paired points, have %d and %d", len(x), len(y))
	}
	n := float64(len(x))
	var sx, sy float64
	for i := range x {
		sx += x[i]
		sy += y[i]
	}
	mx, my := sx/n, sy/n
	var sxx, sxy, syy float64
	for i := range x {
		dx, dy := x[i]-mx, y[i]-my
		sxx += dx * dx
		sxy += dx * dy
		syy += dy * dy
	}
	if sxx == 0 {
		return Fit{}, fmt.Errorf("scalebench: all x equal (%v)", x[0])
	}
	f := Fit{Slope: sxy / sxx, X: append([]float64(nil), x...), Y: append([]float64(nil), y...)}
	f.Intercept = my - f.Slope*mx
	var sse float64
	for i := range x {
		r := y[i] - f.At(x[i])
		f.Residuals = append(f.Residuals, r)
		sse += r * r
	}
	// A flat series (syy 0) that the line meets exactly is a perfect fit, not NaN.
	f.R2 = 1
	if syy > 0 {
		f.R2 = 1 - sse/syy
	}
	return f, nil
}

// At is the fitted value at x.
func (f Fit) At(x float64) float64 { return f.Intercept + f.Slope*x }

// Within is the largest x at which the fitted value stays at or under limit, or +Inf
// when the line never reaches it (slope ≤ 0 and intercept under it).
func (f Fit) Within(limit float64) float64 {
	if f.Slope <= 0 {
		if f.Intercept <= limit {
			return math.Inf(1)
		}
		return 0
	}
	return math.Max(0, (limit-f.Intercept)/f.Slope)
}

// String states the fit in one line, with the residuals as a share of the measured
// value and the extrapolations the scale document uses.
func (f Fit) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "y = %.6g + %.6g·x, R² %.4f, residuals", f.Intercept, f.Slope, f.R2)
	for i, r := range f.Residuals {
		share := 0.0
		if f.Y[i] != 0 {
			share = 100 * r / f.Y[i]
		}
		fmt.Fprintf(&b, " %.0f: %+.4g (%+.1f%%)", f.X[i], r, share)
	}
	fmt.Fprintf(&b, "; at 50000: %.4g, at 100000: %.4g", f.At(50000), f.At(100000))
	return b.String()
}
