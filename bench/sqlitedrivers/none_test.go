//go:build !ncruces && !mattn

package sqlitedrivers

var other []driver
