//! A real browser for the console's tests (`tests/console.rs`): Debian's headless
//! Chromium, driven through WebDriver (the `fantoccini` crate) by Debian's
//! `chromedriver`, both running INSIDE the lab's client namespace, where the nodes' API
//! addresses are reachable and nothing else is (the lab has no route out). This process
//! reaches chromedriver's port on the client's own loopback through
//! [`testbed::Lab::forward_tcp`]: a listener on the test machine's loopback whose
//! connections are made from inside the client namespace.
//!
//! The browser trusts the cluster's CA (the one `tandem keygen` made, whose node
//! certificates the API serves): it is put into an NSS database (`certutil`) under a
//! temporary HOME of the browser's own, where Chromium on Linux reads locally trusted
//! roots; no certificate error is ignored. The profile lives in that HOME too.
//!
//! Every step is bounded: each WebDriver command and each wait has a deadline, and
//! fails the test with what it waited for. Screenshots (PNG, 1280x800) go to
//! `$TANDEM_ARTEFACTS/console-screenshots/TEST/` or else `target/console-screenshots/TEST/`,
//! numbered in the order taken.
//!
//! What went wrong in the page is recorded and printed with every failure (a panic
//! while the browser is open): the browser's own log (`goog:loggingPrefs`, read from
//! chromedriver: uncaught errors, console messages, every response over 399, whatever
//! document it came from) and a recorder put into every document before its own scripts
//! run (through the DevTools protocol: errors, unhandled rejections, files that did not
//! load, responses over 399 with their status). [`Browser::problems`] gives them;
//! [`Browser::assert_no_problems`] fails a test that had any. What it starts ends with it: the WebDriver session is
//! closed (Chromium quits), then chromedriver is killed by its PID (its handle), and the
//! lab's teardown kills whatever of the client would be left.

#![allow(dead_code)]

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use testbed::{Forward, Lab, Node, Spawned};

/// chromedriver's port on the client's loopback.
const DRIVER_PORT: u16 = 9515;
/// The window (and screenshot) size.
pub const WIDTH: u32 = 1280;
pub const HEIGHT: u32 = 800;
/// How long one WebDriver command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// How long chromedriver may take to listen.
const DRIVER_START: Duration = Duration::from_secs(20);

/// Put into every document before its scripts (`Page.addScriptToEvaluateOnNewDocument`):
/// records in `window.__tandemProblems` what went wrong in the page.
const RECORDER: &str = r#"(() => {
  const notes = [];
  window.__tandemProblems = notes;
  const note = (kind, text) => { if (notes.length < 200) notes.push(`${new Date().toISOString()} ${location.pathname}: ${kind}: ${text}`); };
  window.addEventListener('error', (e) => {
    const t = e.target;
    if (t && t !== window && (t.src || t.href)) note('did not load', t.src || t.href);
    else note('uncaught error', `${e.message} at ${e.filename}:${e.lineno}:${e.colno}`);
  }, true);
  window.addEventListener('unhandledrejection', (e) => note('unhandled rejection', String(e.reason && (e.reason.stack || e.reason))));
  for (const level of ['error', 'warn']) {
    const original = console[level];
    console[level] = (...args) => { note(`console.${level}`, args.map(String).join(' ')); original.apply(console, args); };
  }
  try {
    for (const type of ['navigation', 'resource']) {
      new PerformanceObserver((list) => {
        for (const r of list.getEntries()) if (r.responseStatus >= 400) note(`HTTP ${r.responseStatus}`, r.name);
      }).observe({ type, buffered: true });
    }
  } catch (_) { /* no responseStatus in this browser */ }
})();"#;

/// A chromedriver command that WebDriver has none for: `POST /session/{id}/{path}`.
#[derive(Debug)]
struct Vendor {
    path: &'static str,
    body: Value,
}

impl fantoccini::wd::WebDriverCompatibleCommand for Vendor {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/{}", session.unwrap_or_default(), self.path))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(self.body.to_string()))
    }
}

/// WebDriver's keys (the spec's code points).
pub const F1: &str = "\u{E031}";
pub const ESCAPE: &str = "\u{E00C}";

/// Whether this machine has what the browser needs; otherwise the reason.
pub fn availability() -> Result<(), String> {
    let missing: Vec<&str> = ["chromium", "chromedriver", "certutil"]
        .into_iter()
        .filter(|program| !on_path(program))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "missing {} (apt-get install chromium chromium-driver libnss3-tools)",
            missing.join(", ")
        ))
    }
}

fn on_path(program: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|dir| dir.join(program).is_file())
}

/// Headless Chromium in the lab's client, driven from here.
pub struct Browser {
    runtime: tokio::runtime::Runtime,
    client: Option<Client>,
    driver: Option<Spawned>,
    forward: Forward,
    home: tempfile::TempDir,
    shots: PathBuf,
    taken: Cell<u32>,
}

/// The directory screenshots of `test` go to (created).
pub fn artefacts(test: &str) -> PathBuf {
    let base = match std::env::var_os("TANDEM_ARTEFACTS") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .expect("the target directory")
            .to_path_buf(),
    };
    let dir = base.join("console-screenshots").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}

impl Browser {
    /// chromedriver started in `lab`'s client with a HOME whose NSS database trusts the
    /// CA certificate `ca`, and a WebDriver session to it (Chromium starts). Screenshots
    /// go to [`artefacts`]`(test)`.
    pub fn start(lab: &Lab, ca: &Path, test: &str) -> Browser {
        let home = tempfile::Builder::new().prefix("tandem-browser-").tempdir().expect("home");
        trust(home.path(), ca);
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        let home_dir = home.path().to_str().expect("a UTF-8 temporary path").to_owned();
        let port = format!("--port={DRIVER_PORT}");
        let driver = lab
            .spawn_env(Node::Client, &["chromedriver", &port], &[("HOME", &home_dir)])
            .expect("starting chromedriver in the client");
        let forward = lab.forward_tcp(Node::Client, DRIVER_PORT).expect("the forwarder");
        let mut browser = Browser {
            runtime,
            client: None,
            driver: Some(driver),
            forward,
            home,
            shots: artefacts(test),
            taken: Cell::new(0),
        };
        let url = format!("http://{}", browser.forward.address());
        let capabilities = json!({
            "browserName": "chrome",
            // The browser's log (errors, console, failed responses) kept for
            // [`Browser::problems`].
            "goog:loggingPrefs": { "browser": "ALL" },
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new",
                    // Chromium refuses to run as root with its sandbox (which needs an
                    // unprivileged user); the tests run as root, inside the lab's own
                    // namespaces, against the lab's own pages only.
                    "--no-sandbox",
                    "--disable-gpu",
                    format!("--window-size={WIDTH},{HEIGHT}"),
                    format!("--user-data-dir={home_dir}/profile"),
                    "--no-first-run",
                    "--no-default-browser-check",
                    // Nothing of the browser's own calls home (there is no route anyway).
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-features=Translate,OptimizationHints,MediaRouter",
                ],
            },
        });
        let Value::Object(capabilities) = capabilities else { unreachable!() };
        let deadline = Instant::now() + DRIVER_START;
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            let attempt = browser.block_on(async {
                ClientBuilder::new(connector).capabilities(capabilities.clone()).connect(&url).await
            });
            match attempt {
                Ok(Ok(client)) => break client,
                Ok(Err(error)) if Instant::now() >= deadline => {
                    panic!("no WebDriver session: {error}\n{}", browser.driver_output())
                }
                Err(timeout) => panic!("no WebDriver session: {timeout}"),
                Ok(Err(_)) => std::thread::sleep(Duration::from_millis(200)),
            }
        };
        browser.client = Some(client);
        browser
            .vendor(
                "goog/cdp/execute",
                json!({
                    "cmd": "Page.addScriptToEvaluateOnNewDocument",
                    "params": { "source": RECORDER },
                }),
            )
            .unwrap_or_else(|e| panic!("installing the page's recorder: {e}"));
        browser
    }

    /// Sends chromedriver's own command `path` with `body`; its value.
    fn vendor(&self, path: &'static str, body: Value) -> Result<Value, String> {
        self.block_on(self.client().issue_cmd(Vendor { path, body }))
            .and_then(|r| r.map_err(|e| e.to_string()))
    }

    /// What went wrong in the page since the last call: the browser's log (warnings and
    /// errors, of every document since) and the current document's recorder, one line
    /// each. `/favicon.ico`'s 404 is no problem (the console has no icon).
    pub fn problems(&self) -> Vec<String> {
        let mut lines = Vec::new();
        match self.vendor("se/log", json!({ "type": "browser" })) {
            Ok(Value::Array(entries)) => {
                for entry in entries {
                    let level = entry["level"].as_str().unwrap_or_default();
                    if matches!(level, "WARNING" | "SEVERE") {
                        let message = entry["message"].as_str().unwrap_or_default();
                        lines.push(format!("browser log {level}: {message}"));
                    }
                }
            }
            Ok(other) => lines.push(format!("browser log: unexpected answer {other}")),
            Err(error) => lines.push(format!("browser log: not read: {error}")),
        }
        let recorded =
            self.block_on(self.client().execute("return window.__tandemProblems || [];", vec![]));
        match recorded {
            Ok(Ok(Value::Array(notes))) => lines
                .extend(notes.iter().map(|n| format!("page: {}", n.as_str().unwrap_or_default()))),
            Ok(Ok(other)) => lines.push(format!("page: unexpected record {other}")),
            Ok(Err(error)) => lines.push(format!("page: record not read: {error}")),
            Err(error) => lines.push(format!("page: record not read: {error}")),
        }
        lines.retain(|line| !line.contains("/favicon.ico"));
        lines
    }

    /// Fails if anything went wrong in the page (see [`Browser::problems`]).
    pub fn assert_no_problems(&self) {
        let problems = self.problems();
        assert!(problems.is_empty(), "problems in the page:\n{}", problems.join("\n"));
    }

    /// Runs `future` on the browser's runtime, within [`COMMAND_TIMEOUT`].
    fn block_on<T>(&self, future: impl std::future::Future<Output = T>) -> Result<T, String> {
        self.runtime
            .block_on(async { tokio::time::timeout(COMMAND_TIMEOUT, future).await })
            .map_err(|_| format!("a WebDriver command took over {COMMAND_TIMEOUT:?}"))
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("a session")
    }

    /// chromedriver's output so far (for failures).
    pub fn driver_output(&self) -> String {
        match &self.driver {
            Some(driver) => format!(
                "chromedriver stdout:\n{}\nstderr:\n{}",
                driver.stdout().unwrap_or_default(),
                driver.stderr().unwrap_or_default()
            ),
            None => String::new(),
        }
    }

    /// Opens `url` (waits for the load).
    pub fn goto(&self, url: &str) {
        self.block_on(self.client().goto(url))
            .and_then(|r| r.map_err(|e| e.to_string()))
            .unwrap_or_else(|e| panic!("opening {url}: {e}"));
    }

    /// Runs `script` (a function body: `return ...`) in the page with `args`.
    pub fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.block_on(self.client().execute(script, args))
            .and_then(|r| r.map_err(|e| e.to_string()))
            .unwrap_or_else(|e| panic!("running {script:?}: {e}"))
    }

    /// Runs the asynchronous `script`, whose last argument is the callback to call with
    /// the result.
    pub fn js_async(&self, script: &str, args: Vec<Value>) -> Value {
        self.block_on(self.client().execute_async(script, args))
            .and_then(|r| r.map_err(|e| e.to_string()))
            .unwrap_or_else(|e| panic!("running {script:?}: {e}"))
    }

    /// Polls the expression `expression` in the page every 20 ms until it is truthy
    /// (returns it) or `within` passes (fails, naming `what`).
    pub fn wait_for(&self, what: &str, expression: &str, within: Duration) -> Value {
        let script = format!("return ({expression});");
        let deadline = Instant::now() + within;
        loop {
            let value = self.js(&script, vec![]);
            let truthy = match &value {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return value;
            }
            if Instant::now() >= deadline {
                let shot = self.shot(&format!("timeout-{}", what.replace(' ', "-")));
                panic!(
                    "waited {within:?} for {what} ({expression}); screenshot {}",
                    shot.display()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until `css` matches an element, within `within`.
    pub fn wait_css(&self, css: &str, within: Duration) {
        let expression = format!("document.querySelector({}) !== null", json!(css));
        self.wait_for(css, &expression, within);
    }

    /// How many elements `css` matches now.
    pub fn count(&self, css: &str) -> u64 {
        let script = "return document.querySelectorAll(arguments[0]).length;";
        self.js(script, vec![json!(css)]).as_u64().unwrap_or(0)
    }

    /// Clicks the element `css` matches (it must exist).
    pub fn click(&self, css: &str) {
        self.block_on(async {
            let element = self.client().find(Locator::Css(css)).await?;
            element.click().await
        })
        .and_then(|r| r.map_err(|e| e.to_string()))
        .unwrap_or_else(|e| panic!("clicking {css}: {e}"));
    }

    /// Types `text` into the element `css` matches.
    pub fn type_into(&self, css: &str, text: &str) {
        self.block_on(async {
            let element = self.client().find(Locator::Css(css)).await?;
            element.send_keys(text).await
        })
        .and_then(|r| r.map_err(|e| e.to_string()))
        .unwrap_or_else(|e| panic!("typing into {css}: {e}"));
    }

    /// Sends `keys` (e.g. [`F1`], [`ESCAPE`]) to the focused element.
    pub fn press(&self, keys: &str) {
        self.block_on(async {
            let element = self.client().active_element().await?;
            element.send_keys(keys).await
        })
        .and_then(|r| r.map_err(|e| e.to_string()))
        .unwrap_or_else(|e| panic!("pressing {keys:?}: {e}"));
    }

    /// Chooses `value` in the `<select>` `css` matches (as a user does: the page sees
    /// the change).
    pub fn choose(&self, css: &str, value: &str) {
        self.block_on(async {
            let element = self.client().find(Locator::Css(css)).await?;
            element.select_by_value(value).await
        })
        .and_then(|r| r.map_err(|e| e.to_string()))
        .unwrap_or_else(|e| panic!("choosing {value} in {css}: {e}"));
    }

    /// Signs in at `endpoint`'s `/login` with `token` through the form, then waits until
    /// the console is connected.
    pub fn sign_in(&self, endpoint: &str, token: &str) {
        self.goto(&format!("{endpoint}/login"));
        self.wait_css("#login-form #token", Duration::from_secs(10));
        self.type_into("#token", token);
        self.click("#login-submit");
        self.wait_for(
            "the console, connected",
            "document.body.dataset.connected === 'true' && document.body.dataset.role !== ''",
            Duration::from_secs(15),
        );
    }

    /// A screenshot of the window, saved as `NN-name.png` in the test's directory; its
    /// path.
    pub fn shot(&self, name: &str) -> PathBuf {
        let png = self
            .block_on(self.client().screenshot())
            .and_then(|r| r.map_err(|e| e.to_string()))
            .unwrap_or_else(|e| panic!("a screenshot: {e}"));
        let number = self.taken.get() + 1;
        self.taken.set(number);
        let path = self.shots.join(format!("{number:02}-{name}.png"));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        path
    }

    /// Where the screenshots go.
    pub fn shots(&self) -> &Path {
        &self.shots
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A failing test: what went wrong in the page, and a screenshot of it.
        if std::thread::panicking() && self.client.is_some() {
            let shot = self.block_on(self.client().screenshot());
            if let Ok(Ok(png)) = shot {
                let path = self.shots.join("failed.png");
                if std::fs::write(&path, png).is_ok() {
                    eprintln!("browser: screenshot at the failure: {}", path.display());
                }
            }
            let problems = self.problems();
            eprintln!("browser: problems in the page ({}):", problems.len());
            for line in problems {
                eprintln!("  {line}");
            }
        }
        // The session first (chromedriver quits Chromium), then chromedriver by its PID.
        if let Some(client) = self.client.take() {
            if let Err(error) = self.block_on(client.close()) {
                eprintln!("browser: closing the session: {error}");
            }
        }
        if let Some(driver) = self.driver.take() {
            drop(driver);
        }
    }
}

/// Makes `home/.pki/nssdb` (an NSS database, Chromium's store of locally trusted
/// roots on Linux) trust the certificate `ca` as a CA for web sites.
fn trust(home: &Path, ca: &Path) {
    let db = home.join(".pki/nssdb");
    std::fs::create_dir_all(&db).expect("the NSS database's directory");
    let db = format!("sql:{}", db.display());
    let ca = ca.to_str().expect("a UTF-8 path");
    for args in [
        vec!["-N", "-d", &db, "--empty-password"],
        vec!["-A", "-d", &db, "-n", "tandem cluster CA", "-t", "C,,", "-i", ca],
    ] {
        let output = Command::new("certutil").args(&args).output().expect("running certutil");
        assert!(
            output.status.success(),
            "certutil {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
