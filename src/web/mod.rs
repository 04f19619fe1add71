//! The web pages of API.md "Web pages": kiosk, counter, display board,
//! media player, dashboard, the customer's ticket on a phone, and the index.
//!
//! Every page is one HTML shell (`assets/page.html`) filled in here with the
//! page's name, its path parameters as `data-` attributes (HTML-escaped),
//! and the texts of the chosen language; the page's own script does the
//! rest through the public API and its event stream, exactly as a third
//! party's page could. Besides the shell this module only serves the
//! embedded assets. It may use actix-web types (like `http`), but holds no
//! business rule and never talks to Redis or the actors directly, except the
//! index's and dashboard's list of branches this node serves and the check
//! of a ticket link's key.

pub mod assets;
pub mod i18n;

use actix_web::http::{header, StatusCode};
use actix_web::{get, web, HttpRequest, HttpResponse};
use serde::Deserialize;

use crate::domain::Id;
use crate::http::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(index)
        .service(kiosk)
        .service(counter)
        .service(display)
        .service(player)
        .service(dashboard)
        .service(ticket)
        .service(asset);
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// JSON that is safe inside a `<script>` element: no `<`, `>` or `&` can end
/// it or open a comment.
fn script_json(value: &serde_json::Value) -> String {
    value
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// What differs between pages.
struct Page<'a> {
    name: &'a str,
    title_key: &'a str,
    data: Vec<(&'a str, String)>,
    main: String,
    status: StatusCode,
}

impl<'a> Page<'a> {
    fn new(name: &'a str, title_key: &'a str) -> Page<'a> {
        Page {
            name,
            title_key,
            data: Vec::new(),
            main: String::new(),
            status: StatusCode::OK,
        }
    }

    fn data(mut self, key: &'a str, value: impl Into<String>) -> Self {
        self.data.push((key, value.into()));
        self
    }

    fn render(self, req: &HttpRequest) -> HttpResponse {
        let lang = i18n::choose(req);
        let texts = i18n::texts(&lang);
        let text = |key: &str| {
            texts
                .get(key)
                .and_then(|v| v.as_str())
                .unwrap_or(key)
                .to_owned()
        };
        let data: String = self
            .data
            .iter()
            .map(|(k, v)| format!(" data-{k}=\"{}\"", escape_html(v)))
            .collect();
        let main = if self.main.is_empty() {
            format!(
                "<noscript><p>{}</p></noscript>",
                escape_html(&text("noscript"))
            )
        } else {
            self.main
        };
        let js = format!("js/{}.js", self.name);
        let html = assets::text("page.html")
            .unwrap_or_default()
            .replace("{{lang}}", &escape_html(&lang))
            .replace("{{title}}", &escape_html(&text(self.title_key)))
            .replace("{{css_version}}", &assets::version("css/turnus.css"))
            .replace("{{js_version}}", &assets::version(&js))
            .replace("{{page}}", self.name)
            .replace("{{skip}}", &escape_html(&text("skip_to_content")))
            .replace("{{data}}", &data)
            // Last: the texts and the main content may contain "{{".
            .replace("{{main}}", &main)
            .replace(
                "{{texts}}",
                &script_json(&serde_json::Value::Object(texts.clone())),
            );
        HttpResponse::build(self.status)
            .content_type("text/html; charset=utf-8")
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            // The ticket page's URL holds its key: never send it onwards.
            .insert_header((header::REFERRER_POLICY, "no-referrer"))
            .insert_header((
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; \
                 object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
            ))
            .body(html)
    }
}

/// The 404 page: an unknown branch id, a malformed one, or a wrong key.
fn not_found(req: &HttpRequest) -> HttpResponse {
    let texts = i18n::texts(&i18n::choose(req));
    let message = texts
        .get("page_not_found")
        .and_then(|v| v.as_str())
        .unwrap_or("Not found");
    let mut page = Page::new("index", "page_not_found");
    page.main = format!("<h1>{}</h1>", escape_html(message));
    page.status = StatusCode::NOT_FOUND;
    page.render(req)
}

/// A branch this node serves, for the index.
struct ServedBranch {
    id: String,
    name: String,
    counters: Vec<(String, String)>,
}

/// The branches this node serves, by id.
fn served_branches(state: &AppState) -> Vec<ServedBranch> {
    let Ok(snapshot) = state.snapshot() else {
        return Vec::new();
    };
    let mut served: Vec<ServedBranch> = snapshot
        .branches
        .values()
        .filter(|b| state.queues.get(b.id.as_str()).is_some())
        .map(|b| ServedBranch {
            id: b.id.to_string(),
            name: b.name.clone(),
            counters: b
                .counters
                .iter()
                .map(|c| (c.id.to_string(), c.name.clone()))
                .collect(),
        })
        .collect();
    served.sort_by(|a, b| a.id.cmp(&b.id));
    served
}

#[get("/")]
async fn index(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let texts = i18n::texts(&i18n::choose(&req));
    let t = |key: &str| escape_html(texts.get(key).and_then(|v| v.as_str()).unwrap_or(key));
    let mut main = format!("<h1>{}</h1>", t("index_title"));
    let branches = served_branches(&state);
    if branches.is_empty() {
        main.push_str(&format!("<p>{}</p>", t("index_no_branches")));
    }
    for branch in &branches {
        let id = escape_html(&branch.id);
        let counters: String = branch
            .counters
            .iter()
            .map(|(counter_id, name)| {
                format!(
                    "<li><a href=\"/counter/{id}/{}\">{}</a></li>",
                    escape_html(counter_id),
                    escape_html(name)
                )
            })
            .collect();
        main.push_str(&format!(
            "<section class=\"index-branch\"><h2>{}</h2><ul>\
             <li><a href=\"/kiosk/{id}\">{}</a></li>\
             <li><a href=\"/display/{id}\">{}</a></li></ul>\
             <h3>{}</h3><ul>{counters}</ul></section>",
            escape_html(&branch.name),
            t("kiosk_title"),
            t("display_title"),
            t("index_counters"),
        ));
    }
    main.push_str(&format!(
        "<p><a href=\"/dashboard\">{}</a></p>",
        t("dashboard_title")
    ));
    let mut page = Page::new("index", "index_title");
    page.main = main;
    page.render(&req)
}

fn valid(ids: &[&str]) -> bool {
    ids.iter().all(|id| Id::parse(id).is_ok())
}

#[get("/kiosk/{branch}")]
async fn kiosk(req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    if !valid(&[&path]) {
        return not_found(&req);
    }
    Page::new("kiosk", "kiosk_title")
        .data("branch", path.into_inner())
        .render(&req)
}

#[get("/counter/{branch}/{counter}")]
async fn counter(req: HttpRequest, path: web::Path<(String, String)>) -> HttpResponse {
    let (branch, counter) = path.into_inner();
    if !valid(&[&branch, &counter]) {
        return not_found(&req);
    }
    Page::new("counter", "counter_title")
        .data("branch", branch)
        .data("counter", counter)
        .render(&req)
}

#[get("/display/{branch}")]
async fn display(req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    if !valid(&[&path]) {
        return not_found(&req);
    }
    Page::new("display", "display_title")
        .data("branch", path.into_inner())
        .render(&req)
}

#[get("/player/{branch}/{player}")]
async fn player(req: HttpRequest, path: web::Path<(String, String)>) -> HttpResponse {
    let (branch, player) = path.into_inner();
    if !valid(&[&branch, &player]) {
        return not_found(&req);
    }
    Page::new("player", "player_title")
        .data("branch", branch)
        .data("player", player)
        .render(&req)
}

#[get("/dashboard")]
async fn dashboard(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let served: Vec<String> = served_branches(&state).into_iter().map(|b| b.id).collect();
    Page::new("dashboard", "dashboard_title")
        .data("branches", served.join(","))
        .render(&req)
}

#[derive(Deserialize)]
struct LinkKey {
    k: Option<String>,
}

/// The customer's page: only with the key of the ticket's link.
#[get("/t/{branch}/{ticket}")]
async fn ticket(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    key: web::Query<LinkKey>,
) -> HttpResponse {
    let (branch, ticket) = path.into_inner();
    let (Ok(branch_id), Ok(ticket_id), Some(k)) = (Id::parse(&branch), Id::parse(&ticket), &key.k)
    else {
        return not_found(&req);
    };
    match state.links.check(&branch_id, &ticket_id, k).await {
        Ok(()) => Page::new("ticket", "ticket_title")
            .data("branch", branch)
            .data("ticket", ticket)
            .data("counters", counter_names(&state, &branch_id))
            .render(&req),
        Err(crate::http::ApiError::Unavailable(_)) => {
            let mut page = Page::new("index", "unavailable");
            page.main = "<h1>503</h1>".to_owned();
            page.status = StatusCode::SERVICE_UNAVAILABLE;
            page.render(&req)
        }
        Err(_) => not_found(&req),
    }
}

/// The branch's counter names by id, as JSON, so the phone can say "your
/// turn: Counter 3" without a staff token (the names are on the public
/// display board anyway); `{}` when the branch is not configured here.
fn counter_names(state: &AppState, branch: &Id) -> String {
    let names: serde_json::Map<String, serde_json::Value> = state
        .config
        .current()
        .and_then(|snapshot| snapshot.branches.get(branch).cloned())
        .map(|b| {
            b.counters
                .iter()
                .map(|c| (c.id.to_string(), c.name.clone().into()))
                .collect()
        })
        .unwrap_or_default();
    serde_json::Value::Object(names).to_string()
}

#[get("/assets/{path:.*}")]
async fn asset(req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    // The page template is an asset too, but only as a page.
    if path.as_str() == "page.html" {
        return not_found(&req);
    }
    assets::serve(&req, &path).unwrap_or_else(|| not_found(&req))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_keeps_markup_as_text() {
        assert_eq!(
            escape_html("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        let json = serde_json::json!({"a": "</script><!--"});
        assert!(!script_json(&json).contains('<'));
    }
}
