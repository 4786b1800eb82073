//! Configuration layers (file < environment < flag) and clear errors for bad files.

use std::process::{Command, Output};

use octo_tests::bin;

fn check_config(file: &str, env: &[(&str, &str)], flags: &[&str]) -> Output {
    let dir = std::env::temp_dir().join(format!("octo-config-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("octo.toml");
    std::fs::write(&path, file).unwrap();
    let mut cmd = Command::new(bin("octo"));
    cmd.arg("--config").arg(&path).arg("--check-config").args(flags);
    // Only what the test sets: the runner's own OCTO_ variables must not leak in.
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("OCTO_")) {
        cmd.env_remove(k);
    }
    cmd.envs(env.iter().copied());
    let out = cmd.output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    out
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::Instant::now())
}

fn effective(out: &Output) -> toml::Table {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    toml::from_str(&String::from_utf8_lossy(&out.stdout)).unwrap()
}

const FILE: &str = r#"
workers = 2
listen = "127.0.0.1:4100"
rtc_listen_ips = ["127.0.0.1"]
max_peers_per_room = 7
auth_secret = "s3cret"
room_spill_consumers = 40
pipe_srtp = true
"#;

#[test]
fn file_then_environment_then_flags() {
    let only_file = effective(&check_config(FILE, &[], &[]));
    assert_eq!(only_file["workers"].as_integer(), Some(2));
    assert_eq!(only_file["listen"].as_str(), Some("127.0.0.1:4100"));
    assert_eq!(only_file["max_peers_per_room"].as_integer(), Some(7));
    assert_eq!(only_file["rtc_listen_ips"].as_array().unwrap().len(), 1);
    assert_eq!(only_file["auth_secret"].as_str(), Some("(set)"), "secrets are not printed");
    assert_eq!(only_file["room_spill_consumers"].as_integer(), Some(40));
    assert_eq!(only_file["pipe_srtp"].as_bool(), Some(true));
    // Defaults fill the rest.
    assert_eq!(only_file["max_payload"].as_integer(), Some(65_536));
    assert_eq!(only_file["room_spill_cpu"].as_float(), Some(0.7));

    let env = effective(&check_config(FILE, &[("OCTO_WORKERS", "3")], &[]));
    assert_eq!(env["workers"].as_integer(), Some(3));
    assert_eq!(env["max_peers_per_room"].as_integer(), Some(7), "other file keys still apply");

    let flag = effective(&check_config(FILE, &[("OCTO_WORKERS", "3")], &["--workers", "4"]));
    assert_eq!(flag["workers"].as_integer(), Some(4));

    let spill = [("OCTO_ROOM_SPILL_CONSUMERS", "0"), ("OCTO_ROOM_SPILL_CPU", "0.5")];
    let env = effective(&check_config(FILE, &spill, &["--room-spill-cpu", "0.9"]));
    assert_eq!(env["room_spill_consumers"].as_integer(), Some(0), "0 turns spilling off");
    assert_eq!(env["room_spill_cpu"].as_float(), Some(0.9));
}

#[test]
fn an_unknown_key_names_the_file_line_and_key() {
    let out = check_config("workers = 2\n\nmax_peers_per_rom = 3\n", &[], &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("octo.toml"), "{err}");
    assert!(err.contains("line 3"), "{err}");
    assert!(err.contains("max_peers_per_rom"), "{err}");
}

#[test]
fn a_wrongly_typed_value_names_its_line_and_key() {
    let out = check_config("listen = \"127.0.0.1:1\"\nworkers = \"many\"\n", &[], &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 2") && err.contains("workers"), "{err}");
}

#[test]
fn the_example_file_is_valid_and_complete() {
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../octo.example.toml")).unwrap();
    // Uncomment every `# key = value` line: each documented key must be a real key.
    let all: String = example
        .lines()
        .map(|l| l.strip_prefix("# ").filter(|r| r.contains(" = ") && !r.starts_with(' ')).unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    // --check-config loads the certificate files: the example's paths are replaced by real ones.
    let cert = octo_tests::tls::TestCertificate::generate("example", &["localhost"]).unwrap();
    let flags = ["--tls-cert", cert.cert.to_str().unwrap(), "--tls-key", cert.key.to_str().unwrap()];
    let table = effective(&check_config(&all, &[], &flags));
    let help = String::from_utf8_lossy(&Command::new(bin("octo")).arg("--help").output().unwrap().stdout).into_owned();
    // `config` is the file itself, not a setting in it.
    for key in table.keys().filter(|k| *k != "config") {
        assert!(example.contains(&format!("{key} = ")), "octo.example.toml does not document {key}");
        // A list's flag is singular and repeated (`--rtc-listen-ip`, `--turn-url`).
        let flag = format!("--{}", key.replace('_', "-"));
        assert!(help.contains(&flag) || help.contains(flag.trim_end_matches('s')), "{key}");
    }
}

#[test]
fn configured_media_codecs_are_what_rooms_offer() {
    let octo = octo_tests::Octo::start(&["--workers", "1", "--media-codecs", "vp8,opus,vp8"]).expect("octo starts");
    let (status, body) = octo_tests::http_get(octo.addr, "/getRtpCapabilities?roomId=codecs").expect("capabilities");
    assert_eq!(status, 200, "{body}");
    let caps: serde_json::Value = serde_json::from_str(&body).expect("json");
    let mimes: Vec<&str> =
        caps["codecs"].as_array().expect("codecs").iter().filter_map(|c| c["mimeType"].as_str()).collect();
    // VP8 first as configured, its RTX, then Opus; the repeated vp8 counts once; nothing else.
    assert_eq!(mimes, ["video/VP8", "video/rtx", "audio/opus"], "{body}");

    let bad = check_config("", &[("OCTO_MEDIA_CODECS", "opus,av2")], &[]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("av2"), "{}", String::from_utf8_lossy(&bad.stderr));
}
