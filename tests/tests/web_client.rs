//! The built-in browser app: `octo` serves the committed `client-web/dist/` at `/` (embedded in the
//! binary) unless `--web-root` names another front-end, and that committed bundle is what its sources
//! build to today.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use octo_tests::*;

fn client_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../client-web")
}

/// GET `path`: status, lower-cased head, body.
fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").expect("write");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("read");
    let (head, body) = raw.split_once("\r\n\r\n").expect("header end");
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("status");
    (status, head.to_ascii_lowercase(), body.to_owned())
}

fn dist(name: &str) -> String {
    std::fs::read_to_string(client_dir().join("dist").join(name)).expect("client-web/dist is committed")
}

#[test]
fn octo_serves_the_embedded_client_at_the_root() {
    let octo = Octo::start(&["--workers", "1"]).expect("octo starts");
    for (path, file, content_type) in [
        ("/", "index.html", "text/html"),
        ("/?room=standup", "index.html", "text/html"),
        ("/index.html", "index.html", "text/html"),
        ("/app.js", "app.js", "text/javascript"),
        ("/style.css", "style.css", "text/css"),
    ] {
        let (status, head, body) = get(octo.addr, path);
        assert_eq!(status, 200, "{path}");
        assert!(head.contains(&format!("content-type: {content_type}")), "{path}: {head}");
        assert_eq!(body, dist(file), "{path} is not the committed dist/{file}");
    }
    assert!(dist("index.html").contains(r#"<script src="/app.js">"#));
    assert_eq!(get(octo.addr, "/nope.js").0, 404);
    // The operator routes are still there.
    assert_eq!(octo.get_json("/healthz").expect("healthz").0, 200);
}

#[test]
fn web_root_replaces_the_embedded_client() {
    let dir = std::env::temp_dir().join(format!("octo-web-root-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(dir.join("index.html"), "<p>another front-end</p>").expect("write");
    let root = dir.to_str().expect("utf-8 path");
    let octo = Octo::start(&["--workers", "1", "--web-root", root]).expect("octo starts");
    let (status, _, body) = get(octo.addr, "/");
    assert_eq!((status, body.as_str()), (200, "<p>another front-end</p>"));
    assert_eq!(get(octo.addr, "/app.js").0, 404, "the embedded client leaks through --web-root");
    drop(octo);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_committed_bundle_matches_its_sources() {
    let dir = client_dir();
    assert!(
        dir.join("node_modules/esbuild").is_dir(),
        "{}/node_modules is missing: run `npm ci --prefix client-web` (needs Node 20+) before this test",
        dir.display()
    );
    let out = Command::new("node")
        .args(["build.mjs", "--check"])
        .current_dir(&dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run node ({e}): install Node 20+"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{text}");
    assert!(out.status.success(), "client-web/dist does not match its sources:\n{text}");
}
