// Package scalebench fits the scale benchmarks' measurements (a figure at 2,500,
// 5,000 and 10,000 stores) to a line and extrapolates it to 50,000 and 100,000
// stores, so that every benchmark behind docs/scale.md states its fit, R² and
// residuals the same way. It is used only by benchmarks; the product never imports it.
package scalebench
