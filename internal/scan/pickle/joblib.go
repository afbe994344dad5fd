package pickle

import (
	"strconv"
)

// isJoblibWrapper reports whether module.name is joblib's inline array
// header (joblib/numpy_pickle.py; sklearn.externals.joblib vendored it).
func isJoblibWrapper(module, name string) bool {
	return name == "NumpyArrayWrapper" &&
		(module == "joblib.numpy_pickle" || module == "sklearn.externals.joblib.numpy_pickle")
}

// wrapperInstance reports whether obj is a NumpyArrayWrapper instance made
// by calling the class, or by copyreg._reconstructor(cls, base, state) (the
// allowed protocol 0-1 way to make an instance): joblib's load_build checks
// the instance's type, however it was made.
func wrapperInstance(obj *value) bool {
	fn := obj.fn
	if fn == nil || fn.kind != vGlobal {
		return false
	}
	if isJoblibWrapper(fn.s, fn.name) {
		return true
	}
	if (fn.s == "copyreg" || fn.s == "copy_reg") && fn.name == "_reconstructor" &&
		obj.args != nil && obj.args.kind == vTuple && len(obj.args.items) >= 1 {
		c := obj.args.items[0]
		return c.kind == vGlobal && isJoblibWrapper(c.s, c.name)
	}
	return false
}

// joblibArray skips the array that joblib.load reads from the stream right
// after BUILD of a NumpyArrayWrapper (NumpyArrayWrapper.read_array):
//
//	object dtype:  a nested pickle (pickle.load on the same file)
//	other dtypes:  [1 byte padding length n, n padding bytes] if the wrapper
//	               has numpy_array_alignment_bytes set, then
//	               prod(shape) * itemsize raw bytes
func (a *Analyzer) joblibArray(start int64, state *value) error {
	bad := func(format string, args ...any) error {
		return a.fail(start, opBUILD, ErrInvalid, "joblib array: "+format, args...)
	}
	shape, ok := state.get("shape")
	if !ok || shape.kind != vTuple || shape.items == nil {
		return bad("no shape")
	}
	count := uint64(1)
	for _, d := range shape.items {
		if d.kind != vInt || d.i < 0 {
			return bad("bad shape")
		}
		if d.i != 0 && count > (1<<62)/uint64(d.i) {
			return a.fail(start, opBUILD, ErrLimit, "joblib array too large")
		}
		count *= uint64(d.i)
	}
	dt, ok := state.get("dtype")
	if !ok {
		return bad("no dtype")
	}
	itemsize, object, err := dtypeSize(dt, 0)
	if err != "" {
		return bad("%s", err)
	}
	if object {
		if a.nested >= a.opts.Limits.MaxNested {
			return a.fail(start, opBUILD, ErrLimit, "nested pickles deeper than %d", a.opts.Limits.MaxNested)
		}
		a.nested++
		saved := a.opts.Joblib
		a.opts.Joblib = false
		_, err := a.run()
		a.opts.Joblib = saved
		a.nested--
		return err
	}
	if al, ok := state.get("numpy_array_alignment_bytes"); ok && al.kind == vInt {
		b, err := a.readFull(1)
		if err != nil {
			return a.fail(start, opBUILD, ErrTruncated, "joblib array padding cut short")
		}
		if err := a.discard(uint64(b[0])); err != nil {
			return a.fail(start, opBUILD, ErrTruncated, "joblib array padding cut short")
		}
	}
	if itemsize != 0 && count > (1<<62)/itemsize {
		return a.fail(start, opBUILD, ErrLimit, "joblib array too large")
	}
	if err := a.discard(count * itemsize); err != nil {
		return a.fail(start, opBUILD, ErrTruncated, "joblib array data cut short")
	}
	return nil
}

// dtypeSize returns the item size of a pickled numpy.dtype: REDUCE of
// numpy.dtype with args (typestr, align, copy) and BUILD state
// (version, byteorder, subarray, names, fields, elsize, alignment, flags).
func dtypeSize(dt *value, depth int) (size uint64, object bool, problem string) {
	if depth > 4 {
		return 0, false, "dtype nested too deep"
	}
	if dt.kind != vObj || dt.fn.kind != vGlobal || dt.fn.name != "dtype" ||
		dt.args == nil || dt.args.kind != vTuple || len(dt.args.items) < 1 {
		return 0, false, "dtype is not numpy.dtype(...)"
	}
	ts := dt.args.items[0]
	if ts.kind != vStr || !ts.known || len(ts.s) < 1 {
		return 0, false, "dtype type string unknown"
	}
	kind := ts.s[0]
	if kind == 'O' {
		return 0, true, ""
	}
	// BUILD state (version, byteorder, subarray, names, fields, elsize,
	// alignment, flags): elsize is set (> 0) for flexible, structured and
	// subarray dtypes; flags bit 0 is NPY_ITEM_HASOBJECT (an object field).
	haveState := false
	if st := dt.state; st != nil && st.kind == vTuple && len(st.items) >= 8 {
		haveState = true
		if f := st.items[7]; f.kind == vInt && f.i&1 != 0 {
			return 0, true, ""
		}
		// Do not trust the flags alone: numpy may derive hasobject from
		// the fields and subarray base, so look at those too.
		if sub := st.items[2]; sub.kind != vNone {
			if sub.kind != vTuple || len(sub.items) < 1 {
				return 0, false, "subarray dtype not understood"
			}
			if _, obj, p := dtypeSize(sub.items[0], depth+1); p != "" || obj {
				return 0, obj, p
			}
		}
		if st.items[3].kind != vNone {
			fields := st.items[4]
			if fields.kind != vDict || len(fields.keys) == 0 || len(fields.keys) >= 64 {
				return 0, false, "structured dtype fields not understood"
			}
			for _, f := range fields.items {
				if f.kind != vTuple || len(f.items) < 2 {
					return 0, false, "structured dtype field not understood"
				}
				if _, obj, p := dtypeSize(f.items[0], depth+1); p != "" || obj {
					return 0, obj, p
				}
			}
		}
		if e := st.items[5]; e.kind == vInt && e.i > 0 {
			return uint64(e.i), false, ""
		}
	}
	n, perr := strconv.ParseUint(ts.s[1:], 10, 32)
	if perr != nil {
		return 0, false, "dtype size unknown"
	}
	switch kind {
	case 'V':
		if !haveState {
			return 0, false, "void dtype without state"
		}
		return n, false, ""
	case 'U':
		return 4 * n, false, ""
	case 'b', 'i', 'u', 'f', 'c', 'S', 'a', 'M', 'm':
		return n, false, ""
	}
	return 0, false, "dtype kind unknown"
}
