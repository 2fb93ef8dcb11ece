//! A real nats-server for the tests: loopback only, a free port, JetStream with file
//! storage in a temp dir; killed on drop. `restart()` keeps the port and the store.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use frameflow_cluster::{ConnectOptions, Tunables, blocking};

pub struct NatsServer {
    child: Option<Child>,
    /// The address it listens on (127.0.0.1 unless a test made another).
    pub host: String,
    pub port: u16,
    store: tempfile::TempDir,
    extra: Vec<String>,
    log: PathBuf,
}

fn binary() -> String {
    if let Ok(p) = std::env::var("NATS_SERVER") {
        return p;
    }
    for p in [
        "/usr/sbin/nats-server",
        "/usr/bin/nats-server",
        "/usr/local/bin/nats-server",
    ] {
        if std::path::Path::new(p).exists() {
            return p.to_owned();
        }
    }
    "nats-server".to_owned()
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

impl NatsServer {
    /// Starts `nats-server -js` with `extra` arguments (e.g. `--user u --pass p`).
    pub fn start(extra: &[&str]) -> Self {
        Self::start_on("127.0.0.1", extra)
    }

    /// [`NatsServer::start`] listening on `host`: an address of a link the test made
    /// (a veth pair into a network namespace of its own).
    pub fn start_on(host: &str, extra: &[&str]) -> Self {
        let store = tempfile::tempdir().expect("temp dir");
        let log = store.path().join("nats.log");
        let mut s = Self {
            child: None,
            host: host.to_owned(),
            port: free_port(),
            store,
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            log,
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let child = Command::new(binary())
            .args(["-a", &self.host, "-p", &self.port.to_string(), "-js", "-sd"])
            .arg(self.store.path().join("js"))
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start nats-server (scripts/install-deps.sh installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect((self.host.as_str(), self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server did not listen on port {}: {}",
                self.port,
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills the server (SIGKILL: no clean shutdown) and starts it again on the same
    /// port with the same store.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn url(&self) -> String {
        format!("nats://{}:{}", self.host, self.port)
    }

    pub fn url_with(&self, userinfo: &str) -> String {
        format!("nats://{userinfo}@{}:{}", self.host, self.port)
    }

    pub fn connect(&self, tunables: Tunables) -> blocking::Cluster {
        connect_url(&self.url(), tunables)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn connect_url(url: &str, tunables: Tunables) -> blocking::Cluster {
    let url = frameflow_cluster::ClusterUrl::parse(url).expect("url");
    blocking::Cluster::connect(
        &url,
        ConnectOptions {
            timeout: Duration::from_secs(5),
            name: "test".into(),
            tunables,
        },
    )
    .expect("connect")
}

/// Short ack_wait so redelivery tests take seconds.
pub fn quick() -> Tunables {
    Tunables {
        ack_wait: Duration::from_secs(2),
        ..Tunables::default()
    }
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}
