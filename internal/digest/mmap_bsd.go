//go:build darwin || freebsd || netbsd || openbsd

package digest

const mapPopulate = 0
