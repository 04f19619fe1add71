//! `RawConnection`: one TCP connection to a node, written byte by byte,
//! for what an HTTP client library will not send (protocol garbage, a body
//! trickled slowly) and reading the answer as it comes.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An answer read off the wire.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    /// Header lines, names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

pub struct RawConnection {
    stream: TcpStream,
    received: Vec<u8>,
}

impl RawConnection {
    pub async fn open(port: u16) -> RawConnection {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect to the node");
        RawConnection {
            stream,
            received: Vec::new(),
        }
    }

    /// Writes `bytes`; `false` once the node has closed the connection.
    pub async fn send(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).await.is_ok() && self.stream.flush().await.is_ok()
    }

    /// Whether an answer has started to arrive, waiting at most `within`.
    pub async fn answered_within(&mut self, within: Duration) -> bool {
        let mut buffer = [0u8; 4096];
        match tokio::time::timeout(within, self.stream.read(&mut buffer)).await {
            Ok(Ok(n)) if n > 0 => {
                self.received.extend_from_slice(&buffer[..n]);
                true
            }
            Ok(_) => true, // closed: an answer of sorts
            Err(_) => false,
        }
    }

    /// Reads until the node closes the connection or the answer's
    /// `content-length` is complete; panics after `within`.
    pub async fn response(&mut self, within: Duration) -> RawResponse {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(response) = parse(&self.received) {
                return response;
            }
            let mut buffer = [0u8; 4096];
            let read = tokio::time::timeout_at(deadline, self.stream.read(&mut buffer))
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "no complete answer within {within:?}; got {:?}",
                        String::from_utf8_lossy(&self.received)
                    )
                });
            match read {
                Ok(0) | Err(_) => {
                    return parse_closed(&self.received).unwrap_or_else(|| {
                        panic!(
                            "closed without an answer: {:?}",
                            String::from_utf8_lossy(&self.received)
                        )
                    })
                }
                Ok(n) => self.received.extend_from_slice(&buffer[..n]),
            }
        }
    }

    /// Whether the node closes the connection within `within` (reading and
    /// discarding anything it still sends).
    pub async fn closed_within(&mut self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let mut buffer = [0u8; 4096];
            match tokio::time::timeout_at(deadline, self.stream.read(&mut buffer)).await {
                Err(_) => return false,
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => {}
            }
        }
    }
}

/// A complete answer in `bytes` (its head and `content-length` bytes).
fn parse(bytes: &[u8]) -> Option<RawResponse> {
    let (mut response, body_start) = parse_head(bytes)?;
    let length: usize = response.header("content-length")?.parse().ok()?;
    let body = bytes.get(body_start..body_start + length)?;
    response.body = String::from_utf8_lossy(body).into_owned();
    Some(response)
}

/// The answer in `bytes` when the node closed after it.
fn parse_closed(bytes: &[u8]) -> Option<RawResponse> {
    let (mut response, body_start) = parse_head(bytes)?;
    response.body = String::from_utf8_lossy(&bytes[body_start..]).into_owned();
    Some(response)
}

fn parse_head(bytes: &[u8]) -> Option<(RawResponse, usize)> {
    let text = String::from_utf8_lossy(bytes);
    let end = text.find("\r\n\r\n")?;
    let mut lines = text[..end].split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Some((
        RawResponse {
            status,
            headers,
            body: String::new(),
        },
        end + 4,
    ))
}
