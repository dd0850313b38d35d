//! The connection loop over real loopback sockets: the header-read timeout closes slow-header
//! and idle keep-alive connections, and leaves prompt clients alone.

use shroud_core::SecretString;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const TIMEOUT: Duration = Duration::from_millis(400);
const TICK: Duration = Duration::from_millis(20);
/// Liveness bound only: what should happen must happen well within this.
const PATIENCE: Duration = Duration::from_secs(15);

async fn server() -> std::net::SocketAddr {
    let (core, _root) = shroud_server::memory_core(Some(SecretString::from("root-conn-test")))
        .await
        .expect("memory core");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(shroud_server::serve_with(
        listener, core, None, TIMEOUT, TICK,
    ));
    addr
}

/// Reads until the server closes the connection; what it sent.
async fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    tokio::time::timeout(PATIENCE, s.read_to_end(&mut out))
        .await
        .expect("the server never closed the connection")
        .ok();
    out
}

const HEALTH: &[u8] = b"GET /v1/sys/health HTTP/1.1\r\nHost: shroud\r\n\r\n";

#[tokio::test]
async fn a_partial_head_is_cut_off_after_the_timeout() {
    let addr = server().await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let start = std::time::Instant::now();
    s.write_all(b"GET /v1/sys/health HTTP/1.1\r\nHost: sh")
        .await
        .unwrap();
    let got = read_to_close(&mut s).await;
    assert!(start.elapsed() >= TIMEOUT, "closed before the timeout");
    assert!(
        !String::from_utf8_lossy(&got).contains("200 OK"),
        "answered an incomplete request"
    );
}

#[tokio::test]
async fn a_trickling_client_is_cut_off_too() {
    let addr = server().await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let start = std::time::Instant::now();
    // One byte at a time, each well inside the timeout: the head as a whole is not.
    let mut closed = false;
    for b in b"GET /v1/sys/health HTTP/1.1\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
        if s.write_all(&[*b]).await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(TIMEOUT / 8).await;
        if start.elapsed() > PATIENCE {
            break;
        }
    }
    if !closed {
        let got = read_to_close(&mut s).await;
        assert!(!String::from_utf8_lossy(&got).contains("200 OK"));
    }
    assert!(start.elapsed() >= TIMEOUT);
}

#[tokio::test]
async fn keep_alive_requests_are_served_and_an_idle_connection_is_closed() {
    let addr = server().await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut buf = vec![0u8; 4096];
    // Several requests on one connection, each answered; the timer is re-armed for each head.
    for _ in 0..3 {
        s.write_all(HEALTH).await.unwrap();
        let n = tokio::time::timeout(PATIENCE, s.read(&mut buf))
            .await
            .expect("no answer")
            .unwrap();
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        tokio::time::sleep(TIMEOUT / 2).await;
    }
    // Then nothing: the idle connection is closed.
    let start = std::time::Instant::now();
    let rest = read_to_close(&mut s).await;
    assert!(rest.is_empty() || !String::from_utf8_lossy(&rest).contains("200 OK"));
    assert!(start.elapsed() + TIMEOUT / 2 >= TIMEOUT);
}

/// Sends `head` and then `chunks` as a chunked body, each chunk flushed on its own (so the
/// server sees several body frames); returns the whole answer (the server closes after it).
/// Stops sending if the server has already answered and closed (an oversized body).
async fn chunked(addr: std::net::SocketAddr, head: &str, chunks: &[&[u8]]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    let mut send = async || -> std::io::Result<()> {
        for c in chunks {
            s.write_all(format!("{:x}\r\n", c.len()).as_bytes()).await?;
            s.write_all(c).await?;
            s.write_all(b"\r\n").await?;
            s.flush().await?;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        s.write_all(b"0\r\n\r\n").await
    };
    let _ = send().await;
    String::from_utf8_lossy(&read_to_close(&mut s).await).into_owned()
}

#[tokio::test]
async fn a_body_in_several_chunks_is_read_whole_and_an_oversized_one_is_413() {
    let addr = server().await;
    let head = |path: &str| {
        format!(
            "POST /v1/{path} HTTP/1.1\r\nHost: shroud\r\nX-Vault-Token: root-conn-test\r\n\
             Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
    };
    let answer = chunked(
        addr,
        &head("secret/data/chunked"),
        &[b"{\"data\":{\"pass", b"word\":\"in-three-", b"frames\"}}"],
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(
        b"GET /v1/secret/data/chunked HTTP/1.1\r\nHost: shroud\r\n\
          X-Vault-Token: root-conn-test\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let read = String::from_utf8_lossy(&read_to_close(&mut s).await).into_owned();
    assert!(read.contains("\"password\":\"in-three-frames\""), "{read}");

    // 33 chunks of 1 MiB: over the 32 MiB limit without any Content-Length.
    let mib = vec![b' '; 1024 * 1024];
    let chunks: Vec<&[u8]> = (0..33).map(|_| mib.as_slice()).collect();
    let answer = chunked(addr, &head("secret/data/big"), &chunks).await;
    assert!(
        answer.starts_with("HTTP/1.1 413"),
        "{}",
        &answer[..answer.len().min(200)]
    );
}
