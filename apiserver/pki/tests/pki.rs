//! End-to-end behaviour of the PKI on a temporary directory.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use rkube_pki::*;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use x509_parser::extensions::GeneralName;

fn opts() -> PkiOptions {
    PkiOptions {
        hosts: vec!["node-1.example".into()],
        ips: vec![
            "10.96.0.1".parse().unwrap(),
            "192.168.1.10".parse().unwrap(),
        ],
        cluster_domain: "cluster.local".into(),
    }
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

fn der_of(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

fn sans(cert_path: &Path) -> (Vec<String>, Vec<IpAddr>) {
    let der = der_of(&String::from_utf8(read(cert_path)).unwrap());
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let san = cert.subject_alternative_name().unwrap().unwrap();
    let (mut dns, mut ips) = (vec![], vec![]);
    for n in &san.value.general_names {
        match n {
            GeneralName::DNSName(d) => dns.push(d.to_string()),
            GeneralName::IPAddress(b) if b.len() == 4 => {
                ips.push(IpAddr::from(<[u8; 4]>::try_from(*b).unwrap()))
            }
            GeneralName::IPAddress(b) => ips.push(IpAddr::from(<[u8; 16]>::try_from(*b).unwrap())),
            _ => {}
        }
    }
    (dns, ips)
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn creates_kubeadm_layout_and_second_start_reuses_everything() {
    let dir = tempfile::tempdir().unwrap();
    let pki = ensure_cluster_pki(dir.path(), &opts()).unwrap();
    let p = pki.paths().clone();
    let files = [
        &p.ca_cert,
        &p.ca_key,
        &p.apiserver_cert,
        &p.apiserver_key,
        &p.apiserver_kubelet_client_cert,
        &p.apiserver_kubelet_client_key,
        &p.sa_key,
        &p.sa_pub,
    ];
    assert_eq!(p.pki_dir, dir.path().join("pki"));
    let before: Vec<Vec<u8>> = files.iter().map(|f| read(f)).collect();
    #[cfg(unix)]
    {
        for key in [
            &p.ca_key,
            &p.apiserver_key,
            &p.apiserver_kubelet_client_key,
            &p.sa_key,
        ] {
            assert_eq!(mode(key), 0o600, "{}", key.display());
        }
        assert_eq!(mode(&p.ca_cert), 0o644);
    }
    assert!(String::from_utf8_lossy(&read(&p.sa_pub)).starts_with("-----BEGIN PUBLIC KEY-----"));
    assert!(String::from_utf8_lossy(&read(&p.ca_key)).starts_with("-----BEGIN PRIVATE KEY-----"));

    let again = ensure_cluster_pki(dir.path(), &opts()).unwrap();
    let after: Vec<Vec<u8>> = files.iter().map(|f| read(f)).collect();
    assert_eq!(before, after);
    assert_eq!(pki.ca_cert_pem(), again.ca_cert_pem());
    assert_eq!(pki.apiserver(), again.apiserver());
    assert_eq!(pki.service_account(), again.service_account());
}

#[test]
fn ca_and_subjects_follow_kubeadm() {
    let dir = tempfile::tempdir().unwrap();
    let pki = ensure_cluster_pki(dir.path(), &opts()).unwrap();
    let ca_der = der_of(pki.ca_cert_pem());
    let (_, ca) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
    assert!(ca.is_ca());
    assert_eq!(ca.subject().to_string(), "CN=kubernetes");
    let years = (ca.validity().not_after.timestamp() - ca.validity().not_before.timestamp())
        / (365 * 86400);
    assert_eq!(years, 10);

    let srv_der = der_of(&pki.apiserver().cert_pem);
    let (_, srv) = x509_parser::parse_x509_certificate(&srv_der).unwrap();
    assert_eq!(srv.subject().to_string(), "CN=kube-apiserver");
    assert!(srv.extended_key_usage().unwrap().unwrap().value.server_auth);
    srv.verify_signature(Some(ca.public_key())).unwrap();

    let kc_der = der_of(&pki.kubelet_client().cert_pem);
    let user = user_from_certificate(&kc_der).unwrap();
    assert_eq!(user.name, "kube-apiserver-kubelet-client");
    assert_eq!(
        user.groups,
        ["kubeadm:cluster-admins", "system:authenticated"]
    );
}

#[test]
fn serving_cert_has_all_sans_and_is_reissued_only_when_one_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let pki = ensure_cluster_pki(dir.path(), &opts()).unwrap();
    let p = pki.paths().clone();
    let (dns, ips) = sans(&p.apiserver_cert);
    for want in [
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        "node-1.example",
    ] {
        assert!(
            dns.contains(&want.to_string()),
            "{want} missing from {dns:?}"
        );
    }
    for want in ["127.0.0.1", "::1", "10.96.0.1", "192.168.1.10"] {
        assert!(
            ips.contains(&want.parse().unwrap()),
            "{want} missing from {ips:?}"
        );
    }

    let ca_before = read(&p.ca_cert);
    let client_before = read(&p.apiserver_kubelet_client_cert);
    let srv_before = read(&p.apiserver_cert);
    // A subset of what is already there: nothing changes.
    let subset = PkiOptions {
        hosts: vec![],
        ips: vec!["10.96.0.1".parse().unwrap()],
        ..opts()
    };
    ensure_cluster_pki(dir.path(), &subset).unwrap();
    assert_eq!(read(&p.apiserver_cert), srv_before);

    let mut more = opts();
    more.hosts.push("api.example.com".into());
    more.ips.push("fd00::10".parse().unwrap());
    let pki2 = ensure_cluster_pki(dir.path(), &more).unwrap();
    assert_ne!(read(&p.apiserver_cert), srv_before);
    assert_eq!(read(&p.ca_cert), ca_before);
    assert_eq!(read(&p.apiserver_kubelet_client_cert), client_before);
    let (dns, ips) = sans(&p.apiserver_cert);
    assert!(dns.contains(&"api.example.com".to_string()));
    assert!(ips.contains(&"fd00::10".parse().unwrap()));
    assert_eq!(pki2.ca_cert_pem(), pki.ca_cert_pem());
}

#[test]
fn corrupt_ca_key_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let pki = ensure_cluster_pki(dir.path(), &opts()).unwrap();
    let ca_key = pki.paths().ca_key.clone();
    std::fs::write(
        &ca_key,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let err = ensure_cluster_pki(dir.path(), &opts()).unwrap_err();
    assert!(
        err.to_string().contains(&ca_key.display().to_string()),
        "{err}"
    );

    std::fs::write(&ca_key, [0xff, 0xfe, 0x00]).unwrap();
    let err = ensure_cluster_pki(dir.path(), &opts()).unwrap_err();
    assert!(err.to_string().contains("ca.key"), "{err}");
    // The corrupt file is left alone for the operator to inspect.
    assert_eq!(read(&ca_key), [0xff, 0xfe, 0x00]);
}

#[test]
fn corrupt_or_foreign_leaf_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let pki = ensure_cluster_pki(dir.path(), &opts()).unwrap();
    let crt = pki.paths().apiserver_cert.clone();
    std::fs::write(&crt, "garbage").unwrap();
    let err = ensure_cluster_pki(dir.path(), &opts()).unwrap_err();
    assert!(err.to_string().contains("apiserver.crt"), "{err}");

    // A pair from another cluster's CA.
    let other = tempfile::tempdir().unwrap();
    let other_pki = ensure_cluster_pki(other.path(), &opts()).unwrap();
    std::fs::copy(&other_pki.paths().apiserver_cert, &crt).unwrap();
    std::fs::copy(&other_pki.paths().apiserver_key, &pki.paths().apiserver_key).unwrap();
    let err = ensure_cluster_pki(dir.path(), &opts()).unwrap_err();
    assert!(matches!(err, PkiError::NotSignedByCa { .. }), "{err}");
}

#[test]
fn missing_sa_pub_is_rederived_from_sa_key() {
    let dir = tempfile::tempdir().unwrap();
    let pki = ensure_cluster_pki(dir.path(), &opts()).unwrap();
    let sa_pub = pki.paths().sa_pub.clone();
    let before = read(&sa_pub);
    std::fs::remove_file(&sa_pub).unwrap();
    ensure_cluster_pki(dir.path(), &opts()).unwrap();
    assert_eq!(read(&sa_pub), before);
}

fn decode(s: &str) -> String {
    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(s).unwrap()).unwrap()
}

#[test]
fn kubeconfigs_have_kubeadm_structure_and_are_stable() {
    let dir = tempfile::tempdir().unwrap();
    let pki = ensure_cluster_pki(dir.path(), &opts()).unwrap();
    let confs = pki
        .ensure_component_kubeconfigs("https://127.0.0.1:6443")
        .unwrap();
    assert_eq!(confs.admin, dir.path().join("admin.conf"));
    #[cfg(unix)]
    assert_eq!(mode(&confs.admin), 0o600);

    let raw = String::from_utf8(read(&confs.admin)).unwrap();
    let y: serde_yaml::Value = serde_yaml::from_str(&raw).unwrap();
    assert_eq!(y["apiVersion"], "v1");
    assert_eq!(y["kind"], "Config");
    assert_eq!(y["current-context"], "kubernetes-admin@kubernetes");
    assert_eq!(y["clusters"][0]["name"], "kubernetes");
    assert_eq!(
        y["clusters"][0]["cluster"]["server"],
        "https://127.0.0.1:6443"
    );
    let ca = decode(
        y["clusters"][0]["cluster"]["certificate-authority-data"]
            .as_str()
            .unwrap(),
    );
    assert_eq!(ca, pki.ca_cert_pem());
    assert_eq!(y["contexts"][0]["name"], "kubernetes-admin@kubernetes");
    assert_eq!(y["contexts"][0]["context"]["cluster"], "kubernetes");
    assert_eq!(y["contexts"][0]["context"]["user"], "kubernetes-admin");
    assert_eq!(y["users"][0]["name"], "kubernetes-admin");
    let cert = decode(
        y["users"][0]["user"]["client-certificate-data"]
            .as_str()
            .unwrap(),
    );
    let key = decode(y["users"][0]["user"]["client-key-data"].as_str().unwrap());
    assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"));
    let user = user_from_certificate(&der_of(&cert)).unwrap();
    assert_eq!(user.name, "kubernetes-admin");
    assert_eq!(user.groups, ["system:masters", "system:authenticated"]);

    for (file, cn) in [
        ("controller-manager.conf", "system:kube-controller-manager"),
        ("scheduler.conf", "system:kube-scheduler"),
    ] {
        let kc = Kubeconfig::from_yaml(
            &String::from_utf8(read(&dir.path().join(file))).unwrap(),
            file,
        )
        .unwrap();
        assert_eq!(kc.current_context, format!("{cn}@kubernetes"));
        let creds = kc.client_credentials(cn).unwrap();
        let user = user_from_certificate(&der_of(&creds.cert_pem)).unwrap();
        assert_eq!(user.name, cn);
        assert_eq!(user.groups, ["system:authenticated"]);
    }

    // Same server: byte-identical. New server: same credentials, new URL.
    ensure_component_kubeconfigs(dir.path(), "https://127.0.0.1:6443").unwrap();
    assert_eq!(String::from_utf8(read(&confs.admin)).unwrap(), raw);
    ensure_component_kubeconfigs(dir.path(), "https://10.0.0.5:6443").unwrap();
    let kc = Kubeconfig::from_yaml(&String::from_utf8(read(&confs.admin)).unwrap(), "a").unwrap();
    assert_eq!(kc.clusters[0].cluster.server, "https://10.0.0.5:6443");
    assert_eq!(
        kc.client_credentials("kubernetes-admin").unwrap().cert_pem,
        cert
    );
}

#[test]
fn kubelet_kubeconfig_names_the_node() {
    let dir = tempfile::tempdir().unwrap();
    let pki = ensure_cluster_pki(dir.path(), &opts()).unwrap();
    let path = dir.path().join("kubelet.conf");
    pki.kubelet_kubeconfig(&path, "https://127.0.0.1:6443", "node-a")
        .unwrap();
    let kc = Kubeconfig::from_yaml(&String::from_utf8(read(&path)).unwrap(), "k").unwrap();
    assert_eq!(kc.current_context, "system:node:node-a@kubernetes");
    let creds = kc.client_credentials("system:node:node-a").unwrap();
    let user = user_from_certificate(&der_of(&creds.cert_pem)).unwrap();
    assert_eq!(user.name, "system:node:node-a");
    assert_eq!(user.groups, ["system:nodes", "system:authenticated"]);

    // Groups changed: the certificate is reissued.
    pki.write_kubeconfig(
        &path,
        "https://127.0.0.1:6443",
        "system:node:node-a",
        &[],
        "kubernetes",
    )
    .unwrap();
    let kc = Kubeconfig::from_yaml(&String::from_utf8(read(&path)).unwrap(), "k").unwrap();
    let creds = kc.client_credentials("system:node:node-a").unwrap();
    let user = user_from_certificate(&der_of(&creds.cert_pem)).unwrap();
    assert_eq!(user.groups, ["system:authenticated"]);
}

#[test]
fn kubelet_serving_cert_covers_the_node_and_is_reused() {
    let dir = tempfile::tempdir().unwrap();
    let pki = ensure_cluster_pki(dir.path(), &opts()).unwrap();
    let ips: Vec<IpAddr> = vec!["127.0.0.1".parse().unwrap(), "192.0.2.2".parse().unwrap()];
    let (crt, key) = pki
        .ensure_kubelet_serving_cert("node-a", &["node-a".into()], &ips)
        .unwrap();
    assert_eq!(crt, dir.path().join("pki/kubelet-node-a.crt"));
    assert_eq!(mode(&key), 0o600);
    assert_eq!(sans(&crt), (vec!["node-a".to_string()], ips.clone()));
    let first = read(&crt);
    pki.ensure_kubelet_serving_cert("node-a", &["node-a".into()], &ips)
        .unwrap();
    assert_eq!(read(&crt), first, "reused while it fits");
    // A new address: reissued.
    let more = [ips.clone(), vec!["192.0.2.3".parse().unwrap()]].concat();
    pki.ensure_kubelet_serving_cert("node-a", &["node-a".into()], &more)
        .unwrap();
    assert_eq!(sans(&crt).1, more);
    // It serves, and a client trusting the cluster CA accepts it.
    server_config(&crt, &key, Some(&dir.path().join("pki/ca.crt"))).unwrap();
}

#[test]
fn self_signed_serving_cert_is_made_once() {
    let dir = tempfile::tempdir().unwrap();
    let ips: Vec<IpAddr> = vec!["127.0.0.1".parse().unwrap()];
    let (crt, key) =
        ensure_self_signed(&dir.path().join("pki"), "kubelet", "host-a", &ips).unwrap();
    assert_eq!(sans(&crt), (vec!["host-a".to_string()], ips.clone()));
    let first = read(&crt);
    ensure_self_signed(&dir.path().join("pki"), "kubelet", "host-a", &ips).unwrap();
    assert_eq!(read(&crt), first);
    server_config(&crt, &key, None).unwrap();
}

#[test]
fn user_from_certificate_rejects_garbage_and_missing_cn() {
    assert_eq!(user_from_certificate(b"nope"), None);
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "only-an-org");
    let cert = params.self_signed(&key).unwrap();
    assert_eq!(user_from_certificate(cert.der()), None);
}

/// Runs one TLS exchange over an in-memory pipe and returns the DER of the
/// client certificate the server saw, if any.
async fn handshake(
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
) -> Result<Option<Vec<u8>>, String> {
    let (c, s) = tokio::io::duplex(64 * 1024);
    let acceptor = tokio_rustls::TlsAcceptor::from(server);
    let connector = tokio_rustls::TlsConnector::from(client);
    let server_side = async move {
        let mut tls = acceptor.accept(s).await.map_err(|e| e.to_string())?;
        let peer = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.to_vec());
        let alpn = tls.get_ref().1.alpn_protocol().map(|p| p.to_vec());
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
        tls.write_all(&buf).await.map_err(|e| e.to_string())?;
        tls.shutdown().await.ok();
        Ok::<_, String>((peer, alpn))
    };
    let client_side = async move {
        let name = ServerName::try_from("kubernetes.default.svc").unwrap();
        let mut tls = connector
            .connect(name, c)
            .await
            .map_err(|e| e.to_string())?;
        tls.write_all(b"ping").await.map_err(|e| e.to_string())?;
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
        assert_eq!(&buf, b"ping");
        Ok::<_, String>(())
    };
    let (srv, cli) = tokio::join!(server_side, client_side);
    cli?;
    let (peer, alpn) = srv?;
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
    Ok(peer)
}

fn with_h2(cfg: Arc<rustls::ClientConfig>) -> Arc<rustls::ClientConfig> {
    let mut cfg = (*cfg).clone();
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(cfg)
}

#[tokio::test]
async fn tls_handshake_with_and_without_client_cert() {
    let dir = tempfile::tempdir().unwrap();
    let pki = ensure_cluster_pki(dir.path(), &opts()).unwrap();
    let p = pki.paths();
    let server = server_config(&p.apiserver_cert, &p.apiserver_key, Some(&p.ca_cert)).unwrap();
    assert_eq!(
        server.alpn_protocols,
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    );

    // A client certificate with several groups (beyond what rcgen alone encodes).
    let id = pki
        .issue_client_cert("jane", &["devs", "ops", "system:masters"])
        .unwrap();
    let client = with_h2(client_config(pki.ca_cert_pem(), Some(&id)).unwrap());
    let peer = handshake(server.clone(), client).await.unwrap().unwrap();
    let user = user_from_certificate(&peer).unwrap();
    assert_eq!(user.name, "jane");
    assert_eq!(
        user.groups,
        ["devs", "ops", "system:masters", "system:authenticated"]
    );

    // No client certificate: still accepted (bearer token / 401 is HTTP's job).
    let anon = with_h2(client_config(pki.ca_cert_pem(), None).unwrap());
    assert_eq!(handshake(server.clone(), anon).await.unwrap(), None);

    // A client certificate from another CA is refused.
    let other = tempfile::tempdir().unwrap();
    let other_pki = ensure_cluster_pki(other.path(), &opts()).unwrap();
    let foreign = other_pki
        .issue_client_cert("mallory", &["system:masters"])
        .unwrap();
    let bad = with_h2(client_config(pki.ca_cert_pem(), Some(&foreign)).unwrap());
    assert!(handshake(server.clone(), bad).await.is_err());

    // The client refuses a server whose CA it does not trust.
    let distrust = with_h2(client_config(other_pki.ca_cert_pem(), None).unwrap());
    assert!(handshake(server, distrust).await.is_err());
}

#[tokio::test]
async fn kubeconfig_credentials_work_for_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = ensure_cluster_pki(dir.path(), &opts()).unwrap();
    let confs = pki
        .ensure_component_kubeconfigs("https://127.0.0.1:6443")
        .unwrap();
    let kc =
        Kubeconfig::from_yaml(&String::from_utf8(read(&confs.admin)).unwrap(), "admin").unwrap();
    let id = kc.client_credentials("kubernetes-admin").unwrap();
    let ca = decode(&kc.clusters[0].cluster.certificate_authority_data);
    let p = pki.paths();
    let server = server_config(&p.apiserver_cert, &p.apiserver_key, Some(&p.ca_cert)).unwrap();
    let client = with_h2(client_config(&ca, Some(&id)).unwrap());
    let peer = handshake(server, client).await.unwrap().unwrap();
    assert_eq!(
        user_from_certificate(&peer).unwrap().name,
        "kubernetes-admin"
    );
}

#[test]
fn server_config_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.crt");
    let err = server_config(&missing, &missing, None).unwrap_err();
    assert!(err.to_string().contains("nope.crt"), "{err}");
    let bad = dir.path().join("bad.crt");
    std::fs::write(&bad, "not pem").unwrap();
    let err = server_config(&bad, &bad, None).unwrap_err();
    assert!(err.to_string().contains("bad.crt"), "{err}");
}

#[test]
fn existing_kubeadm_rsa_ca_is_used() {
    // A CA as real kubeadm writes it: RSA key in PKCS#1 PEM.
    let dir = tempfile::tempdir().unwrap();
    let pki_dir = dir.path().join("pki");
    std::fs::create_dir_all(&pki_dir).unwrap();
    let key_pem = include_str!("../testdata/rsa-pkcs1.key");
    let key = rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(
        &rkube_pki_test_pkcs8(key_pem),
        &rcgen::PKCS_RSA_SHA256,
    )
    .unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["kubernetes".to_string()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "kubernetes");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let ca = params.self_signed(&key).unwrap();
    std::fs::write(pki_dir.join("ca.crt"), ca.pem()).unwrap();
    std::fs::write(pki_dir.join("ca.key"), key_pem).unwrap();

    let pki = ensure_cluster_pki(dir.path(), &opts()).unwrap();
    assert_eq!(pki.ca_cert_pem(), ca.pem());
    let (_, ca_x509) = x509_parser::parse_x509_certificate(ca.der()).unwrap();
    let srv = der_of(&pki.apiserver().cert_pem);
    let (_, srv) = x509_parser::parse_x509_certificate(&srv).unwrap();
    srv.verify_signature(Some(ca_x509.public_key())).unwrap();
}

/// PKCS#1 → PKCS#8 via openssl-free DER wrapping, for the fixture only.
fn rkube_pki_test_pkcs8(pkcs1_pem: &str) -> String {
    use rustls_pki_types::PrivatePkcs1KeyDer;
    let pkcs1 = PrivatePkcs1KeyDer::from_pem_slice(pkcs1_pem.as_bytes()).unwrap();
    let body = pkcs1.secret_pkcs1_der();
    let alg = [
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let tlv = |tag: u8, v: &[u8]| {
        let mut out = vec![tag];
        if v.len() < 0x80 {
            out.push(v.len() as u8);
        } else {
            let n = v.len().to_be_bytes();
            let n: Vec<u8> = n.into_iter().skip_while(|b| *b == 0).collect();
            out.push(0x80 | n.len() as u8);
            out.extend(n);
        }
        out.extend_from_slice(v);
        out
    };
    let inner = [&[0x02, 0x01, 0x00][..], &alg, &tlv(0x04, body)].concat();
    let der = tlv(0x30, &inner);
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n")
}
