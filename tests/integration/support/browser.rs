//! `Browser`: a real headless Chromium driven over WebDriver (Debian's
//! `chromium` and `chromium-driver`; `scripts/ensure-browser.sh` installs
//! them). Each `Browser` runs its own `chromedriver` on a free port with a
//! fresh profile directory, and stops both on `close` or `Drop`.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};

use super::{eventually, free_port};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The axe-core build the accessibility checks inject (MPL-2.0, see
/// `tests/browser/vendor/`).
const AXE: &str = include_str!("../../browser/vendor/axe-4.10.3.min.js");

pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

/// Options a session starts with.
#[derive(Default, Clone, Copy)]
pub struct BrowserOptions {
    pub reduced_motion: bool,
}

impl Browser {
    pub async fn start(options: BrowserOptions) -> Browser {
        for binary in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                PathBuf::from(binary).exists(),
                "{binary} is missing: run scripts/ensure-browser.sh (scripts/test.sh does)"
            );
        }
        let port = free_port();
        // Its own process group: Chromium inherits it, so killing the group
        // leaves no browser behind even when a test panics mid-session.
        let driver = Command::new(CHROMEDRIVER)
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let profile = tempfile::tempdir().expect("a profile directory");
        let mut args = vec![
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--hide-scrollbars".to_owned(),
            "--window-size=1366,768".to_owned(),
            "--lang=en-US".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        if options.reduced_motion {
            args.push("--force-prefers-reduced-motion".to_owned());
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({"binary": CHROMIUM, "args": args}),
        );
        let url = format!("http://127.0.0.1:{port}");
        let client = eventually(
            "chromedriver to accept a session",
            Duration::from_secs(30),
            || {
                let capabilities = capabilities.clone();
                let url = url.clone();
                async move {
                    ClientBuilder::new(HttpConnector::new())
                        .capabilities(capabilities)
                        .connect(&url)
                        .await
                        .ok()
                }
            },
        )
        .await;
        Browser {
            client,
            driver,
            _profile: profile,
        }
    }

    /// Ends the session (Chromium exits) and stops chromedriver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        self.stop_driver();
    }

    fn stop_driver(&mut self) {
        if let Ok(group) = i32::try_from(self.driver.id()) {
            // SAFETY: kill(2) with a negative pid signals that process group
            // only; the group is the chromedriver this Browser started.
            unsafe { libc::kill(-group, libc::SIGKILL) };
        }
        let _ = self.driver.wait();
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
    }

    /// Runs a script in the page and returns its value.
    pub async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// The text of the first element matching `css`, `None` while there is
    /// none.
    pub async fn text(&self, css: &str) -> Option<String> {
        let element = self.client.find(Locator::Css(css)).await.ok()?;
        element.text().await.ok()
    }

    /// Waits (up to `within`) until `css` matches an element whose text
    /// satisfies `accept`, and returns that text.
    pub async fn wait_text(
        &self,
        what: &str,
        css: &str,
        within: Duration,
        accept: impl Fn(&str) -> bool,
    ) -> String {
        eventually(what, within, || async {
            self.text(css).await.filter(|text| accept(text))
        })
        .await
    }

    /// Opens a page with a live event stream and waits until its
    /// connection badge says it is live.
    pub async fn open_live(&self, url: &str, within: Duration) {
        self.goto(url).await;
        self.wait_live("the page to go live", within).await;
    }

    pub async fn wait_live(&self, what: &str, within: Duration) {
        self.wait_text(what, ".connection[data-state=live]", within, |_| true)
            .await;
    }

    /// Types `text` into the first element matching `css`.
    pub async fn type_into(&self, css: &str, text: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    pub async fn click(&self, css: &str) {
        let element = eventually(
            &format!("{css} to be there"),
            Duration::from_secs(10),
            || async { self.client.find(Locator::Css(css)).await.ok() },
        )
        .await;
        element
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Sets the size of the page's viewport (not the window) in CSS pixels.
    pub async fn viewport(&self, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .expect("resize the window");
        // Headless windows have no frame, but measure and correct anyway.
        let inner = self
            .js("return [window.innerWidth, window.innerHeight];")
            .await;
        let (w, h) = (
            inner[0].as_u64().unwrap_or(0),
            inner[1].as_u64().unwrap_or(0),
        );
        if (w, h) != (u64::from(width), u64::from(height)) && w > 0 && h > 0 {
            let dw = u64::from(width) as i64 - w as i64;
            let dh = u64::from(height) as i64 - h as i64;
            self.client
                .set_window_size((width as i64 + dw) as u32, (height as i64 + dh) as u32)
                .await
                .expect("resize the window");
        }
    }

    /// axe-core's WCAG 2.1 A and AA violations on the current page, each as
    /// "rule: target (summary)".
    pub async fn accessibility_violations(&self) -> Vec<String> {
        let injected = self
            .client
            .execute(&format!("{AXE}\n;return typeof axe;"), vec![])
            .await
            .expect("inject axe-core");
        assert_eq!(injected, json!("object"), "axe-core loaded");
        let result = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})
                   .then((r) => done(r.violations.flatMap((v) => v.nodes.map((n) =>
                      `${v.id}: ${n.target.join(' ')} (${(n.failureSummary || '').replace(/\\s+/g, ' ')})`))))
                   .catch((e) => done([`axe failed: ${e}`]));",
                vec![],
            )
            .await
            .expect("run axe-core");
        result
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub async fn screenshot(&self, path: &std::path::Path) {
        let png = self.client.screenshot().await.expect("screenshot");
        std::fs::write(path, png).expect("write the screenshot");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.stop_driver();
    }
}
