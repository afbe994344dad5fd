// Package monitor computes the offline statistics of production monitoring:
// data drift between a reference and a current sample, calibration of
// predicted probabilities, performance and its concentration in classes or
// segments, and fairness across groups.
//
// Every statistic is defined as the tool users already trust defines it
// (Evidently for drift, scipy for the Kolmogorov-Smirnov and chi-square
// tests, scikit-learn for calibration curves and classification metrics,
// fairlearn for fairness) and is checked against numbers those libraries
// produce; see docs/monitoring.md for each definition.
//
// # Reading files
//
// [ReadTable] reads CSV or JSON Lines through the small [RowSource]
// interface, keeping each column as numbers and as dictionary-encoded text.
// The pure numerical code lives in package stats, the mergeable summaries
// used by streaming monitors in package summary.
package monitor
