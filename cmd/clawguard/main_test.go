package main

import (
	"strings"
	"testing"
)

func TestExitCodes(t *testing.T) {
	cases := []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"--help"}, 0, ""},
		{nil, 2, ""},
		{[]string{"frobnicate"}, 2, "unknown command"},
		{[]string{"vault", "list", "--bogus"}, 2, "flag provided but not defined"},
		{[]string{"vault", "list", "--help"}, 0, ""},
		{[]string{"vault"}, 2, "missing subcommand"},
		{[]string{"up", "--listen", "0.0.0.0:1"}, 2, "loopback only"},
	}
	for _, c := range cases {
		r := runCLI(strings.NewReader(""), nil, c.args...)
		wantCode(t, r, c.code, c.err)
	}
}
