// Package contract checks tabular data (CSV, JSON Lines, Parquet) against
// data contracts: Great Expectations-style expectations evaluated in one
// streaming pass, with observed values and example failing rows by line.
//
// # Reading
//
// A [Source] yields records of [Cell]s: [NewCSV], [NewJSONL] and
// [NewParquet]. Malformed records (ragged rows, invalid UTF-8, over-long
// lines, invalid JSON) come back as *[RowError] and do not stop the stream.
//
// # Checking
//
// [ParseContract] (custody's YAML) and [ParseSuite] (GE expectation-suite
// JSON) both produce [Expectation]s named and parameterised as in Great
// Expectations; [Check] evaluates them over a Source and returns a [Report]
// whose [Result]s carry a [Status]: pass, fail, unsupported or error.
// Memory is bounded by [Limits], not by the number of rows.
// [BuildProfile] computes the reference distributions that the PSI
// expectation compares against.
//
// The file formats, the semantics of each expectation and the JSON evidence
// are described in docs/data.md.
package contract
