//! The local server's limits, over real sockets on loopback: a slow request head is cut off at
//! the header timeout, an idle keep-alive connection at the idle timeout, a slow body gets a 408
//! at the body timeout; connections beyond the cap wait unserved until a slot frees, and a real
//! catalog request still gets its 200 (in process, and in the built binary under a small
//! `ulimit -n` with more idle connections than descriptors); an HTTP/2 preface is not answered
//! as HTTP/2.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use osb_sacloud::server::{self, Limits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::lambda::free_port;
use crate::support::*;

fn limits(header: f64, body: f64, idle: f64, max_connections: usize) -> Limits {
    Limits {
        header_timeout: Duration::from_secs_f64(header),
        body_timeout: Duration::from_secs_f64(body),
        idle_timeout: Duration::from_secs_f64(idle),
        max_connections,
    }
}

/// A broker served by [`server::serve`] on a loopback port.
async fn start(limits: Limits) -> (Harness, SocketAddr) {
    let harness = Harness::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().unwrap();
    let router = harness.app.router.clone();
    tokio::spawn(server::serve(
        listener,
        router,
        limits,
        std::future::pending(),
    ));
    (harness, addr)
}

fn catalog_request() -> String {
    format!(
        "GET /v2/catalog HTTP/1.1\r\nHost: broker\r\nX-Broker-API-Version: 2.17\r\nAuthorization: {}\r\n\r\n",
        basic(USER, PASSWORD)
    )
}

/// Read until the peer closes (or `limit` passes); returns what came and when the close came.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, Option<Instant>) {
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (got, Some(Instant::now())),
            Ok(Ok(n)) => got.extend_from_slice(&chunk[..n]),
            Err(_) => return (got, None),
        }
    }
}

/// Read one HTTP/1.1 response with a Content-Length body; returns its status and body.
async fn read_response(stream: &mut TcpStream) -> (u16, String) {
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let head = &text[..end];
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            if got.len() >= end + 4 + length {
                let status = head
                    .split_whitespace()
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| panic!("not an HTTP/1.1 response: {head}"));
                return (status, text[end + 4..end + 4 + length].to_owned());
            }
        }
        let n = stream.read(&mut chunk).await.expect("read");
        assert!(n > 0, "closed before a whole response: {text}");
        got.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_request_head_is_cut_off_at_the_header_timeout() {
    let (_h, addr) = start(limits(1.0, 10.0, 10.0, 16)).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    stream
        .write_all(b"GET /v2/catalog HTTP/1.1\r\n")
        .await
        .unwrap();
    let (mut reader, mut writer) = stream.into_split();
    // One header byte every 100 ms: always something new, never a whole head.
    let drip = tokio::spawn(async move {
        for _ in 0..60 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if writer.write_all(b"X").await.is_err() {
                return;
            }
        }
    });
    let mut chunk = [0u8; 1024];
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match reader.read(&mut chunk).await {
                Ok(0) | Err(_) => return Instant::now(),
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("the slow client was not cut off within 5 s");
    drip.abort();
    let after = closed - started;
    assert!(
        after >= Duration::from_millis(900) && after < Duration::from_millis(2500),
        "cut off after {after:?}, header timeout 1 s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_at_the_idle_timeout() {
    let (_h, addr) = start(limits(5.0, 10.0, 1.0, 16)).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    for _ in 0..2 {
        stream
            .write_all(catalog_request().as_bytes())
            .await
            .unwrap();
        let (status, body) = read_response(&mut stream).await;
        assert_eq!(status, 200, "{body}");
    }
    let answered = Instant::now();
    let (rest, closed) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    let after = closed.expect("the idle connection stayed open for 5 s") - answered;
    assert!(
        after >= Duration::from_millis(900) && after < Duration::from_millis(2500),
        "closed after {after:?}, idle timeout 1 s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_body_gets_a_408_at_the_body_timeout() {
    let (_h, addr) = start(limits(5.0, 1.0, 10.0, 16)).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "PUT /v2/service_instances/slow-body?accepts_incomplete=true HTTP/1.1\r\nHost: broker\r\nX-Broker-API-Version: 2.17\r\nAuthorization: {}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"service_id\":",
        basic(USER, PASSWORD)
    );
    let started = Instant::now();
    stream.write_all(head.as_bytes()).await.unwrap();
    let (status, body) = tokio::time::timeout(Duration::from_secs(5), read_response(&mut stream))
        .await
        .expect("no answer to a body that never came, within 5 s");
    let after = started.elapsed();
    assert_eq!(status, 408, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).expect("a JSON error");
    assert_eq!(body["error"], "RequestTimeout", "{body}");
    assert!(
        after >= Duration::from_millis(900) && after < Duration::from_millis(2500),
        "answered after {after:?}, body timeout 1 s"
    );
    let (_, closed) = read_until_closed(&mut stream, Duration::from_secs(2)).await;
    assert!(closed.is_some(), "the connection stayed open after the 408");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_wait_and_a_catalog_request_still_gets_200() {
    const CAP: usize = 4;
    let (_h, addr) = start(limits(1.0, 5.0, 1.0, CAP)).await;
    // The cap's worth of silent connections, and as many again beyond it.
    let mut idle = Vec::new();
    for _ in 0..2 * CAP {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let sent = Instant::now();
    stream
        .write_all(catalog_request().as_bytes())
        .await
        .unwrap();
    let mut first = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(600), stream.peek(&mut first)).await;
    assert!(
        early.is_err(),
        "a connection beyond the cap was served while the cap was full"
    );
    // Silent connections hold a slot for the header timeout at most: two rounds of them, then
    // the catalog request.
    let (status, body) = tokio::time::timeout(Duration::from_secs(6), read_response(&mut stream))
        .await
        .expect("the catalog request was never served");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("sacloud-mariadb"), "{body}");
    eprintln!("catalog answered {:?} after it was sent", sent.elapsed());
    for mut s in idle {
        let (_, closed) = read_until_closed(&mut s, Duration::from_secs(3)).await;
        assert!(closed.is_some(), "a silent connection was never closed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_preface_is_not_answered_as_http2() {
    let (_h, addr) = start(Limits::default()).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    // An empty SETTINGS frame.
    preface.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    stream.write_all(&preface).await.unwrap();
    let (got, closed) = read_until_closed(&mut stream, Duration::from_secs(3)).await;
    let looks_h2 = got.len() >= 9 && got[3] == 0x04;
    assert!(
        !looks_h2,
        "answered with an HTTP/2 SETTINGS frame: {:02x?}",
        &got[..got.len().min(32)]
    );
    assert!(
        got.is_empty() || got.starts_with(b"HTTP/1.1 "),
        "not an HTTP/1.1 answer: {:?}",
        String::from_utf8_lossy(&got)
    );
    assert!(closed.is_some(), "the connection stayed open");
}

/// The broker binary, serving under `ulimit -n 64`.
struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_idle_connections_than_descriptors_do_not_starve_a_catalog_request() {
    let port = free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let listen = addr.to_string();
    let child = Command::new("bash")
        .args(["-c", "ulimit -n 64 && exec \"$0\" serve --store memory"])
        .arg(env!("CARGO_BIN_EXE_osb-sacloud"))
        .env_clear()
        .envs([
            ("SAKURACLOUD_FAKE_MODE", "1"),
            ("OSB_LISTEN", listen.as_str()),
            ("OSB_USERNAME", USER),
            ("OSB_PASSWORD", PASSWORD),
            ("OSB_BINDING_MODE", "shared"),
            ("OSB_MAX_CONNECTIONS", "16"),
            ("OSB_HEADER_TIMEOUT_SECS", "1"),
            ("OSB_IDLE_TIMEOUT_SECS", "1"),
            ("RUST_LOG", "warn"),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the broker binary starts");
    let _served = Served(child);
    let mut up = false;
    for _ in 0..200 {
        if TcpStream::connect(addr).await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "the broker did not listen on {addr}");
    // More silent connections than the process has descriptors.
    let mut idle = Vec::new();
    for _ in 0..80 {
        idle.push(TcpStream::connect(addr).await.expect("connect"));
    }
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let sent = Instant::now();
    stream
        .write_all(catalog_request().as_bytes())
        .await
        .unwrap();
    let (status, body) = tokio::time::timeout(Duration::from_secs(20), read_response(&mut stream))
        .await
        .expect("the catalog request timed out behind the idle connections");
    assert_eq!(status, 200, "{body}");
    eprintln!(
        "catalog answered {:?} after it was sent, behind 80 idle connections",
        sent.elapsed()
    );
}
