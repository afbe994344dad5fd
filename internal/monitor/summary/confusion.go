package summary

import (
	"encoding/json"
	"fmt"
	"sort"
)

// ConfusionKey is one cell of a confusion matrix within a segment.
type ConfusionKey struct {
	Segment   string `json:"segment"`
	Actual    string `json:"actual"`
	Predicted string `json:"predicted"`
}

// Confusion counts (segment, actual, predicted) triples. Merge adds counts,
// so it is exact, associative and commutative.
type Confusion struct {
	Cells map[ConfusionKey]int64
}

// NewConfusion returns empty counts.
func NewConfusion() *Confusion { return &Confusion{Cells: map[ConfusionKey]int64{}} }

// Add counts one labelled prediction.
func (c *Confusion) Add(segment, actual, predicted string) {
	c.Cells[ConfusionKey{segment, actual, predicted}]++
}

// Merge adds o into c.
func (c *Confusion) Merge(o *Confusion) error {
	for k, v := range o.Cells {
		c.Cells[k] += v
	}
	return nil
}

// ClassCounts are the per-class counts of one segment (or of all).
type ClassCounts struct {
	Class     string
	Support   int64 // actual == class
	Predicted int64 // predicted == class
	Correct   int64 // actual == predicted == class
}

// SegmentCounts are the counts behind accuracy, precision and recall.
type SegmentCounts struct {
	Segment string
	Rows    int64
	Correct int64
	Classes []ClassCounts // sorted by class
}

// Segments returns the counts of each segment, sorted by segment name, and
// of all segments together (Segment ""). Cost: O(cells).
func (c *Confusion) Segments() (all SegmentCounts, segs []SegmentCounts) {
	bySeg := map[string]map[string]*ClassCounts{}
	tot := map[string]*ClassCounts{}
	rows := map[string][2]int64{}
	get := func(m map[string]*ClassCounts, k string) *ClassCounts {
		if m[k] == nil {
			m[k] = &ClassCounts{Class: k}
		}
		return m[k]
	}
	for k, n := range c.Cells {
		if bySeg[k.Segment] == nil {
			bySeg[k.Segment] = map[string]*ClassCounts{}
		}
		for _, m := range []map[string]*ClassCounts{bySeg[k.Segment], tot} {
			get(m, k.Actual).Support += n
			get(m, k.Predicted).Predicted += n
			if k.Actual == k.Predicted {
				get(m, k.Actual).Correct += n
			}
		}
		r := rows[k.Segment]
		r[0] += n
		if k.Actual == k.Predicted {
			r[1] += n
		}
		rows[k.Segment] = r
	}
	flatten := func(name string, m map[string]*ClassCounts) SegmentCounts {
		s := SegmentCounts{Segment: name}
		for _, cc := range m {
			s.Classes = append(s.Classes, *cc)
			s.Rows += cc.Support
			s.Correct += cc.Correct
		}
		sort.Slice(s.Classes, func(i, j int) bool { return s.Classes[i].Class < s.Classes[j].Class })
		return s
	}
	all = flatten("", tot)
	names := make([]string, 0, len(bySeg))
	for k := range bySeg {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, n := range names {
		segs = append(segs, flatten(n, bySeg[n]))
	}
	return all, segs
}

// confusionCell is the JSON form of one cell.
type confusionCell struct {
	ConfusionKey
	Count int64 `json:"count"`
}

// MarshalJSON writes the cells as a list sorted by segment, actual and
// predicted label.
func (c *Confusion) MarshalJSON() ([]byte, error) {
	cells := make([]confusionCell, 0, len(c.Cells))
	for k, n := range c.Cells {
		cells = append(cells, confusionCell{k, n})
	}
	sort.Slice(cells, func(i, j int) bool {
		a, b := cells[i].ConfusionKey, cells[j].ConfusionKey
		if a.Segment != b.Segment {
			return a.Segment < b.Segment
		}
		if a.Actual != b.Actual {
			return a.Actual < b.Actual
		}
		return a.Predicted < b.Predicted
	})
	return json.Marshal(struct {
		Cells []confusionCell `json:"cells"`
	}{cells})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (c *Confusion) UnmarshalJSON(b []byte) error {
	var v struct {
		Cells []confusionCell `json:"cells"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	c.Cells = map[ConfusionKey]int64{}
	for _, cell := range v.Cells {
		if cell.Count < 0 {
			return fmt.Errorf("negative count in confusion cell: %w", ErrIncompatible)
		}
		c.Cells[cell.ConfusionKey] += cell.Count
	}
	return nil
}
