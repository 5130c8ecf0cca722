// Command go-x509 is the Go peer of bench/pki-issue.bench.ts: the crypto/x509 path Linkerd's
// identity service takes. It prints one JSON line per measurement, so the TypeScript benchmark can
// run it in the same session (GOMAXPROCS=1) and print ratios.
//
// Work per certificate, matching the other peers: parse a P-256 CSR and check its signature, then
// issue a 24 h leaf (URI SAN, digitalSignature, serverAuth+clientAuth, SKI/AKI, random 128-bit
// serial) signed by an ECDSA P-256 issuer. With -mode keygen the CSR is replaced by key generation.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"syscall"
	"time"
)

type issuer struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func must[T any](v T, err error) T {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	return v
}

func newIssuer() issuer {
	key := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Go Bench Issuer"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(30 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der := must(x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key))
	return issuer{cert: must(x509.ParseCertificate(der)), key: key}
}

func makeCSRs(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		key := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
		id := must(url.Parse(fmt.Sprintf("spiffe://cluster.local/ns/ns-%d/sa/workload", i)))
		tmpl := &x509.CertificateRequest{URIs: []*url.URL{id}, SignatureAlgorithm: x509.ECDSAWithSHA256}
		out[i] = must(x509.CreateCertificateRequest(rand.Reader, tmpl, key))
	}
	return out
}

var serialLimit = new(big.Int).Lsh(big.NewInt(1), 127)

func issue(is issuer, pub *ecdsa.PublicKey, uris []*url.URL) []byte {
	raw := must(pub.Bytes())
	ski := sha1.Sum(raw)
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          must(rand.Int(rand.Reader, serialLimit)),
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(24 * time.Hour),
		URIs:                  uris,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		SubjectKeyId:          ski[:],
	}
	return must(x509.CreateCertificate(rand.Reader, tmpl, is.cert, pub, is.key))
}

func fromCSR(is issuer, der []byte) []byte {
	csr := must(x509.ParseCertificateRequest(der))
	if err := csr.CheckSignature(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	return issue(is, csr.PublicKey.(*ecdsa.PublicKey), csr.URIs)
}

func withKeygen(is issuer, uris []*url.URL) []byte {
	key := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	return issue(is, &key.PublicKey, uris)
}

func main() {
	mode := flag.String("mode", "csr", "csr: parse+verify CSR then issue; keygen: generate a key then issue")
	duration := flag.Duration("duration", time.Second, "how long to measure")
	flag.Parse()
	is := newIssuer()
	csrs := makeCSRs(300)
	uris := []*url.URL{must(url.Parse("spiffe://cluster.local/ns/bench/sa/workload"))}
	op := func(i int) []byte { return fromCSR(is, csrs[i%len(csrs)]) }
	if *mode == "keygen" {
		op = func(int) []byte { return withKeygen(is, uris) }
	}
	var sample []byte
	for i := 0; i < 300; i++ {
		sample = op(i)
	}
	cpuBefore := cpuSeconds()
	start := time.Now()
	n := 0
	for time.Since(start) < *duration {
		for k := 0; k < 20; k++ {
			op(n)
			n++
		}
	}
	elapsed := time.Since(start).Seconds()
	line := must(json.Marshal(map[string]any{
		"mode":       *mode,
		"count":      n,
		"seconds":    elapsed,
		"perSecond":  float64(n) / elapsed,
		"cpuPerWall": (cpuSeconds() - cpuBefore) / elapsed,
		"sampleDer":  base64.StdEncoding.EncodeToString(sample),
		"issuerDer":  base64.StdEncoding.EncodeToString(is.cert.Raw),
	}))
	fmt.Println(string(line))
}

func cpuSeconds() float64 {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		return 0
	}
	return float64(usage.Utime.Nano()+usage.Stime.Nano()) / 1e9
}
