//! A headless Chromium driven over WebDriver (Debian's `chromium-driver`), for the tests
//! where a real browser is the judge: the key service's CORS and the web console.

use serde_json::{Value, json};

/// `chromedriver` (Debian's `chromium-driver`), required in CI, else the browser test is
/// skipped.
pub(crate) fn chromedriver() -> Option<std::path::PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("chromedriver"))
            .find(|p| p.is_file())
    });
    match found {
        Some(path) => Some(path),
        None if std::env::var_os("CI").is_some() => {
            panic!("chromedriver is required in CI (Debian's chromium-driver)")
        }
        None => {
            mailpki_test_support::skipped(
                "the browser tests",
                "install Debian's chromium and chromium-driver",
            );
            None
        }
    }
}

/// A web server for one page, on loopback, answering every request with `html`.
pub(crate) fn page_server(html: &'static str) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().map_while(Result::ok) {
            // One thread a connection: browsers open sockets ahead of need (preconnect) that
            // may never carry a request.
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(10)));
                let mut request = [0u8; 4096];
                if matches!(stream.read(&mut request), Ok(n) if n > 0) {
                    let _ = write!(
                        stream,
                        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{html}",
                        html.len()
                    );
                }
            });
        }
    });
    port
}

/// The key WebDriver names an element by.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A headless Chromium driven over WebDriver; the session ends when this is dropped.
pub(crate) struct Browser {
    driver: std::process::Child,
    url: String,
    session: String,
}

impl Browser {
    pub(crate) fn start(chromedriver: &std::path::Path) -> Self {
        use std::io::BufRead;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut driver = std::process::Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Ready once it says so on stdout.
        let stdout = driver.stdout.take().unwrap();
        let mut lines = std::io::BufReader::new(stdout).lines();
        assert!(
            lines
                .by_ref()
                .map_while(Result::ok)
                .any(|l| l.contains("started successfully")),
            "chromedriver did not start"
        );
        std::thread::spawn(move || lines.for_each(drop));
        let url = format!("http://127.0.0.1:{port}");
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,900",
            ]},
        }}});
        let reply = webdriver(&url, "POST", "/session", Some(&capabilities));
        let session = reply["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {reply}"))
            .to_owned();
        let browser = Self {
            driver,
            url,
            session,
        };
        // Nothing the page does may hang the suite.
        browser.post("timeouts", &json!({"pageLoad": 30_000, "script": 30_000}));
        browser
    }

    fn post(&self, path: &str, body: &Value) -> Value {
        let path = format!("/session/{}/{path}", self.session);
        webdriver(&self.url, "POST", &path, Some(body))["value"].clone()
    }

    fn get(&self, path: &str) -> Value {
        let path = format!("/session/{}/{path}", self.session);
        webdriver(&self.url, "GET", &path, None)["value"].clone()
    }

    pub(crate) fn open(&self, page: &str) {
        self.post("url", &json!({ "url": page }));
    }

    /// Waits (up to 20 s) until `ready` holds: a page that moves on by itself (a meta
    /// refresh) is not awaited by WebDriver.
    pub(crate) fn wait_until(&self, what: &str, ready: impl Fn(&Self) -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !ready(self) {
            assert!(
                std::time::Instant::now() < deadline,
                "waited in vain for {what} on {} ({:?}: {})",
                self.current_url(),
                self.title(),
                self.text("body")
            );
            std::thread::yield_now();
        }
    }

    pub(crate) fn current_url(&self) -> String {
        self.get("url").as_str().unwrap_or_default().to_owned()
    }

    pub(crate) fn title(&self) -> String {
        self.get("title").as_str().unwrap_or_default().to_owned()
    }

    /// The page's markup as the browser holds it.
    pub(crate) fn source(&self) -> String {
        self.get("source").as_str().unwrap_or_default().to_owned()
    }

    /// Elements matching a CSS selector.
    pub(crate) fn find_all(&self, css: &str) -> Vec<String> {
        let found = self.post("elements", &json!({"using": "css selector", "value": css}));
        found
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e[ELEMENT].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The one element matching `css`; panics, naming the page, when there is none.
    pub(crate) fn find(&self, css: &str) -> String {
        self.find_all(css).into_iter().next().unwrap_or_else(|| {
            panic!(
                "no `{css}` on {} ({})",
                self.current_url(),
                self.text("body")
            )
        })
    }

    pub(crate) fn click(&self, css: &str) {
        let element = self.find(css);
        self.post(&format!("element/{element}/click"), &json!({}));
    }

    /// Clicks what leads to another page and waits until that page has loaded.
    pub(crate) fn follow(&self, css: &str) {
        self.execute("window.mailpkiOldPage = true", &[]);
        self.click(css);
        self.wait_until("the next page", |b| {
            b.execute(
                "return window.mailpkiOldPage === undefined && document.readyState === 'complete'",
                &[],
            ) == true
        });
    }

    pub(crate) fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css);
        self.post(&format!("element/{element}/clear"), &json!({}));
        self.post(
            &format!("element/{element}/value"),
            &json!({ "text": text }),
        );
    }

    /// The visible text of the first element matching `css` (empty when there is none).
    pub(crate) fn text(&self, css: &str) -> String {
        self.find_all(css)
            .first()
            .map(|e| {
                self.get(&format!("element/{e}/text"))
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .unwrap_or_default()
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page.
    pub(crate) fn execute(&self, script: &str, args: &[Value]) -> Value {
        self.post("execute/sync", &json!({"script": script, "args": args}))
    }

    /// Runs `script` whose last argument is the callback to call with the result.
    pub(crate) fn execute_async(&self, script: &str, args: &[Value]) -> Value {
        self.post("execute/async", &json!({"script": script, "args": args}))
    }

    /// Runs `fetch(url, POST body)` in the page and returns `{ok, body}` or `{ok: false, error}`.
    pub(crate) fn fetch(&self, url: &str, body: &str) -> Value {
        let script = "const done = arguments[arguments.length - 1];\
            fetch(arguments[0], {method: 'POST', headers: {'Content-Type': 'application/json'},\
                                 body: arguments[1]})\
              .then(r => r.json()).then(j => done({ok: true, body: j}),\
                                        e => done({ok: false, error: String(e)}));";
        self.execute_async(script, &[json!(url), json!(body)])
    }

    /// The value of the cookie `name` the browser holds for the current page (`HttpOnly` ones
    /// included: WebDriver sees them).
    pub(crate) fn cookie(&self, name: &str) -> Option<String> {
        self.get(&format!("cookie/{name}"))["value"]
            .as_str()
            .map(str::to_owned)
    }

    /// Resizes the window (CSS pixels).
    pub(crate) fn resize(&self, width: u32, height: u32) {
        self.post("window/rect", &json!({"width": width, "height": height}));
    }

    /// Saves a PNG of the window to `path`.
    pub(crate) fn screenshot(&self, path: &std::path::Path) {
        use base64::Engine as _;
        let png = self.get("screenshot");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap_or_default())
            .unwrap_or_default();
        assert!(
            bytes.starts_with(b"\x89PNG"),
            "no screenshot of {}",
            self.current_url()
        );
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(path, bytes).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let path = format!("/session/{}", self.session);
        let _ = mailpki_test_support::http1(&self.url, "DELETE", &path, &[], None);
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn webdriver(url: &str, method: &str, path: &str, body: Option<&Value>) -> Value {
    let body = body.map(Value::to_string);
    let reply = mailpki_test_support::http1(
        url,
        method,
        path,
        &[("Content-Type", "application/json")],
        body.as_deref().map(str::as_bytes),
    );
    serde_json::from_str(&reply.body).unwrap_or(Value::Null)
}
