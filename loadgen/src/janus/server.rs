//! The Janus under comparison: started by the load generator from a configuration it writes to a
//! temp dir (a free WebSocket port, ICE-lite, no trickle, the VideoRoom plugin and the WebSocket
//! transport only, quiet logs, a fixed number of event loops), or one already running given by its
//! WebSocket address.
//!
//! Janus never offers a loopback candidate (it skips loopback interfaces when it gathers), so the
//! one it starts runs in a network namespace of its own, reached over a veth pair: the only
//! interface it sees, and traffic that never leaves this machine. A veth hop costs the kernel what
//! loopback does (both deliver in the sender's softirq), so Octo on 127.0.0.1 is not favoured.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// Where Debian's `janus` package puts its plugins and transports.
const LIB_DIRS: [&str; 2] = ["/usr/lib/x86_64-linux-gnu/janus", "/usr/lib/janus"];

pub struct JanusServer {
    child: Option<Child>,
    netns: Option<Netns>,
    pub ws_addr: SocketAddr,
    /// The configuration written for it (printed with the figures).
    pub config: String,
    dir: Option<PathBuf>,
}

/// How the load generator starts Janus.
#[derive(Debug, Clone)]
pub struct JanusOptions {
    pub bin: PathBuf,
    /// Janus's static event loops (`event_loops`): one per core it may use.
    pub event_loops: usize,
    /// CPUs Janus may run on (all its threads); empty: no pinning.
    pub cpus: Vec<usize>,
}

/// `janus.jcfg`: the core's settings. Every media thread is one of `event_loops` static loops
/// (Janus's documented setting for a bounded thread count, instead of a thread per handle).
fn core_config(dir: &Path, lib: &Path, event_loops: usize, debug_level: u8, link: &str) -> String {
    format!(
        r#"general: {{
	configs_folder = "{dir}"
	plugins_folder = "{lib}/plugins"
	transports_folder = "{lib}/transports"
	events_folder = "{lib}/events"
	loggers_folder = "{lib}/loggers"
	debug_level = {debug_level}
	session_timeout = 60
	event_loops = {event_loops}
	hide_dependencies = true
}}
certificates: {{
}}
media: {{
	rtp_port_range = "20000-40000"
}}
nat: {{
	ice_lite = false
	ice_tcp = false
	full_trickle = false
	ice_enforce_list = "{link}"
	ignore_mdns = true
	nice_debug = {nice_debug}
}}
plugins: {{
	disable = "libjanus_audiobridge.so,libjanus_echotest.so,libjanus_nosip.so,libjanus_recordplay.so,libjanus_sip.so,libjanus_streaming.so,libjanus_textroom.so,libjanus_videocall.so,libjanus_voicemail.so,libjanus_duktape.so,libjanus_lua.so"
}}
transports: {{
	disable = "libjanus_http.so,libjanus_rabbitmq.so,libjanus_mqtt.so,libjanus_nanomsg.so,libjanus_pfunix.so"
}}
events: {{
	broadcast = false
}}
loggers: {{
}}
"#,
        dir = dir.display(),
        lib = lib.display(),
        nice_debug = debug_level >= 7,
    )
}

fn websockets_config(ip: Ipv4Addr, port: u16) -> String {
    format!(
        "general: {{\n\tjson = \"compact\"\n\tws = true\n\tws_port = {port}\n\tws_ip = \"{ip}\"\n\twss = false\n}}\nadmin: {{\n\tadmin_ws = false\n\tadmin_wss = false\n}}\n"
    )
}

/// Rooms are created through the API (each scenario makes its own), so none is predefined.
const VIDEOROOM_CONFIG: &str = "general: {\n\tstring_ids = false\n}\n";

/// A network namespace with one veth pair to this one: `host` here, `inner` in it.
struct Netns {
    name: String,
    host_link: String,
    pub host: Ipv4Addr,
    pub inner: Ipv4Addr,
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip").args(args).output().context("running `ip` (Debian package iproute2)")?;
    if !out.status.success() {
        bail!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

impl Netns {
    /// Needs root (CI runs as root); names and a /30 from the pid, so parallel runs do not meet.
    fn create() -> anyhow::Result<Self> {
        let pid = std::process::id();
        let tag = pid % 100_000;
        let (b, c) = (200 + (pid / 250) % 50, pid % 250);
        let ns = Self {
            name: format!("octo-janus-{pid}"),
            host_link: format!("ojh{tag}"),
            host: Ipv4Addr::new(10, b as u8, c as u8, 1),
            inner: Ipv4Addr::new(10, b as u8, c as u8, 2),
        };
        let inner_link = format!("ojn{tag}");
        ip(&["netns", "add", &ns.name]).context("a network namespace for Janus (needs root)")?;
        ip(&["link", "add", &ns.host_link, "type", "veth", "peer", "name", &inner_link])?;
        ip(&["link", "set", &inner_link, "netns", &ns.name])?;
        ip(&["addr", "add", &format!("{}/30", ns.host), "dev", &ns.host_link])?;
        ip(&["link", "set", &ns.host_link, "up"])?;
        let inside = |args: &[&str]| {
            let mut all = vec!["netns", "exec", &ns.name, "ip"];
            all.extend_from_slice(args);
            ip(&all)
        };
        inside(&["addr", "add", &format!("{}/30", ns.inner), "dev", &inner_link])?;
        inside(&["link", "set", &inner_link, "up"])?;
        inside(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace deletes its end of the pair, and with it ours.
        let _ = ip(&["netns", "del", &self.name]);
        let _ = ip(&["link", "del", &self.host_link]);
    }
}

fn command_env_debug(file: &mut std::fs::File) -> Stdio {
    file.try_clone().map_or_else(|_| Stdio::null(), Stdio::from)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl JanusServer {
    /// Writes the configuration to a temp dir, starts Janus and waits until its WebSocket listens.
    pub fn launch(options: &JanusOptions) -> anyhow::Result<Self> {
        if !options.bin.is_file() {
            bail!(
                "{} is missing: install Debian's `janus` package (apt-get install janus) or pass --janus-bin / --janus-url",
                options.bin.display()
            );
        }
        let lib = LIB_DIRS
            .iter()
            .map(PathBuf::from)
            .find(|d| d.join("plugins/libjanus_videoroom.so").is_file())
            .context("Janus's VideoRoom plugin is missing (apt-get install janus)")?;
        let dir = std::env::temp_dir().join(format!("octo-loadgen-janus-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let netns = Netns::create()?;
        let port = free_port()?;
        // Warnings only: a log line per packet event would bill Janus for its logging. More for
        // debugging with OCTO_LOADGEN_JANUS_DEBUG=1..7 (and RUST_LOG=janus=debug prints the log).
        let debug_level = std::env::var("OCTO_LOADGEN_JANUS_DEBUG").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
        let link = netns.host_link.replacen("ojh", "ojn", 1);
        let config = core_config(&dir, &lib, options.event_loops.max(1), debug_level, &link);
        std::fs::write(dir.join("janus.jcfg"), &config)?;
        let ws = websockets_config(netns.inner, port);
        std::fs::write(dir.join("janus.transport.websockets.jcfg"), &ws)?;
        std::fs::write(dir.join("janus.plugin.videoroom.jcfg"), VIDEOROOM_CONFIG)?;
        // `ip netns exec` enters the namespace and execs Janus: the child's pid is Janus's.
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &netns.name])
            .arg(&options.bin)
            .arg(format!("--config={}", dir.join("janus.jcfg").display()))
            .arg(format!("--configs-folder={}", dir.display()))
            .arg("--disable-colors")
            .arg(format!("--log-file={}", dir.join("janus.log").display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(if debug_level >= 7 {
                // libnice's own debugging goes to stderr, through GLib.
                command_env_debug(&mut std::fs::File::create(dir.join("janus.stderr"))?)
            } else {
                Stdio::null()
            });
        if debug_level >= 7 {
            command.env("G_MESSAGES_DEBUG", "all");
        }
        let cpus = options.cpus.clone();
        // SAFETY: prctl and sched_setaffinity are async-signal-safe and touch only this child.
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if !cpus.is_empty() {
                    let mut set: libc::cpu_set_t = std::mem::zeroed();
                    for &cpu in &cpus {
                        libc::CPU_SET(cpu, &mut set);
                    }
                    if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let child = command.spawn().with_context(|| format!("starting {}", options.bin.display()))?;
        let ws_addr: SocketAddr = (netns.inner, port).into();
        let mut server =
            Self { child: Some(child), netns: Some(netns), ws_addr, config: format!("{config}\n{ws}"), dir: Some(dir) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect_timeout(&ws_addr, Duration::from_millis(200)).is_err() {
            if let Some(status) = server.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                bail!("janus exited ({status}) before listening; its log: {}", server.log_tail());
            }
            if Instant::now() > deadline {
                bail!("janus did not listen on {ws_addr} within 30 s; its log: {}", server.log_tail());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(server)
    }

    /// A Janus already running, by its WebSocket address.
    pub fn connect(ws_addr: SocketAddr) -> Self {
        Self { child: None, netns: None, ws_addr, config: "(a running Janus: its own configuration)".into(), dir: None }
    }

    /// The pid of the Janus process (all its threads are billed), when the load generator started it.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn log_tail(&self) -> String {
        let Some(dir) = &self.dir else { return String::new() };
        let log = std::fs::read_to_string(dir.join("janus.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let keep: Vec<&str> = lines.into_iter().filter(|l| !l.contains("No such feed")).collect();
        keep[keep.len().saturating_sub(60)..].join("\n")
    }
}

impl Drop for JanusServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill has no memory preconditions; pid is our own child.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            for _ in 0..30 {
                if child.try_wait().ok().flatten().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        self.netns.take();
        tracing::debug!(target: "janus", "janus's log ends:\n{}", self.log_tail());
        // Debugging Janus (OCTO_LOADGEN_JANUS_DEBUG): its configuration and whole log are kept.
        if let Some(dir) = self.dir.take()
            && std::env::var_os("OCTO_LOADGEN_JANUS_DEBUG").is_none()
        {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
