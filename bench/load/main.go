package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/clawguard/clawguard/internal/stack"
	"github.com/clawguard/clawguard/pairclient"
)

func main() {
	duration := flag.Duration("duration", 30*time.Second, "how long to drive load")
	conns := flag.Int("conns", 100, "concurrent connections (half token HTTP, half device WebSockets)")
	flag.Parse()
	if err := run(*duration, *conns); err != nil {
		fmt.Fprintln(os.Stderr, "bench/load:", err)
		os.Exit(1)
	}
}

type counters struct {
	httpOK, httpErr, wsMsgs, wsErr atomic.Int64
	firstErr                       atomic.Value
}

func (c *counters) fail(n *atomic.Int64, err error) {
	n.Add(1)
	c.firstErr.CompareAndSwap(nil, err.Error())
}

func run(duration time.Duration, conns int) error {
	dir, err := os.MkdirTemp("", "bench-load-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Println("building clawguard …")
	bin, err := stack.Build(dir)
	if err != nil {
		return err
	}
	s, err := stack.Start(stack.Options{Binary: bin, StateDir: dir + "/state",
		Env: []string{"CLAWGUARD_VAULT_PASSPHRASE=bench-load"}})
	if err != nil {
		return err
	}
	defer s.Stop(30 * time.Second)
	token, err := s.Ready(90 * time.Second)
	if err != nil {
		return err
	}
	kids, err := s.Children()
	if err != nil || kids["caddy"] == 0 || kids["sidecar"] == 0 {
		return fmt.Errorf("finding caddy and sidecar: %v %v", kids, err)
	}

	nHTTP, nWS := conns/2, conns-conns/2
	devices, err := pairDevices(s.Base, (nWS+9)/10)
	if err != nil {
		return err
	}
	fmt.Printf("stack up at %s; %d token connections, %d device WebSockets (%d devices), %s\n",
		s.Base, nHTTP, nWS, len(devices), duration)

	// Warm up, then take the baseline memory.
	if _, err := drive(s.Base, token, devices, nHTTP, nWS, 3*time.Second); err != nil {
		return err
	}
	before := rss(kids)
	c, err := drive(s.Base, token, devices, nHTTP, nWS, duration)
	if err != nil {
		return err
	}
	after := rss(kids)

	secs := duration.Seconds()
	fmt.Printf("\n%-34s %12s %10s\n", "traffic", "total", "per s")
	fmt.Printf("%-34s %12d %10.0f\n", "HTTP requests (token), ok", c.httpOK.Load(), float64(c.httpOK.Load())/secs)
	fmt.Printf("%-34s %12d\n", "HTTP errors", c.httpErr.Load())
	fmt.Printf("%-34s %12d %10.0f\n", "WebSocket echoes (device token)", c.wsMsgs.Load(), float64(c.wsMsgs.Load())/secs)
	fmt.Printf("%-34s %12d\n", "WebSocket errors", c.wsErr.Load())
	if e := c.firstErr.Load(); e != nil {
		fmt.Printf("first error: %s\n", e)
	}
	fmt.Printf("\n%-10s %14s %14s %8s\n", "process", "RSS before", "RSS after", "change")
	for _, role := range []string{"caddy", "sidecar"} {
		fmt.Printf("%-10s %11.1f MiB %11.1f MiB %+7.1f%%\n", role, mib(before[role]), mib(after[role]),
			100*(float64(after[role])-float64(before[role]))/float64(before[role]))
	}
	if c.httpErr.Load()+c.wsErr.Load() > 0 {
		return fmt.Errorf("%d errors", c.httpErr.Load()+c.wsErr.Load())
	}
	return nil
}

func pairDevices(base string, n int) ([]string, error) {
	var tokens []string
	for i := 0; i < n; i++ {
		key, err := pairclient.GenerateKey()
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		res, err := pairclient.Pair(ctx, pairclient.Options{Gateway: base, Name: fmt.Sprintf("load-%d", i), Key: key})
		cancel()
		if err != nil {
			return nil, fmt.Errorf("pairing device %d: %w", i, err)
		}
		tokens = append(tokens, res.Token)
	}
	return tokens, nil
}

func drive(base, token string, devices []string, nHTTP, nWS int, d time.Duration) (*counters, error) {
	c := &counters{}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	for i := 0; i < nHTTP; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{MaxConnsPerHost: 1}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			for n := 0; ctx.Err() == nil; n++ {
				path := "/"
				if n%10 == 9 {
					path = "/sidecar/healthz"
				}
				req, _ := http.NewRequestWithContext(ctx, "GET", base+path, nil)
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("X-Forwarded-For", "192.0.2.1") // judged as a remote client
				resp, err := client.Do(req)
				if ctx.Err() != nil {
					return
				}
				if err != nil {
					c.fail(&c.httpErr, err)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					c.fail(&c.httpErr, fmt.Errorf("GET %s: status %d", path, resp.StatusCode))
					continue
				}
				c.httpOK.Add(1)
			}
		}()
	}
	wsURL := strings.Replace(base, "http", "ws", 1) + "/ws"
	for i := 0; i < nWS; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, _, err := pairclient.Dial(ctx, wsURL, devices[i%len(devices)], nil, nil)
			if err != nil {
				if ctx.Err() == nil {
					c.fail(&c.wsErr, err)
				}
				return
			}
			defer conn.CloseNow()
			msg := []byte("clawguard load test message")
			for ctx.Err() == nil {
				if err := conn.Write(ctx, websocket.MessageText, msg); err != nil {
					if ctx.Err() == nil {
						c.fail(&c.wsErr, err)
					}
					return
				}
				_, got, err := conn.Read(ctx)
				if err != nil {
					if ctx.Err() == nil {
						c.fail(&c.wsErr, err)
					}
					return
				}
				if string(got) != string(msg) {
					c.fail(&c.wsErr, fmt.Errorf("echo mismatch"))
					return
				}
				c.wsMsgs.Add(1)
			}
			conn.Close(websocket.StatusNormalClosure, "")
		}()
	}
	wg.Wait()
	return c, nil
}

func rss(kids map[string]int) map[string]int64 {
	out := map[string]int64{}
	for role, pid := range kids {
		out[role], _ = stack.RSS(pid)
	}
	return out
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
