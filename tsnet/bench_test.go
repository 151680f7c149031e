package tsnet_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/clawguard/clawguard/tsnet"
	"github.com/clawguard/clawguard/tsnet/tsnettest"
)

// BenchmarkIdentify measures what the gate pays to learn who a tailnet peer
// is: "whois" is one WhoIs through the node's LocalAPI (paid on a
// connection's first request and then at most every whoisTTL), "cached" is
// Identify on a connection that already asked (every other request).
//
//	go test ./tsnet -run '^$' -bench Identify
func BenchmarkIdentify(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tn := tsnettest.Start(b, nil)
	s, err := tsnet.NodeConfig{ControlURL: tn.ControlURL, Ephemeral: true}.Resolve("bench", b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	ln, err := tsnet.Listen("bench", s, 9000, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	ip := tsnettest.WaitNode(b, ctx, "bench")
	client := tn.Client(b, ctx, "client")
	out, err := client.Srv.Dial(ctx, "tcp", fmt.Sprintf("%s:9000", ip))
	if err != nil {
		b.Fatal(err)
	}
	defer out.Close()
	in, err := ln.Accept()
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	lc, err := tsnet.Server("bench").LocalClient()
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequestWithContext(context.WithValue(ctx, http.LocalAddrContextKey, in.LocalAddr()), "GET", "/", nil)

	b.Run("whois", func(b *testing.B) {
		for b.Loop() {
			if _, err := lc.WhoIs(ctx, in.RemoteAddr().String()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		for b.Loop() {
			if p, ok, err := tsnet.Identify(req); err != nil || !ok || p.LoginName != client.Login {
				b.Fatalf("Identify = %+v, %v, %v", p, ok, err)
			}
		}
	})
}
