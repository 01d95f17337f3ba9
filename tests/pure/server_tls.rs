//! The real TLS server over real sockets, in-process, with certificates from `llmisvc certs`
//! and a client that trusts only the generated CA.

use crate::support;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use llmisvc::certs::CertResolver;
use llmisvc::pipeline::Engine;
use llmisvc::server::review::sample_admission_review;
use llmisvc::server::tls::{CertFiles, watch_files};
use llmisvc::server::{AppState, ServerOptions};
use support::client::request;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn gen_certs(dir: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_llmisvc"))
        .args(["certs", "--out-dir"])
        .arg(dir)
        .args(["--dns", "localhost", "--ip", "127.0.0.1", "--days", "2"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

struct Running {
    addr: std::net::SocketAddr,
    state: Arc<AppState>,
    stop: tokio::sync::oneshot::Sender<()>,
    handle: tokio::task::JoinHandle<()>,
}

async fn start(dir: &Path, opts: ServerOptions) -> Running {
    let files = CertFiles {
        cert: dir.join("tls.crt"),
        key: dir.join("tls.key"),
    };
    let (c, k) = files.read().unwrap();
    let resolver = Arc::new(CertResolver::new(&c, &k).unwrap());
    let state = AppState::new(Engine::default(), resolver.clone());
    tokio::spawn(watch_files(
        files,
        resolver,
        Duration::from_millis(100),
        |_| {},
    ));
    let (addr, stop, handle) = support::server::in_process(state.clone(), opts).await;
    Running {
        addr,
        state,
        stop,
        handle,
    }
}

fn ca(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("ca.crt")).unwrap()
}

#[tokio::test]
async fn valid_reviews_are_answered_over_http1_and_http2() {
    let dir = tempfile::tempdir().unwrap();
    gen_certs(dir.path());
    let srv = start(dir.path(), ServerOptions::default()).await;
    let body = serde_json::to_vec(&sample_admission_review("uid-42")).unwrap();
    for h2 in [false, true] {
        for path in ["/mutate", "/validate"] {
            let r = request(srv.addr, &ca(dir.path()), "POST", path, body.clone(), h2)
                .await
                .unwrap();
            assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
            assert_eq!(
                r.alpn.as_deref(),
                Some(if h2 { &b"h2"[..] } else { &b"http/1.1"[..] })
            );
            let v = r.json();
            assert_eq!(v["kind"], "AdmissionReview");
            assert_eq!(v["response"]["uid"], "uid-42");
            assert_eq!(v["response"]["allowed"], true);
        }
    }
    let r = request(srv.addr, &ca(dir.path()), "GET", "/metrics", vec![], false)
        .await
        .unwrap();
    let text = String::from_utf8(r.body).unwrap();
    assert!(
        text.contains("llmisvc_webhook_requests_total{endpoint=\"mutate\""),
        "{text}"
    );
    assert!(
        text.contains("llmisvc_serving_certificate_expiry_timestamp_seconds"),
        "{text}"
    );
    for p in ["/healthz", "/readyz"] {
        assert_eq!(
            request(srv.addr, &ca(dir.path()), "GET", p, vec![], false)
                .await
                .unwrap()
                .status,
            200
        );
    }
    let _ = srv.stop.send(());
    srv.handle.await.unwrap();
}

#[tokio::test]
async fn garbage_gets_400_and_oversized_bodies_get_413() {
    let dir = tempfile::tempdir().unwrap();
    gen_certs(dir.path());
    let opts = ServerOptions {
        body_limit: 64 * 1024,
        ..Default::default()
    };
    let srv = start(dir.path(), opts).await;
    let ca = ca(dir.path());
    let r = request(
        srv.addr,
        &ca,
        "POST",
        "/mutate",
        b"{not json".to_vec(),
        false,
    )
    .await
    .unwrap();
    assert_eq!(r.status, 400);
    assert!(String::from_utf8_lossy(&r.body).contains("not JSON"));
    let r = request(
        srv.addr,
        &ca,
        "POST",
        "/convert",
        b"\xff\xfe".to_vec(),
        true,
    )
    .await
    .unwrap();
    assert_eq!(r.status, 400);
    let big = vec![b' '; 200 * 1024];
    let r = request(srv.addr, &ca, "POST", "/validate", big, false)
        .await
        .unwrap();
    assert_eq!(r.status, 413);
    // The server still serves after all that.
    let body = serde_json::to_vec(&sample_admission_review("after")).unwrap();
    let r = request(srv.addr, &ca, "POST", "/mutate", body, false)
        .await
        .unwrap();
    assert_eq!(r.json()["response"]["uid"], "after");
    assert_eq!(srv.state.metrics.panics.get(), 0);
}

/// A TLS 1.1 ClientHello (record version 0x0301, client_version 0x0302, no
/// supported_versions extension): the server must refuse it with a fatal alert.
#[tokio::test]
async fn tls_1_1_only_clients_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    gen_certs(dir.path());
    let srv = start(dir.path(), ServerOptions::default()).await;
    let mut hello = vec![0x03, 0x02]; // client_version TLS 1.1
    hello.extend_from_slice(&[0x11; 32]); // random
    hello.push(0); // session id
    hello.extend_from_slice(&[0x00, 0x04, 0xc0, 0x14, 0x00, 0x2f]); // two TLS 1.0/1.1 suites
    hello.extend_from_slice(&[0x01, 0x00]); // null compression
    let mut hs = vec![0x01, 0, 0, hello.len() as u8];
    hs.extend_from_slice(&hello);
    let mut record = vec![0x16, 0x03, 0x01, 0, hs.len() as u8];
    record.extend_from_slice(&hs);
    let mut tcp = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    tcp.write_all(&record).await.unwrap();
    let mut buf = [0u8; 7];
    tokio::time::timeout(Duration::from_secs(5), tcp.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(buf[0], 0x15, "an alert record");
    assert_eq!(buf[5], 2, "fatal");
    // rustls answers handshake_failure (40) when no protocol version is shared; some stacks
    // send protocol_version (70). Either way no ServerHello: the handshake is refused.
    assert!(matches!(buf[6], 40 | 70), "alert {}", buf[6]);
}

#[tokio::test]
async fn rotated_certificates_are_served_after_the_files_change() {
    let dir = tempfile::tempdir().unwrap();
    gen_certs(dir.path());
    let srv = start(dir.path(), ServerOptions::default()).await;
    let old_ca = ca(dir.path());
    let body = serde_json::to_vec(&sample_admission_review("r")).unwrap();
    request(srv.addr, &old_ca, "POST", "/mutate", body.clone(), false)
        .await
        .unwrap();

    // A new CA and certificate land in the same files (as a rotated Secret would).
    let new = tempfile::tempdir().unwrap();
    gen_certs(new.path());
    for f in ["ca.crt", "tls.key", "tls.crt"] {
        std::fs::copy(new.path().join(f), dir.path().join(format!("{f}.new"))).unwrap();
        std::fs::rename(dir.path().join(format!("{f}.new")), dir.path().join(f)).unwrap();
    }
    let new_ca = ca(dir.path());
    let mut ok = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if request(srv.addr, &new_ca, "POST", "/mutate", body.clone(), false)
            .await
            .is_ok()
        {
            ok = true;
            break;
        }
    }
    assert!(ok, "the new certificate is served");
    let err = request(srv.addr, &old_ca, "POST", "/mutate", body, false)
        .await
        .err()
        .unwrap();
    assert!(err.contains("TLS"), "{err}");
}

#[tokio::test]
async fn shutdown_finishes_and_stops_accepting() {
    let dir = tempfile::tempdir().unwrap();
    gen_certs(dir.path());
    let srv = start(dir.path(), ServerOptions::default()).await;
    let _ = srv.stop.send(());
    tokio::time::timeout(Duration::from_secs(10), srv.handle)
        .await
        .unwrap()
        .unwrap();
    assert!(tokio::net::TcpStream::connect(srv.addr).await.is_err());
}

/// A connection that says nothing after the TLS handshake (HTTP/2: not even its preface; or
/// after one request) is closed after the idle timeout, and frees its connection permit.
#[tokio::test]
async fn idle_connections_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    gen_certs(dir.path());
    let opts = ServerOptions {
        idle_timeout: Duration::from_millis(500),
        max_connections: 2,
        ..Default::default()
    };
    let srv = start(dir.path(), opts).await;
    let connect = |alpn: &'static [u8]| {
        let ca = ca(dir.path());
        let addr = srv.addr;
        async move {
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            support::client::connector(&ca, &[alpn])
                .connect("localhost".try_into().unwrap(), tcp)
                .await
                .unwrap()
        }
    };
    // HTTP/2 after the preface and SETTINGS, and HTTP/1.1 after a keep-alive request.
    let mut h2 = connect(b"h2").await;
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    let mut h1 = connect(b"http/1.1").await;
    h1.write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .unwrap();
    for (what, conn) in [
        (
            "h2",
            &mut h2 as &mut (dyn tokio::io::AsyncRead + Unpin + Send),
        ),
        ("http/1.1", &mut h1),
    ] {
        // Reads what the server sends, then end of stream (or a reset) once it gives up.
        let mut buf = vec![0u8; 4096];
        let closed = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                match conn.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "{what}: the idle connection stayed open");
    }
    // Both permits are free again: a new request is served.
    let body = serde_json::to_vec(&sample_admission_review("after-idle")).unwrap();
    let r = request(srv.addr, &ca(dir.path()), "POST", "/validate", body, true)
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let _ = srv.stop.send(());
    srv.handle.await.unwrap();
}
