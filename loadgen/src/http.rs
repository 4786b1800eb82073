//! A blocking HTTP/1.1 client for the controller's `/workers` and `/metrics` (loopback only); the
//! integration tests use it too.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("{0}: malformed response")]
    Malformed(String),
    #[error("{0}: status {1}")]
    Status(String, u16),
}

/// The body of a 200 answer to `GET path`.
pub fn get(addr: SocketAddr, path: &str) -> Result<String, HttpError> {
    match request(addr, "GET", path, "", Duration::from_secs(10))? {
        (200, body) => Ok(body),
        (status, _) => Err(HttpError::Status(format!("GET {path}"), status)),
    }
}

/// One HTTP/1.1 request on its own connection (`Connection: close`): the status and the body,
/// de-chunked. `read_timeout` bounds each read, so a long poll needs one longer than its hold.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
    read_timeout: Duration,
) -> Result<(u16, String), HttpError> {
    let what = format!("{method} {path}");
    let io = |e| HttpError::Io(what.clone(), e);
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(io)?;
    stream.set_read_timeout(Some(read_timeout)).map_err(io)?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .map_err(io)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(io)?;
    let raw = String::from_utf8_lossy(&raw);
    let (head, body) = raw.split_once("\r\n\r\n").ok_or_else(|| HttpError::Malformed(what.clone()))?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| HttpError::Malformed(what.clone()))?;
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
    Ok((status, if chunked { dechunk(body) } else { body.to_owned() }))
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}

/// The value of `name{worker="index"}` in Prometheus text.
pub fn metric(text: &str, name: &str, worker: usize) -> Option<f64> {
    let prefix = format!("{name}{{worker=\"{worker}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(&prefix)).and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_worker_series() {
        let text = "# HELP x\nocto_packets_sent_total{worker=\"0\"} 12\nocto_packets_sent_total{worker=\"1\"} 7\n";
        assert_eq!(metric(text, "octo_packets_sent_total", 1), Some(7.0));
        assert_eq!(metric(text, "octo_packets_sent_total", 2), None);
        assert_eq!(metric(text, "octo_packets", 0), None);
    }

    #[test]
    fn joins_chunks() {
        assert_eq!(dechunk("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), "abcde");
    }
}
