// Command go-x509-verify is test support for pki/go-x509.test.ts: Go's crypto/x509 (what
// Linkerd's and most Go TLS stacks use) parses and verifies certificates pki issued. It reads
// one JSON request on stdin and writes one JSON answer: for every chain, "ok" and the leaf's names,
// or the error Go gave.
package main

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"time"
)

type chainCase struct {
	Name     string `json:"name"`
	ChainPem string `json:"chainPem"` // leaf first, then intermediates
	DNSName  string `json:"dnsName,omitempty"`
}

type request struct {
	AnchorsPem string      `json:"anchorsPem"`
	At         int64       `json:"at"` // Unix seconds
	Chains     []chainCase `json:"chains"`
}

type result struct {
	Name   string   `json:"name"`
	Error  string   `json:"error,omitempty"`
	URIs   []string `json:"uris"`
	DNS    []string `json:"dns"`
	Chains int      `json:"chains"`
}

func parseAll(text string) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := []byte(text)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return out, nil
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, cert)
	}
}

func check(req request, c chainCase) result {
	r := result{Name: c.Name, URIs: []string{}, DNS: []string{}}
	roots := x509.NewCertPool()
	anchors, err := parseAll(req.AnchorsPem)
	if err != nil {
		r.Error = "anchors: " + err.Error()
		return r
	}
	for _, a := range anchors {
		roots.AddCert(a)
	}
	certs, err := parseAll(c.ChainPem)
	if err != nil || len(certs) == 0 {
		r.Error = fmt.Sprintf("chain: %v", err)
		return r
	}
	intermediates := x509.NewCertPool()
	for _, cert := range certs[1:] {
		intermediates.AddCert(cert)
	}
	// Both usages the mesh relies on, each verified on its own (Go accepts a chain allowing any listed).
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		chains, err := certs[0].Verify(x509.VerifyOptions{
			Roots:         roots,
			Intermediates: intermediates,
			CurrentTime:   time.Unix(req.At, 0),
			DNSName:       c.DNSName,
			KeyUsages:     []x509.ExtKeyUsage{usage},
		})
		if err != nil {
			r.Error = err.Error()
			return r
		}
		r.Chains = len(chains)
	}
	for _, u := range certs[0].URIs {
		r.URIs = append(r.URIs, u.String())
	}
	r.DNS = append(r.DNS, certs[0].DNSNames...)
	return r
}

func main() {
	var req request
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	out := []result{}
	for _, c := range req.Chains {
		out = append(out, check(req, c))
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
}
