package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"time"

	"tailscale.com/derp/derpserver"
	"tailscale.com/net/stun"
	"tailscale.com/tailcfg"
	"tailscale.com/types/key"
	"tailscale.com/types/logger"
)

// relay is a DERP server over TLS and a STUN server on one address: what
// tstest/integration.RunDERPAndSTUN sets up for a test, without testing.TB.
type relay struct {
	addr               netip.Addr
	derpAddr, stunAddr netip.AddrPort
	derp               *derpserver.Server
	https              *http.Server
	stun               *net.UDPConn
	stunDone           chan struct{}
}

func startRelay(addr netip.Addr, derpPort, stunPort int, logf logger.Logf, failed chan<- error) (*relay, error) {
	cert, err := selfSigned(addr)
	if err != nil {
		return nil, fmt.Errorf("DERP certificate: %w", err)
	}
	ln, err := net.Listen("tcp4", netip.AddrPortFrom(addr, uint16(derpPort)).String())
	if err != nil {
		return nil, fmt.Errorf("DERP relay: %w", err)
	}
	pc, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, uint16(stunPort))))
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("STUN server: %w", err)
	}
	r := &relay{
		addr:     addr,
		derpAddr: ln.Addr().(*net.TCPAddr).AddrPort(),
		stunAddr: pc.LocalAddr().(*net.UDPAddr).AddrPort(),
		derp:     derpserver.New(key.NewNode(), logf),
		stun:     pc,
		stunDone: make(chan struct{}),
	}
	r.https = &http.Server{
		Handler:           derpserver.Handler(r.derp),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          logger.StdLogger(logf),
		// DERP upgrades HTTP/1.1 connections; no HTTP/2.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
		TLSConfig:    &tls.Config{Certificates: []tls.Certificate{cert}},
	}
	go func() {
		if err := r.https.ServeTLS(ln, "", ""); !errors.Is(err, http.ErrServerClosed) {
			failed <- fmt.Errorf("DERP relay: %w", err)
		}
	}()
	go r.serveSTUN()
	return r, nil
}

// derpMap is the one-region map that names the relay's address, so that a
// node anywhere on its network dials it directly.
func (r *relay) derpMap() *tailcfg.DERPMap {
	ip := r.addr.String()
	return &tailcfg.DERPMap{Regions: map[int]*tailcfg.DERPRegion{
		1: {RegionID: 1, RegionCode: "lab", RegionName: "tailnet-lab", Nodes: []*tailcfg.DERPNode{{
			Name:     "lab1",
			RegionID: 1,
			HostName: ip,
			IPv4:     ip,
			IPv6:     "none",
			DERPPort: int(r.derpAddr.Port()),
			STUNPort: int(r.stunAddr.Port()),
			// The certificate is self-signed: clients skip its check.
			InsecureForTests: true,
			STUNTestIP:       ip,
		}}},
	}}
}

// serveSTUN answers binding requests with the sender's address, as
// net/stun/stuntest does, until the socket closes.
func (r *relay) serveSTUN() {
	defer close(r.stunDone)
	buf := make([]byte, 64<<10)
	for {
		n, src, err := r.stun.ReadFromUDPAddrPort(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		} else if err != nil {
			continue
		}
		if !stun.Is(buf[:n]) {
			continue
		}
		txid, err := stun.ParseBindingRequest(buf[:n])
		if err != nil {
			continue
		}
		src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
		r.stun.WriteToUDPAddrPort(stun.Response(txid, src), src)
	}
}

func (r *relay) close() {
	r.https.Close()
	r.derp.Close()
	r.stun.Close()
	<-r.stunDone
}

// selfSigned makes a short-lived certificate for the relay's address.
func selfSigned(addr netip.Addr) (tls.Certificate, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "tailnet-lab DERP"},
		IPAddresses:  []net.IP{addr.AsSlice()},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}, nil
}
