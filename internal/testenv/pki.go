package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// pki is the set of files the control plane needs, all written under one directory.
type pki struct {
	CACert, ServingCert, ServingKey, AdminCert, AdminKey, SAKey, SAPub string

	caPEM, adminCertPEM, adminKeyPEM []byte
}

// newPKI writes a fresh CA, an apiserver serving certificate, an admin client
// certificate in system:masters and a service-account key pair into dir.
// ECDSA keys keep generation fast; the service-account key is RSA because that is
// what kube-apiserver's token signer expects by default.
//
// Every environment gets its own PKI, so nothing issued for one environment is
// trusted by another running side by side.
func newPKI(dir string) (*pki, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	ca, err := newCA(newValidity(time.Now()))
	if err != nil {
		return nil, err
	}
	servingCert, servingKey, err := ca.issue(servingTemplate())
	if err != nil {
		return nil, err
	}
	adminCert, adminKey, err := ca.issue(adminTemplate())
	if err != nil {
		return nil, err
	}
	saKey, saPub, err := newServiceAccountKeys()
	if err != nil {
		return nil, err
	}

	p := &pki{
		CACert:       filepath.Join(dir, "ca.crt"),
		ServingCert:  filepath.Join(dir, "apiserver.crt"),
		ServingKey:   filepath.Join(dir, "apiserver.key"),
		AdminCert:    filepath.Join(dir, "admin.crt"),
		AdminKey:     filepath.Join(dir, "admin.key"),
		SAKey:        filepath.Join(dir, "sa.key"),
		SAPub:        filepath.Join(dir, "sa.pub"),
		caPEM:        ca.certPEM,
		adminCertPEM: adminCert,
		adminKeyPEM:  adminKey,
	}
	return p, writePKIFiles(map[string][]byte{
		p.CACert:      p.caPEM,
		p.ServingCert: servingCert,
		p.ServingKey:  servingKey,
		p.AdminCert:   adminCert,
		p.AdminKey:    adminKey,
		p.SAKey:       saKey,
		p.SAPub:       saPub,
	})
}

// validity is the window every certificate of one PKI shares.
type validity struct{ notBefore, notAfter time.Time }

// newValidity starts the window an hour before now, so a certificate is valid the
// moment it is written whatever the rounding of certificate times (whole seconds)
// or a small step of the clock, and ends it ten years later, far beyond any
// environment's life: nothing in it ever has to be renewed.
func newValidity(now time.Time) validity {
	notBefore := now.Add(-time.Hour)
	return validity{notBefore: notBefore, notAfter: notBefore.Add(10 * 365 * 24 * time.Hour)}
}

// certAuthority is the environment's own CA. kube-apiserver trusts it for client
// certificates (--client-ca-file) and clients trust it for the serving certificate
// (the kubeconfig's certificate-authority-data), so one self-signed root is all the
// environment needs: no intermediate, no separate front-proxy or etcd CA (etcd
// listens on plain HTTP on loopback).
type certAuthority struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
	valid   validity
}

func newCA(valid validity) (*certAuthority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "storefleet-testenv-ca"},
		NotBefore:             valid.notBefore,
		NotAfter:              valid.notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	// The leaves are signed with the parsed certificate, not tmpl: CreateCertificate
	// takes their issuer and authority key id from the parent, and only the encoded
	// certificate carries the subject key id Go generated for the CA.
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &certAuthority{
		cert:    cert,
		key:     key,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		valid:   valid,
	}, nil
}

// issue signs a leaf certificate for tmpl's subject, names and extended key usage
// with a fresh ECDSA key; serial, validity and key usage are the CA's to set, so
// every leaf gets them the same way. It returns the certificate and key as PEM.
func (ca *certAuthority) issue(tmpl *x509.Certificate) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl.SerialNumber = serial()
	tmpl.NotBefore, tmpl.NotAfter = ca.valid.notBefore, ca.valid.notAfter
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), nil
}

// servingTemplate is kube-apiserver's serving certificate. Its names cover the
// address everything here uses (127.0.0.1, localhost: the kubeconfig, the Flux
// controllers, kube-controller-manager) and, as a real cluster's certificate does,
// the in-cluster names and the kubernetes Service's cluster IP, so a client
// configured the in-cluster way still verifies it.
func servingTemplate() *x509.Certificate {
	return &x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster.local"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP(serviceClusterIP)},
	}
}

// adminTemplate is the kubeconfig's client certificate. Its organisation is the
// group system:masters, which kube-apiserver authorizes for everything with no
// binding to create first, so the environment can install the Flux CRDs as soon as
// the API server is ready.
func adminTemplate() *x509.Certificate {
	return &x509.Certificate{
		Subject:     pkix.Name{CommonName: "storefleet-admin", Organization: []string{"system:masters"}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
}

// newServiceAccountKeys returns the key pair service-account tokens are signed with
// (kube-apiserver --service-account-signing-key-file, kube-controller-manager
// --service-account-private-key-file) and verified with
// (--service-account-key-file), as PEM: PKCS#1 private key, PKIX public key. It is
// RSA, unlike the certificates' keys (see newPKI).
func newServiceAccountKeys() (privPEM, pubPEM []byte, err error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}),
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), nil
}

// writePKIFiles writes each file readable by this user only: they include every
// private key, and the admin key is full control of the cluster.
func writePKIFiles(files map[string][]byte) error {
	for name, data := range files {
		if err := os.WriteFile(name, data, 0o600); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n
}
